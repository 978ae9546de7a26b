"""The one decision of the controller: what a Deployment needs next.

The controller observes (the Deployment, its status, the release plan of its inputs, what
this pass's promotion step found, the health monitor's verdict, when drift was last
considered, the clock) and asks `decide` for the next step; it runs that step's action,
writes the summary, observes again and asks again, until the step says to stop. Pure:
nothing here touches the network, helm or the clock.

The order is the reconcile's contract: a spec that cannot be read, then promotion (which may
write spec.version), then the release plan (`reconcile.plan.plan_release`: deletion,
ownership, missing inputs, rollback, upgrade), the backoff of a failed attempt, and for a
release in place its health (verify, or the automatic rollback of a failed check) and last
its drift.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field, replace
from typing import Any

from alecton.api.models import Deployment, DriftPolicy, HealthPolicy
from alecton.reconcile.drift import DRIFT_CHECK_ANNOTATION, correction_failed, drift_due
from alecton.reconcile.freeze import (
    FREEZE_OVERRIDE_ANNOTATION,
    FROZEN_REASON,
    ActiveFreeze,
    frozen_message,
    override_reason,
)
from alecton.reconcile.health import ReleaseHealth, release_health
from alecton.reconcile.history import newest_healthy
from alecton.reconcile.plan import Action, Plan, RecordedStatus, ReleaseLocation, Resolved, rollback_pending
from alecton.reconcile.release import HistoryEntry
from alecton.reconcile.retry import retry_wait
from alecton.reconcile.rollback_policy import rollback_refusal
from alecton.reconcile.times import epoch
from alecton.reconcile.verdict import HEALTH_PHASES, VERIFYING, Outcome, health_outcome

# Phase names, as `reconcile.summary` writes them (kept here too: the decision reads them).
HEALTH_CHECK_FAILED = "HealthCheckFailed"
_ROLLED_BACK = "RolledBack"
# Phases of a release that is in place and meant to stay as it is: drift is checked then.
SETTLED_PHASES = frozenset({"Deployed", "Degraded", _ROLLED_BACK})

VALUES_SOURCE_RETRY = 30.0  # ConfigMaps and Secrets are not watched: look again later
# Waits on a ConfigMap or Secret that does not exist yet (valuesFrom, repositorySecretRef,
# verify.secretRef).
SECRET_WAIT_REASONS = frozenset(
    {"ValuesSourceNotFound", "RepositorySecretNotFound", "VerificationSecretNotFound"}
)
_WAKE_MARGIN = 0.5  # wake just after a deadline, not just before it


class Do(enum.Enum):
    """The kinds of step; each has one action module (see handlers/actions)."""

    PROMOTE = "promote"  # choose, propose and (approved) write spec.version
    REPORT = "report"  # no helm: say why (waiting, conflict, suspended, refused, held)
    FINALIZE = "finalize"  # deletion without helm: remove the finalizer
    UNINSTALL = "uninstall"  # deletion: helm uninstall where status says the release lives
    RELEASE = "release"  # helm upgrade --install, or rollback (asked, or automatic)
    KEEP = "keep"  # a failed health check stands until the inputs change or a retry
    SETTLE = "settle"  # health checks off: the status says Deployed
    TRACK = "track"  # start following the health of the release in place
    VERIFY = "verify"  # write what the health verdict means
    FAIL_HEALTH = "fail-health"  # the health check failed and nothing is rolled back
    DRIFT_OFF = "drift-off"  # drift is no longer checked: forget it (and a failed correction)
    CHECK_DRIFT = "check-drift"  # compare the release's objects with the live ones (and correct)
    WAIT = "wait"  # nothing to do now; look again after `wait` seconds, if set


# Steps after which this pass ends (their outcome is news the next event brings back).
_FINAL = frozenset({Do.REPORT, Do.FINALIZE, Do.UNINSTALL, Do.RELEASE, Do.DRIFT_OFF, Do.CHECK_DRIFT, Do.WAIT})
# Steps that settle health; once one ran in a pass, drift is next.
_HEALTH_STEPS = frozenset({Do.KEEP, Do.SETTLE, Do.VERIFY, Do.FAIL_HEALTH})


@dataclass(frozen=True)
class PromotionSeen:
    """What this pass's promotion step found."""

    wrote_version: bool = False  # spec.version changed: the update's own event deploys it
    refused: str = ""  # spec.promotion cannot be used
    waiting: str = ""  # why no version qualifies yet (status.promotion.message)


@dataclass(frozen=True)
class HealthSeen:
    tracked: bool = False  # the monitor follows the recorded revision
    verdict: ReleaseHealth | None = None  # None: not every watch has listed yet


@dataclass(frozen=True)
class DriftSeen:
    considered_since: float = 0.0  # when this process first considered the revision


@dataclass(frozen=True)
class Observed:
    """Everything a decision reads, gathered by `handlers.observe`."""

    deployment: Deployment | None  # None: the spec does not parse (see `invalid`)
    status: dict[str, Any]
    now: float
    generation: int = 0
    invalid: str = ""
    application_found: bool = False  # the Application exists and parses
    plan: Plan | None = None  # the release plan; None until promotion has stepped
    promotion: PromotionSeen | None = None  # None: no promotion step ran in this pass
    health: HealthSeen = field(default_factory=HealthSeen)
    drift: DriftSeen = field(default_factory=DriftSeen)
    annotations: dict[str, Any] = field(default_factory=dict)
    taken: frozenset[Do] = frozenset()  # the steps this pass already ran
    freezes: tuple[ActiveFreeze, ...] = ()  # the freezes that apply to this Deployment now

    @property
    def needs_promotion(self) -> bool:
        d = self.deployment
        return d is not None and d.promotion is not None and not d.deleting and not d.suspend


@dataclass(frozen=True)
class Step:
    do: Do
    plan: Plan | None = None
    result: str = ""  # the reconcile's result label (metrics) when the pass ends here
    wait: float | None = None  # look again after this many seconds
    # VERIFY: the verdict's outcome; FAIL_HEALTH: the failure and why nothing rolled back.
    outcome: Outcome | None = None
    failure: str = ""
    no_rollback: str = ""
    timed_out: bool = False
    # CHECK_DRIFT: the request being answered, and whether drift is corrected.
    requested: str = ""
    correct: bool = False

    @property
    def final(self) -> bool:
        return self.do in _FINAL


def decide(observed: Observed) -> Step:
    """The next step for one Deployment."""
    deployment = observed.deployment
    if deployment is None:
        refused = Plan(Action.REFUSED, "InvalidSpec", f"invalid spec: {observed.invalid}")
        return Step(Do.REPORT, refused, result="invalid")
    if observed.needs_promotion:
        step = _promotion_step(observed, deployment)
        if step is not None:
            return step
    plan = observed.plan
    assert plan is not None, "observe plans once promotion has stepped"
    if plan.action is Action.UPGRADE and observed.freezes and not overridden(observed):
        return _frozen(observed, plan)
    if plan.action is Action.NOTHING:
        return _in_place(observed, deployment, plan)
    if plan.action in (Action.WAIT, Action.CONFLICT, Action.SUSPENDED, Action.REFUSED, Action.HELD):
        wait = VALUES_SOURCE_RETRY if plan.reason in SECRET_WAIT_REASONS else None
        return Step(Do.REPORT, plan, result=plan.action.value.lower(), wait=wait)
    if plan.action is Action.RELEASE_FINALIZER:
        return Step(Do.FINALIZE, plan, result="finalized")
    if plan.action is Action.UNINSTALL:
        return Step(Do.UNINSTALL, plan, result="uninstalled")
    assert plan.desired is not None
    wait = retry_wait(RecordedStatus.parse(observed.status), plan.desired.fingerprint, observed.now)
    if wait > 0 and plan.reason != "RetryRequested":
        # A failed attempt at these same inputs waits for its retry time (or, for inputs
        # helm refused, for a change); it is in status, so it survives an operator restart.
        if math.isinf(wait):
            return Step(Do.WAIT, plan, result="stalled")
        return Step(Do.WAIT, plan, result="backoff", wait=wait)
    return Step(Do.RELEASE, plan, result=plan.action.value.lower())


def overridden(observed: Observed) -> str:
    """The reason given to deploy this generation of the spec during a freeze ("" for none)."""
    return override_reason(observed.annotations.get(FREEZE_OVERRIDE_ANNOTATION), observed.generation)


def _frozen(observed: Observed, plan: Plan) -> Step:
    """An upgrade (a new version, changed inputs, a retry) waits while a freeze applies: the
    release in place keeps running; look again when the earliest freeze ends (an open-ended
    one is ended by a change of the Freeze object, whose event requeues)."""
    applied = RecordedStatus.parse(observed.status).applied_version
    version = plan.desired.version if plan.desired is not None else ""
    if applied and version != applied:
        what = f"version {version} (running: {applied})"
    elif applied:
        what = f"the change of inputs of version {version}"
    else:
        what = f"the first release of version {version}"
    message = frozen_message(observed.freezes, what)
    ends = [f.until.timestamp() for f in observed.freezes if f.until is not None]
    wait = max(0.0, min(ends) - observed.now) + _WAKE_MARGIN if ends else None
    held = replace(plan, action=Action.WAIT, reason=FROZEN_REASON, message=message)
    return Step(Do.REPORT, held, result="frozen", wait=wait)


def _promotion_step(observed: Observed, deployment: Deployment) -> Step | None:
    seen = observed.promotion
    if seen is None:
        return Step(Do.PROMOTE)
    if seen.refused:
        return Step(Do.REPORT, Plan(Action.REFUSED, "PromotionRefused", seen.refused), result="invalid")
    if seen.wrote_version:
        return Step(Do.WAIT, result="promoted")  # the update's own event deploys the version
    if not deployment.version and observed.application_found:  # else the plan says what is missing
        waiting = seen.waiting or "no version qualifies yet"
        return Step(Do.REPORT, Plan(Action.WAIT, "AwaitingVersion", waiting), result="wait")
    return None


def health_policy(plan: Plan) -> HealthPolicy | None:
    resolved = plan.resolved
    return resolved.application.health_policy(resolved.target) if resolved else None


def drift_policy(plan: Plan) -> DriftPolicy | None:
    resolved = plan.resolved
    return resolved.application.drift_policy(resolved.target) if resolved else None


def _in_place(observed: Observed, deployment: Deployment, plan: Plan) -> Step:
    """The inputs match the applied release: its health first, then its drift."""
    # Health is settled once per pass; a failed start of tracking said when to look again.
    track_failed = Do.TRACK in observed.taken and not observed.health.tracked
    health_done = bool(observed.taken & _HEALTH_STEPS) or track_failed
    if not health_done:
        return _health_step(observed, deployment, plan)
    return _drift_step(observed, plan)


def _health_step(observed: Observed, deployment: Deployment, plan: Plan) -> Step:
    status = observed.status
    policy = health_policy(plan)
    phase = str(status.get("phase") or "")
    revision = RecordedStatus.parse(status).release_revision
    if plan.reason == HEALTH_CHECK_FAILED and phase not in HEALTH_PHASES:
        # Failed its health check: stays so until the inputs change or a retry is asked.
        return Step(Do.KEEP, plan, result="unchanged")
    if policy is None or not policy.check or phase not in HEALTH_PHASES or not revision:
        return Step(Do.SETTLE, plan, result="unchanged")
    if not observed.health.tracked:
        return Step(Do.TRACK, plan)
    health = observed.health.verdict
    deadline = epoch((status.get("health") or {}).get("deadline"))
    verdict = health_outcome(phase, health, observed.now, deadline)
    wake = verdict.wake_in + _WAKE_MARGIN if verdict.wake_in is not None else None
    if verdict.outcome is Outcome.FAILED:
        return _health_failed(observed, deployment, plan, policy, revision, verdict.timed_out)
    if health is None or verdict.outcome is Outcome.WAIT:
        return Step(Do.VERIFY, plan, outcome=Outcome.WAIT, result="unchanged", wait=wake)
    result = {Outcome.HEALTHY: "healthy", Outcome.PROGRESS: "verifying", Outcome.DEGRADED: "degraded"}
    return Step(Do.VERIFY, plan, outcome=verdict.outcome, result=result[verdict.outcome], wait=wake)


def _health_failed(
    observed: Observed,
    deployment: Deployment,
    plan: Plan,
    policy: HealthPolicy,
    revision: int,
    timed_out: bool,
) -> Step:
    """Verifying failed: roll back automatically (onFailure: Rollback) to the newest healthy
    revision, or stay Failed. Never retried on a timer."""
    assert plan.desired is not None
    status = observed.status
    failure = health_failure(observed.health.verdict, revision, recorded_version(status, plan), timed_out)
    # A rolled-back revision that fails too is not rolled back again (no loops).
    if policy.rollback_on_failure and status.get("settledPhase") != _ROLLED_BACK:
        target = automatic_rollback_target(status)
        if target is None:
            no_rollback = "no earlier revision became healthy, so there is nothing to roll back to"
            return Step(Do.FAIL_HEALTH, plan, failure=failure, no_rollback=no_rollback, result="failed")
        assert plan.resolved is not None
        if refusal := rollback_refusal(
            plan.resolved.application,
            target.revision,
            target,
            plan.rollback_verdicts,
            plan.rollback_chart_verdicts,
        ):
            # spec.verify: the release stays as it is, and the status says why it did not roll back.
            no_rollback = f"the automatic rollback to revision {target.revision} is refused: {refusal}"
            return Step(Do.FAIL_HEALTH, plan, failure=failure, no_rollback=no_rollback, result="failed")
        rollback = replace(
            plan,
            action=Action.ROLLBACK,
            reason=HEALTH_CHECK_FAILED,
            rollback_to=target.revision,
            health_failure=failure,
        )
        return Step(Do.RELEASE, rollback, result="rollback")
    return Step(Do.FAIL_HEALTH, plan, failure=failure, timed_out=timed_out, result="failed")


def automatic_rollback_target(status: dict[str, Any]) -> HistoryEntry | None:
    """Where a failed health check of the recorded revision rolls back to (onFailure:
    Rollback): the newest older revision that became healthy. A rolled-back revision that
    fails too is not rolled back again (no loops): the caller checks settledPhase."""
    recorded = RecordedStatus.parse(status)
    return newest_healthy(list(recorded.history), recorded.release_revision)


def rollback_candidates(
    deployment: Deployment, status: dict[str, Any], resolved: Resolved
) -> list[HistoryEntry]:
    """The recorded revisions a rollback may restore in this pass, for `handlers.observe` to
    have their images' (and charts') signatures checked (spec.verify): the one an unanswered
    spec.rollback asks for, and, while a release with onFailure: Rollback is Verifying, where
    a failed check would roll back to."""
    recorded = RecordedStatus.parse(status)
    wanted: set[int] = set()
    if deployment.rollback is not None and rollback_pending(deployment, recorded):
        wanted.add(deployment.rollback.revision)
    policy = resolved.application.health_policy(resolved.target)
    verifying = status.get("phase") == VERIFYING and status.get("settledPhase") != _ROLLED_BACK
    if policy.rollback_on_failure and verifying and (target := automatic_rollback_target(status)):
        wanted.add(target.revision)
    return [entry for entry in recorded.history if entry.revision in wanted]


def recorded_version(status: dict[str, Any], plan: Plan) -> str:
    """The version of the release in place (status.release), else the one planned."""
    planned = plan.desired.version if plan.desired is not None else ""
    return str((status.get("release") or {}).get("version") or planned)


def health_failure(health: ReleaseHealth | None, revision: int, version: str, timed_out: bool) -> str:
    """One line: which version failed and why, in the object's (or pod's) own words."""
    message = (health or release_health([])).message
    why = f"not healthy within the health timeout: {message}" if timed_out else message
    return f"version {version} (revision {revision}) failed its health check: {why}"


def _drift_step(observed: Observed, plan: Plan) -> Step:
    policy = drift_policy(plan)
    status = observed.status
    failed = correction_failed(status)
    if policy is None or policy.mode == "Off":
        return Step(Do.DRIFT_OFF, plan)
    revision = RecordedStatus.parse(status).release_revision
    settled = status.get("phase") in SETTLED_PHASES or failed
    if not settled or plan.desired is None or not revision:
        return _done()
    due = drift_due(
        status.get("drift") or {},
        revision,
        epoch((status.get("release") or {}).get("lastDeployed")),
        policy.interval,
        str(observed.deployment.ref) if observed.deployment else "",
        observed.now,
        str(observed.annotations.get(DRIFT_CHECK_ANNOTATION) or ""),
        observed.drift.considered_since,
    )
    if not due.now:
        return Step(Do.WAIT, plan, wait=due.wait + _WAKE_MARGIN)
    return Step(Do.CHECK_DRIFT, plan, requested=due.requested, correct=policy.mode == "Correct")


def _done() -> Step:
    return Step(Do.WAIT)


def moved_from(status: dict[str, Any], location: ReleaseLocation) -> ReleaseLocation | None:
    """The place a release of this Deployment lived before, when the target moved."""
    pending = ReleaseLocation.parse(status.get("movedFrom") or {})
    if pending is not None and not pending.same_place(location):
        return pending
    recorded = RecordedStatus.parse(status)
    previous = recorded.release
    if previous is not None and recorded.release_revision > 0 and not previous.same_place(location):
        return previous
    return None


def rollback_record(plan: Plan, deployment: Deployment) -> dict[str, Any] | None:
    """status.lastRollback for a rollback asked in spec.rollback (or superseded by a new
    version in the same update); None for every other action."""
    if deployment.rollback is None or plan.action not in (Action.ROLLBACK, Action.UPGRADE):
        return None
    if plan.rollback_to:  # an automatic rollback answers no request of spec.rollback
        return None
    if plan.action is Action.UPGRADE and plan.reason != "RollbackSuperseded":
        return None
    record: dict[str, Any] = {
        "revision": deployment.rollback.revision,
        "requestId": deployment.rollback.request_id,
    }
    if plan.action is Action.UPGRADE:
        record["result"] = "Superseded"
    return record
