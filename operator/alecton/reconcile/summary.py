"""The one summary: what a step's outcome means for the Deployment's status and Events.

`summarize` turns what was observed, the step decided and the outcome its action
reported into a `Summary`: the status merge patch (built only by `reconcile.conditions`),
the Events to post, and when to look again. The controller writes it; nothing else
builds status or Events. Pure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alecton.api.models import Deployment
from alecton.reconcile import conditions as cond
from alecton.reconcile import status as st
from alecton.reconcile.decide import Do, Observed, Step, drift_policy, recorded_version
from alecton.reconcile.drift import CORRECTION_FAILED, correction_failed, drift_event
from alecton.reconcile.health import release_health
from alecton.reconcile.news import news_of
from alecton.reconcile.outcomes import (
    Claimed,
    Conflict,
    DriftChecked,
    Event,
    Outcome,
    Promoted,
    Released,
    ReleaseFailed,
    Summary,
    Uninstalled,
    UninstallFailed,
)
from alecton.reconcile.plan import Action, Plan, RecordedStatus
from alecton.reconcile.promotion_actions import Actions
from alecton.reconcile.promotion_choice import Choice
from alecton.reconcile.promotion_hold import HoldDecision
from alecton.reconcile.promotion_policy import PromotionPolicy
from alecton.reconcile.retry import backoff_seconds
from alecton.reconcile.times import epoch
from alecton.reconcile.verdict import Outcome as Verdict

_WAKE_MARGIN = 0.5


def summarize(observed: Observed, step: Step, outcome: Outcome, now: str) -> Summary:
    """`observed.status` is the Deployment's status as last written (the claim of a helm
    action included); `now` is when the outcome is written (RFC 3339)."""
    ctx = cond.StatusContext(observed.generation, observed.status, now)
    builder = _BUILDERS.get(step.do)
    summary = builder(observed, step, outcome, ctx) if builder is not None else Summary()
    notes = [Event("Warning" if n.warning else "Normal", n.reason, n.message) for n in _notes(outcome)]
    wait = summary.wait if summary.wait is not None else _wait_of(step, outcome)
    events = [*notes, *summary.events]
    news = news_of(observed, step, outcome, summary.status, [e.reason for e in events], now)
    return Summary(summary.status, events, wait, summary.remove_finalizer, news)


def unexpected_error(
    status: dict[str, Any], generation: int, reason: str, retry_in: float, now: str
) -> Summary:
    """A reconcile that raised (a bug, an API outage): Stalled, and when it is tried again."""
    ctx = cond.StatusContext(generation, status, now)
    return Summary(cond.stalled_status(ctx, reason, retry_in), wait=retry_in)


def retry_hint(deployment: Deployment) -> str:
    return f"alecton retry {deployment.application} {deployment.target} -n {deployment.ref.namespace}"


def _notes(outcome: Outcome) -> tuple[Any, ...]:
    return getattr(outcome, "notes", ())


def _wait_of(step: Step, outcome: Outcome) -> float | None:
    wait = getattr(outcome, "wait", None)
    return wait if wait is not None else step.wait


# ----- no helm ----------------------------------------------------------------------


def _report(observed: Observed, step: Step, outcome: Outcome, ctx: cond.StatusContext) -> Summary:
    assert step.plan is not None
    return _waiting(observed, step.plan, ctx)


def _waiting(observed: Observed, plan: Plan, ctx: cond.StatusContext) -> Summary:
    """Only a change is written, and only a change is an Event: this keeps a waiting
    Deployment quiet."""
    status = cond.waiting_status(ctx, plan)
    current = observed.status
    if (
        current.get("phase") == status["phase"]
        and current.get("message") == status["message"]
        and current.get("observedGeneration") == observed.generation
    ):
        return Summary()
    event_type = "Normal" if plan.action in (Action.WAIT, Action.SUSPENDED, Action.HELD) else "Warning"
    return Summary(status, [Event(event_type, plan.reason, plan.message)])


def _promote(observed: Observed, step: Step, outcome: Outcome, ctx: cond.StatusContext) -> Summary:
    assert isinstance(outcome, Promoted)
    if outcome.step is None:
        return Summary()
    facts = outcome.step
    patch = promotion_status(facts.policy, facts.hold, facts.choice, facts.actions, facts.checked_at)
    patch["promoteRequest"] = facts.promote_request
    previous = observed.status.get("promotion") or {}
    # Not written when only the time of the check would change.
    changed = any(previous.get(k) != patch.get(k) for k in set(previous) | set(patch) if k != "checkedAt")
    return Summary({"promotion": patch} if changed else None)


def promotion_status(
    policy: PromotionPolicy, hold_decision: HoldDecision, choice: Choice, actions: Actions, now_text: str
) -> dict[str, Any]:
    """The `status.promotion` patch of a promotion step (a JSON merge patch: None clears a hold)."""
    hold = hold_decision.hold
    return {
        "policy": policy.describe(),
        "written": actions.write_version or hold_decision.written,
        "promoted": actions.write_version or hold_decision.promoted or None,
        "resumed": hold_decision.resumed,
        "hold": hold.as_status() if hold is not None else None,
        "candidate": choice.version or None,
        "message": actions.message,
        "checkedAt": now_text,
    }


def _finalize(observed: Observed, step: Step, outcome: Outcome, ctx: cond.StatusContext) -> Summary:
    assert step.plan is not None
    events = [] if step.plan.reason == "NotOwner" else [Event("Normal", step.plan.reason, step.plan.message)]
    return Summary(events=events, remove_finalizer=True)


def _uninstall(observed: Observed, step: Step, outcome: Outcome, ctx: cond.StatusContext) -> Summary:
    if isinstance(outcome, Uninstalled):
        return Summary(events=[Event("Normal", "UninstallSucceeded", outcome.message)], remove_finalizer=True)
    assert isinstance(outcome, UninstallFailed)
    failures = RecordedStatus.parse(observed.status).failures + 1
    delay = backoff_seconds(failures)
    status = cond.uninstall_failed_status(ctx, outcome.error, failures, delay)
    return Summary(status, [Event("Warning", "UninstallFailed", outcome.error)], wait=delay)


# ----- helm upgrade --install and rollback --------------------------------------------


def _release(observed: Observed, step: Step, outcome: Outcome, ctx: cond.StatusContext) -> Summary:
    plan = step.plan
    assert plan is not None and plan.desired is not None
    if isinstance(outcome, Conflict):
        return _waiting(observed, Plan(Action.CONFLICT, "ReleaseNotOwned", outcome.message), ctx)
    if isinstance(outcome, Claimed):
        progress = cond.in_progress_status(ctx, plan.action, plan.desired, outcome.location)
        if outcome.new_place:
            progress["release"] = {**progress["release"], **st.UNCONFIRMED_RELEASE}
            if outcome.moved_from is not None:
                progress["movedFrom"] = outcome.moved_from.as_status()
        return Summary(progress)
    if isinstance(outcome, Released):
        return _released(observed, plan, outcome, ctx)
    if isinstance(outcome, ReleaseFailed):
        return _release_failed(observed, plan, outcome, ctx)
    return Summary()  # throttled: the outcome says when to look again


def _released(observed: Observed, plan: Plan, outcome: Released, ctx: cond.StatusContext) -> Summary:
    desired, deployment = plan.desired, observed.deployment
    assert desired is not None and deployment is not None
    recorded = outcome.before or RecordedStatus.parse(observed.status)
    rollback_record = outcome.rollback_record
    if rollback_record is not None and plan.action is Action.ROLLBACK:
        rollback_record = {**rollback_record, "result": "Succeeded"}
    note = "; ".join(filter(None, [outcome.repaired, plan.health_failure]))
    status = cond.succeeded_status(
        ctx,
        plan.action,
        desired,
        outcome.history,
        _image_of(outcome),
        outcome.location,
        rollback_record,
        note=note,
        after=outcome.after,
        verify_until=outcome.verify_until,
        rolled_back_to=plan.rollback_to,
    )
    status["movedFrom"] = None
    if not recorded.revision_at(outcome.location):
        # status.drift is keyed by revision number; a release at a new place counts from 1 again.
        status["drift"] = None
    if plan.action is Action.UPGRADE:
        status["unhealthyFingerprint"] = None  # these inputs are verified afresh
        if deployment.retry_request_id:
            status["lastRetryRequestId"] = deployment.retry_request_id
    if plan.health_failure:
        status["unhealthyFingerprint"] = desired.fingerprint
        status["failedVersions"] = st.with_failed_version(
            observed.status,
            st.failed_version_entry(
                recorded.applied_version, recorded.release_revision, plan.health_failure, ctx.now
            ),
        )
    reason = "AutomaticRollback" if plan.health_failure else f"{plan.action.value}Succeeded"
    event = Event("Warning" if plan.health_failure else "Normal", reason, status["message"])
    return Summary(status, [event])


def _image_of(outcome: Released) -> Callable[[str], str]:
    return lambda _version: outcome.image


def _release_failed(
    observed: Observed, plan: Plan, outcome: ReleaseFailed, ctx: cond.StatusContext
) -> Summary:
    """A failed attempt waits for its retry time; inputs helm refused (stalled) wait for a
    change; a rollback request runs once; a failed automatic rollback leaves the health
    failure standing."""
    desired, deployment = plan.desired, observed.deployment
    assert desired is not None and deployment is not None
    recorded = outcome.before or RecordedStatus.parse(observed.status)
    error, stalled = outcome.error, outcome.stalled
    failures = recorded.failures + 1
    delay = backoff_seconds(failures)
    rollback = outcome.rollback_record
    rollback_once = rollback is not None and plan.action is Action.ROLLBACK
    if rollback_once:
        rollback = {**rollback, "result": "Failed"}  # type: ignore[dict-item]
        stalled = None
    wait = delay if not rollback_once and stalled is None else None
    if plan.health_failure:
        status = cond.health_failed_status(
            ctx,
            plan.health_failure,
            recorded.release_revision,
            recorded.applied_version,
            desired.fingerprint,
            retry_hint(deployment),
            no_rollback=f"the automatic rollback to revision {plan.rollback_to} failed: {error}",
        )
        return Summary(status, [Event("Warning", st.HEALTH_CHECK_FAILED, status["message"])], wait)
    status = cond.failed_status(
        ctx,
        plan.action,
        error,
        failures,
        delay,
        desired.fingerprint,
        rollback if rollback_once else None,
        outcome.reason,
        stalled,
        retry_hint(deployment),
    )
    if deployment.retry_request_id and plan.action is Action.UPGRADE:
        status["lastRetryRequestId"] = deployment.retry_request_id
    return Summary(status, [Event("Warning", outcome.reason or f"{plan.action.value}Failed", error)], wait)


# ----- health ----------------------------------------------------------------------------


def _keep(observed: Observed, step: Step, outcome: Outcome, ctx: cond.StatusContext) -> Summary:
    if observed.status.get("observedGeneration") != observed.generation:
        return Summary({"observedGeneration": observed.generation})
    return Summary()


def _settle(observed: Observed, step: Step, outcome: Outcome, ctx: cond.StatusContext) -> Summary:
    return Summary(cond.settled_status(ctx))


def _verify(observed: Observed, step: Step, outcome: Outcome, ctx: cond.StatusContext) -> Summary:
    health, previous = observed.health.verdict, observed.status
    revision = RecordedStatus.parse(previous).release_revision
    if step.outcome is Verdict.HEALTHY and health is not None:
        status = cond.healthy_status(ctx, health, revision)
        return Summary(status, [Event("Normal", "Healthy", status["message"])])
    if step.outcome is Verdict.PROGRESS and health is not None:
        status = cond.verifying_progress(ctx, health, revision, previous["health"]["deadline"])
        return Summary(status if status["health"] != previous.get("health") else None)
    if step.outcome is Verdict.DEGRADED and health is not None:
        status = cond.degraded_status(ctx, health, revision)
        if status["message"] == previous.get("message"):
            return Summary()
        return Summary(status, [Event("Warning", "Degraded", status["message"])])
    return _keep(observed, step, outcome, ctx)


def _fail_health(observed: Observed, step: Step, outcome: Outcome, ctx: cond.StatusContext) -> Summary:
    plan, deployment = step.plan, observed.deployment
    assert plan is not None and plan.desired is not None and deployment is not None
    status = cond.health_failed_status(
        ctx,
        step.failure,
        RecordedStatus.parse(observed.status).release_revision,
        recorded_version(observed.status, plan),
        plan.desired.fingerprint,
        retry_hint(deployment),
        observed.health.verdict or release_health([]),
        step.no_rollback,
    )
    return Summary(status, [Event("Warning", st.HEALTH_CHECK_FAILED, status["message"])])


# ----- drift -----------------------------------------------------------------------------


def _drift_off(observed: Observed, step: Step, outcome: Outcome, ctx: cond.StatusContext) -> Summary:
    if not correction_failed(observed.status):
        return Summary()
    message = "drift is no longer checked (mode Off): the failed correction is not tried again"
    return Summary(cond.recovered(observed.status, message, observed.generation, ctx.now))


def _check_drift(observed: Observed, step: Step, outcome: Outcome, ctx: cond.StatusContext) -> Summary:
    if not isinstance(outcome, DriftChecked):
        return Summary()  # the check failed: its outcome says when to look again
    patch = cond.drift_patch(observed.status, outcome, ctx.now, observed.generation)
    events = []
    correction = outcome.correction
    if correction is not None and correction["result"] == "Succeeded":
        objects, detail = correction["objects"], correction["detail"]
        message = f"re-applied {objects} objects of revision {outcome.revision}: {detail}"
        events.append(Event("Normal", "DriftCorrected", message))
    elif correction is not None:
        events.append(Event("Warning", CORRECTION_FAILED, str(patch["message"])))
    elif (
        event := drift_event((observed.status.get("drift") or {}).get("drifted"), outcome.drifted)
    ) is not None:
        drifted = next(c for c in patch["conditions"] if c["type"] == "Drifted")
        events.append(Event(event[0], event[1], drifted["message"]))
    retry_at = epoch(patch["drift"].get("retryAt"))
    policy = drift_policy(step.plan) if step.plan is not None else None
    wait = retry_at - epoch(ctx.now) if retry_at else (policy.interval if policy is not None else 0.0)
    return Summary(patch, events, wait=max(0.0, wait) + _WAKE_MARGIN)


_Builder = Callable[[Observed, Step, Outcome, cond.StatusContext], Summary]
_BUILDERS: dict[Do, _Builder] = {
    Do.REPORT: _report,
    Do.PROMOTE: _promote,
    Do.FINALIZE: _finalize,
    Do.UNINSTALL: _uninstall,
    Do.RELEASE: _release,
    Do.KEEP: _keep,
    Do.SETTLE: _settle,
    Do.VERIFY: _verify,
    Do.FAIL_HEALTH: _fail_health,
    Do.DRIFT_OFF: _drift_off,
    Do.CHECK_DRIFT: _check_drift,
}
