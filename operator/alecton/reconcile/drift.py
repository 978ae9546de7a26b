"""When to compare a deployed release with the cluster, and what the result means for
the Deployment's status: pure decisions for the drift actions (`handlers/actions/drift.py`, `correct.py`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from alecton.api.objects import ObjectKey
from alecton.reconcile import status as st
from alecton.reconcile.diff import Change, DiffResult
from alecton.reconcile.times import epoch

DRIFT_CHECK_ANNOTATION = "alecton.dev/drift-check"  # a new value asks for a check now
DRIFTED = "Drifted"
CORRECTION_FAILED = "DriftCorrectionFailed"
_MAX_OBJECTS = 20


RELEASE_NAME_ANNOTATION = "meta.helm.sh/release-name"
RELEASE_NAMESPACE_ANNOTATION = "meta.helm.sh/release-namespace"


def correction_refusal(key: ObjectKey, live: dict[str, Any] | None, release: str, namespace: str) -> str:
    """Why the drift correction of release `release` in `namespace` must not apply `key`
    ("" when it may). The manifest comes from helm's storage, which anyone who can write
    Secrets in the release namespace can rewrite: an object is re-applied only when the
    live one says it belongs to this release, and one that is gone only when it lived in
    the release's own namespace."""
    if live is None:
        if key.namespace != namespace:
            where = f"namespace {key.namespace!r}" if key.namespace else "cluster scope"
            return f"{key.describe()} is missing and lives in {where}, outside the release namespace"
        return ""
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    owner = (annotations.get(RELEASE_NAME_ANNOTATION), annotations.get(RELEASE_NAMESPACE_ANNOTATION))
    if owner != (release, namespace):
        return f"{key.describe()} is not annotated as an object of this release"
    return ""


def spread(ref: str) -> float:
    """A stable fraction in [0, 1) per Deployment: checks of many releases are spread over
    the interval instead of all running at once."""
    return int(hashlib.sha256(ref.encode()).hexdigest()[:8], 16) / 2**32


@dataclass(frozen=True)
class DriftDue:
    now: bool  # check on this reconcile
    wait: float = 0.0  # otherwise: seconds until the next check
    requested: str = ""  # the annotation value being answered ("" for a scheduled check)


def drift_due(
    drift: dict[str, Any],
    revision: int,
    deployed_at: float,
    interval: float,
    ref: str,
    now: float,
    requested: str,
    considered_since: float = 0.0,
) -> DriftDue:
    """`drift` is status.drift; `deployed_at` when the revision was deployed; `requested`
    the drift-check annotation's value; `considered_since` when this process first
    considered the revision for drift checks (after a restart, or when drift is switched
    on for old releases, overdue checks are spread over one interval from then instead of
    all running at once)."""
    if requested and requested != drift.get("requestId"):
        return DriftDue(True, requested=requested)
    checked = epoch(drift.get("checkedAt"))
    retry_at = epoch(drift.get("retryAt"))
    if retry_at and drift.get("revision") == revision:
        due = retry_at  # a failed correction is tried again on its backoff, not the interval
    else:
        if not checked or drift.get("revision") != revision:
            # A revision's first check lands at a per-release point of its first interval.
            due = (deployed_at or now) + interval * spread(ref)
        else:
            due = checked + interval
        if considered_since:
            due = max(due, considered_since + interval * spread(ref))
    return DriftDue(due <= now, max(0.0, due - now))


def drifted_objects(result: DiffResult) -> list[dict[str, Any]]:
    found = [o.as_status() for o in result.objects if o.change in (Change.CHANGED, Change.MISSING)]
    return found[:_MAX_OBJECTS]


def correction_failed(status: dict[str, Any]) -> bool:
    """Is the Deployment Failed because its last drift correction failed?"""
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == st.READY), {})
    return status.get("phase") == st.FAILED and ready.get("reason") == CORRECTION_FAILED


def drift_event(was_drifted: bool | None, drifted: bool) -> tuple[str, str] | None:
    """An Event when drift starts and when it ends, not on every check."""
    if drifted and not was_drifted:
        return "Warning", "DriftDetected"
    if not drifted and was_drifted:
        return "Normal", "DriftResolved"
    return None
