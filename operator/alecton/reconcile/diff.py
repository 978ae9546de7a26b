"""What deploying a release would change, and how the cluster drifted from the deployed one.

One engine serves two questions:

* `alecton diff`: *desired* is what helm's server-side dry run renders for the new version,
  *live* is what the cluster holds, *previous* is the release deployed now (its objects that
  the new version no longer renders are the ones helm would delete);
* drift detection (``mode="drift"``): *desired* is the deployed release, *live* the cluster.

How two objects are compared
----------------------------
Only the fields the desired object sets are compared, which is what a server-side apply of
the manifest would own. Fields the manifest does not mention (defaults the API server fills
in, fields other controllers write, status) are never differences.

* Mappings: every key of the desired mapping is compared with the same key of the live one.
  A key whose desired value is null is not set by the manifest and is not compared.
* Lists whose items are all mappings with a ``name`` (containers, env, ports, volumes) are
  matched by name, whatever their order: a desired item missing from the live list is a
  difference, live items with other names are not (server-side apply merges such lists by
  key, so items added by others, like an injected sidecar, stay untouched).
* Other lists are compared item by item and must have the same length.
* Scalars must be equal, with a light normalisation: an integer equals a float of the same
  value (``2`` and ``2.0``) and an integer equals the string of its digits (``cpu: 1`` is
  returned as ``"1"``); booleans are strict (``true`` is not ``1``); quantity strings are
  compared as written (``"500m"`` is not ``"0.5"``).
* An empty desired value (``""``, ``{}``, ``[]``) equals a field the live object lacks: the
  API server drops empty values rather than storing them.
* Always ignored: ``status``; in ``metadata`` the fields the API server writes
  (``managedFields``, ``resourceVersion``, ``uid``, ``generation``, ``creationTimestamp``,
  ``selfLink``); the annotations ``deployment.kubernetes.io/revision``,
  ``kubectl.kubernetes.io/last-applied-configuration``, ``meta.helm.sh/release-name`` and
  ``meta.helm.sh/release-namespace``; the namespace written on a cluster-scoped object.
* Secrets are compared on hashes of their values: ``data`` (base64) and ``stringData``
  (plain text) values become ``hmac:<12 hex digits>``, an HMAC-SHA256 of the same bytes
  keyed with a random secret of the process (equal values hash alike within one run;
  a hash cannot be turned back into a short password by hashing guesses), and
  ``stringData`` is folded into ``data``, so ``stringData: {x: abc}`` equals
  ``data: {x: YWJj}``. A Secret's values never appear in any output, only their hashes.
* Ignore rules select objects by kind and name (shell globs). A rule without a JSON pointer
  ignores the whole object (it is reported unchanged, whatever happens to it); a rule with
  a pointer (RFC 6901, such as ``/spec/replicas``) removes that field from the comparison.
  List indexes in pointers count in the desired list.

Differences are reported as the JSON pointers of the fields that differ, with list items
numbered as in the desired list, and as a unified diff of YAML: the live object, reduced to
the fields the desired object sets, against the desired object.

Nothing here does I/O: objects are plain dicts as the API server or a YAML parser gives them.
"""

from __future__ import annotations

import base64
import difflib
import enum
import functools
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from alecton.api.ignore import IgnoreRule, Path
from alecton.api.objects import ObjectKey
from alecton.reconcile.health import manifest_documents, manifest_objects
from alecton.reconcile.redact import REDACTED

# Per process: hashes of Secret values compare within one run and mean nothing outside it.
_HASH_KEY = secrets.token_bytes(32)


class Change(enum.Enum):
    CREATED = "created"  # in desired, not live
    CHANGED = "changed"  # in both, fields differ
    DELETED = "deleted"  # in previous (the deployed release), not in desired: helm would delete it
    UNCHANGED = "unchanged"
    MISSING = "missing"  # drift mode only: in desired (the release), gone from the cluster


MODES = ("diff", "drift")

# Status can carry a long list of fields; the full list stays in the diff text.
STATUS_FIELDS_LIMIT = 20

_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

# Written by the API server, never by a manifest author.
_SERVER_METADATA = ("managedFields", "resourceVersion", "uid", "generation", "creationTimestamp", "selfLink")

# Written by controllers and tools at apply time; the last-applied one can also embed Secret data.
_TOOL_ANNOTATIONS = (
    "deployment.kubernetes.io/revision",
    _LAST_APPLIED,
    "meta.helm.sh/release-name",
    "meta.helm.sh/release-namespace",
)

# Manifests are trees a few dozen levels deep; YAML aliases can make a cyclic one, which
# must fail cleanly instead of exhausting the stack.
_MAX_DEPTH = 100

# Same limit as the manifest parser in health.py, so both skip the same documents.
_MAX_LIST_DEPTH = 8


def _pointer(path: Path) -> str:
    return "".join("/" + token.replace("~", "~0").replace("/", "~1") for token in path)


# ---------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class ObjectDiff:
    key: ObjectKey
    change: Change
    fields: tuple[str, ...]  # JSON pointers of the differing fields, sorted; empty unless CHANGED
    diff: str  # unified diff of YAML; "" when unchanged

    def as_status(self) -> dict[str, Any]:
        return {
            "kind": self.key.kind,
            "name": self.key.name,
            "namespace": self.key.namespace,
            "change": self.change.value,
            "fields": list(self.fields[:STATUS_FIELDS_LIMIT]),
        }


# The order counts appear in a summary: what needs attention first.
_SUMMARY_ORDER = (Change.CHANGED, Change.CREATED, Change.DELETED, Change.MISSING, Change.UNCHANGED)


@dataclass(frozen=True)
class DiffResult:
    objects: tuple[ObjectDiff, ...]

    @property
    def changed(self) -> bool:
        return any(item.change is not Change.UNCHANGED for item in self.objects)

    @property
    def summary(self) -> str:
        if not self.changed:
            return "no changes"
        counts = {change: 0 for change in _SUMMARY_ORDER}
        for item in self.objects:
            counts[item.change] += 1
        return ", ".join(f"{count} {change.value}" for change, count in counts.items() if count)

    def text(self) -> str:
        return "".join(
            f"{item.key.describe()} ({item.change.value})\n{item.diff}"
            for item in self.objects
            if item.change is not Change.UNCHANGED
        )


# ---------------------------------------------------------------------------
# Objects and manifests


def key_of(obj: dict[str, Any], default_namespace: str = "") -> ObjectKey:
    """The key of an object, placed in `default_namespace` when namespaced and without one."""
    kind = obj.get("kind")
    metadata = obj.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    name = metadata.get("name")
    if not isinstance(kind, str) or not kind or not isinstance(name, str) or not name:
        raise ValueError("object without a kind or a metadata.name")
    api_version = obj.get("apiVersion")
    api_version = api_version if isinstance(api_version, str) else ""
    if _cluster_scoped(api_version, kind):
        return ObjectKey(api_version, kind, "", name)
    namespace = metadata.get("namespace")
    namespace = namespace if isinstance(namespace, str) and namespace else default_namespace
    return ObjectKey(api_version, kind, namespace, name)


@functools.lru_cache(maxsize=256)
def _cluster_scoped(api_version: str, kind: str) -> bool:
    # health.py owns the list of cluster-scoped kinds but keeps it private; asking its public
    # parser about a one-object manifest keeps a single list without reaching into it.
    probe = json.dumps({"apiVersion": api_version, "kind": kind, "metadata": {"name": "probe"}})
    keys = manifest_objects(probe, "probe")
    return bool(keys) and keys[0].namespace == ""


def parse_manifest(manifest: str, default_namespace: str) -> list[dict[str, Any]]:
    """The objects of a release manifest, in order and without duplicates (the first wins).

    Skips and expands documents exactly like `health.manifest_objects` (empty documents,
    objects without kind or name, `...List` kinds), so the keys of the result are the keys it
    returns. Namespaced objects without a namespace get `default_namespace`.
    """
    documents = manifest_documents(manifest)
    objects: dict[ObjectKey, dict[str, Any]] = {}
    for document in documents:
        for obj in _leaves(document, 0):
            try:
                key = key_of(obj, default_namespace)
            except ValueError:
                continue
            if key not in objects:
                objects[key] = _with_namespace(obj, key)
    return list(objects.values())


def _leaves(document: Any, depth: int) -> list[dict[str, Any]]:
    if not isinstance(document, dict):
        return []
    kind = document.get("kind")
    items = document.get("items")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
        if depth >= _MAX_LIST_DEPTH:
            return []
        return [leaf for item in items for leaf in _leaves(item, depth + 1)]
    return [document]


def _with_namespace(obj: dict[str, Any], key: ObjectKey) -> dict[str, Any]:
    metadata = obj["metadata"]
    if not key.namespace or metadata.get("namespace") == key.namespace:
        return obj
    return {**obj, "metadata": {**metadata, "namespace": key.namespace}}


# ---------------------------------------------------------------------------
# Redaction


def redact_secret(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy of `obj` safe to show: Secret values hashed, the last-applied annotation removed.

    The hash is taken of the value's bytes (decoded from base64 for `data`), so a value
    written in `stringData` hashes like the same value in `data`. Any object may carry the
    last-applied annotation, and for a Secret it holds the values in clear.
    """
    redacted = dict(obj)
    metadata = obj.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if isinstance(metadata, dict) and isinstance(annotations, dict) and _LAST_APPLIED in annotations:
        redacted["metadata"] = {**metadata, "annotations": {**annotations, _LAST_APPLIED: REDACTED}}
    # Any kind named Secret, whatever its group: hashing a look-alike costs readability only,
    # missing a real one would leak credentials.
    if obj.get("kind") == "Secret":
        for field, encoded in (("data", True), ("stringData", False)):
            values = obj.get(field)
            if isinstance(values, dict):
                redacted[field] = {name: _fingerprint(value, encoded) for name, value in values.items()}
            elif values is not None:
                redacted[field] = _fingerprint(values, False)  # malformed, but still not shown
    return redacted


def _fingerprint(value: Any, encoded: bool) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raw = str(value).encode()
    elif encoded:
        try:
            raw = base64.b64decode(value)
        except ValueError:  # binascii.Error is a ValueError; so is a non-ASCII string
            raw = value.encode()  # the API server would not accept it; hash it as written
    else:
        raw = value.encode()
    # Keyed with a secret of this process: equal values still hash alike within one diff,
    # but a short password cannot be recovered by hashing guesses.
    return "hmac:" + hmac.new(_HASH_KEY, raw, hashlib.sha256).hexdigest()[:12]


def _comparable(obj: dict[str, Any], key: ObjectKey) -> dict[str, Any]:
    """`obj` without what is never compared, and with Secret values hashed."""
    result = {name: value for name, value in obj.items() if name != "status"}
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        kept = {name: value for name, value in metadata.items() if name not in _SERVER_METADATA}
        if not key.namespace:
            kept.pop("namespace", None)  # the API server ignores it on cluster-scoped objects
        annotations = kept.get("annotations")
        if isinstance(annotations, dict):
            remaining = {name: value for name, value in annotations.items() if name not in _TOOL_ANNOTATIONS}
            if remaining or not annotations:
                kept["annotations"] = remaining
            else:
                del kept["annotations"]  # only tool annotations: an empty mapping would be noise
        result["metadata"] = kept
    result = redact_secret(result)
    if result.get("kind") == "Secret" and isinstance(result.get("stringData"), dict):
        # The API server stores stringData into data (stringData wins on a conflict).
        data = result.get("data")
        result["data"] = {**(data if isinstance(data, dict) else {}), **result.pop("stringData")}
    return result


# ---------------------------------------------------------------------------
# Comparison


class _Absent(enum.Enum):
    TOKEN = 0  # a field the live object does not have (unlike a field that is null)


_ABSENT = _Absent.TOKEN


@dataclass(frozen=True)
class _Walk:
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


def _project(desired: Any, live: Any, walk: _Walk, path: Path = (), depth: int = 0) -> tuple[Any, Any]:
    """Compare the fields `desired` sets with `live`, recording differing pointers in `walk`.

    Returns the desired value without ignored fields and the live value reduced to the
    fields the desired one sets (`_ABSENT` when there is none). Where the two are equal
    after normalisation, both views hold the desired value, so the unified diff shows real
    differences only.
    """
    walk.check_depth(depth)
    if live is _ABSENT or live is None:
        if _is_empty(desired):
            return desired, desired
        walk.differ(path)
        return _prune(desired, path, walk, depth), live
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            walk.differ(path)
            return _prune(desired, path, walk, depth), live
        desired_view: dict[Any, Any] = {}
        live_view: dict[Any, Any] = {}
        for name, value in desired.items():
            child = (*path, str(name))
            if value is None or walk.skips(child):
                continue  # null: the manifest does not set the field
            desired_view[name], projected = _project(value, live.get(name, _ABSENT), walk, child, depth + 1)
            if projected is not _ABSENT:
                live_view[name] = projected
        return desired_view, live_view
    if isinstance(desired, list):
        if not isinstance(live, list):
            walk.differ(path)
            return _prune(desired, path, walk, depth), live
        if _is_named(desired):
            return _named_lists(desired, live, walk, path, depth)
        return _indexed_lists(desired, live, walk, path, depth)
    if _same_scalar(desired, live):
        return desired, desired
    walk.differ(path)
    return desired, live


def _named_lists(
    desired: list[Any], live: list[Any], walk: _Walk, path: Path, depth: int
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
        mine, theirs = _project(item, by_name.get(item["name"], _ABSENT), walk, child, depth + 1)
        desired_view.append(mine)
        if theirs is not _ABSENT:
            live_view.append(theirs)
    return desired_view, live_view


def _indexed_lists(
    desired: list[Any], live: list[Any], walk: _Walk, path: Path, depth: int
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
            desired_view.append(_prune(item, child, walk, depth + 1))
            continue
        mine, theirs = _project(item, live[index], walk, child, depth + 1)
        desired_view.append(mine)
        live_view.append(theirs)
    live_view.extend(live[len(desired) :])  # shown whole: the manifest would remove them
    return desired_view, live_view


def _prune(value: Any, path: Path, walk: _Walk, depth: int) -> Any:
    """`value` without ignored fields and null mapping values (the fields a walk skips)."""
    walk.check_depth(depth)
    if isinstance(value, dict):
        pruned: dict[Any, Any] = {}
        for name, item in value.items():
            child = (*path, str(name))
            if item is not None and not walk.skips(child):
                pruned[name] = _prune(item, child, walk, depth + 1)
        return pruned
    if isinstance(value, list):
        return [
            _prune(item, (*path, str(index)), walk, depth + 1)
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


def compare(
    desired: dict[str, Any],
    live: dict[str, Any] | None,
    key: ObjectKey,
    ignore: Sequence[IgnoreRule] = (),
    mode: str = "diff",
) -> ObjectDiff:
    """How `live` differs from `desired` (None: the object is not in the cluster)."""
    _check_mode(mode)
    walk = _walk_for(key, ignore)
    if walk is None:
        return ObjectDiff(key, Change.UNCHANGED, (), "")
    target = "release" if mode == "drift" else "desired"
    wanted = _comparable(desired, key)
    if live is None:
        change = Change.MISSING if mode == "drift" else Change.CREATED
        return ObjectDiff(key, change, (), _unified(None, _prune(wanted, (), walk, 0), target))
    desired_view, live_view = _project(wanted, _comparable(live, key), walk)
    fields = tuple(sorted(set(walk.found)))
    if not fields:
        return ObjectDiff(key, Change.UNCHANGED, (), "")
    return ObjectDiff(key, Change.CHANGED, fields, _unified(live_view, desired_view, target))


def diff_release(
    desired: Sequence[dict[str, Any]],
    live: Mapping[ObjectKey, dict[str, Any] | None],
    previous: Sequence[dict[str, Any]] = (),
    ignore: Sequence[IgnoreRule] = (),
    mode: str = "diff",
) -> DiffResult:
    """Compare every desired object with its live copy; in diff mode also list deletions.

    Objects come in desired order, then the deleted ones in `previous` order. Objects need
    their namespace set (as `parse_manifest` does); a key missing from `live` counts as an
    object not in the cluster. A repeated key is compared once, for its first object.
    """
    _check_mode(mode)
    results: dict[ObjectKey, ObjectDiff] = {}
    for obj in desired:
        key = key_of(obj)
        if key not in results:
            results[key] = compare(obj, live.get(key), key, ignore, mode)
    if mode == "diff":
        # In drift mode desired *is* the deployed release: nothing can be deleted.
        for obj in previous:
            key = key_of(obj)
            if key not in results:
                results[key] = _deleted(obj, key, ignore)
    return DiffResult(tuple(results.values()))


def _deleted(obj: dict[str, Any], key: ObjectKey, ignore: Sequence[IgnoreRule]) -> ObjectDiff:
    walk = _walk_for(key, ignore)
    if walk is None:
        return ObjectDiff(key, Change.UNCHANGED, (), "")
    shown = _prune(_comparable(obj, key), (), walk, 0)
    return ObjectDiff(key, Change.DELETED, (), _unified(shown, None, "desired"))


def _walk_for(key: ObjectKey, ignore: Sequence[IgnoreRule]) -> _Walk | None:
    """The walk state for `key`, or None when a rule ignores the whole object."""
    rules = [rule for rule in ignore if rule.matches(key)]
    if any(not rule.pointer for rule in rules):
        return None
    return _Walk(key.describe(), tuple(rule.tokens for rule in rules), [])


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown diff mode {mode!r} (expected one of {', '.join(MODES)})")


def _unified(old: Any, new: Any, target: str) -> str:
    lines = difflib.unified_diff(_yaml_lines(old), _yaml_lines(new), fromfile="live", tofile=target)
    return "".join(lines)


def _yaml_lines(value: Any) -> list[str]:
    if value is None or value is _ABSENT:
        return []
    text = yaml.safe_dump(value, sort_keys=True, default_flow_style=False, allow_unicode=True)
    return text.splitlines(keepends=True)
