"""Chart values: computed from scratch on every deploy.

Precedence, lowest first:

    chart defaults (helm applies them)
    < Application valuesFrom (in list order)
    < Application values
    < target valuesFrom (in list order)
    < target values
    < the image keys

`merge_values_from` merges one valuesFrom list over the values accumulated so far;
the caller calls it, `deep_merge` and the image keys in the order above. The result
reaches helm as a values file, so user strings are never parsed by `--set` (no key
injection through `,` `=` `.` `{`).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

import yaml

from alecton.api.models import ImageValues, InvalidResourceError
from alecton.reconcile.redact import string_leaves

MAX_VALUES_DEPTH = 64

# How deep deep_merge follows maps present in both inputs when the base shares maps
# between keys (YAML anchors). Only then can the walk be endless (an anchor that
# contains itself, in both inputs) and each level costs a copy; with plain trees
# the walk ends where the base ends and costs nothing extra. Far above
# MAX_VALUES_DEPTH, which callers check first, and above what the earlier recursive
# deep_merge survived, so nothing that merged before is refused.
_MERGE_DEPTH_LIMIT = 1000

# Returned as they are by copy.deepcopy; exact types, as deepcopy treats subclasses
# like any other object.
_ATOMIC_TYPES = frozenset({str, int, float, bool, type(None)})
_SIMPLE_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PATH_COMPONENTS_SHOWN = 8


def _copy_tree(value: Any) -> Any:
    return _copy_tree_noting_aliases(value)[0]


def _copy_tree_noting_aliases(value: Any) -> tuple[Any, bool]:
    """`copy.deepcopy(value)` without recursion for dicts and lists, however deep.

    Shared and cyclic containers stay shared and cyclic, as with deepcopy's memo:
    values parsed from YAML can use anchors, and expanding them into trees could turn
    a small document into an enormous one. Anything other than a plain dict or list
    goes to `copy.deepcopy` with the same memo. The flag is True when the copy may
    share containers (then a change made through one key can show through another).
    """
    if type(value) in _ATOMIC_TYPES:
        return value, False
    aliased = False
    memo: dict[int, Any] = {}
    holder: list[Any] = [None]
    # Each entry: (container to fill, key or index in it, source value). Containers
    # are created with their keys in place first, so the fill order does not matter.
    stack: list[tuple[Any, Any, Any]] = [(holder, 0, value)]
    while stack:
        parent, slot, source = stack.pop()
        if type(source) in _ATOMIC_TYPES:
            parent[slot] = source
        elif id(source) in memo:
            aliased = True
            parent[slot] = memo[id(source)]
        elif type(source) is dict:
            new_dict: dict[Any, Any] = {}
            memo[id(source)] = new_dict
            for key, child in source.items():
                new_key = key if type(key) in _ATOMIC_TYPES else copy.deepcopy(key, memo)
                new_dict[new_key] = None
                stack.append((new_dict, new_key, child))
            parent[slot] = new_dict
        elif type(source) is list:
            new_list: list[Any] = [None] * len(source)
            memo[id(source)] = new_list
            stack.extend((new_list, index, child) for index, child in enumerate(source))
            parent[slot] = new_list
        else:
            # Sharing inside deepcopy's part is not seen here: assume there is some.
            aliased = True
            parent[slot] = copy.deepcopy(source, memo)
    return holder[0], aliased


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Maps merge key by key; any other value in `override` replaces the base value.

    `null` in `override` is kept: helm reads it as "delete this chart default".
    Iterative: deep input cannot exhaust the call stack. Raises ValueError only when
    the base shares maps (YAML anchors) and both inputs nest more than 1000 maps deep
    along the same keys, as with an anchor that contains itself.
    """
    merged, aliased = _copy_tree_noting_aliases(base)
    # The walk visits keys in the same order as the recursive version it replaced.
    # That version merged into a fresh copy of each base map it entered; with a
    # tree (no map reachable twice) the copy made above is already private, so it
    # is changed in place. With shared maps a fresh copy is made on entering, and
    # only put in place on leaving, exactly as before, so a map shared by two keys
    # changes under the merged key only.
    # Each frame: (map being merged into, override items still to merge, where the
    # finished map goes: (parent map, key), or None for the result itself).
    frames: list[tuple[dict[str, Any], Any, tuple[dict[str, Any], Any] | None]] = [
        (merged, iter(override.items()), None)
    ]
    while frames:
        target, pending, destination = frames[-1]
        item = next(pending, None)
        if item is None:
            frames.pop()
            if destination is not None:
                parent, key = destination
                parent[key] = target
            continue
        key, value = item
        current = target.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            if aliased:
                if len(frames) > _MERGE_DEPTH_LIMIT:
                    raise ValueError(
                        f"values are nested deeper than {_MERGE_DEPTH_LIMIT} levels, or an anchor "
                        "contains itself: flatten them"
                    )
                current = _copy_tree(current)
            frames.append((current, iter(value.items()), (target, key)))
        else:
            target[key] = _copy_tree(value)
    return merged


def _path_component(key: Any) -> str:
    if isinstance(key, str) and _SIMPLE_KEY.fullmatch(key):
        return "." + key
    if isinstance(key, int) and not isinstance(key, bool):
        return f"[{key}]"
    # Anything else is quoted (and cut short), so the message stays on one line.
    shown = repr(key)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return f"[{shown}]"


def values_depth_error(values: Any, limit: int = MAX_VALUES_DEPTH, where: str = "values") -> str | None:
    """None when dicts and lists in `values` nest at most `limit` levels, else why not.

    The outermost dict or list is level 1; every dict or list inside adds one. The
    message is one line naming where the limit was crossed, for example
    `values are nested deeper than 64 levels (at spec.values.a.b.c.d.e.f.g.h...): flatten them`.
    Iterative, so input nested 100000 deep is just too deep. A cyclic structure
    (possible with YAML anchors) is infinitely deep and gets the message too.
    """
    if not isinstance(values, dict | list):
        return None
    # Each entry: (container, its level, link to its path). A path link is
    # (parent link, component) and is only turned into text for the message.
    stack: list[tuple[Any, int, Any]] = [(values, 1, None)]
    # The deepest level each container was checked at. A container shared by
    # several parents (YAML anchors) need not be checked again at the same or a
    # shallower level: everything below it is already checked or queued. That
    # keeps documents built from nested anchors from taking exponential time.
    checked_at: dict[int, int] = {}
    while stack:
        node, level, link = stack.pop()
        if level > limit:
            return _depth_message(limit, where, link)
        if checked_at.get(id(node), 0) >= level:
            continue
        checked_at[id(node)] = level
        children = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in children:
            if isinstance(child, dict | list):
                stack.append((child, level + 1, (link, key)))
    return None


def _depth_message(limit: int, where: str, link: Any) -> str:
    keys: list[Any] = []
    while link is not None:
        link, key = link
        keys.append(key)
    keys.reverse()
    path = where + "".join(_path_component(key) for key in keys[:_PATH_COMPONENTS_SHOWN])
    if len(keys) > _PATH_COMPONENTS_SHOWN:
        path += "..."
    return f"values are nested deeper than {limit} levels (at {path}): flatten them"


def split_image_reference(reference: str) -> tuple[str, str]:
    """`repo/name:tag` -> (`repo/name`, `tag`); `repo/name@sha256:x` -> (`repo/name`, `@sha256:x`).

    A registry port (`host:5000/name`) is not a tag. Without tag or digest the tag is `latest`.
    """
    if "@" in reference:
        repository, digest = reference.split("@", 1)
        return repository, "@" + digest
    last_slash = reference.rfind("/")
    colon = reference.rfind(":")
    if colon > last_slash:
        return reference[:colon], reference[colon + 1 :]
    return reference, "latest"


def set_path(values: dict[str, Any], dotted: str, value: Any) -> None:
    """Set `a.b.c` in nested maps, replacing any non-map found on the way."""
    node = values
    *parents, leaf = dotted.split(".")
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[leaf] = value


def compute_values(
    application_values: dict[str, Any],
    target_values: dict[str, Any],
    image_reference: str,
    image_values: ImageValues,
) -> dict[str, Any]:
    values = deep_merge(application_values, target_values)
    if image_values.ref:
        set_path(values, image_values.ref, image_reference)
    if image_values.repository and image_values.tag:
        repository, tag = split_image_reference(image_reference)
        set_path(values, image_values.repository, repository)
        set_path(values, image_values.tag, tag)
    return values


# ----- valuesFrom ------------------------------------------------------------------------------

_VALUES_SOURCE_KINDS = ("Secret", "ConfigMap")
# What Kubernetes accepts for Secret and ConfigMap names and data keys, and what
# the CRD accepts for targetPath; checked again here because an older CRD may not.
_OBJECT_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DATA_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_TARGET_PATH = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
_MAX_NAME_LENGTH = 253


class ValuesSourceMissingError(ValueError):
    """A valuesFrom object or key that does not exist and is not optional."""

    def __init__(self, reference: ValuesReference) -> None:
        super().__init__(
            f"{reference.kind}/{reference.name} does not exist or has no key {reference.key}: "
            "create it, or mark the reference optional"
        )
        self.reference = reference

    def __reduce__(self) -> tuple[type[ValuesSourceMissingError], tuple[ValuesReference]]:
        # The constructor takes the reference, not the message: rebuild from it
        # when the error is copied or pickled.
        return (type(self), (self.reference,))


@dataclass(frozen=True)
class ValuesReference:
    """One valuesFrom entry: a ConfigMap or Secret key in the resource's namespace."""

    kind: str  # "Secret" or "ConfigMap"
    name: str
    key: str = "values.yaml"
    target_path: str = ""
    optional: bool = False

    @classmethod
    def parse(cls, raw: Any, where: str) -> ValuesReference:
        """`raw` is one item of a valuesFrom list; `where` names it in errors (`spec.valuesFrom[2]`)."""
        if not isinstance(raw, dict):
            raise InvalidResourceError(f"{where} must be an object with kind and name")
        kind = raw.get("kind")
        if kind not in _VALUES_SOURCE_KINDS:
            raise InvalidResourceError(f"{where}.kind must be Secret or ConfigMap, not {kind!r}")
        name = raw.get("name")
        if name is None or name == "":
            raise InvalidResourceError(f"{where}.name is required")
        if not isinstance(name, str) or len(name) > _MAX_NAME_LENGTH or not _OBJECT_NAME.fullmatch(name):
            raise InvalidResourceError(f"{where}.name must be a {kind} name, not {name!r}")
        key = raw.get("key")
        if key is None:
            key = "values.yaml"
        if not isinstance(key, str):
            raise InvalidResourceError(f"{where}.key must be a string, not {type(key).__name__}")
        if len(key) > _MAX_NAME_LENGTH or not _DATA_KEY.fullmatch(key):
            raise InvalidResourceError(
                f"{where}.key must be a {kind} data key (letters, digits, '-', '_', '.'), not {key!r}"
            )
        target_path = raw.get("targetPath")
        if target_path is None:
            target_path = ""
        if not isinstance(target_path, str):
            raise InvalidResourceError(
                f"{where}.targetPath must be a string, not {type(target_path).__name__}"
            )
        if target_path and (len(target_path) > _MAX_NAME_LENGTH or not _TARGET_PATH.fullmatch(target_path)):
            raise InvalidResourceError(
                f"{where}.targetPath must be a dotted path of non-empty keys "
                f"(letters, digits, '-', '_'), like image.pullSecret, not {target_path!r}"
            )
        optional = raw.get("optional")
        if optional is None:
            optional = False
        if not isinstance(optional, bool):
            raise InvalidResourceError(f"{where}.optional must be true or false")
        return cls(kind=kind, name=name, key=key, target_path=target_path, optional=optional)

    def describe(self) -> str:
        """`Secret/name key values.yaml`: how messages name the reference."""
        return f"{self.kind}/{self.name} key {self.key}"


def _parse_mapping(reference: ValuesReference, text: str) -> dict[str, Any]:
    """The text of a reference without targetPath, as a map of values.

    No message here quotes the text, or the YAML parser's message (which quotes
    the offending line): the text may come from a Secret.
    """
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise ValueError(f"{reference.describe()} is not valid YAML{at}") from None
    if parsed is None:
        # An empty file, or only comments: no values, as helm reads an empty -f file.
        return {}
    if not isinstance(parsed, dict):
        shape = "a list" if isinstance(parsed, list) else "a single value"
        raise ValueError(
            f"{reference.describe()} must hold a YAML map of values, not {shape} "
            "(or set targetPath to use the text as one string value)"
        )
    # Checked here, where parsed YAML enters, because anchors can make it cyclic.
    # The message leaves out the path: its keys are part of the text.
    if values_depth_error(parsed) is not None:
        raise ValueError(
            f"{reference.describe()} holds values nested deeper than {MAX_VALUES_DEPTH} levels: flatten them"
        )
    return parsed


def merge_values_from(
    base: dict[str, Any], sources: list[tuple[ValuesReference, str | None]]
) -> dict[str, Any]:
    """`base` with each source merged over it in order; `base` is not changed.

    `sources` pairs each reference with the text fetched for it, None when the
    object or the key does not exist. A missing optional source is skipped; a
    missing required one raises ValuesSourceMissingError. Without targetPath the
    text is a YAML map deep-merged over the values so far; with targetPath the text
    is set, as one string, at that path.
    """
    merged = _copy_tree(base)
    for reference, text in sources:
        if text is None:
            if reference.optional:
                continue
            raise ValuesSourceMissingError(reference)
        if reference.target_path:
            # Built as a map and merged, rather than set in place, so a map that
            # `merged` shares with another key (YAML anchors) is not changed there too.
            override: dict[str, Any] = {}
            set_path(override, reference.target_path, text)
        else:
            override = _parse_mapping(reference, text)
        merged = deep_merge(merged, override)
    return merged


def secret_strings(sources: list[tuple[ValuesReference, str | None]]) -> list[str]:
    """Every string that came from a Secret, to build a Redactor from.

    With targetPath that is the whole text; otherwise every string in the parsed
    map. Text that does not parse as a map is all kept whole (a Redactor also
    redacts its lines): merge_values_from refuses it, but the error must not be
    the way the text leaks.
    """
    found: list[str] = []
    for reference, text in sources:
        if reference.kind != "Secret" or text is None:
            continue
        if reference.target_path:
            found.append(text)
            continue
        try:
            parsed = yaml.safe_load(text)
        except yaml.YAMLError:
            found.append(text)
            continue
        if not isinstance(parsed, dict):
            found.append(text)
        found.extend(string_leaves(parsed))
    return found
