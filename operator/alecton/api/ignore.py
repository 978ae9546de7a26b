"""Ignore rules: which objects, or which fields of them (JSON pointers, RFC 6901), a diff or
drift check leaves out. Parsed from a Deployment's ``spec.drift.ignore`` and the CLI."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

from alecton.api.objects import ObjectKey

_RULE_KEYS = frozenset({"kind", "name", "jsonPointers"})

Path = tuple[str, ...]


@dataclass(frozen=True)
class IgnoreRule:
    kind: str = "*"  # glob on kind
    name: str = "*"  # glob on metadata.name
    pointer: str = ""  # JSON pointer (RFC 6901) of a field to ignore; "" ignores the whole object

    def matches(self, key: ObjectKey) -> bool:
        # Case-sensitive like Kubernetes names: "deployment" must not match "Deployment" by accident.
        return fnmatch.fnmatchcase(key.kind, self.kind) and fnmatch.fnmatchcase(key.name, self.name)

    @property
    def tokens(self) -> Path:
        return _parse_pointer(self.pointer) if self.pointer else ()


def parse_rules(raw_list: Any, where: str) -> tuple[IgnoreRule, ...]:
    """Rules from user input like ``[{"kind": "Deployment", "name": "web-*", "jsonPointers": [...]}]``.

    Each pointer becomes one rule; an entry without ``jsonPointers`` ignores whole objects.
    Errors name `where` (the field the rules came from) and the offending entry.
    """
    if not isinstance(raw_list, list):
        raise ValueError(f"{where}: expected a list of rules, got {_type_name(raw_list)}")
    rules: list[IgnoreRule] = []
    for index, raw in enumerate(raw_list):
        rules.extend(_parse_rule(raw, f"{where}[{index}]"))
    return tuple(rules)


def _parse_rule(raw: Any, where: str) -> list[IgnoreRule]:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected a mapping, got {_type_name(raw)}")
    unknown = sorted(str(name) for name in raw if name not in _RULE_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r} (expected kind, name, jsonPointers)")
    if not raw:
        # Almost certainly a mistake, and one that would silently hide every difference.
        raise ValueError(f"{where}: an empty rule would ignore every object")
    kind = _glob(raw, "kind", where)
    name = _glob(raw, "name", where)
    if "jsonPointers" not in raw:
        return [IgnoreRule(kind, name)]
    pointers = raw["jsonPointers"]
    if not isinstance(pointers, list):
        raise ValueError(f"{where}.jsonPointers: expected a list, got {_type_name(pointers)}")
    if not pointers:
        raise ValueError(f"{where}.jsonPointers: empty; leave it out to ignore whole objects")
    rules = []
    for index, pointer in enumerate(pointers):
        place = f"{where}.jsonPointers[{index}]"
        if not isinstance(pointer, str) or not pointer.startswith("/"):
            raise ValueError(f"{place}: {pointer!r} is not a JSON pointer (it must start with '/')")
        _parse_pointer(pointer, place)
        rules.append(IgnoreRule(kind, name, pointer))
    return rules


def _glob(raw: dict[str, Any], field: str, where: str) -> str:
    value = raw.get(field, "*")
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}.{field}: expected a non-empty string, got {value!r}")
    return value


def _parse_pointer(pointer: str, where: str = "pointer") -> Path:
    tokens = pointer.split("/")[1:]
    for token in tokens:
        # "~" may only start the escapes "~0" and "~1" (RFC 6901, section 3).
        if "~" in token.replace("~0", "").replace("~1", ""):
            raise ValueError(f"{where}: {pointer!r} has a '~' that is not '~0' or '~1'")
    # "~1" first: "~01" is the literal "~1", not "/".
    return tuple(token.replace("~1", "/").replace("~0", "~") for token in tokens)


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__
