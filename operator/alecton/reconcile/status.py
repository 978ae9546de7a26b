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

from alecton.reconcile.health import ReleaseHealth, State
from alecton.reconcile.helm_failure import FailureClass
from alecton.reconcile.history import history_from_status, mark_health
from alecton.reconcile.plan import Action, DesiredRelease, Plan, ReleaseLocation, rolled_back_fingerprint
from alecton.reconcile.release import HistoryEntry

READY = "Ready"
RELEASED = "Released"
RECONCILING = "Reconciling"
STALLED = "Stalled"
HEALTH_CHECK_FAILED = "HealthCheckFailed"

# Phases a person sees in `kubectl get alecton`.
PENDING, DEPLOYING, DEPLOYED, FAILED = "Pending", "Deploying", "Deployed", "Failed"
VERIFYING, DEGRADED = "Verifying", "Degraded"
ROLLING_BACK, ROLLED_BACK, CONFLICT = "RollingBack", "RolledBack", "Conflict"
SUSPENDED, DELETING = "Suspended", "Deleting"

_MAX_MESSAGE = 1024


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def later(now: str, seconds: float) -> str:
    """`now` (RFC 3339) plus `seconds`, as RFC 3339."""
    moment = dt.datetime.fromisoformat(now.replace("Z", "+00:00")) + dt.timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


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
    order = {READY: 0, RELEASED: 1, RECONCILING: 2, STALLED: 3}
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


# What a claim of a new place clears of the release recorded before (a merge patch): a
# revision there is only ever what helm reported after an action of ours succeeded.
UNCONFIRMED_RELEASE: dict[str, Any] = {
    "revision": None,
    "status": None,
    "chart": None,
    "appVersion": None,
    "version": None,
    "image": None,
    "lastDeployed": None,
}


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
        phase,
        message,
        [
            Condition(READY, None, "Progressing", message),
            Condition(RECONCILING, True, "Progressing", message),
        ],
        release=location.as_status(),
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
    verify_until: str | None = None,
    rolled_back_to: int | None = None,
) -> dict[str, Any]:
    """`note` says what else happened first (a repaired release), in front of the message;
    `after` what happened after it (an old release removed after a move). With
    `verify_until` (health checks on) the phase is Verifying until the objects are healthy
    or that time passes. `rolled_back_to`: the revision of a rollback not asked for in
    spec.rollback (an automatic one)."""
    release = release_status(desired, history, image_for_version, location)
    revision = release.get("revision")
    if action is Action.ROLLBACK:
        settled = ROLLED_BACK
        target = rolled_back_to or (rollback and rollback["revision"])
        how = " automatically" if rolled_back_to else ""
        message = (
            f"rolled back {desired.name}{how} to revision {target} "
            f"(now revision {revision}, version {release.get('version')})"
        )
    else:
        settled = DEPLOYED
        verb = "applied" if verify_until else "deployed"
        message = f"{verb} version {desired.version} as {desired.name} revision {revision}"
    if note:
        message = f"{note}; {message}"
    if after:
        message = f"{message}; {after}"
    ready = Condition(READY, True, "Succeeded" if action is Action.UPGRADE else "RolledBack", message)
    reconciling = Condition(RECONCILING, False, "Succeeded", "")
    phase = settled
    health: dict[str, Any] = {
        "state": "Unknown",
        "message": "health checks are off (health: None)",
        "progressing": None,  # a merge patch: clear what an earlier check recorded
        "deadline": None,
    }
    if verify_until:
        phase = VERIFYING
        message = f"{message}; verifying health until {verify_until}"
        ready = Condition(READY, None, "Verifying", message)
        reconciling = Condition(RECONCILING, True, "Verifying", message)
        health = {"state": "Progressing", "message": "waiting for the first assessment", "progressing": []}
        health["deadline"] = verify_until
    health["revision"] = revision
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
        "stalledFingerprint": None,
        "settledPhase": settled,
        "health": health,
    }
    if rollback is not None:
        fields["lastRollback"] = rollback
    return ctx.patch(
        phase,
        message,
        [
            ready,
            Condition(RELEASED, True, f"{action.value}Succeeded", message),
            reconciling,
            Condition(STALLED, False, "Succeeded", ""),
        ],
        **fields,
    )


# ----- health outcomes (no helm ran: only phase, conditions, health and history) -------

_MAX_FAILED_VERSIONS = 20
_MAX_PROGRESSING = 10


def health_field(health: ReleaseHealth, revision: int, deadline: str = "") -> dict[str, Any]:
    state = {State.CURRENT: "Healthy", State.FAILED: "Unhealthy"}.get(health.state, "Progressing")
    field: dict[str, Any] = {
        "state": state,
        "message": _truncate(health.message),
        "progressing": health.progressing[:_MAX_PROGRESSING],
        "revision": revision,
        "deadline": deadline or None,
    }
    return field


def _history_marked(previous: dict[str, Any], revision: int, healthy: bool) -> list[dict[str, Any]]:
    history = history_from_status(previous.get("history") or [])
    return [entry.as_status() for entry in mark_health(history, revision, healthy)]


def healthy_status(ctx: StatusContext, health: ReleaseHealth, revision: int) -> dict[str, Any]:
    """Verifying or Degraded -> the settled phase (Deployed, or RolledBack)."""
    phase = ctx.previous.get("settledPhase") or DEPLOYED
    was = ctx.previous.get("phase")
    prefix = "healthy again" if was == DEGRADED else f"revision {revision} is healthy"
    message = f"{prefix}: {health.message}"
    if was == VERIFYING and ctx.previous.get("message"):
        # Keep what the helm action said (deployed/rolled back...), minus the verifying note.
        done = str(ctx.previous["message"]).split("; verifying health until")[0]
        message = f"{done}; {message}".replace("applied version", "deployed version", 1)
    fields: dict[str, Any] = {
        "health": health_field(health, revision),
        "history": _history_marked(ctx.previous, revision, True),
    }
    # A version that failed before and is healthy now (`alecton retry`) is not a failed
    # version any more: promotion may offer it again.
    version = next(
        (e.version for e in history_from_status(ctx.previous.get("history") or []) if e.revision == revision),
        "",
    )
    failed = ctx.previous.get("failedVersions") or []
    if version and any(e.get("version") == version for e in failed):
        fields["failedVersions"] = [e for e in failed if e.get("version") != version]
    return ctx.patch(
        phase,
        message,
        [
            Condition(READY, True, "Healthy", message),
            Condition(RECONCILING, False, "Healthy", ""),
            Condition(STALLED, False, "Healthy", ""),
        ],
        **fields,
    )


def verifying_progress(
    ctx: StatusContext, health: ReleaseHealth, revision: int, deadline: str
) -> dict[str, Any]:
    """Still Verifying: what is not healthy yet."""
    message = f"verifying revision {revision} until {deadline}: {health.message}"
    return ctx.patch(
        VERIFYING,
        ctx.previous.get("message") or message,
        [Condition(READY, None, "Verifying", message), Condition(RECONCILING, True, "Verifying", message)],
        health=health_field(health, revision, deadline),
    )


def degraded_status(ctx: StatusContext, health: ReleaseHealth, revision: int) -> dict[str, Any]:
    """A release that was healthy is not any more; helm is not run for it."""
    message = f"revision {revision} is unhealthy: {health.message}"
    return ctx.patch(
        DEGRADED,
        message,
        [
            Condition(READY, False, "Degraded", message),
            Condition(RECONCILING, False, "Degraded", ""),
            Condition(STALLED, False, "Degraded", ""),
        ],
        health=health_field(health, revision),
    )


def failed_version_entry(version: str, revision: int, reason: str, now: str) -> dict[str, Any]:
    return {"version": version, "revision": revision, "reason": _truncate(reason), "failedAt": now}


def with_failed_version(previous: dict[str, Any], entry: dict[str, Any]) -> list[dict[str, Any]]:
    """Newest first; one entry per version."""
    older = [e for e in previous.get("failedVersions") or [] if e.get("version") != entry["version"]]
    return [entry, *older][:_MAX_FAILED_VERSIONS]


def health_failure(health: ReleaseHealth, revision: int, version: str, timed_out: bool) -> str:
    """One line: which version failed and why, in the object's (or pod's) own words."""
    why = f"not healthy within the health timeout: {health.message}" if timed_out else health.message
    return f"version {version} (revision {revision}) failed its health check: {why}"


def health_failed_status(
    ctx: StatusContext,
    failure: str,
    revision: int,
    version: str,
    fingerprint: str,
    retry_hint: str,
    health: ReleaseHealth | None = None,
    no_rollback: str = "",
) -> dict[str, Any]:
    """Verifying failed and nothing is rolled back: Failed until the inputs change or a
    retry is requested (health failures are not retried on a timer)."""
    message = f"{failure}; {no_rollback}" if no_rollback else failure
    message = f"{message}; change the inputs or run `{retry_hint}`"
    fields: dict[str, Any] = {
        "history": _history_marked(ctx.previous, revision, False),
        "unhealthyFingerprint": fingerprint,
        "failedVersions": with_failed_version(
            ctx.previous, failed_version_entry(version, revision, failure, ctx.now)
        ),
    }
    if health is not None:
        fields["health"] = health_field(health, revision)
    return ctx.patch(
        FAILED,
        message,
        [
            Condition(READY, False, HEALTH_CHECK_FAILED, message),
            Condition(RECONCILING, False, HEALTH_CHECK_FAILED, ""),
            Condition(STALLED, True, HEALTH_CHECK_FAILED, message),
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
    stalled: FailureClass | None = None,
    retry_hint: str = "",
) -> dict[str, Any]:
    """`reason` overrides `<Action>Failed` (e.g. ClusterRefused: helm never ran). `stalled`:
    the failure depends only on the inputs (see reconcile/helm_failure.py): no timer, Stalled
    until they change or `retry_hint` is run."""
    reason = reason or f"{action.value}Failed"
    fields: dict[str, Any] = {
        "failures": failures,
        "failedFingerprint": fingerprint,
        "retryAfter": later(ctx.now, retry_in),
        "stalledFingerprint": None,
    }
    if stalled is not None:
        message = f"{error} (not retried: it fails the same way until the inputs change, or `{retry_hint}`)"
        fields.update(retryAfter=None, stalledFingerprint=fingerprint)
        stalled_condition = Condition(STALLED, True, stalled.reason, message)
    else:
        message = f"{error} (attempt {failures}; retrying in {retry_in:.0f} s)"
        stalled_condition = Condition(STALLED, False, "Retrying", "")
    if action is Action.UPGRADE:
        # What is live is no longer known to match any inputs: reverting them deploys again.
        fields["appliedFingerprint"] = None
        fields["appliedInputs"] = None
    if rollback is not None:
        # A rollback is tried once per request: record it as done (failed) so it does not loop.
        fields["lastRollback"] = rollback
        message = f"{error} (rollback requests run once; set a new revision or requestId to retry)"
    conditions = [
        Condition(READY, False, reason, message),
        Condition(RELEASED, False, reason, error),
        stalled_condition,
    ]
    return ctx.patch(FAILED, message, conditions, **fields)


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
