"""The part of a live object that its health assessment reads (what the health informers keep).

A watched Pod or Deployment as the API server sends it is mostly managedFields, the pod
template, volumes, env and timestamps: a few kilobytes as JSON, ten times that as Python
dicts. `assess.py` and `pods.py` read a handful of fields; keeping only those makes the
caches of 1000 releases grow with their objects' counters, not with their manifests.

Each shape below names the fields the rules of one kind read (and must be extended with
them: `tests/unit/test_health.py` assesses every object both whole and projected and
expects the same verdict). A shape is a mapping of field name to `True` (keep the value as
it is), a nested shape (keep those fields of a mapping) or a one-element list holding the
shape of each item of a list.
"""

from __future__ import annotations

from typing import Any

Shape = dict[str, Any]

# Conditions are read by type, status, reason and message; Flux-style resources also record
# the generation a condition describes. Their timestamps are not read.
_CONDITIONS = [{"type": True, "status": True, "reason": True, "message": True, "observedGeneration": True}]

# The metadata every rule reads: deletion, the generation its status must have observed, and
# the owners that index Pods by workload. resourceVersion and uid identify the copy.
_METADATA: Shape = {
    "name": True,
    "namespace": True,
    "uid": True,
    "resourceVersion": True,
    "generation": True,
    "deletionTimestamp": True,
    "ownerReferences": [{"kind": True, "name": True}],
}

_WORKLOAD_SPEC: Shape = {"replicas": True, "selector": True}

_CONTAINER_STATUSES = [
    {"name": True, "restartCount": True, "state": {"waiting": {"reason": True, "message": True}}}
]

_STATUS_COMMON: Shape = {"observedGeneration": True, "conditions": _CONDITIONS}

_SHAPES: dict[tuple[str, str], Shape] = {
    ("apps", "Deployment"): {
        "spec": _WORKLOAD_SPEC,
        "status": _STATUS_COMMON
        | dict.fromkeys(("replicas", "updatedReplicas", "availableReplicas", "readyReplicas"), True),
    },
    ("apps", "StatefulSet"): {
        "spec": _WORKLOAD_SPEC | {"updateStrategy": True},
        "status": _STATUS_COMMON
        | dict.fromkeys(
            (
                "replicas",
                "readyReplicas",
                "updatedReplicas",
                "currentReplicas",
                "availableReplicas",
                "currentRevision",
                "updateRevision",
            ),
            True,
        ),
    },
    ("apps", "DaemonSet"): {
        "spec": {"selector": True},
        "status": _STATUS_COMMON
        | dict.fromkeys(
            ("desiredNumberScheduled", "updatedNumberScheduled", "numberAvailable", "numberReady"), True
        ),
    },
    ("apps", "ReplicaSet"): {
        "spec": _WORKLOAD_SPEC,
        "status": _STATUS_COMMON | dict.fromkeys(("replicas", "availableReplicas", "readyReplicas"), True),
    },
    ("batch", "Job"): {
        "spec": {"selector": True},
        "status": _STATUS_COMMON | dict.fromkeys(("active", "succeeded", "failed"), True),
    },
    ("", "Pod"): {
        # Labels: a workload finds its pods by its selector.
        "metadata": _METADATA | {"labels": True},
        "status": {
            "phase": True,
            "reason": True,
            "message": True,
            "conditions": _CONDITIONS,
            "containerStatuses": _CONTAINER_STATUSES,
            "initContainerStatuses": _CONTAINER_STATUSES,
        },
    },
    ("", "PersistentVolumeClaim"): {"status": {"phase": True}},
}

# Any other kind is judged by its conditions and observed generation.
_OTHER: Shape = {"status": _STATUS_COMMON}


def health_projection(obj: dict[str, Any], group: str, kind: str) -> dict[str, Any]:
    """The fields of `obj` (a `kind` of API group `group`) that its health assessment reads."""
    shape = {"metadata": _METADATA} | _SHAPES.get((group, kind), _OTHER)
    return _pick(obj, shape)


def _pick(value: dict[str, Any], shape: Shape) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for name, inner in shape.items():
        if name not in value:
            continue
        field = value[name]
        if inner is True:
            kept[name] = field
        elif isinstance(inner, dict):
            # A field of an unexpected type is kept as it is: the rules decide what it means.
            kept[name] = _pick(field, inner) if isinstance(field, dict) else field
        elif isinstance(field, list):
            kept[name] = [_pick(item, inner[0]) if isinstance(item, dict) else item for item in field]
        else:
            kept[name] = field
    return kept
