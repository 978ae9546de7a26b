"""The one decision (reconcile/decide.py): what a Deployment needs next, in the order the
reconcile promises: a spec that cannot be read, promotion, the release plan (reports,
deletion, backoff, helm), then for a release in place its health and last its drift."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest
from alecton.api.models import Application
from alecton.api.objects import ObjectKey
from alecton.reconcile.decide import (
    VALUES_SOURCE_RETRY,
    Do,
    DriftSeen,
    HealthSeen,
    Observed,
    PromotionSeen,
    Step,
    decide,
)
from alecton.reconcile.drift import DRIFT_CHECK_ANNOTATION, spread
from alecton.reconcile.health import ObjectHealth, ReleaseHealth, State, release_health
from alecton.reconcile.plan import Action, Plan
from alecton.reconcile.times import epoch
from alecton.reconcile.verdict import Outcome

from tests.unit.fakes import (
    APP,
    REF,
    RELEASE_NAMESPACE,
    application,
    deployment_body,
    entry,
    plan_of,
    released_status,
    request,
)

NOW_TEXT = "2026-03-01T12:00:00Z"
NOW = epoch(NOW_TEXT)
PROMOTION = {"versions": {"semver": ">=1.0.0"}}
WEB = ObjectKey("apps/v1", "Deployment", RELEASE_NAMESPACE, "web")


def at(seconds: float) -> str:
    """NOW plus `seconds`, as status writes times."""
    return (dt.datetime.fromtimestamp(NOW, dt.UTC) + dt.timedelta(seconds=seconds)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def health(state: State, message: str = "") -> ReleaseHealth:
    return release_health([ObjectHealth(WEB, state, message or state.value.lower())])


def observe(
    body: dict[str, Any],
    plan: Plan | None = None,
    *,
    promotion: PromotionSeen | None = None,
    tracked: bool = False,
    verdict: ReleaseHealth | None = None,
    considered_since: float = 0.0,
    taken: tuple[Do, ...] = (),
    application_found: bool = True,
) -> Observed:
    observed = request(body, Step(Do.WAIT, plan), now=NOW).observed
    return replace(
        observed,
        promotion=promotion,
        health=HealthSeen(tracked, verdict),
        drift=DriftSeen(considered_since),
        taken=frozenset(taken),
        application_found=application_found,
    )


def planned(body: dict[str, Any], app: Application = APP, **options: Any) -> Observed:
    return observe(body, plan_of(body, app=app), **options)


def in_place(
    phase: str = "Deployed",
    app: Application = APP,
    revision: int = 3,
    history: list[Any] | None = None,
    annotations: dict[str, str] | None = None,
    **fields: Any,
) -> tuple[dict[str, Any], Plan]:
    """A Deployment whose inputs match the release in place (revision `revision`)."""
    fresh = plan_of(deployment_body(), app=app)
    assert fresh.desired is not None
    status = released_status(
        revision,
        history=history,
        phase=phase,
        appliedFingerprint=fresh.desired.fingerprint,
        observedGeneration=3,
        **fields,
    )
    status["release"]["lastDeployed"] = at(-3600)
    body = deployment_body(status, annotations=annotations)
    plan = plan_of(body, app=app)
    assert plan.action is Action.NOTHING
    return body, plan


# ----- before the plan ----------------------------------------------------------------------------


def test_a_spec_that_cannot_be_read_is_reported_and_ends_the_pass() -> None:
    step = decide(Observed(None, {}, NOW, 2, invalid="spec.version is required"))
    assert step == Step(
        Do.REPORT,
        Plan(Action.REFUSED, "InvalidSpec", "invalid spec: spec.version is required"),
        result="invalid",
    )
    assert step.final


def test_promotion_steps_first_even_when_the_plan_would_deploy() -> None:
    body = deployment_body(promotion=PROMOTION)
    step = decide(observe(body))  # the observer does not plan before the promotion stepped
    assert step == Step(Do.PROMOTE) and not step.final
    # Not for a Deployment that is going away or suspended: the plan says what to do.
    deleting = deployment_body(released_status(3), promotion=PROMOTION, deletionTimestamp=NOW_TEXT)
    assert decide(planned(deleting)).do is Do.UNINSTALL
    assert decide(planned(deployment_body(promotion=PROMOTION, suspend=True))).do is Do.REPORT


def test_what_the_promotion_found_comes_before_the_plan() -> None:
    body = deployment_body(promotion=PROMOTION)
    refused = decide(planned(body, promotion=PromotionSeen(refused="spec.promotion.x: not a field")))
    assert refused == Step(
        Do.REPORT, Plan(Action.REFUSED, "PromotionRefused", "spec.promotion.x: not a field"), result="invalid"
    )
    wrote = decide(planned(body, promotion=PromotionSeen(wrote_version=True)))
    assert wrote == Step(Do.WAIT, result="promoted") and wrote.final
    # Nothing written: the ordinary plan deploys spec.version.
    assert decide(planned(body, promotion=PromotionSeen())).do is Do.RELEASE


def test_a_promotion_without_a_version_yet_says_why() -> None:
    body = deployment_body(promotion=PROMOTION, version="")
    no_image = Plan(Action.WAIT, "ImageNotFound", "no Image with name 'web' and version ''")
    seen = PromotionSeen(waiting="no Image version matches semver >=1.0.0")
    waiting = decide(observe(body, no_image, promotion=seen))
    assert waiting == Step(
        Do.REPORT,
        Plan(Action.WAIT, "AwaitingVersion", "no Image version matches semver >=1.0.0"),
        result="wait",
    )
    default = decide(observe(body, no_image, promotion=PromotionSeen()))
    assert default.plan is not None and default.plan.message == "no version qualifies yet"
    # Without its Application the plan says what is missing.
    no_app = Plan(Action.WAIT, "ApplicationNotFound", "Application 'web' does not exist")
    missing = decide(observe(body, no_app, promotion=PromotionSeen(), application_found=False))
    assert missing == Step(Do.REPORT, no_app, result="wait")


# ----- the plan -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plan", "result", "wait"),
    [
        (Plan(Action.WAIT, "ImageNotFound", "no Image"), "wait", None),
        (Plan(Action.WAIT, "ValuesSourceNotFound", "no ConfigMap"), "wait", VALUES_SOURCE_RETRY),
        (Plan(Action.CONFLICT, "DuplicateDeployment", "two"), "conflict", None),
        (Plan(Action.SUSPENDED, "Suspended", "suspended"), "suspended", None),
        (Plan(Action.REFUSED, "ChartRefused", "outside"), "refused", None),
        (Plan(Action.HELD, "RollbackHeld", "held"), "held", None),
    ],
)
def test_plans_without_helm_are_reported(plan: Plan, result: str, wait: float | None) -> None:
    step = decide(observe(deployment_body(), plan))
    assert step == Step(Do.REPORT, plan, result=result, wait=wait) and step.final


def test_deletion_finalizes_or_uninstalls() -> None:
    orphan = deployment_body(released_status(3), deletionTimestamp=NOW_TEXT, deletionPolicy="Orphan")
    finalize = decide(planned(orphan))
    assert (finalize.do, finalize.result, finalize.final) == (Do.FINALIZE, "finalized", True)
    delete = decide(planned(deployment_body(released_status(3), deletionTimestamp=NOW_TEXT)))
    assert (delete.do, delete.result, delete.final) == (Do.UNINSTALL, "uninstalled", True)


def failed_before(retry_in: float, **spec: Any) -> dict[str, Any]:
    """A Deployment whose last attempt at these very inputs failed."""
    fingerprint = plan_of(deployment_body(**spec)).desired.fingerprint  # type: ignore[union-attr]
    status = {"failedFingerprint": fingerprint, "failures": 2, "retryAfter": at(retry_in)}
    return deployment_body(status, **spec)


def test_a_failed_attempt_waits_for_its_retry_time() -> None:
    step = decide(planned(failed_before(40)))
    assert (step.do, step.result, step.wait, step.final) == (Do.WAIT, "backoff", 40.0, True)
    assert step.plan is not None and step.plan.action is Action.UPGRADE


def test_a_failed_attempt_runs_again_once_its_time_came_or_the_inputs_changed() -> None:
    assert decide(planned(failed_before(-1))).do is Do.RELEASE
    changed = failed_before(40)
    changed["spec"]["version"] = "1.1"
    assert decide(planned(changed)).do is Do.RELEASE


def test_inputs_helm_refused_stall_until_they_change() -> None:
    body = failed_before(40)
    body["status"]["stalledFingerprint"] = body["status"]["failedFingerprint"]
    body["status"]["retryAfter"] = None
    step = decide(planned(body))
    assert (step.do, step.result, step.wait) == (Do.WAIT, "stalled", None)


def test_a_retry_request_runs_despite_the_backoff() -> None:
    body = failed_before(40, retryRequestId="again")
    body["status"]["stalledFingerprint"] = body["status"]["failedFingerprint"]
    step = decide(planned(body))
    assert step.do is Do.RELEASE and step.plan is not None and step.plan.reason == "RetryRequested"


def test_a_release_is_the_plan_action() -> None:
    upgrade = decide(planned(deployment_body()))
    assert (upgrade.do, upgrade.result, upgrade.final) == (Do.RELEASE, "upgrade", True)
    rollback = decide(planned(deployment_body(released_status(3), rollback={"revision": 1})))
    assert (rollback.do, rollback.result) == (Do.RELEASE, "rollback")


# ----- health of the release in place -------------------------------------------------------------


def test_a_failed_health_check_stands() -> None:
    fingerprint = plan_of(deployment_body()).desired.fingerprint  # type: ignore[union-attr]
    body = deployment_body(
        released_status(3, phase="Failed", unhealthyFingerprint=fingerprint, appliedFingerprint=fingerprint)
    )
    plan = plan_of(body)
    assert (plan.action, plan.reason) == (Action.NOTHING, "HealthCheckFailed")
    step = decide(observe(body, plan, tracked=True))
    assert step == Step(Do.KEEP, plan, result="unchanged") and not step.final


@pytest.mark.parametrize(
    ("app", "phase", "revision"),
    [
        (application(health="None"), "Deployed", 3),  # checks off
        (APP, "Pending", 3),  # not a phase health is checked in
        (APP, "Deployed", 0),  # no revision of ours
    ],
)
def test_nothing_to_check_settles(app: Application, phase: str, revision: int) -> None:
    body, plan = in_place(phase, app, revision)
    step = decide(observe(body, plan, tracked=True, verdict=health(State.CURRENT)))
    assert step == Step(Do.SETTLE, plan, result="unchanged") and not step.final


def test_a_release_not_followed_yet_is_tracked() -> None:
    body, plan = in_place("Verifying", health={"deadline": at(100)})
    step = decide(observe(body, plan, tracked=False))
    assert step == Step(Do.TRACK, plan) and not step.final


@pytest.mark.parametrize(
    ("phase", "verdict", "outcome", "result", "wait"),
    [
        ("Verifying", health(State.CURRENT), Outcome.HEALTHY, "healthy", None),
        ("Verifying", health(State.IN_PROGRESS), Outcome.PROGRESS, "verifying", 100.5),
        ("Verifying", None, Outcome.WAIT, "unchanged", 100.5),
        ("Deployed", health(State.CURRENT), Outcome.WAIT, "unchanged", None),
        ("Deployed", health(State.IN_PROGRESS), Outcome.DEGRADED, "degraded", None),
        ("Degraded", health(State.CURRENT), Outcome.HEALTHY, "healthy", None),
    ],
)
def test_the_verdict_is_verified(
    phase: str, verdict: ReleaseHealth | None, outcome: Outcome, result: str, wait: float | None
) -> None:
    body, plan = in_place(phase, health={"deadline": at(100)})
    step = decide(observe(body, plan, tracked=True, verdict=verdict))
    assert step == Step(Do.VERIFY, plan, outcome=outcome, result=result, wait=wait)
    assert not step.final


def test_a_failed_object_fails_the_health_check() -> None:
    body, plan = in_place("Verifying", health={"deadline": at(100)})
    step = decide(observe(body, plan, tracked=True, verdict=health(State.FAILED, "CrashLoopBackOff")))
    assert step == Step(
        Do.FAIL_HEALTH,
        plan,
        failure="version 1.0 (revision 3) failed its health check: Deployment web: CrashLoopBackOff",
        result="failed",
    )


def test_the_deadline_fails_the_health_check_as_timed_out() -> None:
    body, plan = in_place("Verifying", health={"deadline": at(-1)})
    step = decide(observe(body, plan, tracked=True, verdict=health(State.IN_PROGRESS, "1 of 2 ready")))
    assert step.do is Do.FAIL_HEALTH and step.timed_out
    assert step.failure == (
        "version 1.0 (revision 3) failed its health check: not healthy within the health timeout: "
        "waiting for Deployment web: 1 of 2 ready"
    )


ROLLBACK = application(onFailure="Rollback")


def test_on_failure_rollback_rolls_back_to_the_newest_healthy_revision() -> None:
    history = [entry(3, "deployed"), entry(2, healthy=True), entry(1, healthy=True)]
    body, plan = in_place("Verifying", ROLLBACK, history=history, health={"deadline": at(100)})
    step = decide(observe(body, plan, tracked=True, verdict=health(State.FAILED, "CrashLoopBackOff")))
    failure = "version 1.0 (revision 3) failed its health check: Deployment web: CrashLoopBackOff"
    assert step == Step(
        Do.RELEASE,
        replace(
            plan, action=Action.ROLLBACK, reason="HealthCheckFailed", rollback_to=2, health_failure=failure
        ),
        result="rollback",
    )
    assert step.final


def test_on_failure_rollback_without_a_healthy_revision_says_so() -> None:
    history = [entry(3, "deployed"), entry(2, healthy=False)]
    body, plan = in_place("Verifying", ROLLBACK, history=history, health={"deadline": at(100)})
    step = decide(observe(body, plan, tracked=True, verdict=health(State.FAILED)))
    assert step.do is Do.FAIL_HEALTH
    assert step.no_rollback == "no earlier revision became healthy, so there is nothing to roll back to"


def test_a_rolled_back_revision_that_fails_too_is_not_rolled_back_again() -> None:
    history = [entry(3, "deployed"), entry(2, healthy=True)]
    body, plan = in_place(
        "Verifying", ROLLBACK, history=history, settledPhase="RolledBack", health={"deadline": at(100)}
    )
    step = decide(observe(body, plan, tracked=True, verdict=health(State.FAILED)))
    assert step.do is Do.FAIL_HEALTH and step.no_rollback == ""


# ----- once health is settled in this pass, drift -------------------------------------------------

OFF = application(drift={"mode": "Off"})


@pytest.mark.parametrize("taken", [Do.KEEP, Do.SETTLE, Do.VERIFY, Do.FAIL_HEALTH])
def test_after_a_health_step_drift_is_next(taken: Do) -> None:
    body, plan = in_place("Deployed", OFF)
    before = decide(observe(body, plan, tracked=True, verdict=health(State.CURRENT)))
    assert before.do is Do.VERIFY
    after = decide(observe(body, plan, tracked=True, verdict=health(State.CURRENT), taken=(taken,)))
    assert after == Step(Do.DRIFT_OFF, plan) and after.final


def test_a_track_that_failed_moves_on_to_drift_and_one_that_worked_verifies() -> None:
    body, plan = in_place("Deployed", OFF)
    assert decide(observe(body, plan, tracked=False, taken=(Do.TRACK,))).do is Do.DRIFT_OFF
    verified = decide(observe(body, plan, tracked=True, verdict=health(State.CURRENT), taken=(Do.TRACK,)))
    assert verified.do is Do.VERIFY


def test_drift_is_not_checked_before_the_release_settles() -> None:
    body, plan = in_place("Verifying", health={"deadline": at(100)})
    assert decide(observe(body, plan, tracked=True, taken=(Do.VERIFY,))) == Step(Do.WAIT)


def test_a_drift_check_asked_for_runs_now() -> None:
    body, plan = in_place("Deployed", annotations={DRIFT_CHECK_ANNOTATION: "r-7"})
    step = decide(observe(body, plan, taken=(Do.VERIFY,)))
    assert step == Step(Do.CHECK_DRIFT, plan, requested="r-7", correct=False) and step.final
    corrected, corrected_plan = in_place(
        "Deployed", application(drift={"mode": "Correct"}), annotations={DRIFT_CHECK_ANNOTATION: "r-7"}
    )
    assert decide(observe(corrected, corrected_plan, taken=(Do.VERIFY,))).correct


def test_a_scheduled_drift_check_waits_for_its_interval() -> None:
    body, plan = in_place("Deployed", drift={"checkedAt": at(-60), "revision": 3})
    step = decide(observe(body, plan, taken=(Do.VERIFY,)))
    assert step == Step(Do.WAIT, plan, wait=600 - 60 + 0.5) and step.final
    due, due_plan = in_place("Deployed", drift={"checkedAt": at(-601), "revision": 3})
    assert decide(observe(due, due_plan, taken=(Do.VERIFY,))) == Step(Do.CHECK_DRIFT, due_plan)


def test_overdue_checks_spread_from_when_this_process_first_considered_them() -> None:
    body, plan = in_place("Deployed")  # deployed an hour ago, never checked: overdue
    assert decide(observe(body, plan, taken=(Do.VERIFY,))).do is Do.CHECK_DRIFT
    step = decide(observe(body, plan, taken=(Do.VERIFY,), considered_since=NOW))
    assert step.do is Do.WAIT
    assert step.wait == pytest.approx(600 * spread(str(REF)) + 0.5)


def test_a_failed_correction_counts_as_settled_for_drift() -> None:
    conditions = [{"type": "Ready", "status": "False", "reason": "DriftCorrectionFailed"}]
    body, plan = in_place(
        "Failed",
        application(drift={"mode": "Correct"}),
        conditions=conditions,
        drift={"checkedAt": at(-30), "revision": 3, "retryAt": at(-1)},
    )
    step = decide(observe(body, plan, taken=(Do.SETTLE,)))
    assert step == Step(Do.CHECK_DRIFT, plan, correct=True)
