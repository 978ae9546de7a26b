"""The comparison walk of a diff: the fields a desired object sets against a live one.

`diff.py` explains the rules. Nothing here does I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from alecton.api.ignore import IgnoreRule, Path
from alecton.api.objects import ObjectKey

# Manifests are trees a few dozen levels deep; YAML aliases can make a cyclic one, which
# must fail cleanly instead of exhausting the stack.
_MAX_DEPTH = 100


def _pointer(path: Path) -> str:
    return "".join("/" + token.replace("~", "~0").replace("/", "~1") for token in path)


class _Absent(enum.Enum):
    TOKEN = 0  # a field the live object does not have (unlike a field that is null)


ABSENT = _Absent.TOKEN


@dataclass(frozen=True)
class Walk:
    what: str  # for error messages
    ignored: tuple[Path, ...]
    found: list[str]  # pointers of the differences, appended during the walk

    def skips(self, path: Path) -> bool:
        return any(path[: len(ignored)] == ignored for ignored in self.ignored)

    def differ(self, path: Path) -> None:
        self.found.append(_pointer(path))

    def check_depth(self, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise ValueError(f"{self.what}: nested more than {_MAX_DEPTH} levels deep")


def project(desired: Any, live: Any, walk: Walk, path: Path = (), depth: int = 0) -> tuple[Any, Any]:
    """Compare the fields `desired` sets with `live`, recording differing pointers in `walk`.

    Returns the desired value without ignored fields and the live value reduced to the
    fields the desired one sets (`ABSENT` when there is none). Where the two are equal
    after normalisation, both views hold the desired value, so the unified diff shows real
    differences only.
    """
    walk.check_depth(depth)
    if live is ABSENT or live is None:
        if _is_empty(desired):
            return desired, desired
        walk.differ(path)
        return prune(desired, path, walk, depth), live
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            walk.differ(path)
            return prune(desired, path, walk, depth), live
        desired_view: dict[Any, Any] = {}
        live_view: dict[Any, Any] = {}
        for name, value in desired.items():
            child = (*path, str(name))
            if value is None or walk.skips(child):
                continue  # null: the manifest does not set the field
            desired_view[name], projected = project(value, live.get(name, ABSENT), walk, child, depth + 1)
            if projected is not ABSENT:
                live_view[name] = projected
        return desired_view, live_view
    if isinstance(desired, list):
        if not isinstance(live, list):
            walk.differ(path)
            return prune(desired, path, walk, depth), live
        if _is_named(desired):
            return _named_lists(desired, live, walk, path, depth)
        return _indexed_lists(desired, live, walk, path, depth)
    if _same_scalar(desired, live):
        return desired, desired
    walk.differ(path)
    return desired, live


def _named_lists(
    desired: list[Any], live: list[Any], walk: Walk, path: Path, depth: int
) -> tuple[list[Any], list[Any]]:
    by_name: dict[str, Any] = {}
    for item in live:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            by_name.setdefault(item["name"], item)
    desired_view: list[Any] = []
    live_view: list[Any] = []
    for index, item in enumerate(desired):
        child = (*path, str(index))
        if walk.skips(child):
            continue
        mine, theirs = project(item, by_name.get(item["name"], ABSENT), walk, child, depth + 1)
        desired_view.append(mine)
        if theirs is not ABSENT:
            live_view.append(theirs)
    return desired_view, live_view


def _indexed_lists(
    desired: list[Any], live: list[Any], walk: Walk, path: Path, depth: int
) -> tuple[list[Any], list[Any]]:
    if len(desired) != len(live):
        walk.differ(path)  # the list as a whole; items past the shorter end are not listed again
    desired_view: list[Any] = []
    live_view: list[Any] = []
    for index, item in enumerate(desired):
        child = (*path, str(index))
        if walk.skips(child):
            continue
        if index >= len(live):
            desired_view.append(prune(item, child, walk, depth + 1))
            continue
        mine, theirs = project(item, live[index], walk, child, depth + 1)
        desired_view.append(mine)
        live_view.append(theirs)
    live_view.extend(live[len(desired) :])  # shown whole: the manifest would remove them
    return desired_view, live_view


def prune(value: Any, path: Path, walk: Walk, depth: int) -> Any:
    """`value` without ignored fields and null mapping values (the fields a walk skips)."""
    walk.check_depth(depth)
    if isinstance(value, dict):
        pruned: dict[Any, Any] = {}
        for name, item in value.items():
            child = (*path, str(name))
            if item is not None and not walk.skips(child):
                pruned[name] = prune(item, child, walk, depth + 1)
        return pruned
    if isinstance(value, list):
        return [
            prune(item, (*path, str(index)), walk, depth + 1)
            for index, item in enumerate(value)
            if not walk.skips((*path, str(index)))
        ]
    return value


def _is_named(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(item, dict) and isinstance(item.get("name"), str) for item in items)


def _is_empty(value: Any) -> bool:
    return isinstance(value, str | dict | list) and not value


def _same_scalar(desired: Any, live: Any) -> bool:
    if isinstance(desired, bool) or isinstance(live, bool):
        return isinstance(desired, bool) and isinstance(live, bool) and desired == live
    if isinstance(desired, int | float) and isinstance(live, int | float):
        return desired == live
    # Quantities come back from the API server as strings: `cpu: 1` is returned as "1".
    if isinstance(desired, int) and isinstance(live, str):
        return str(desired) == live
    if isinstance(desired, str) and isinstance(live, int):
        return desired == str(live)
    return type(desired) is type(live) and desired == live


def walk_for(key: ObjectKey, ignore: Sequence[IgnoreRule]) -> Walk | None:
    """The walk state for `key`, or None when a rule ignores the whole object."""
    rules = [rule for rule in ignore if rule.matches(key)]
    if any(not rule.pointer for rule in rules):
        return None
    return Walk(key.describe(), tuple(rule.tokens for rule in rules), [])
