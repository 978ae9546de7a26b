"""The one summary (reconcile/summary.py): for each kind of step and each outcome its action
reports, the status merge patch (phase, message, conditions), the Events and when to look
again."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest
from alecton.api.objects import ObjectKey
from alecton.reconcile.decide import Do, HealthSeen, Observed, Step
from alecton.reconcile.health import ObjectHealth, ReleaseHealth, State, release_health
from alecton.reconcile.helm_failure import FailureClass, FailureKind
from alecton.reconcile.outcomes import (
    Claimed,
    Conflict,
    Done,
    DriftChecked,
    Event,
    Note,
    Promoted,
    PromotionFacts,
    Released,
    ReleaseFailed,
    Summary,
    Tracked,
    Uninstalled,
    UninstallFailed,
)
from alecton.reconcile.plan import Action, Plan, RecordedStatus
from alecton.reconcile.promotion_actions import Actions
from alecton.reconcile.promotion_choice import Choice
from alecton.reconcile.promotion_hold import HoldDecision
from alecton.reconcile.promotion_policy import PromotionPolicy
from alecton.reconcile.retry import backoff_seconds
from alecton.reconcile.status import UNCONFIRMED_RELEASE
from alecton.reconcile.summary import summarize, unexpected_error
from alecton.reconcile.times import epoch
from alecton.reconcile.verdict import Outcome as Verdict

from tests.unit.fakes import (
    HERE,
    OLD_PLACE,
    RELEASE_NAMESPACE,
    application,
    deployment_body,
    entry,
    image_for,
    plan_of,
    released_status,
    request,
)

NOW = "2026-03-01T12:00:00Z"
RETRY = "alecton retry web staging -n team"
WEB_KEY = ("apps/v1", "Deployment", RELEASE_NAMESPACE, "web")


def at(seconds: float) -> str:
    return (dt.datetime.fromisoformat(NOW.replace("Z", "+00:00")) + dt.timedelta(seconds=seconds)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def health(state: State, message: str = "") -> ReleaseHealth:
    return release_health([ObjectHealth(ObjectKey(*WEB_KEY), state, message or state.value.lower())])


def observed(
    body: dict[str, Any], plan: Plan | None = None, verdict: ReleaseHealth | None = None
) -> Observed:
    seen = request(body, Step(Do.WAIT, plan), now=epoch(NOW)).observed
    return replace(seen, health=HealthSeen(True, verdict))


def summary(
    body: dict[str, Any], step: Step, outcome: Any = Done(), verdict: ReleaseHealth | None = None
) -> Summary:
    return summarize(observed(body, step.plan, verdict), step, outcome, NOW)


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


# ----- no helm ------------------------------------------------------------------------------------


def test_report_writes_why_and_says_it_once() -> None:
    plan = Plan(Action.WAIT, "ImageNotFound", "no Image with name 'web' and version '1.0'")
    body = deployment_body()
    first = summary(body, Step(Do.REPORT, plan, result="wait"))
    assert first.status is not None
    assert (first.status["phase"], first.status["message"], first.status["observedGeneration"]) == (
        "Pending",
        plan.message,
        3,
    )
    assert conditions(first.status) == {
        "Ready": ("False", "ImageNotFound"),
        "Stalled": ("False", "Progressing"),
    }
    assert first.events == [Event("Normal", "ImageNotFound", plan.message)]
    assert first.wait is None and not first.remove_finalizer
    # Written already: nothing to write, no Event (a waiting Deployment stays quiet).
    same = deployment_body({"phase": "Pending", "message": plan.message, "observedGeneration": 3})
    assert summary(same, Step(Do.REPORT, plan, result="wait")) == Summary()
    # A new generation is written again.
    newer = deployment_body({"phase": "Pending", "message": plan.message, "observedGeneration": 2})
    assert summary(newer, Step(Do.REPORT, plan)).status is not None


def test_an_invalid_spec_is_failed_and_stalled() -> None:
    step = Step(Do.REPORT, Plan(Action.REFUSED, "InvalidSpec", "invalid spec: bad"), result="invalid")
    result = summarize(Observed(None, {}, epoch(NOW), 4, invalid="bad"), step, Done(), NOW)
    assert result.status is not None
    assert (result.status["phase"], result.status["message"], result.status["observedGeneration"]) == (
        "Failed",
        "invalid spec: bad",
        4,
    )
    assert conditions(result.status) == {
        "Ready": ("False", "InvalidSpec"),
        "Stalled": ("True", "InvalidSpec"),
    }
    assert result.events == [Event("Warning", "InvalidSpec", "invalid spec: bad")]


def test_report_waits_as_the_step_says() -> None:
    plan = Plan(Action.WAIT, "ValuesSourceNotFound", "ConfigMap web-values does not exist")
    same = deployment_body({"phase": "Pending", "message": plan.message, "observedGeneration": 3})
    assert summary(same, Step(Do.REPORT, plan, wait=30.0)) == Summary(wait=30.0)


@pytest.mark.parametrize(
    ("action", "phase", "event", "stalled"),
    [
        (Action.CONFLICT, "Conflict", "Warning", "True"),
        (Action.SUSPENDED, "Suspended", "Normal", "False"),
        (Action.REFUSED, "Failed", "Warning", "True"),
    ],
)
def test_report_phases(action: Action, phase: str, event: str, stalled: str) -> None:
    plan = Plan(action, "Why", "because")
    result = summary(deployment_body(), Step(Do.REPORT, plan))
    assert result.status is not None and result.status["phase"] == phase
    assert conditions(result.status)["Stalled"][0] == stalled
    assert result.events == [Event(event, "Why", "because")]


def test_report_of_a_held_rollback_keeps_it_rolled_back_and_ready() -> None:
    plan = Plan(Action.HELD, "RollbackHeld", "held at revision 4 by spec.rollback")
    result = summary(deployment_body(released_status(4)), Step(Do.REPORT, plan))
    assert result.status is not None and result.status["phase"] == "RolledBack"
    assert conditions(result.status)["Ready"] == ("True", "RollbackHeld")
    assert result.events == [Event("Normal", "RollbackHeld", plan.message)]


def promotion_facts(**actions: Any) -> PromotionFacts:
    policy = PromotionPolicy.parse({"versions": {"semver": ">=1.0.0"}})
    choice = Choice("1.1.0", "1.1.0 is the newest Image version matching semver >=1.0.0")
    done = Actions(**{"write_version": "1.1.0", "message": "promoting 1.0.0 to 1.1.0", **actions})
    return PromotionFacts(policy, HoldDecision(None, "", "1.0.0"), choice, done, NOW, "r-1")


def test_promote_writes_status_promotion_and_its_news() -> None:
    notes = (Note("PromotionProposed", "1.0.0 -> 1.1.0"), Note("PromotionHeld", "held", warning=True))
    outcome = Promoted(wrote_version=True, step=promotion_facts(), notes=notes, wait=12.5)
    result = summary(deployment_body(), Step(Do.PROMOTE), outcome)
    assert result == Summary(
        {
            "promotion": {
                "policy": "semver >=1.0.0, approval Automatic",
                "written": "1.1.0",
                "promoted": "1.1.0",
                "resumed": "",
                "hold": None,
                "candidate": "1.1.0",
                "message": "promoting 1.0.0 to 1.1.0",
                "checkedAt": NOW,
                "promoteRequest": "r-1",
            }
        },
        [Event("Normal", "PromotionProposed", "1.0.0 -> 1.1.0"), Event("Warning", "PromotionHeld", "held")],
        12.5,
    )


def test_promote_writes_nothing_when_only_the_time_of_the_check_changed() -> None:
    written = summary(deployment_body(), Step(Do.PROMOTE), Promoted(step=promotion_facts()))
    assert written.status is not None
    before = {**written.status["promotion"], "checkedAt": at(-600)}
    again = summary(
        deployment_body({"promotion": before}), Step(Do.PROMOTE), Promoted(step=promotion_facts())
    )
    assert again == Summary()
    changed = Promoted(step=promotion_facts(message="at 1.1.0"))
    assert summary(deployment_body({"promotion": before}), Step(Do.PROMOTE), changed).status is not None


def test_promote_without_a_decision_writes_nothing() -> None:
    assert summary(deployment_body(), Step(Do.PROMOTE), Promoted(waiting="x", wait=3.0)) == Summary(wait=3.0)


def test_finalize_removes_the_finalizer() -> None:
    orphaned = Plan(
        Action.RELEASE_FINALIZER, "Orphaned", "deletionPolicy is Orphan: the release is left running"
    )
    assert summary(deployment_body(), Step(Do.FINALIZE, orphaned)) == Summary(
        events=[Event("Normal", "Orphaned", orphaned.message)], remove_finalizer=True
    )
    not_owner = Plan(Action.RELEASE_FINALIZER, "NotOwner", "this Deployment never made the release")
    assert summary(deployment_body(), Step(Do.FINALIZE, not_owner)) == Summary(remove_finalizer=True)


def test_uninstall_removes_the_finalizer_or_retries_with_backoff() -> None:
    step = Step(Do.UNINSTALL, Plan(Action.UNINSTALL))
    done = summary(
        deployment_body(released_status(3)), step, Uninstalled("removed the release from namespace apps")
    )
    assert done == Summary(
        events=[Event("Normal", "UninstallSucceeded", "removed the release from namespace apps")],
        remove_finalizer=True,
    )
    failed = summary(
        deployment_body(released_status(3, failures=2)), step, UninstallFailed("helm uninstall failed")
    )
    assert failed.status is not None and not failed.remove_finalizer
    assert (failed.status["phase"], failed.status["failures"]) == ("Deleting", 3)
    assert failed.status["message"] == "uninstall failed: helm uninstall failed (retrying in 20 s)"
    assert failed.wait == backoff_seconds(3) == 20.0
    assert failed.events == [Event("Warning", "UninstallFailed", "helm uninstall failed")]


# ----- the release step ---------------------------------------------------------------------------


def release_of(body: dict[str, Any], **plan_changes: Any) -> tuple[dict[str, Any], Step]:
    plan = replace(plan_of(body), **plan_changes)
    return body, Step(Do.RELEASE, plan, result=plan.action.value.lower())


def upgrade() -> tuple[dict[str, Any], Step]:
    return release_of(deployment_body(released_status(2, failures=1), version="1.1"))


def released(revision: int = 3, version: str = "1.1", **options: Any) -> Released:
    history = [entry(revision, "deployed", version), entry(revision - 1)]
    return Released(HERE, history, image_for(version), **options)


def test_a_conflict_found_by_the_claim_is_reported() -> None:
    body, step = upgrade()
    result = summary(body, step, Conflict("release 'web-staging' belongs to team/other"))
    assert result.status is not None and result.status["phase"] == "Conflict"
    assert result.events == [
        Event("Warning", "ReleaseNotOwned", "release 'web-staging' belongs to team/other")
    ]


def test_the_claim_of_a_new_place_clears_the_recorded_revision_and_keeps_the_old_place() -> None:
    body, step = upgrade()
    result = summary(body, step, Claimed(HERE, new_place=True, moved_from=OLD_PLACE))
    assert result.status is not None and result.events == [] and result.wait is None
    assert result.status["phase"] == "Deploying"
    assert result.status["message"] == "deploying version 1.1 as web-staging"
    assert result.status["release"] == {**HERE.as_status(), **UNCONFIRMED_RELEASE}
    assert result.status["movedFrom"] == OLD_PLACE.as_status()
    assert conditions(result.status)["Ready"] == ("Unknown", "Progressing")


def test_the_claim_of_the_place_held_keeps_the_revision() -> None:
    body, step = upgrade()
    result = summary(body, step, Claimed(HERE, new_place=False))
    assert result.status is not None
    assert result.status["release"] == HERE.as_status() and "movedFrom" not in result.status


def test_a_release_under_verification_is_verifying_until_its_deadline() -> None:
    body, step = upgrade()
    assert step.plan is not None and step.plan.desired is not None
    result = summary(body, step, released(verify_until=at(300)))
    status = result.status
    assert status is not None and result.wait is None
    assert status["phase"] == "Verifying"
    assert (
        status["message"]
        == f"applied version 1.1 as web-staging revision 3; verifying health until {at(300)}"
    )
    assert conditions(status)["Ready"] == ("Unknown", "Verifying")
    assert conditions(status)["Released"] == ("True", "UpgradeSucceeded")
    assert status["health"]["deadline"] == at(300)
    assert (status["failures"], status["appliedFingerprint"], status["appliedVersion"]) == (
        0,
        step.plan.desired.fingerprint,
        "1.1",
    )
    assert status["release"]["revision"] == 3 and status["release"]["image"] == image_for("1.1")
    assert status["movedFrom"] is None and status["unhealthyFingerprint"] is None
    assert result.events == [Event("Normal", "UpgradeSucceeded", status["message"])]


def test_a_release_at_a_new_place_drops_the_drift_record_of_the_old_places_revision() -> None:
    """R27B-3: status.drift is keyed by revision number, and a moved release starts at revision 1
    again: the old place's record (drifted objects, a failed correction's retry time) is not the
    new revision's."""
    drift = {
        "revision": 1,
        "drifted": True,
        "failures": 2,
        "retryAt": at(60),
        "objects": [{"kind": "Service"}],
    }
    moved = deployment_body(released_status(1, OLD_PLACE, drift=drift), version="1.1")
    body, step = release_of(moved)
    result = summary(body, step, released(revision=1))
    assert result.status is not None and result.status["drift"] is None
    body, step = release_of(deployment_body(released_status(2, HERE, drift=drift), version="1.1"))
    result = summary(body, step, released(revision=3))
    assert result.status is not None and "drift" not in result.status  # the same place keeps it


def test_a_release_without_health_checks_is_deployed_and_the_notes_come_first() -> None:
    body, step = upgrade()
    repaired = "release was stuck in pending-upgrade: rolled back to revision 2"
    notes = (Note("ReleaseRepaired", repaired, warning=True),)
    result = summary(body, step, released(repaired=repaired, notes=notes, after="removed the old one"))
    assert result.status is not None and result.status["phase"] == "Deployed"
    assert result.status["message"] == (
        f"{repaired}; deployed version 1.1 as web-staging revision 3; removed the old one"
    )
    assert conditions(result.status)["Ready"] == ("True", "Succeeded")
    assert result.events == [
        Event("Warning", "ReleaseRepaired", repaired),
        Event("Normal", "UpgradeSucceeded", result.status["message"]),
    ]


def test_a_retry_request_is_recorded_once_it_ran() -> None:
    body, step = release_of(deployment_body(released_status(2), version="1.1", retryRequestId="again"))
    result = summary(body, step, released())
    assert result.status is not None and result.status["lastRetryRequestId"] == "again"


def test_a_requested_rollback_that_succeeded_is_recorded() -> None:
    body, step = release_of(deployment_body(released_status(3), rollback={"revision": 1, "requestId": "r1"}))
    assert step.plan is not None and step.plan.action is Action.ROLLBACK
    outcome = released(4, "1.0", rollback_record={"revision": 1, "requestId": "r1"})
    result = summary(body, step, outcome)
    assert result.status is not None and result.status["phase"] == "RolledBack"
    assert result.status["lastRollback"] == {"revision": 1, "requestId": "r1", "result": "Succeeded"}
    assert result.status["message"] == "rolled back web-staging to revision 1 (now revision 4, version 1.0)"
    assert result.events == [Event("Normal", "RollbackSucceeded", result.status["message"])]


def test_an_automatic_rollback_records_the_failed_version() -> None:
    failure = "version 1.1 (revision 3) failed its health check: Deployment web: CrashLoopBackOff"
    status = released_status(3, appliedVersion="1.1")
    body, step = release_of(
        deployment_body(status, version="1.1"),
        action=Action.ROLLBACK,
        reason="HealthCheckFailed",
        rollback_to=2,
        health_failure=failure,
    )
    assert step.plan is not None and step.plan.desired is not None
    result = summary(body, step, released(4, "1.0"))
    assert result.status is not None and result.status["phase"] == "RolledBack"
    assert result.status["message"] == (
        f"{failure}; rolled back web-staging automatically to revision 2 (now revision 4, version 1.0)"
    )
    assert result.status["unhealthyFingerprint"] == step.plan.desired.fingerprint
    assert result.status["failedVersions"] == [
        {"version": "1.1", "revision": 3, "reason": failure, "failedAt": NOW}
    ]
    assert result.events == [Event("Warning", "AutomaticRollback", result.status["message"])]


def test_a_failed_attempt_retries_after_its_backoff() -> None:
    body, step = upgrade()  # one failure recorded before
    assert step.plan is not None and step.plan.desired is not None
    result = summary(body, step, ReleaseFailed("helm upgrade failed: boom"))
    status = result.status
    assert status is not None
    assert result.wait == backoff_seconds(2) == 10.0
    assert status["phase"] == "Failed" and status["failures"] == 2
    assert status["message"] == "helm upgrade failed: boom (attempt 2; retrying in 10 s)"
    assert status["retryAfter"] == at(10) and status["stalledFingerprint"] is None
    assert status["failedFingerprint"] == step.plan.desired.fingerprint
    assert status["appliedFingerprint"] is None  # what runs no longer matches any inputs
    assert conditions(status)["Stalled"] == ("False", "Retrying")
    assert result.events == [Event("Warning", "UpgradeFailed", "helm upgrade failed: boom")]


def test_the_failures_counted_are_those_before_the_claim() -> None:
    # The claim of a new place was written while the action ran: the status read now is the
    # claim's, the count of failures is the one before it.
    body, step = upgrade()
    before = RecordedStatus.parse(released_status(2, failures=3))
    result = summary(body, step, ReleaseFailed("helm upgrade failed: boom", before=before))
    assert result.status is not None and result.status["failures"] == 4
    assert result.wait == backoff_seconds(4)


def test_inputs_helm_refused_stall_without_a_timer() -> None:
    body, step = upgrade()
    assert step.plan is not None and step.plan.desired is not None
    stalled = FailureClass(FailureKind.INPUT, "TemplateError")
    result = summary(body, step, ReleaseFailed("helm upgrade failed: bad template", stalled=stalled))
    status = result.status
    assert status is not None and result.wait is None
    assert status["message"] == (
        "helm upgrade failed: bad template (not retried: it fails the same way until the inputs "
        f"change, or `{RETRY}`)"
    )
    assert status["stalledFingerprint"] == step.plan.desired.fingerprint and status["retryAfter"] is None
    assert conditions(status)["Stalled"] == ("True", "TemplateError")


def test_a_refused_cluster_is_its_own_reason() -> None:
    body, step = upgrade()
    result = summary(body, step, ReleaseFailed("no grant", reason="ClusterRefused"))
    assert result.status is not None and conditions(result.status)["Ready"] == ("False", "ClusterRefused")
    assert result.events == [Event("Warning", "ClusterRefused", "no grant")]


def test_a_failed_rollback_request_runs_once() -> None:
    body, step = release_of(deployment_body(released_status(3), rollback={"revision": 9}))
    stalled = FailureClass(FailureKind.INPUT, "InvalidObject")
    outcome = ReleaseFailed("helm rollback failed: no 9", stalled=stalled, rollback_record={"revision": 9})
    result = summary(body, step, outcome)
    assert result.status is not None and result.wait is None
    assert result.status["lastRollback"] == {"revision": 9, "result": "Failed"}
    assert result.status["stalledFingerprint"] is None  # a new request may run it again
    assert result.status["message"] == (
        "helm rollback failed: no 9 (rollback requests run once; set a new revision or requestId to retry)"
    )
    assert result.events == [Event("Warning", "RollbackFailed", "helm rollback failed: no 9")]


def test_a_failed_automatic_rollback_leaves_the_health_failure_standing() -> None:
    failure = "version 1.1 (revision 3) failed its health check: Deployment web: CrashLoopBackOff"
    body, step = release_of(
        deployment_body(released_status(3, appliedVersion="1.1", failures=0), version="1.1"),
        action=Action.ROLLBACK,
        rollback_to=2,
        health_failure=failure,
    )
    result = summary(body, step, ReleaseFailed("helm rollback failed: boom"))
    assert result.status is not None and result.status["phase"] == "Failed"
    assert result.status["message"] == (
        f"{failure}; the automatic rollback to revision 2 failed: helm rollback failed: boom; "
        f"change the inputs or run `{RETRY}`"
    )
    assert result.events == [Event("Warning", "HealthCheckFailed", result.status["message"])]
    assert result.wait == backoff_seconds(1)


def test_a_throttled_release_writes_nothing_and_looks_again_soon() -> None:
    body, step = upgrade()
    assert summary(body, step, Done(result="throttled", wait=1.0)) == Summary(wait=1.0)


# ----- health -------------------------------------------------------------------------------------


def in_place(phase: str, **fields: Any) -> dict[str, Any]:
    return deployment_body(released_status(3, phase=phase, observedGeneration=3, **fields))


def test_keep_writes_only_a_new_generation() -> None:
    step = Step(Do.KEEP, plan_of(in_place("Failed")))
    assert summary(in_place("Failed"), step) == Summary()
    moved_on = deployment_body(released_status(3, phase="Failed", observedGeneration=2))
    assert summary(moved_on, step) == Summary({"observedGeneration": 3})


def test_settle_says_deployed_once() -> None:
    verifying = in_place("Verifying")
    result = summary(verifying, Step(Do.SETTLE, plan_of(verifying)))
    assert result.status is not None and result.events == []
    assert (result.status["phase"], result.status["message"]) == (
        "Deployed",
        "the release matches the desired state",
    )
    deployed = in_place("Deployed", message="deployed version 1.0")
    assert summary(deployed, Step(Do.SETTLE, plan_of(deployed))) == Summary()


def test_verify_healthy_settles_and_says_so() -> None:
    body = in_place(
        "Verifying",
        message=f"applied version 1.0 as web-staging revision 3; verifying health until {at(200)}",
        settledPhase="Deployed",
    )
    step = Step(Do.VERIFY, plan_of(body), outcome=Verdict.HEALTHY, result="healthy")
    result = summary(body, step, verdict=health(State.CURRENT))
    assert result.status is not None
    assert result.status["phase"] == "Deployed"
    assert result.status["message"] == (
        "deployed version 1.0 as web-staging revision 3; revision 3 is healthy: 1 object healthy"
    )
    assert result.status["history"][0]["healthy"] is True
    assert result.events == [Event("Normal", "Healthy", result.status["message"])]


def test_verify_progress_writes_only_what_changed() -> None:
    body = in_place("Verifying", message="applied", health={"deadline": at(200)})
    step = Step(Do.VERIFY, plan_of(body), outcome=Verdict.PROGRESS, result="verifying", wait=200.5)
    result = summary(body, step, verdict=health(State.IN_PROGRESS, "1 of 2 ready"))
    assert result.status is not None and result.events == [] and result.wait == 200.5
    assert result.status["health"]["progressing"] == ["Deployment web: 1 of 2 ready"]
    again = in_place("Verifying", message="applied", health=result.status["health"])
    assert summary(again, step, verdict=health(State.IN_PROGRESS, "1 of 2 ready")) == Summary(wait=200.5)


def test_verify_degraded_says_it_once() -> None:
    body = in_place("Deployed")
    step = Step(Do.VERIFY, plan_of(body), outcome=Verdict.DEGRADED, result="degraded")
    result = summary(body, step, verdict=health(State.IN_PROGRESS, "0 of 2 ready"))
    assert result.status is not None and result.status["phase"] == "Degraded"
    assert result.events == [Event("Warning", "Degraded", result.status["message"])]
    said = in_place("Degraded", message=result.status["message"])
    assert summary(said, step, verdict=health(State.IN_PROGRESS, "0 of 2 ready")) == Summary()


def test_a_failed_health_check_is_failed_until_the_inputs_change() -> None:
    body = in_place("Verifying")
    plan = plan_of(body)
    assert plan.desired is not None
    failure = "version 1.0 (revision 3) failed its health check: Deployment web: CrashLoopBackOff"
    step = Step(Do.FAIL_HEALTH, plan, failure=failure, no_rollback="nothing to roll back to", result="failed")
    result = summary(body, step, verdict=health(State.FAILED, "CrashLoopBackOff"))
    assert result.status is not None and result.wait is None
    assert result.status["phase"] == "Failed"
    assert (
        result.status["message"] == f"{failure}; nothing to roll back to; change the inputs or run `{RETRY}`"
    )
    assert result.status["unhealthyFingerprint"] == plan.desired.fingerprint
    assert result.status["history"][0]["healthy"] is False
    assert conditions(result.status)["Stalled"] == ("True", "HealthCheckFailed")
    assert result.events == [Event("Warning", "HealthCheckFailed", result.status["message"])]


def test_track_writes_nothing_and_waits_as_the_outcome_says() -> None:
    body = in_place("Verifying")
    step = Step(Do.TRACK, plan_of(body))
    assert summary(body, step, Tracked(result="verifying", wait=30.0)) == Summary(wait=30.0)
    assert summary(body, step, Tracked()) == Summary()


# ----- drift --------------------------------------------------------------------------------------

CORRECTION_FAILED = [{"type": "Ready", "status": "False", "reason": "DriftCorrectionFailed"}]


def test_drift_off_writes_nothing_unless_a_failed_correction_stands() -> None:
    body = in_place("Deployed")
    assert summary(body, Step(Do.DRIFT_OFF, plan_of(body))) == Summary()
    failed = in_place("Failed", conditions=CORRECTION_FAILED, settledPhase="Deployed")
    result = summary(failed, Step(Do.DRIFT_OFF, plan_of(failed)))
    assert result.status is not None and result.status["phase"] == "Deployed"
    assert result.status["message"] == (
        "drift is no longer checked (mode Off): the failed correction is not tried again"
    )


def check_step(body: dict[str, Any], mode: str = "Warn") -> Step:
    plan = plan_of(body, app=application(drift={"mode": mode, "interval": "5m"}))
    return Step(Do.CHECK_DRIFT, plan, correct=mode == "Correct")


def checked(drifted: bool, correction: dict[str, Any] | None = None) -> DriftChecked:
    objects = [
        {"kind": "ConfigMap", "name": "web-config", "namespace": "apps", "change": "changed", "fields": []}
    ]
    summary_text = "1 changed" if drifted else "no changes"
    return DriftChecked(3, drifted, summary_text, objects if drifted else [], "", correction)


def test_a_check_that_failed_looks_again_as_its_outcome_says() -> None:
    body = in_place("Deployed")
    assert summary(body, check_step(body), Done(wait=60.0)) == Summary(wait=60.0)


def test_drift_found_is_an_event_once_and_the_next_check_is_an_interval_away() -> None:
    body = in_place("Deployed")
    result = summary(body, check_step(body), checked(True))
    assert result.status is not None
    assert result.status["drift"]["drifted"] is True and result.status["drift"]["checkedAt"] == NOW
    assert conditions(result.status)["Drifted"] == ("True", "Drifted")
    assert [(e.type, e.reason) for e in result.events] == [("Warning", "DriftDetected")]
    assert result.wait == 300 + 0.5
    still = in_place("Deployed", drift={"drifted": True, "revision": 3})
    assert summary(still, check_step(still), checked(True)).events == []
    resolved = summary(still, check_step(still), checked(False))
    assert [(e.type, e.reason) for e in resolved.events] == [("Normal", "DriftResolved")]


def test_a_correction_is_news_and_a_failed_one_retries_with_backoff() -> None:
    body = in_place("Deployed")
    good = {"at": NOW, "revision": 3, "objects": 1, "result": "Succeeded", "detail": "ConfigMap web-config"}
    corrected = summary(body, check_step(body, "Correct"), checked(False, good))
    assert corrected.events == [
        Event("Normal", "DriftCorrected", "re-applied 1 objects of revision 3: ConfigMap web-config")
    ]
    bad = {**good, "objects": 0, "result": "Failed", "detail": "ConfigMap web-config: kind not served"}
    failed = summary(body, check_step(body, "Correct"), checked(True, bad))
    assert failed.status is not None and failed.status["phase"] == "Failed"
    assert [(e.type, e.reason) for e in failed.events] == [("Warning", "DriftCorrectionFailed")]
    assert failed.events[0].message == failed.status["message"]
    assert failed.wait == backoff_seconds(1) + 0.5


def test_wait_writes_nothing() -> None:
    body = in_place("Deployed")
    assert summary(body, Step(Do.WAIT, plan_of(body), wait=12.0)) == Summary(wait=12.0)
    assert summary(body, Step(Do.WAIT)) == Summary()


def test_an_unexpected_error_is_stalled_and_retried() -> None:
    result = unexpected_error({"phase": "Deployed"}, 3, "unexpected KeyError: 'x'", 20.0, NOW)
    assert result.wait == 20.0 and result.status is not None
    assert result.status["phase"] == "Deployed"
    assert result.status["message"] == "unexpected KeyError: 'x' (retrying in 20 s)"
    assert conditions(result.status)["Stalled"] == ("True", "UnexpectedError")
