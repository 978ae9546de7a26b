"""The Deployment status alecton writes: phase, conditions, release, history, message.

Pure functions from an outcome to a status patch (a JSON merge patch of `.status`).
Conditions follow Kubernetes conventions: lastTransitionTime changes only when the
condition's status changes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alecton.helm.release import HistoryEntry
from alecton.reconcile.plan import Action, DesiredRelease, Plan, ReleaseLocation, rolled_back_fingerprint

READY = "Ready"
RELEASED = "Released"
STALLED = "Stalled"

# Phases a person sees in `kubectl get alecton`.
PENDING, DEPLOYING, DEPLOYED, FAILED = "Pending", "Deploying", "Deployed", "Failed"
ROLLING_BACK, ROLLED_BACK, CONFLICT = "RollingBack", "RolledBack", "Conflict"
SUSPENDED, DELETING = "Suspended", "Deleting"

_MAX_MESSAGE = 1024


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _truncate(message: str) -> str:
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 3] + "..."


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool | None  # None = Unknown
    reason: str
    message: str


def merge_conditions(
    previous: list[dict[str, Any]] | None,
    updates: list[Condition],
    generation: int,
    now: str,
) -> list[dict[str, Any]]:
    by_type = {c.get("type"): c for c in previous or [] if isinstance(c, dict)}
    for update in updates:
        status = "Unknown" if update.status is None else ("True" if update.status else "False")
        old = by_type.get(update.type) or {}
        by_type[update.type] = {
            "type": update.type,
            "status": status,
            "reason": update.reason,
            "message": _truncate(update.message),
            "observedGeneration": generation,
            "lastTransitionTime": (
                old.get("lastTransitionTime", now) if old.get("status") == status else now
            ),
        }
    order = {READY: 0, RELEASED: 1, STALLED: 2}
    return sorted(by_type.values(), key=lambda c: (order.get(c["type"], 9), c["type"]))


@dataclass(frozen=True)
class StatusContext:
    generation: int
    previous: dict[str, Any]
    now: str

    def patch(self, phase: str, message: str, conditions: list[Condition], **fields: Any) -> dict[str, Any]:
        status: dict[str, Any] = {
            "observedGeneration": self.generation,
            "phase": phase,
            "message": _truncate(message),
            "conditions": merge_conditions(
                self.previous.get("conditions"), conditions, self.generation, self.now
            ),
        }
        status.update(fields)
        return status


def waiting_status(ctx: StatusContext, plan: Plan) -> dict[str, Any]:
    """Pending, Conflict, Suspended and Refused: no helm action was taken."""
    if plan.action is Action.HELD:
        # The rolled-back release keeps running and is healthy: only the hold is news.
        return ctx.patch(
            ROLLED_BACK,
            plan.message,
            [Condition(READY, True, plan.reason, plan.message), Condition(STALLED, False, plan.reason, "")],
        )
    if plan.action is Action.WAIT:
        phase, stalled = PENDING, False
    elif plan.action is Action.CONFLICT:
        phase, stalled = CONFLICT, True
    elif plan.action is Action.SUSPENDED:
        phase, stalled = SUSPENDED, False
    else:
        phase, stalled = FAILED, True
    conditions = [
        Condition(READY, False, plan.reason, plan.message),
        Condition(
            STALLED,
            stalled,
            plan.reason if stalled else "Progressing",
            plan.message if stalled else "",
        ),
    ]
    return ctx.patch(phase, plan.message, conditions)


def in_progress_status(
    ctx: StatusContext, action: Action, desired: DesiredRelease, location: ReleaseLocation
) -> dict[str, Any]:
    if action is Action.ROLLBACK:
        phase, message = ROLLING_BACK, f"rolling back {desired.name}"
    elif action is Action.UNINSTALL:
        phase, message = DELETING, f"uninstalling {desired.name}"
    else:
        phase, message = DEPLOYING, f"deploying version {desired.version} as {desired.name}"
    # Claim the release before helm runs: if the operator dies mid-helm, the restarted
    # one knows this Deployment made it (a pending first install has no alecton
    # description yet) and repairs it instead of reporting a foreign release.
    # Only the place is claimed: no revision yet, so a failed first install is checked again.
    return ctx.patch(
        phase, message, [Condition(READY, None, "Progressing", message)], release=location.as_status()
    )


def release_status(
    desired: DesiredRelease,
    history: list[HistoryEntry],
    image_for_version: Callable[[str], str],
    location: ReleaseLocation,
) -> dict[str, Any]:
    latest = history[0] if history else None
    release: dict[str, Any] = location.as_status()
    if latest is not None:
        version = latest.version or desired.version
        release.update(
            revision=latest.revision,
            status=latest.status,
            chart=latest.chart,
            appVersion=latest.app_version,
            version=version,
            image=image_for_version(version) if latest.version else desired.image,
            lastDeployed=latest.updated,
        )
    return release


def succeeded_status(
    ctx: StatusContext,
    action: Action,
    desired: DesiredRelease,
    history: list[HistoryEntry],
    image_for_version: Callable[[str], str],
    location: ReleaseLocation,
    rollback: dict[str, Any] | None = None,
    note: str = "",
    after: str = "",
) -> dict[str, Any]:
    """`note` says what else happened first (a repaired release), in front of the message;
    `after` what happened after it (an old release removed after a move)."""
    release = release_status(desired, history, image_for_version, location)
    revision = release.get("revision")
    if action is Action.ROLLBACK:
        phase = ROLLED_BACK
        message = (
            f"rolled back {desired.name} to revision {rollback and rollback['revision']} "
            f"(now revision {revision}, version {release.get('version')})"
        )
    else:
        phase = DEPLOYED
        message = f"deployed version {desired.version} as {desired.name} revision {revision}"
    if note:
        message = f"{note}; {message}"
    if after:
        message = f"{message}; {after}"
    fields: dict[str, Any] = {
        "release": release,
        "history": [entry.as_status() for entry in history],
        # A rollback holds until spec.version changes or spec.rollback is removed (see
        # plan.rollback_holds); then the spec's inputs are deployed again.
        "appliedFingerprint": (
            rolled_back_fingerprint(desired.fingerprint) if action is Action.ROLLBACK else desired.fingerprint
        ),
        "appliedInputs": desired.inputs(),
        "appliedVersion": desired.version,
        "failures": 0,
    }
    if rollback is not None:
        fields["lastRollback"] = rollback
    return ctx.patch(
        phase,
        message,
        [
            Condition(READY, True, "Succeeded" if action is Action.UPGRADE else "RolledBack", message),
            Condition(RELEASED, True, f"{action.value}Succeeded", message),
            Condition(STALLED, False, "Succeeded", ""),
        ],
        **fields,
    )


def failed_status(
    ctx: StatusContext,
    action: Action,
    error: str,
    failures: int,
    retry_in: float,
    fingerprint: str,
    rollback: dict[str, Any] | None = None,
    reason: str = "",
) -> dict[str, Any]:
    """`reason` overrides `<Action>Failed` (e.g. ClusterRefused: helm never ran)."""
    reason = reason or f"{action.value}Failed"
    message = f"{error} (attempt {failures}; retrying in {retry_in:.0f} s)"
    retry_at = dt.datetime.fromisoformat(ctx.now.replace("Z", "+00:00")) + dt.timedelta(seconds=retry_in)
    fields: dict[str, Any] = {
        "failures": failures,
        "failedFingerprint": fingerprint,
        "retryAfter": retry_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if action is Action.UPGRADE:
        # What is live is no longer known to match any inputs: reverting them deploys again.
        fields["appliedFingerprint"] = None
        fields["appliedInputs"] = None
    if rollback is not None:
        # A rollback is tried once per request: record it as done (failed) so it does not loop.
        fields["lastRollback"] = rollback
        message = f"{error} (rollback requests run once; set a new revision or requestId to retry)"
    return ctx.patch(
        FAILED,
        message,
        [
            Condition(READY, False, reason, message),
            Condition(RELEASED, False, reason, error),
        ],
        **fields,
    )


def stalled_status(ctx: StatusContext, reason: str, retry_in: float) -> dict[str, Any]:
    """An unexpected error (a bug, an API outage): one line, and when it is tried again."""
    message = f"{reason} (retrying in {retry_in:.0f} s)"
    return ctx.patch(
        ctx.previous.get("phase") or PENDING,
        message,
        [
            Condition(READY, False, "UnexpectedError", message),
            Condition(STALLED, True, "UnexpectedError", message),
        ],
    )
