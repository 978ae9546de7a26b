"""Rollbacks under spec.verify (reconcile/rollback_policy.py): a rollback restores an older
revision's image, so under an active policy it restores only a revision whose image, as
status.history recorded it, is pinned to a digest that passes the policy now. A requested
rollback to any other revision is refused (RollbackRefused, naming the revision, the image and
the fix); an automatic rollback after a failed health check is not made, and the status says
why. The history records each revision's image (a rollback's revision: its source's). Under
spec.verify.chart the same holds for the chart: each revision records the oci:// chart
reference pinned to the digest helm pulled, and a rollback restores only a revision whose
recorded chart digest passes the policy now (red team R27B-1)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from alecton.api.models import Application, Deployment, Image
from alecton.api.objects import ObjectKey
from alecton.reconcile.chart import ChartSource
from alecton.reconcile.chart_signature import ChartVerdict
from alecton.reconcile.decide import Do, HealthSeen, Observed, decide, rollback_candidates
from alecton.reconcile.health import ObjectHealth, ReleaseHealth, State, release_health
from alecton.reconcile.history import carry_recorded, history_from_status, mark_given, pinned_chart_reference
from alecton.reconcile.plan import Action, Plan, RecordedStatus, Resolved, ValuesSources, plan_release
from alecton.reconcile.release import HistoryEntry
from alecton.reconcile.rollback_policy import ROLLBACK_REFUSED, rollback_refusal
from alecton.reconcile.signatures import Verdict
from alecton.reconcile.status import release_status
from alecton.service.outcomes import rollback_outcome
from alecton.web import views

from tests.unit.fakes import (
    CHARTS,
    CLUSTER,
    HERE,
    LONG_AGO,
    NS,
    OLD_PLACE,
    RELEASE_NAMESPACE,
    application,
    deployment_body,
    entry,
    released_status,
)

REPO = "registry.example/web"
SIGNED = "sha256:" + "a" * 64
OLD = "sha256:" + "b" * 64
POLICY = {"provider": "cosign", "secretRef": {"name": "cosign"}}
VERIFYING = application(verify=POLICY)
ROLLS_BACK = application(verify=POLICY, onFailure="Rollback")
SIGNED_BY_US = Verdict(True, f"image {REPO}@{SIGNED} is signed by key cosign.pub")
UNSIGNED = Verdict(False, f"image {REPO}@{OLD} has no cosign signature (no simple-signing layer at tag x)")


def recorded(
    revision: int, version: str, image: str, status: str = "superseded", **fields: Any
) -> HistoryEntry:
    return replace(entry(revision, status, version, **fields), image=image)


# Revision 1: version 1.0 by tag, before spec.verify; 2: 2.0 by a digest a removed key signed;
# 3: 3.0, signed and verified, running now.
HISTORY = [
    recorded(3, "3.0", f"{REPO}:3.0@{SIGNED}", "deployed", healthy=True),
    recorded(2, "2.0", f"{REPO}:2.0@{OLD}", healthy=True),
    recorded(1, "1.0", f"{REPO}:1.0", healthy=True),
]


def resolved(app: Application, version: str = "3.0") -> Resolved:
    target = app.target("staging")
    assert target is not None
    image = Image.parse(
        {
            "metadata": {"namespace": NS, "name": f"web-{version}", "creationTimestamp": LONG_AGO},
            "spec": {"name": "web", "version": version, "image": f"{REPO}:{version}", "digest": SIGNED},
        }
    )
    return Resolved(app, target, CLUSTER, image)


def body(history: list[HistoryEntry] = HISTORY, **spec: Any) -> dict[str, Any]:
    status = released_status(3, history=history, appliedVersion="3.0")
    return deployment_body(status, version="3.0", **spec)


def plan(
    doc: dict[str, Any], app: Application = VERIFYING, verdicts: dict[int, Verdict] | None = None
) -> Plan:
    deployment = Deployment.parse(doc)
    sources = ValuesSources(
        verify_secret={"cosign.pub": b"k"}, image_verdict=SIGNED_BY_US, rollback_verdicts=verdicts or {}
    )
    status = RecordedStatus.parse(doc["status"])
    return plan_release(deployment, status, resolved(app), deployment.ref, CHARTS, sources)


def test_only_a_revision_whose_recorded_image_passes_the_policy_now_may_be_restored() -> None:
    verdicts = {3: SIGNED_BY_US, 2: UNSIGNED}
    assert rollback_refusal(VERIFYING, 3, HISTORY[0], verdicts) == ""
    assert rollback_refusal(application(), 1, HISTORY[2], {}) == ""  # no policy, nothing to check
    assert rollback_refusal(VERIFYING, 2, HISTORY[1], verdicts) == (
        f"revision 2 (version 2.0) runs {REPO}:2.0@{OLD}: {UNSIGNED.message}"
    )
    assert rollback_refusal(VERIFYING, 1, HISTORY[2], verdicts) == (
        f"revision 1 (version 1.0) runs {REPO}:1.0, a tag not pinned to a digest: what the tag "
        "names now cannot be checked against a signature"
    )
    assert "whose signature was not checked" in rollback_refusal(VERIFYING, 2, HISTORY[1], {})
    unrecorded = entry(1, version="1.0")  # made before images were recorded per revision
    assert "records no image" in rollback_refusal(VERIFYING, 1, unrecorded, verdicts)
    assert "is not in the release history the operator records" in rollback_refusal(VERIFYING, 9, None, {})


def test_a_requested_rollback_to_an_unverified_revision_is_refused_naming_revision_image_and_fix() -> None:
    refused = plan(body(rollback={"revision": 1, "requestId": "r1"}), verdicts={})
    assert (refused.action, refused.reason) == (Action.REFUSED, ROLLBACK_REFUSED)
    assert refused.message == (
        "rollback to revision 1 refused: spec.verify lets a rollback restore only an image that "
        f"passes it now, and revision 1 (version 1.0) runs {REPO}:1.0, a tag not pinned to a digest: "
        "what the tag names now cannot be checked against a signature; the release stays at revision 3. "
        f"Deploy a verified version instead (`alecton deploy web staging VERSION -n {NS}`, which checks "
        "and pins its digest), or remove spec.rollback"
    )
    # A digest a key since removed from the Secret signed: the verdict's words.
    refused = plan(body(rollback={"revision": 2, "requestId": "r2"}), verdicts={2: UNSIGNED})
    assert refused.reason == ROLLBACK_REFUSED and "has no cosign signature" in refused.message
    step = decide(Observed(Deployment.parse(body()), {}, 0.0, plan=refused))
    assert step.do is Do.REPORT and step.final  # no helm


def test_a_requested_rollback_to_a_verified_revision_goes_ahead_and_without_a_policy_as_before() -> None:
    history = [
        recorded(3, "3.0", f"{REPO}:3.0@{OLD}", "deployed"),
        recorded(2, "2.0", f"{REPO}:2.0@{SIGNED}"),
    ]
    allowed = plan(body(history, rollback={"revision": 2, "requestId": "r"}), verdicts={2: SIGNED_BY_US})
    assert allowed.action is Action.ROLLBACK
    unchecked = plan(body(rollback={"revision": 1, "requestId": "r"}), app=application())
    assert unchecked.action is Action.ROLLBACK


def test_a_requested_rollback_after_a_move_trusts_no_image_the_old_place_recorded() -> None:
    """R27B-3: status.history is the record of the release at status.release. After the target
    moved (or while the new place is only claimed), revision 2 there is another release's: its
    verified image never ran at the new place, so the rollback is refused under spec.verify."""
    history = [
        recorded(3, "3.0", f"{REPO}:3.0@{OLD}", "deployed"),
        recorded(2, "2.0", f"{REPO}:2.0@{SIGNED}"),
    ]
    moved = body(history, rollback={"revision": 2, "requestId": "r"})
    moved["status"]["release"].update(OLD_PLACE.as_status())
    refused = plan(moved, verdicts={2: SIGNED_BY_US})
    assert (refused.action, refused.reason) == (Action.REFUSED, ROLLBACK_REFUSED)
    assert "revision 2 is not in the release history the operator records" in refused.message
    claimed = body(history, rollback={"revision": 2, "requestId": "r"})
    claimed["status"]["release"]["revision"] = None  # the new place claimed, nothing released there yet
    assert plan(claimed, verdicts={2: SIGNED_BY_US}).reason == ROLLBACK_REFUSED
    # At the place the history records, the same request goes ahead.
    here = body(history, rollback={"revision": 2, "requestId": "r"})
    assert plan(here, verdicts={2: SIGNED_BY_US}).action is Action.ROLLBACK


def test_status_history_is_the_record_of_the_place_status_release_names_once_released_there() -> None:
    history = [recorded(2, "2.0", f"{REPO}:2.0@{SIGNED}", "deployed"), recorded(1, "1.0", f"{REPO}:1.0")]
    status = RecordedStatus.parse(released_status(2, HERE, history))
    assert status.history_at(HERE) == tuple(history)
    assert status.history_at(OLD_PLACE) == ()
    assert status.history_at(replace(HERE, identity="")) == tuple(history)  # identity not known yet
    assert status.history_at(replace(HERE, identity="server:https://elsewhere")) == ()
    claimed = released_status(2, HERE, history)
    claimed["release"]["revision"] = None
    assert RecordedStatus.parse(claimed).history_at(HERE) == ()


WEB = ObjectKey("apps/v1", "Deployment", RELEASE_NAMESPACE, "web")


def failed_check(history: list[HistoryEntry], verdicts: dict[int, Verdict]) -> Observed:
    doc = deployment_body(
        released_status(
            3, history=history, appliedVersion="3.0", phase="Verifying", health={"deadline": LONG_AGO}
        ),
        version="3.0",
    )
    in_place = plan(doc, ROLLS_BACK, verdicts)
    fingerprint = in_place.desired.fingerprint if in_place.desired else ""
    doc["status"]["appliedFingerprint"] = fingerprint
    in_place = plan(doc, ROLLS_BACK, verdicts)
    assert in_place.action is Action.NOTHING
    verdict: ReleaseHealth = release_health([ObjectHealth(WEB, State.FAILED, "CrashLoopBackOff")])
    return Observed(
        Deployment.parse(doc), doc["status"], 0.0, 3, plan=in_place, health=HealthSeen(True, verdict)
    )


def test_an_automatic_rollback_to_an_unverified_revision_is_not_made_and_the_status_says_why() -> None:
    failing = [recorded(3, "3.0", f"{REPO}:3.0@{SIGNED}", "deployed"), *HISTORY[1:]]
    step = decide(failed_check(failing, {2: UNSIGNED}))
    assert step.do is Do.FAIL_HEALTH
    assert step.no_rollback == (
        f"the automatic rollback to revision 2 is refused: revision 2 (version 2.0) runs {REPO}:2.0@{OLD}: "
        f"{UNSIGNED.message}"
    )
    rolled = decide(failed_check(failing, {2: SIGNED_BY_US}))
    assert (rolled.do, rolled.plan and rolled.plan.rollback_to) == (Do.RELEASE, 2)


def test_the_revisions_whose_images_are_checked_are_the_requested_one_and_the_automatic_target() -> None:
    requested = body(rollback={"revision": 1, "requestId": "r"})
    assert [
        e.revision
        for e in rollback_candidates(Deployment.parse(requested), requested["status"], resolved(VERIFYING))
    ] == [1]
    answered = body(rollback={"revision": 1, "requestId": "r"})
    answered["status"]["lastRollback"] = {"revision": 1, "requestId": "r", "result": "Succeeded"}
    assert rollback_candidates(Deployment.parse(answered), answered["status"], resolved(VERIFYING)) == []
    verifying = body()
    verifying["status"]["phase"] = "Verifying"
    assert [
        e.revision
        for e in rollback_candidates(Deployment.parse(verifying), verifying["status"], resolved(ROLLS_BACK))
    ] == [2]
    assert rollback_candidates(Deployment.parse(verifying), verifying["status"], resolved(VERIFYING)) == []


def test_the_history_records_each_revisions_image_and_a_rollback_runs_its_sources() -> None:
    before = [recorded(2, "2.0", f"{REPO}:2.0@{SIGNED}", "deployed"), recorded(1, "1.0", f"{REPO}:1.0")]
    from_helm = [
        entry(3, "deployed", version="1.0", description="Rollback to 1"),
        entry(2, version="2.0"),
        entry(1, version="1.0"),
    ]
    after = carry_recorded(from_helm, before)
    assert [e.image for e in after] == [f"{REPO}:1.0", f"{REPO}:2.0@{SIGNED}", f"{REPO}:1.0"]
    assert [e.image for e in mark_given(after, 3, "x", "")] == ["x", *[e.image for e in after[1:]]]
    assert history_from_status([e.as_status() for e in after]) == after  # status keeps it
    # status.release.image says what the revision runs, not what the Image of its version says now.
    release = release_status(plan(body()).desired, after, lambda _v: "the Image now", HERE)  # type: ignore[arg-type]
    assert release["image"] == f"{REPO}:1.0"


def test_a_refused_rollback_ends_the_wait_of_alecton_rollback() -> None:
    refused = {
        "metadata": {"generation": 5},
        "status": {
            "observedGeneration": 5,
            "phase": "Failed",
            "message": "rollback to revision 1 refused: ...",
            "conditions": [{"type": "Ready", "status": "False", "reason": ROLLBACK_REFUSED}],
        },
    }
    outcome = rollback_outcome(refused, 1, "r")
    assert (
        outcome.done
        and not outcome.ok
        and outcome.message.startswith("RollbackRefused: rollback to revision 1 refused")
    )
    older = {**refused, "metadata": {"generation": 6}}  # the refusal of an earlier request
    assert not rollback_outcome(older, 1, "r").done


# ----- the chart of the revision (spec.verify.chart) ---------------------------------------------

CHART = "oci://registry.example/charts/web"
SIGNED_CHART = f"{CHART}@{SIGNED}"
OLD_CHART = f"{CHART}@{OLD}"
CHART_POLICY = {**POLICY, "chart": True}
VERIFYING_CHARTS = application(chart=CHART, chartVersion="3.0.0", verify=CHART_POLICY)
ROLLS_BACK_CHARTS = application(chart=CHART, chartVersion="3.0.0", verify=CHART_POLICY, onFailure="Rollback")
CHART_SIGNED_BY_US = Verdict(True, f"chart {CHART}@{SIGNED} is signed by key cosign.pub")
CHART_UNSIGNED = Verdict(False, f"chart {CHART}@{OLD} is signed by another key")

# Revision 1: chart 1.0.0 by tag, before spec.verify.chart (no chart digest recorded); 2: a chart
# digest a removed key signed; 3: signed and verified, running now. Every image is signed.
CHART_HISTORY = [
    recorded(3, "3.0", f"{REPO}:3.0@{SIGNED}", "deployed", healthy=True),
    recorded(2, "2.0", f"{REPO}:2.0@{SIGNED}", healthy=True),
    recorded(1, "1.0", f"{REPO}:1.0@{SIGNED}", healthy=True),
]
IMAGES_SIGNED = {1: SIGNED_BY_US, 2: SIGNED_BY_US, 3: SIGNED_BY_US}


def with_chart(history_entry: HistoryEntry, chart: str) -> HistoryEntry:
    return replace(history_entry, chart_reference=chart)


def chart_plan(
    doc: dict[str, Any], app: Application = VERIFYING_CHARTS, chart_verdicts: dict[int, Verdict] | None = None
) -> Plan:
    """The plan under spec.verify.chart: the chart of spec verified (pinned), the recorded
    images all signed; `chart_verdicts` the verdicts on the recorded charts, by revision."""
    deployment = Deployment.parse(doc)
    sources = ValuesSources(
        verify_secret={"cosign.pub": b"k"},
        image_verdict=SIGNED_BY_US,
        chart_verdict=ChartVerdict(CHART_SIGNED_BY_US, SIGNED),
        rollback_verdicts=IMAGES_SIGNED,
        **({"rollback_chart_verdicts": chart_verdicts} if chart_verdicts is not None else {}),
    )
    return plan_release(
        deployment, RecordedStatus.parse(doc["status"]), resolved(app), deployment.ref, CHARTS, sources
    )


def test_a_requested_rollback_to_a_revision_recording_no_chart_digest_is_refused_under_verify_chart() -> None:
    """Revision 1 was deployed before verify.chart was switched on: which chart manifest helm
    pulled then is not known, so restoring it cannot be checked (R27B-1)."""
    refused = chart_plan(body(CHART_HISTORY, rollback={"revision": 1, "requestId": "r1"}))
    assert (refused.action, refused.reason) == (Action.REFUSED, ROLLBACK_REFUSED)
    assert refused.message == (
        "rollback to revision 1 refused: spec.verify lets a rollback restore only an image and a "
        "chart that pass it now, and revision 1 (version 1.0) records no chart digest (it was "
        "deployed before spec.verify.chart, when helm pulled the chart by its tag, or not by "
        "alecton), so the chart it would run again cannot be checked against a signature; the "
        f"release stays at revision 3. Deploy a verified version instead (`alecton deploy web "
        f"staging VERSION -n {NS}`, which checks and pins its digest), or remove spec.rollback"
    )
    # spec.verify without chart: true does not ask for the chart's digest (as before).
    images_only = application(chart=CHART, chartVersion="3.0.0", verify=POLICY)
    allowed = plan(
        body(CHART_HISTORY, rollback={"revision": 1, "requestId": "r1"}), images_only, IMAGES_SIGNED
    )
    assert allowed.action is Action.ROLLBACK


def test_an_automatic_rollback_to_a_revision_that_records_no_chart_digest_is_not_made() -> None:
    doc = deployment_body(
        released_status(
            3, history=CHART_HISTORY, appliedVersion="3.0", phase="Verifying", health={"deadline": LONG_AGO}
        ),
        version="3.0",
    )
    in_place = chart_plan(doc, ROLLS_BACK_CHARTS)
    doc["status"]["appliedFingerprint"] = in_place.desired.fingerprint if in_place.desired else ""
    in_place = chart_plan(doc, ROLLS_BACK_CHARTS)
    assert in_place.action is Action.NOTHING
    verdict = release_health([ObjectHealth(WEB, State.FAILED, "CrashLoopBackOff")])
    step = decide(
        Observed(
            Deployment.parse(doc), doc["status"], 0.0, 3, plan=in_place, health=HealthSeen(True, verdict)
        )
    )
    assert step.do is Do.FAIL_HEALTH, step
    assert step.no_rollback.startswith(
        "the automatic rollback to revision 2 is refused: revision 2 (version 2.0) records no chart digest"
    ), step.no_rollback


def test_under_verify_chart_only_a_revision_whose_recorded_chart_passes_now_may_be_restored() -> None:
    signed = with_chart(CHART_HISTORY[1], SIGNED_CHART)
    removed_key = with_chart(CHART_HISTORY[1], OLD_CHART)
    by_tag = with_chart(CHART_HISTORY[1], f"{CHART}:2.0.0")  # a reference not pinned: no digest
    assert rollback_refusal(VERIFYING_CHARTS, 2, signed, IMAGES_SIGNED, {2: CHART_SIGNED_BY_US}) == ""
    assert rollback_refusal(VERIFYING_CHARTS, 2, removed_key, IMAGES_SIGNED, {2: CHART_UNSIGNED}) == (
        f"revision 2 (version 2.0) runs chart {OLD_CHART}: {CHART_UNSIGNED.message}"
    )
    assert rollback_refusal(VERIFYING_CHARTS, 2, signed, IMAGES_SIGNED, {}) == (
        f"revision 2 (version 2.0) runs chart {SIGNED_CHART}, whose signature was not checked"
    )
    assert "records no chart digest" in rollback_refusal(VERIFYING_CHARTS, 2, by_tag, IMAGES_SIGNED, {})
    unrecorded = CHART_HISTORY[1]  # deployed before verify.chart: nothing recorded
    assert "records no chart digest" in rollback_refusal(VERIFYING_CHARTS, 2, unrecorded, IMAGES_SIGNED, {})
    # The image is still checked first; without verify.chart the chart is not asked about.
    assert "has no cosign signature" in rollback_refusal(
        VERIFYING_CHARTS, 2, signed, {2: UNSIGNED}, {2: CHART_SIGNED_BY_US}
    )
    assert rollback_refusal(VERIFYING, 2, CHART_HISTORY[1], IMAGES_SIGNED, {}) == ""


def test_a_rollback_to_a_chart_a_removed_key_signed_is_refused_and_to_a_verified_one_goes_ahead() -> None:
    history = [
        CHART_HISTORY[0],
        with_chart(CHART_HISTORY[1], OLD_CHART),
        with_chart(CHART_HISTORY[2], SIGNED_CHART),
    ]
    refused = chart_plan(
        body(history, rollback={"revision": 2, "requestId": "r2"}), chart_verdicts={2: CHART_UNSIGNED}
    )
    assert refused.reason == ROLLBACK_REFUSED
    assert f"revision 2 (version 2.0) runs chart {OLD_CHART}: {CHART_UNSIGNED.message}" in refused.message
    allowed = chart_plan(
        body(history, rollback={"revision": 1, "requestId": "r1"}), chart_verdicts={1: CHART_SIGNED_BY_US}
    )
    assert allowed.action is Action.ROLLBACK
    assert allowed.rollback_chart_verdicts == {1: CHART_SIGNED_BY_US}


def test_the_history_records_each_revisions_pinned_chart_and_a_rollback_runs_its_sources() -> None:
    before = [
        with_chart(recorded(2, "2.0", f"{REPO}:2.0@{SIGNED}", "deployed"), SIGNED_CHART),
        recorded(1, "1.0", f"{REPO}:1.0"),
    ]
    from_helm = [
        entry(4, "deployed", version="2.0", description="Rollback to 2"),
        entry(3, version="1.0", description="Rollback to 1"),
        entry(2, version="2.0"),
        entry(1, version="1.0"),
    ]
    after = carry_recorded(from_helm, before)
    charts = [e.chart_reference for e in after]
    assert charts == [SIGNED_CHART, "", SIGNED_CHART, ""]
    marked = mark_given(after, 4, "x", OLD_CHART)
    assert (marked[0].image, marked[0].chart_reference) == ("x", OLD_CHART)
    assert history_from_status([e.as_status() for e in after]) == after  # status keeps it
    assert after[0].as_status()["chartReference"] == SIGNED_CHART
    assert "chartReference" not in after[1].as_status()
    # What is recorded: the oci:// chart helm was given, when pinned to a digest; else nothing.
    assert pinned_chart_reference(ChartSource(SIGNED_CHART)) == SIGNED_CHART
    assert pinned_chart_reference(ChartSource(CHART, version="1.0.0")) == ""
    assert pinned_chart_reference(ChartSource("webapp")) == ""
    # The dashboard's release history shows it beside the image.
    shown = views.release_message(after[0].as_status(), {})
    assert shown["chartReference"] == SIGNED_CHART
