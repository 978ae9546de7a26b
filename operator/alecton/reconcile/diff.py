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

import difflib
import enum
import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from alecton.api.ignore import IgnoreRule
from alecton.api.objects import ObjectKey
from alecton.reconcile.diff_normalise import comparable
from alecton.reconcile.diff_walk import ABSENT, project, prune, walk_for
from alecton.reconcile.manifest import manifest_documents, manifest_objects


class Change(enum.Enum):
    CREATED = "created"  # in desired, not live
    CHANGED = "changed"  # in both, fields differ
    DELETED = "deleted"  # in previous (the deployed release), not in desired: helm would delete it
    UNCHANGED = "unchanged"
    MISSING = "missing"  # drift mode only: in desired (the release), gone from the cluster


MODES = ("diff", "drift")

# Status can carry a long list of fields; the full list stays in the diff text.
STATUS_FIELDS_LIMIT = 20

# Same limit as the manifest parser in manifest.py, so both skip the same documents.
_MAX_LIST_DEPTH = 8


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
    # manifest.py owns the list of cluster-scoped kinds but keeps it private; asking its public
    # parser about a one-object manifest keeps a single list without reaching into it.
    probe = json.dumps({"apiVersion": api_version, "kind": kind, "metadata": {"name": "probe"}})
    keys = manifest_objects(probe, "probe")
    return bool(keys) and keys[0].namespace == ""


def parse_manifest(manifest: str, default_namespace: str) -> list[dict[str, Any]]:
    """The objects of a release manifest, in order and without duplicates (the first wins).

    Skips and expands documents exactly like `manifest.manifest_objects` (empty documents,
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
# Comparison


def compare(
    desired: dict[str, Any],
    live: dict[str, Any] | None,
    key: ObjectKey,
    ignore: Sequence[IgnoreRule] = (),
    mode: str = "diff",
) -> ObjectDiff:
    """How `live` differs from `desired` (None: the object is not in the cluster)."""
    _check_mode(mode)
    walk = walk_for(key, ignore)
    if walk is None:
        return ObjectDiff(key, Change.UNCHANGED, (), "")
    target = "release" if mode == "drift" else "desired"
    wanted = comparable(desired, key)
    if live is None:
        change = Change.MISSING if mode == "drift" else Change.CREATED
        return ObjectDiff(key, change, (), _unified(None, prune(wanted, (), walk, 0), target))
    desired_view, live_view = project(wanted, comparable(live, key), walk)
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
    walk = walk_for(key, ignore)
    if walk is None:
        return ObjectDiff(key, Change.UNCHANGED, (), "")
    shown = prune(comparable(obj, key), (), walk, 0)
    return ObjectDiff(key, Change.DELETED, (), _unified(shown, None, "desired"))


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown diff mode {mode!r} (expected one of {', '.join(MODES)})")


def _unified(old: Any, new: Any, target: str) -> str:
    lines = difflib.unified_diff(_yaml_lines(old), _yaml_lines(new), fromfile="live", tofile=target)
    return "".join(lines)


def _yaml_lines(value: Any) -> list[str]:
    if value is None or value is ABSENT:
        return []
    text = yaml.safe_dump(value, sort_keys=True, default_flow_style=False, allow_unicode=True)
    return text.splitlines(keepends=True)
