"""Every field a CRD's CEL rule reads is guarded by has() in that rule.

A rule that reads an absent field fails with "no such key: <field> evaluating rule: ..."
instead of a message naming the field (an Application without spec.targets was refused so).
When a `required` field is missing the API server reports it and skips the rules, but an
optional field has no such error, and on an update a Required error can be ratcheted away
(an object stored without the field, its spec unchanged). So every read is guarded, required
or not.

The check reads rules as text: each select chain rooted at self, oldSelf or a comprehension
variable (`t` in `self.spec.targets.all(t, ...)`) must have each of its prefixes appear as
`has(prefix)` in the same rule. It does not prove the guard sits on the right side of an
`||`; tests/integration/test_crd_messages.py sends the objects to a real API server.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

CRDS = sorted((Path(__file__).resolve().parents[2] / "crds").glob("*.alecton.dev.yaml"))

# The API server sets metadata.name (also from generateName) before it validates; CEL sees
# metadata (name and generateName only) on the root alone.
ALWAYS_SET_ON_ROOT = frozenset({"self.metadata", "self.metadata.name"})
COMPREHENSION_VARIABLE = re.compile(r"\.(?:all|exists|exists_one|map|filter)\(\s*([A-Za-z_]\w*)\s*,")
HAS_ARGUMENT = re.compile(r"has\(\s*([\w.]+)\s*\)")
ENDS_IN_HAS = re.compile(r"has\(\s*$")


def rules_in(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, str]]:
    """(schema path, rule) of every x-kubernetes-validations rule; "" is the root."""
    for validation in schema.get("x-kubernetes-validations") or []:
        yield path, validation["rule"]
    for name, child in (schema.get("properties") or {}).items():
        yield from rules_in(child, f"{path}.{name}")
    for key, suffix in (("items", "[]"), ("additionalProperties", "{}")):
        if isinstance(schema.get(key), dict):
            yield from rules_in(schema[key], path + suffix)


def unguarded_reads(rule: str, on_root: bool) -> list[str]:
    """The fields `rule` reads without a has() of them in the rule, in order of appearance."""
    roots = {"self", "oldSelf", *COMPREHENSION_VARIABLE.findall(rule)}
    # A chain of field selects; a name followed by "(" is a method (matches, all), not a field.
    chain = re.compile(rf"(?<![\w.])(?:{'|'.join(sorted(roots))})(?:\.[A-Za-z_]\w*(?![\w(]))+")
    guarded = set(HAS_ARGUMENT.findall(rule)) | (ALWAYS_SET_ON_ROOT if on_root else set())
    unguarded: list[str] = []
    for match in chain.finditer(rule):
        parts = match.group().split(".")
        # has(a.b.c) reads a.b and asks whether c is there; any other use reads all of it.
        read = len(parts) - 1 if ENDS_IN_HAS.search(rule, 0, match.start()) else len(parts)
        for end in range(2, read + 1):
            prefix = ".".join(parts[:end])
            if prefix not in guarded and prefix not in unguarded:
                unguarded.append(prefix)
    return unguarded


def all_rules() -> list[Any]:
    found = []
    for crd_path in CRDS:
        crd = yaml.safe_load(crd_path.read_text())
        for version in crd["spec"]["versions"]:
            for index, (path, rule) in enumerate(rules_in(version["schema"]["openAPIV3Schema"])):
                name = f"{crd['spec']['names']['plural']}/{version['name']}{path or ' root'} #{index}"
                found.append(pytest.param(rule, path == "", id=name))
    return found


RULES = all_rules()


@pytest.mark.parametrize(("rule", "on_root"), RULES)
def test_every_field_a_rule_reads_is_guarded_by_has(rule: str, on_root: bool) -> None:
    assert unguarded_reads(rule, on_root) == [], f"guard these reads with has(): {rule}"


def test_the_check_finds_unguarded_reads() -> None:
    assert len(RULES) >= 5, "no CRD rules found: is crds/ where this test looks?"
    # The rule that refused an Application without spec.targets with "no such key: targets".
    before = "self.spec.targets.all(t, size(self.metadata.name) + 1 + size(t.name) <= 53)"
    assert unguarded_reads(before, on_root=True) == ["self.spec", "self.spec.targets", "t.name"]
    assert unguarded_reads("!has(self.approval) || self.approval.digest == self.digest", False) == [
        "self.approval.digest",
        "self.digest",
    ]
    assert unguarded_reads("!has(oldSelf.approval) || self.approval == oldSelf.approval", False) == [
        "self.approval"
    ]
    # metadata.name is set before validation, on the root only.
    assert unguarded_reads("self.metadata.name.matches('^[a-z]+$')", on_root=True) == []
    assert unguarded_reads("size(self.metadata.name) <= 63", on_root=False) == [
        "self.metadata",
        "self.metadata.name",
    ]
