"""The release step (handlers/actions/release.py) against fakes of helm, helm's storage and
the health monitor: slots, the claim, upgrade and rollback, unlock-and-retry, history,
failures, and the old place of a moved release."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest
from alecton.handlers.actions.release import SLOT_BUSY_RETRY, release
from alecton.kube.client import ApiException
from alecton.kube.releases import ReleaseLookupError, owner_labels
from alecton.reconcile.decide import Do, Step
from alecton.reconcile.helm_failure import FailureClass, FailureKind
from alecton.reconcile.outcomes import Claimed, Conflict, Done, Note, Released, ReleaseFailed
from alecton.reconcile.plan import Action, Plan, RecordedStatus, ValuesSources
from alecton.reconcile.redact import WITHHELD
from alecton.reconcile.release import Correction, HistoryEntry
from alecton.reconcile.values import ValuesReference

from tests.unit.fakes import (
    CLUSTER,
    CONTEXT,
    HERE,
    LOCKED_STDERR,
    LONG_AGO,
    NS,
    OLD_CONTEXT,
    OLD_PLACE,
    REF,
    RELEASE,
    RELEASE_NAMESPACE,
    Fakes,
    Progress,
    api_error,
    application,
    deployment_body,
    entry,
    fakes,
    image_for,
    operator_config,
    plan_of,
    released_status,
    request,
    run,
)

OWNER = f"{NS}/{RELEASE}"
INPUT_STDERR = (
    "Error: UPGRADE FAILED: execution error at (webapp/templates/deployment.yaml:5:3): "
    "the password hunter22 is too short\n"
)
TRANSIENT_STDERR = "Error: UPGRADE FAILED: the server is currently unable to handle the request\n"
UNREACHABLE_STDERR = (
    'Error: Kubernetes cluster unreachable: Get "https://10.0.0.1:6443/version": '
    "dial tcp 10.0.0.1:6443: connect: connection refused\n"
)


def release_step(body: dict[str, Any], plan: Plan | None = None) -> Step:
    plan = plan or plan_of(body)
    return Step(Do.RELEASE, plan, result=plan.action.value.lower())


def act(
    f: Fakes, body: dict[str, Any], plan: Plan | None = None, progress: Progress | None = None
) -> tuple[Any, Progress]:
    progress = progress or Progress(f.helm, f.slots)
    req = request(body, release_step(body, plan))
    outcome = run(release(f.ctx, req, progress, image_for, progress.prepare))
    return outcome, progress


def upgrade_at_revision_2() -> dict[str, Any]:
    """Version 1.1 asked of a Deployment whose release (revision 2, version 1.0) is here."""
    history = [entry(2, "deployed"), entry(1, version="0.9")]
    return deployment_body(released_status(2, HERE, history), version="1.1")


# ----- a free slot --------------------------------------------------------------------------------


def test_an_upgrade_runs_helm_as_this_deployment_and_extends_the_recorded_history() -> None:
    f = fakes()
    f.storage.put(OWNER)
    f.helm.revision = 3
    body = upgrade_at_revision_2()
    plan = plan_of(body)
    assert plan.action is Action.UPGRADE and plan.desired is not None

    outcome, progress = act(f, body, plan)

    assert isinstance(outcome, Released)
    # helm ran once, at the planned place, as the owner: description and labels say who.
    assert f.helm.calls == [("upgrade", RELEASE, RELEASE_NAMESPACE, CONTEXT)]
    upgrade = f.helm.upgrades[0]
    assert upgrade["description"] == f"alecton: deployed version 1.1 for {OWNER}"
    assert upgrade["labels"] == owner_labels(NS, RELEASE)
    assert upgrade["chart"] == plan.desired.chart and upgrade["values"] == plan.desired.values
    assert upgrade["values"]["image"] == "registry.example/web:1.1"
    # The history is helm's answer on top of what status recorded, without `helm history`.
    assert [(e.revision, e.status, e.version) for e in outcome.history] == [
        (3, "deployed", "1.1"),
        (2, "superseded", "1.0"),
        (1, "superseded", "0.9"),
    ]
    assert outcome.history[0].cause == "deploy"
    assert outcome.history[0].updated == f.helm.deployed_at
    assert outcome.location == HERE
    assert outcome.image == image_for("1.1")
    assert (outcome.repaired, outcome.after, outcome.rollback_record, outcome.notes) == ("", "", None, ())
    assert outcome.before == RecordedStatus.parse(body["status"])  # the status before the claim
    # The claim was checked in helm's storage at that place, and written (while helm ran).
    assert f.storage.lookups == [(CONTEXT, RELEASE_NAMESPACE, RELEASE)]
    assert [outcome for outcome, _ in progress.seen] == [Claimed(HERE, new_place=False, moved_from=None)]
    # Health checks are on by default: the new revision is followed, the share is given back.
    assert f.monitor.following[REF].revision == 3
    assert outcome.verify_until is not None
    assert f.slots.tracked == 0


def test_a_gap_in_the_recorded_history_costs_one_helm_history() -> None:
    f = fakes()
    f.helm.revision = 5  # revisions 3 and 4 were made by someone else
    f.helm.histories = [[entry(5, "deployed", "1.1"), entry(4), entry(3), entry(2)]]
    recorded = [entry(2, "deployed", healthy=True), entry(1, version="0.9")]
    outcome, _ = act(f, deployment_body(released_status(2, HERE, recorded), version="1.1"))
    assert isinstance(outcome, Released)
    assert f.helm.actions() == ["upgrade", "history"]
    assert [e.revision for e in outcome.history] == [5, 4, 3, 2]
    assert outcome.history[3].healthy is True  # what helm does not know is carried over


def test_a_busy_slot_is_throttled_and_runs_no_helm() -> None:
    f = fakes(per_namespace=1)
    assert f.slots.try_acquire(NS, CLUSTER.ref) is None  # another worker holds the share
    outcome, progress = act(f, upgrade_at_revision_2())
    assert outcome == Done(result="throttled", wait=1.0) and SLOT_BUSY_RETRY == 1.0
    assert f.helm.calls == [] and f.storage.lookups == [] and progress.seen == []
    assert f.slots.in_flight(NS) == 1  # the other worker's share is left alone


def test_prepare_runs_once_the_share_is_taken_and_before_anything_else() -> None:
    f = fakes()
    outcome, progress = act(f, upgrade_at_revision_2())
    assert isinstance(outcome, Released)
    assert progress.prepared == [([], 1)]  # the share held, no helm yet
    assert f.slots.tracked == 0


def test_a_throttled_release_does_not_prepare() -> None:
    f = fakes(per_namespace=1)
    f.slots.try_acquire(NS, CLUSTER.ref)
    outcome, progress = act(f, upgrade_at_revision_2())
    assert outcome == Done(result="throttled", wait=1.0) and progress.prepared == []


def test_a_prepare_that_fails_gives_the_share_back_and_runs_no_helm() -> None:
    f = fakes()
    progress = Progress(f.helm, f.slots, prepare_error=api_error(409, "Conflict"))
    with pytest.raises(ApiException):
        act(f, upgrade_at_revision_2(), progress=progress)
    assert f.helm.calls == [] and f.storage.lookups == [] and progress.seen == []
    assert f.slots.tracked == 0


@pytest.mark.parametrize(
    ("owner", "words"),
    [
        (f"{NS}/other", f"belongs to alecton Deployment {NS}/other"),
        (None, "already exists and was not made by alecton"),
    ],
)
def test_a_release_of_another_owner_is_a_conflict_and_runs_no_helm(owner: str | None, words: str) -> None:
    f = fakes()
    f.storage.put(owner)
    outcome, progress = act(f, upgrade_at_revision_2())
    assert isinstance(outcome, Conflict) and words in outcome.message
    assert f.helm.calls == [] and progress.seen == [] and f.monitor.track_calls == []
    assert f.slots.tracked == 0


def test_a_release_not_made_by_alecton_is_adopted_when_asked_and_allowed() -> None:
    body = upgrade_at_revision_2()
    body["metadata"]["annotations"] = {"alecton.dev/adopt": "true"}
    refused, allowed = fakes(), fakes(config=operator_config(allow_adopt=True))
    for f in (refused, allowed):
        f.storage.put(None)
    assert isinstance(act(refused, body)[0], Conflict)
    assert isinstance(act(allowed, body)[0], Released)
    assert allowed.helm.actions() == ["upgrade"]


def test_a_cluster_without_a_grant_is_refused_before_helm() -> None:
    f = fakes(config=operator_config(grants=()))
    outcome, _ = act(f, upgrade_at_revision_2())
    assert isinstance(outcome, ReleaseFailed)
    assert outcome.reason == "ClusterRefused" and "an administrator can add --allow-context" in outcome.error
    assert outcome.stalled is None
    assert f.helm.calls == [] and f.slots.tracked == 0


# ----- a locked release ---------------------------------------------------------------------------


def test_a_locked_release_is_rolled_back_to_its_last_good_revision_and_the_upgrade_retried() -> None:
    f = fakes()
    f.helm.fail("upgrade", LOCKED_STDERR)
    f.helm.revision = 5
    stuck = [
        entry(3, "pending-upgrade", "1.1", updated=LONG_AGO),
        entry(2, "deployed"),
        entry(1, version="0.9"),
    ]
    after = [
        entry(5, "deployed", "1.1"),
        entry(4, description="Rollback to 2"),
        entry(3, "failed", "1.1"),
        entry(2),
        entry(1, version="0.9"),
    ]
    f.helm.histories = [stuck, after]
    history = [entry(2, "deployed", healthy=True), entry(1, version="0.9")]
    body = deployment_body(released_status(2, HERE, history), version="1.1")

    outcome, _ = act(f, body)

    assert isinstance(outcome, Released)
    assert f.helm.calls == [
        ("upgrade", RELEASE, RELEASE_NAMESPACE, CONTEXT),
        ("history", RELEASE, RELEASE_NAMESPACE, CONTEXT),
        ("rollback", RELEASE, RELEASE_NAMESPACE, CONTEXT, 2),
        ("upgrade", RELEASE, RELEASE_NAMESPACE, CONTEXT),
        ("history", RELEASE, RELEASE_NAMESPACE, CONTEXT),
    ]
    repaired = "release was stuck in pending-upgrade: rolled back to revision 2"
    assert outcome.repaired == repaired
    assert outcome.notes == (Note("ReleaseRepaired", repaired, warning=True),)
    # After a repair the history is helm's, with what status knew carried over.
    assert [e.revision for e in outcome.history] == [5, 4, 3, 2, 1]
    assert outcome.history[3].healthy is True
    assert outcome.history[0].cause == "deploy"


def test_a_locked_release_without_a_good_revision_is_uninstalled_and_installed_again() -> None:
    f = fakes()
    f.helm.fail("upgrade", LOCKED_STDERR)
    f.helm.histories = [[entry(1, "pending-install", updated=LONG_AGO)], [entry(1, "deployed")]]
    outcome, _ = act(f, deployment_body())
    assert isinstance(outcome, Released)
    assert f.helm.actions() == ["upgrade", "history", "uninstall", "upgrade", "history"]
    assert outcome.repaired == "release was stuck in pending-install with no good revision: uninstalled it"


def test_a_release_locked_again_is_retried_only_once() -> None:
    f = fakes()
    f.helm.fail("upgrade", LOCKED_STDERR, times=2)
    f.helm.histories = [[entry(3, "pending-upgrade", updated=LONG_AGO), entry(2, "deployed")]]
    outcome, _ = act(f, upgrade_at_revision_2())
    assert isinstance(outcome, ReleaseFailed)
    assert f.helm.actions() == ["upgrade", "history", "rollback", "upgrade"]
    assert "another operation (install/upgrade/rollback) is in progress" in outcome.error
    assert outcome.stalled is None  # a lock passes: retried with backoff
    # The repair happened all the same, and is told.
    repaired = "release was stuck in pending-upgrade: rolled back to revision 2"
    assert outcome.notes == (Note("ReleaseRepaired", repaired, warning=True),)
    assert f.slots.tracked == 0


def test_a_lock_that_may_belong_to_a_running_helm_is_not_touched() -> None:
    f = fakes()
    f.helm.fail("upgrade", LOCKED_STDERR)
    young = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    f.helm.histories = [[entry(3, "pending-upgrade", updated=young), entry(2, "deployed")]]
    outcome, _ = act(f, upgrade_at_revision_2())
    assert isinstance(outcome, ReleaseFailed)
    assert f.helm.actions() == ["upgrade", "history"]
    assert "revision 3 is pending-upgrade and may still be running" in outcome.error


def test_a_locked_error_without_a_pending_revision_is_reported_as_it_is() -> None:
    f = fakes()
    f.helm.fail("upgrade", LOCKED_STDERR)
    f.helm.histories = [[entry(2, "deployed")]]
    outcome, _ = act(f, upgrade_at_revision_2())
    assert isinstance(outcome, ReleaseFailed)
    assert f.helm.actions() == ["upgrade", "history"]
    assert outcome.error.startswith("helm upgrade failed: UPGRADE FAILED: another operation")


# ----- failures -----------------------------------------------------------------------------------


def with_secret_values(body: dict[str, Any]) -> Plan:
    """The plan of `body` with values from a Secret holding `hunter22`."""
    sources = ValuesSources(application=[(ValuesReference("Secret", "db"), "password: hunter22\n")])
    plan = plan_of(body, sources=sources)
    assert plan.desired is not None and plan.desired.values["password"] == "hunter22"
    return plan


def test_inputs_helm_refuses_fail_redacted_and_stalled() -> None:
    f = fakes()
    f.helm.fail("upgrade", INPUT_STDERR)
    body = upgrade_at_revision_2()
    outcome, _ = act(f, body, with_secret_values(body))
    assert outcome == ReleaseFailed(
        "helm upgrade failed: UPGRADE FAILED: execution error at "
        f"(webapp/templates/deployment.yaml:5:3): {WITHHELD}",  # the chart's words (R28-2)
        reason="",
        stalled=FailureClass(FailureKind.INPUT, "TemplateError"),
        before=RecordedStatus.parse(body["status"]),
    )
    assert f.helm.actions() == ["upgrade"]  # not a lock: nothing to repair, no retry
    assert f.monitor.track_calls == [] and f.slots.tracked == 0


def test_a_transient_failure_is_not_stalled_and_the_cluster_stays_reachable() -> None:
    f = fakes()
    f.helm.fail("upgrade", TRANSIENT_STDERR)
    outcome, _ = act(f, upgrade_at_revision_2())
    assert isinstance(outcome, ReleaseFailed)
    assert (
        outcome.error
        == "helm upgrade failed: UPGRADE FAILED: the server is currently unable to handle the request"
    )
    assert outcome.stalled is None and outcome.reason == ""
    assert f.helm.actions() == ["upgrade"]
    assert f.slots.unreachable == set()


def test_an_unreachable_cluster_is_marked_until_a_release_there_succeeds() -> None:
    f = fakes()
    f.helm.fail("upgrade", UNREACHABLE_STDERR)
    failed, _ = act(f, upgrade_at_revision_2())
    assert isinstance(failed, ReleaseFailed) and failed.stalled is None
    assert f.slots.unreachable == {CLUSTER.ref}
    succeeded, _ = act(f, upgrade_at_revision_2())
    assert isinstance(succeeded, Released)
    assert f.slots.unreachable == set()


def test_an_unreadable_storage_is_a_failure_without_helm() -> None:
    f = fakes()
    f.storage.error = ReleaseLookupError("cannot reach the cluster to check who owns release 'web-staging'")
    outcome, progress = act(f, upgrade_at_revision_2())
    assert isinstance(outcome, ReleaseFailed) and outcome.error.startswith("cannot reach the cluster")
    assert f.helm.calls == [] and progress.seen == []
    assert f.slots.unreachable == {CLUSTER.ref}


# ----- rollback -----------------------------------------------------------------------------------


def test_a_requested_rollback_runs_helm_rollback_to_that_revision() -> None:
    f = fakes()
    f.helm.histories = [
        [entry(4, "deployed", "0.9", description="Rollback to 1"), entry(3), entry(2), entry(1)]
    ]
    history = [entry(3, "deployed"), entry(2), entry(1, version="0.9")]
    body = deployment_body(released_status(3, HERE, history), rollback={"revision": 1, "requestId": "r1"})
    plan = plan_of(body)
    assert plan.action is Action.ROLLBACK

    outcome, _ = act(f, body, plan)

    assert isinstance(outcome, Released)
    assert f.helm.calls == [
        ("rollback", RELEASE, RELEASE_NAMESPACE, CONTEXT, 1),
        ("history", RELEASE, RELEASE_NAMESPACE, CONTEXT),
    ]
    assert outcome.rollback_record == {"revision": 1, "requestId": "r1"}
    assert outcome.history[0].revision == 4 and outcome.history[0].cause == "rollback"
    assert outcome.image == image_for("0.9")


def test_an_automatic_rollback_goes_to_the_planned_revision_and_marks_the_failed_one() -> None:
    f = fakes()
    f.helm.histories = [
        [entry(4, "deployed", description="Rollback to 2"), entry(3, version="1.1"), entry(2), entry(1)]
    ]
    history = [entry(3, "deployed", "1.1"), entry(2, healthy=True), entry(1)]
    body = deployment_body(released_status(3, HERE, history), version="1.1")
    failure = "version 1.1 (revision 3) failed its health check: Deployment web: CrashLoopBackOff"
    plan = replace(
        plan_of(body),
        action=Action.ROLLBACK,
        reason="HealthCheckFailed",
        rollback_to=2,
        health_failure=failure,
    )

    outcome, _ = act(f, body, plan)

    assert isinstance(outcome, Released)
    assert f.helm.actions() == ["rollback", "history"]
    assert f.helm.calls[0][-1] == 2
    assert outcome.rollback_record is None  # no spec.rollback asked for it
    by_revision = {e.revision: e for e in outcome.history}
    assert by_revision[3].healthy is False
    assert by_revision[2].healthy is True
    assert by_revision[4].cause == "automatic-rollback"


def test_a_failed_rollback_request_reports_its_record() -> None:
    f = fakes()
    f.helm.fail("rollback", "Error: release has no 9 version\n")
    body = deployment_body(released_status(3), rollback={"revision": 9})
    outcome, _ = act(f, body)
    assert isinstance(outcome, ReleaseFailed)
    assert outcome.rollback_record == {"revision": 9, "requestId": ""}
    assert outcome.error == "helm rollback failed: release has no 9 version"


# ----- a new place, and a move --------------------------------------------------------------------


def test_the_claim_of_a_new_place_is_written_before_helm_runs() -> None:
    f = fakes()
    outcome, progress = act(f, deployment_body())
    assert isinstance(outcome, Released)
    assert progress.seen == [(Claimed(HERE, new_place=True, moved_from=None), [])]
    assert [(e.revision, e.version) for e in outcome.history] == [(1, "1.0")]


def test_a_move_removes_the_old_place_when_storage_names_this_deployment() -> None:
    f = fakes()
    f.storage.put(OWNER, context=OLD_CONTEXT)
    body = deployment_body(released_status(4, OLD_PLACE))

    outcome, progress = act(f, body)

    assert isinstance(outcome, Released)
    assert progress.seen == [(Claimed(HERE, new_place=True, moved_from=OLD_PLACE), [])]
    assert f.helm.calls == [
        ("upgrade", RELEASE, RELEASE_NAMESPACE, CONTEXT),
        ("uninstall", RELEASE, RELEASE_NAMESPACE, OLD_CONTEXT),
    ]
    assert outcome.after == f"removed the release from namespace {RELEASE_NAMESPACE}"
    assert outcome.notes == (Note("ReleaseMoved", outcome.after),)
    # The history of the old place is not the new place's.
    assert [e.revision for e in outcome.history] == [1]


OLD_IMAGE = "registry.example/web:0.9@sha256:" + "0" * 64


def old_place_record(revision: int) -> list[HistoryEntry]:
    """What status recorded of the old place: every revision healthy, run from a pinned image,
    made by a deploy and corrected once."""
    fixed = Correction("2026-01-01T00:00:00Z", 1, "Succeeded")
    return [
        replace(
            entry(r, "deployed" if r == revision else "superseded", "0.9", healthy=True),
            image=OLD_IMAGE,
            cause="deploy",
            corrections=(fixed,),
        )
        for r in range(revision, 0, -1)
    ]


def not_carried(history: list[HistoryEntry], newest_image: str) -> None:
    """The new place's revisions carry nothing of the old place's record (R27B-3)."""
    newest, *older = history
    assert newest.image == newest_image and newest.healthy is None and newest.corrections == ()
    for old in older:
        assert (old.image, old.healthy, old.cause, old.corrections) == ("", None, "", ()), old


def test_a_move_to_a_place_with_revisions_carries_none_of_the_old_places_record() -> None:
    """R27B-3: helm's history at the new place is merged by revision number with what status
    recorded; the old place's revisions 1..3 are not the new place's (another release)."""
    f = fakes()
    f.storage.put(OWNER)  # this Deployment's earlier release here (moved back to a place it left)
    f.storage.put(OWNER, context=OLD_CONTEXT)
    f.helm.revision = 3
    f.helm.histories = [[entry(3, "deployed", "1.1"), entry(2, version="0.8"), entry(1, version="0.7")]]
    body = deployment_body(released_status(3, OLD_PLACE, old_place_record(3)), version="1.1")

    outcome, _ = act(f, body)

    assert isinstance(outcome, Released) and outcome.location == HERE
    assert f.helm.actions() == ["upgrade", "history", "uninstall"]
    assert [e.revision for e in outcome.history] == [3, 2, 1]
    not_carried(outcome.history, "registry.example/web:1.1")


def test_a_retried_move_after_a_failed_first_install_carries_none_of_the_old_places_record() -> None:
    """R27B-3: the claim of the new place is in status (revision cleared) while status.history
    is still the old place's; the retry's revision 2 must not be put on top of it."""
    f = fakes()
    f.helm.revision = 2  # revision 1 here failed
    f.helm.histories = [[entry(2, "deployed", "1.1"), entry(1, "failed", "1.1")]]
    status = released_status(1, OLD_PLACE, old_place_record(1), movedFrom=OLD_PLACE.as_status())
    status["release"] = {**HERE.as_status(), "revision": None, "status": None, "version": None}
    body = deployment_body(status, version="1.1")

    outcome, _ = act(f, body)

    assert isinstance(outcome, Released)
    assert f.helm.actions()[:2] == ["upgrade", "history"]
    assert [(e.revision, e.status) for e in outcome.history] == [(2, "deployed"), (1, "failed")]
    not_carried(outcome.history, "registry.example/web:1.1")


def test_an_automatic_rollback_at_another_place_marks_none_of_its_revisions_unhealthy() -> None:
    """The failed revision is the old place's: its number at the new place is another revision."""
    f = fakes()
    f.storage.put(OWNER)
    f.helm.histories = [
        [entry(4, "deployed", description="Rollback to 2"), entry(3, version="1.1"), entry(2), entry(1)]
    ]
    body = deployment_body(released_status(3, OLD_PLACE, old_place_record(3)), version="1.1")
    failure = "version 1.1 (revision 3) failed its health check: Deployment web: CrashLoopBackOff"
    plan = replace(plan_of(body), action=Action.ROLLBACK, rollback_to=2, health_failure=failure)

    outcome, _ = act(f, body, plan)

    assert isinstance(outcome, Released)
    assert [(e.revision, e.healthy) for e in outcome.history] == [(4, None), (3, None), (2, None), (1, None)]


def test_a_move_leaves_an_old_place_that_storage_gives_another_owner() -> None:
    f = fakes()
    f.storage.put(f"{NS}/other", context=OLD_CONTEXT)
    outcome, _ = act(f, deployment_body(released_status(4, OLD_PLACE)))
    assert isinstance(outcome, Released)
    assert f.helm.actions() == ["upgrade"]
    assert outcome.after.startswith(f"left {OLD_PLACE.describe()}: ")
    assert f"belongs to alecton Deployment {NS}/other" in outcome.after
    assert outcome.notes == (Note("ReleaseMoved", outcome.after),)


def test_a_move_whose_old_place_cannot_be_removed_says_how_to_remove_it() -> None:
    f = fakes()
    f.storage.put(OWNER, context=OLD_CONTEXT)
    f.helm.fail("uninstall", "Error: uninstall: Kubernetes cluster unreachable\n")
    outcome, _ = act(f, deployment_body(released_status(4, OLD_PLACE)))
    assert isinstance(outcome, Released)  # the release runs at its new place
    assert f"remove it by hand (helm uninstall {RELEASE} -n {RELEASE_NAMESPACE})" in outcome.after
    assert outcome.notes == (Note("ReleaseMoved", outcome.after, warning=True),)


def test_a_move_with_deletion_policy_orphan_leaves_the_old_release_running() -> None:
    f = fakes()
    f.storage.put(OWNER, context=OLD_CONTEXT)
    outcome, _ = act(f, deployment_body(released_status(4, OLD_PLACE), deletionPolicy="Orphan"))
    assert isinstance(outcome, Released)
    assert f.helm.actions() == ["upgrade"]
    assert "deletionPolicy Orphan" in outcome.after


def test_health_checks_off_untrack_instead_of_following() -> None:
    f = fakes()
    body = upgrade_at_revision_2()
    outcome, _ = act(f, body, plan_of(body, app=application(health="None")))
    assert isinstance(outcome, Released) and outcome.verify_until is None
    assert f.monitor.track_calls == [] and f.monitor.untracked == [REF]


# ----- known bugs -----------------------------------------------------------------------------------


def test_an_automatic_rollback_does_not_answer_a_superseded_rollback_request() -> None:
    # spec.rollback (revision 1) came in the same update as version 1.1, which superseded it;
    # then 1.1 (revision 3) failed its health check and onFailure: Rollback went to revision 2.
    f = fakes()
    f.helm.histories = [
        [entry(4, "deployed", description="Rollback to 2"), entry(3, version="1.1"), entry(2)]
    ]
    superseded = {"revision": 1, "requestId": "r1", "result": "Superseded"}
    history = [entry(3, "deployed", "1.1"), entry(2, healthy=True)]
    status = released_status(3, HERE, history, appliedVersion="1.1", lastRollback=superseded)
    body = deployment_body(status, version="1.1", rollback={"revision": 1, "requestId": "r1"})
    failure = "version 1.1 (revision 3) failed its health check: Deployment web: CrashLoopBackOff"
    plan = replace(
        plan_of(body),
        action=Action.ROLLBACK,
        reason="HealthCheckFailed",
        rollback_to=2,
        health_failure=failure,
    )
    outcome, _ = act(f, body, plan)
    assert isinstance(outcome, Released) and f.helm.calls[0][-1] == 2
    # Nothing was asked of spec.rollback here: its record must not be touched (it is; the
    # summary then writes lastRollback {revision 1, result Succeeded}, and the plan holds
    # later changes of the values "by spec.rollback (to revision 1)").
    assert outcome.rollback_record is None
