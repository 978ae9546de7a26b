"""When to compare a deployed release with the cluster, and what the result means for
the Deployment's status: pure decisions for the drift action (`handlers/drift.py`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from alecton.reconcile.diff import Change, DiffResult
from alecton.reconcile.plan import epoch
from alecton.reconcile.status import Condition, merge_conditions

DRIFT_CHECK_ANNOTATION = "alecton.dev/drift-check"  # a new value asks for a check now
DRIFTED = "Drifted"
_MAX_OBJECTS = 20


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
) -> DriftDue:
    """`drift` is status.drift; `deployed_at` when the revision was deployed; `requested`
    the drift-check annotation's value."""
    if requested and requested != drift.get("requestId"):
        return DriftDue(True, requested=requested)
    checked = epoch(drift.get("checkedAt"))
    if not checked or drift.get("revision") != revision:
        # A revision's first check lands at a per-release point of its first interval.
        due = (deployed_at or now) + interval * spread(ref)
    else:
        due = checked + interval
    return DriftDue(due <= now, max(0.0, due - now))


def drifted_objects(result: DiffResult) -> list[dict[str, Any]]:
    found = [o.as_status() for o in result.objects if o.change in (Change.CHANGED, Change.MISSING)]
    return found[:_MAX_OBJECTS]


def drift_patch(
    previous: dict[str, Any],
    result: DiffResult,
    revision: int,
    now: str,
    generation: int,
    requested: str,
    correction: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """status.drift and the Drifted condition; phase and message are left alone."""
    drift: dict[str, Any] = {
        "checkedAt": now,
        "revision": revision,
        "drifted": result.changed,
        "summary": result.summary,
        "objects": drifted_objects(result),
        "requestId": requested or (previous.get("drift") or {}).get("requestId"),
    }
    if correction is not None:
        drift["lastCorrection"] = correction
    message = f"revision {revision}: {result.summary}" + (
        "; " + ", ".join(f"{o['kind']} {o['name']} ({o['change']})" for o in drift["objects"][:5])
        if result.changed
        else ""
    )
    condition = Condition(DRIFTED, result.changed, "Drifted" if result.changed else "InSync", message)
    return {
        "drift": drift,
        "conditions": merge_conditions(previous.get("conditions"), [condition], generation, now),
    }


def drift_event(was_drifted: bool | None, drifted: bool) -> tuple[str, str] | None:
    """An Event when drift starts and when it ends, not on every check."""
    if drifted and not was_drifted:
        return "Warning", "DriftDetected"
    if not drifted and was_drifted:
        return "Normal", "DriftResolved"
    return None
