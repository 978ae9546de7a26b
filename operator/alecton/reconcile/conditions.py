"""The status patches of a Deployment: phase, message, conditions and the fields that
go with them. The only place conditions are built; `reconcile.summary.summarize` picks the
builder for an outcome. Conditions follow Kubernetes conventions: lastTransitionTime changes
only when the condition's status changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alecton.reconcile.drift import CORRECTION_FAILED, DRIFTED, correction_failed
from alecton.reconcile.health import ReleaseHealth
from alecton.reconcile.helm_failure import FailureClass
from alecton.reconcile.history import history_from_status, record_correction
from alecton.reconcile.outcomes import DriftChecked
from alecton.reconcile.plan import Action, DesiredRelease, Plan, ReleaseLocation, rolled_back_fingerprint
from alecton.reconcile.release import Correction, HistoryEntry
from alecton.reconcile.retry import backoff_seconds
from alecton.reconcile.status import (
    CONFLICT,
    DEGRADED,
    DELETING,
    DEPLOYED,
    DEPLOYING,
    FAILED,
    HEALTH_CHECK_FAILED,
    PENDING,
    READY,
    RECONCILING,
    RELEASED,
    ROLLED_BACK,
    ROLLING_BACK,
    STALLED,
    SUSPENDED,
    VERIFYING,
    failed_version_entry,
    health_after_release,
    health_field,
    history_marked,
    later,
    release_status,
    truncate,
    with_failed_version,
)


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
            "message": truncate(update.message),
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
            "message": truncate(message),
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
        phase,
        message,
        [
            Condition(READY, None, "Progressing", message),
            Condition(RECONCILING, True, "Progressing", message),
        ],
        release=location.as_status(),
    )


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
    if verify_until:
        phase = VERIFYING
        message = f"{message}; verifying health until {verify_until}"
        ready = Condition(READY, None, "Verifying", message)
        reconciling = Condition(RECONCILING, True, "Verifying", message)
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
        "health": health_after_release(verify_until, revision),
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
        "history": history_marked(ctx.previous, revision, True),
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
        "history": history_marked(ctx.previous, revision, False),
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


# ----- drift (no helm ran: status.drift, the Drifted condition, a failed correction) ----


def drift_patch(
    previous: dict[str, Any],
    checked: DriftChecked,
    now: str,
    generation: int,
) -> dict[str, Any]:
    """status.drift and the Drifted condition. A correction is also recorded on its
    revision's history entry; one that fails makes the Deployment Failed (like a failed
    upgrade) and is tried again with backoff; the next good check restores the phase."""
    old = previous.get("drift") or {}
    revision, correction = checked.revision, checked.correction
    drift: dict[str, Any] = {
        "checkedAt": now,
        "revision": revision,
        "drifted": checked.drifted,
        "summary": checked.summary,
        "objects": checked.objects,
        "requestId": checked.requested or old.get("requestId"),
        "failures": 0,
        "retryAt": None,
    }
    message = f"revision {revision}: {checked.summary}" + (
        "; " + ", ".join(f"{o['kind']} {o['name']} ({o['change']})" for o in drift["objects"][:5])
        if checked.drifted
        else ""
    )
    conditions = [Condition(DRIFTED, checked.drifted, "Drifted" if checked.drifted else "InSync", message)]
    patch: dict[str, Any] = {"drift": drift}
    if correction is not None:
        drift["lastCorrection"] = correction
        entry = Correction(correction["at"], correction["objects"], correction["result"])
        history = record_correction(history_from_status(previous.get("history") or []), revision, entry)
        patch["history"] = [e.as_status() for e in history]
    failed = correction is not None and correction["result"] != "Succeeded"
    if failed:
        assert correction is not None
        failures = int(old.get("failures") or 0) + 1 if old.get("revision") == revision else 1
        retry_in = backoff_seconds(failures)
        drift["failures"] = failures
        drift["retryAt"] = later(now, retry_in)
        why = (
            f"drift correction of revision {revision} failed: {correction['detail']} "
            f"(attempt {failures}; retrying in {retry_in:.0f} s)"
        )
        patch.update(phase=FAILED, message=why)
        conditions.append(Condition(READY, False, CORRECTION_FAILED, why))
    elif correction_failed(previous):
        verb = "corrected" if correction is not None else "checked"
        return {**patch, **recovered(previous, f"drift {verb}: {message}", generation, now, conditions)}
    patch["conditions"] = merge_conditions(previous.get("conditions"), conditions, generation, now)
    return patch


def recovered(
    previous: dict[str, Any],
    message: str,
    generation: int,
    now: str,
    conditions: list[Condition] | None = None,
) -> dict[str, Any]:
    """Back from a failed correction (it succeeded, or drift is no longer corrected) to the
    phase the release had; health checks take it from there."""
    ready = Condition(READY, True, "DriftCorrected", message)
    return {
        "phase": previous.get("settledPhase") or DEPLOYED,
        "message": message,
        "conditions": merge_conditions(
            previous.get("conditions"), [*(conditions or []), ready], generation, now
        ),
    }


# ----- settled without a helm action, and deletion --------------------------------------


def settled_status(ctx: StatusContext) -> dict[str, Any] | None:
    """Health checks off: the status says Deployed (None: it already does)."""
    status = ctx.previous
    settled = status.get("phase") in (DEPLOYED, ROLLED_BACK)
    same_generation = status.get("observedGeneration") == ctx.generation
    # A failed rollback (run once per request) stays visible until the spec changes.
    if same_generation and (settled or status.get("phase") == FAILED):
        return None
    phase = status.get("phase") if settled else DEPLOYED
    message = status.get("message") if settled else "the release matches the desired state"
    return ctx.patch(
        str(phase),
        str(message or ""),
        [
            Condition(READY, True, "Succeeded", str(message or "")),
            Condition(RECONCILING, False, "Succeeded", ""),
            Condition(STALLED, False, "Succeeded", ""),
        ],
    )


def uninstall_failed_status(ctx: StatusContext, error: str, failures: int, retry_in: float) -> dict[str, Any]:
    return ctx.patch(
        DELETING,
        f"uninstall failed: {error} (retrying in {retry_in:.0f} s)",
        [Condition(READY, False, "UninstallFailed", error)],
        failures=failures,
    )
