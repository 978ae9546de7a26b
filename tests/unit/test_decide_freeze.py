"""Freezes in the one decision (reconcile/decide.py) and in promotion (promotion_actions.act):
while a freeze applies, upgrades are reported as Frozen (and released when it ends), automatic
promotions wait, an override for the current generation deploys, rollbacks and uninstalls
always go through."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from alecton.api.models import Deployment
from alecton.handlers.indexes import Indexes
from alecton.reconcile.decide import Do, Observed, Step, decide
from alecton.reconcile.freeze import FREEZE_OVERRIDE_ANNOTATION, FROZEN_REASON, ActiveFreeze, Freeze
from alecton.reconcile.health import State
from alecton.reconcile.news import Kind
from alecton.reconcile.outcomes import Done
from alecton.reconcile.plan import Action
from alecton.reconcile.promotion_actions import act
from alecton.reconcile.promotion_choice import Choice
from alecton.reconcile.promotion_policy import PromotionPolicy
from alecton.reconcile.promotion_records import APPROVED
from alecton.reconcile.summary import summarize
from alecton.reconcile.times import epoch

from tests.unit.fakes import APP, NS, deployment_body, entry, plan_of, released_status, request
from tests.unit.test_decide import ROLLBACK, health, in_place, observe

NOW_TEXT = "2026-03-01T12:00:00Z"
NOW = epoch(NOW_TEXT)
UNTIL = dt.datetime.fromtimestamp(NOW + 3600, dt.UTC)
QUARTER = ActiveFreeze("Freeze", "team", "quarter", "quarter close", UNTIL)
STOP = ActiveFreeze("ClusterFreeze", "", "stop-the-line", "incident INC-9", None)


def frozen(body: dict[str, Any], *freezes: ActiveFreeze, **options: Any) -> Observed:
    return replace(observe(body, plan_of(body), **options), freezes=freezes or (QUARTER,))


def new_version(**metadata: Any) -> dict[str, Any]:
    """A Deployment at 1.0 whose spec now asks for 1.1 (generation 3)."""
    status = released_status(3, appliedFingerprint="sha256:old", phase="Deployed")
    return deployment_body(status, version="1.1", **metadata)


def test_a_new_version_is_not_released_during_a_freeze_and_looks_again_at_its_end() -> None:
    step = decide(frozen(new_version()))
    assert (step.do, step.result, step.final) == (Do.REPORT, "frozen", True)
    assert step.plan is not None
    assert (step.plan.action, step.plan.reason) == (Action.WAIT, FROZEN_REASON)
    assert step.plan.message.startswith(
        'version 1.1 (running: 1.0) is frozen by Freeze quarter ("quarter close") until '
        f"{UNTIL.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    )
    assert step.wait == 3600.5


def test_the_status_and_news_of_a_frozen_change() -> None:
    observed = frozen(new_version())
    step = decide(observed)
    summary = summarize(observed, step, Done(), NOW_TEXT)
    assert summary.status["phase"] == "Pending"
    ready = next(c for c in summary.status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", FROZEN_REASON)
    assert "Freeze quarter" in summary.status["message"]
    assert summary.wait == 3600.5
    assert [n.kind for n in summary.news] == [Kind.FREEZE_BLOCKED]


def test_an_open_ended_freeze_waits_for_the_freeze_objects_change() -> None:
    step = decide(frozen(new_version(), STOP, QUARTER))
    assert step.plan is not None and step.wait == 3600.5  # the first end: look again then
    assert 'ClusterFreeze stop-the-line ("incident INC-9") until it is ended' in step.plan.message
    only_open = decide(frozen(new_version(), STOP))
    assert (only_open.do, only_open.wait) == (Do.REPORT, None)


def test_changed_inputs_and_first_releases_are_frozen_too() -> None:
    same_version = deployment_body(released_status(3, appliedFingerprint="sha256:old"))
    step = decide(frozen(same_version))
    assert step.plan is not None and step.plan.message.startswith("the change of inputs of version 1.0")
    first = decide(frozen(deployment_body()))
    assert first.plan is not None and first.plan.message.startswith("the first release of version 1.0")


def test_an_override_for_this_generation_deploys() -> None:
    body = new_version(annotations={FREEZE_OVERRIDE_ANNOTATION: "3:hotfix INC-7"})
    step = decide(frozen(body))
    assert (step.do, step.result) == (Do.RELEASE, "upgrade")


def test_a_stale_or_empty_override_does_not_carry_over() -> None:
    for value in ("2:hotfix for the change before", "3:", "hotfix"):
        step = decide(frozen(new_version(annotations={FREEZE_OVERRIDE_ANNOTATION: value})))
        assert (step.do, step.result) == (Do.REPORT, "frozen"), value


def test_rollbacks_and_uninstalls_go_through_a_freeze() -> None:
    asked = deployment_body(released_status(3), rollback={"revision": 1})
    assert decide(frozen(asked)).do is Do.RELEASE
    deleting = deployment_body(released_status(3), deletionTimestamp=NOW_TEXT)
    assert decide(frozen(deleting)).do is Do.UNINSTALL
    history = [entry(3, "deployed"), entry(2, healthy=True), entry(1, healthy=True)]
    body, plan = in_place("Verifying", ROLLBACK, history=history, health={"deadline": "2026-03-01T12:01:40Z"})
    failing = replace(
        observe(body, plan, tracked=True, verdict=health(State.FAILED, "CrashLoopBackOff")),
        freezes=(QUARTER,),
    )
    automatic = decide(failing)
    assert (automatic.do, automatic.result) == (Do.RELEASE, "rollback")


def test_a_release_in_place_is_unaffected_and_drift_is_still_checked() -> None:
    # Drift correction re-applies what was released, not a change: a freeze lets it run.
    body, plan = in_place("Deployed")
    for taken in ((), (Do.TRACK,), (Do.VERIFY,)):
        unfrozen = observe(body, plan, taken=taken)
        assert decide(replace(unfrozen, freezes=(QUARTER,))) == decide(unfrozen)


# ----- promotions -----------------------------------------------------------------------------------


def test_an_approved_promotion_waits_for_the_freeze_and_says_which() -> None:
    policy = PromotionPolicy.parse({"versions": {"semver": ">=1.0.0"}})
    choice = Choice("1.1", "newest image matching >=1.0.0")
    actions = act(policy, "web-prod", "1.0", choice, "d", [], (), NOW, None, freezes=[QUARTER])
    assert actions.write_version is None
    assert 'waiting for the end of Freeze quarter ("quarter close") until' in actions.message
    assert actions.wait == 3600.0
    assert [state for _, state, _ in actions.states] == [APPROVED]
    released = act(policy, "web-prod", "1.0", choice, "d", [], (), NOW + 3601, None)
    assert released.write_version == "1.1"


def test_an_open_ended_freeze_holds_a_promotion_without_a_timer() -> None:
    policy = PromotionPolicy.parse({"versions": {"semver": ">=1.0.0"}})
    choice = Choice("1.1", "newest")
    actions = act(policy, "web-prod", "1.0", choice, "d", [], (), NOW, None, freezes=[STOP])
    assert (actions.write_version, actions.wait) == (None, None)


def test_request_fixture_still_builds() -> None:
    assert request(new_version(), Step(Do.WAIT)).observed.freezes == ()


# ----- what observe reads: the indexes ------------------------------------------------------------


def test_the_indexes_give_a_deployment_its_freezes_and_when_they_change() -> None:
    def parsed(name: str, kind: str = "Freeze", namespace: str = NS, **spec: Any) -> Freeze:
        meta = {"name": name} if kind == "ClusterFreeze" else {"name": name, "namespace": namespace}
        return Freeze.parse({"kind": kind, "metadata": meta, "spec": {"reason": "r", **spec}})

    indexes = Indexes()
    indexes.applications = {(NS, "web"): [APP]}
    indexes.freezes = {
        NS: [parsed("ours", until="2026-03-01T13:00:00Z"), parsed("other-cluster", clusters=["x"])],
        "elsewhere": [parsed("theirs", namespace="elsewhere")],
    }
    indexes.cluster_freezes = {"": [parsed("later", "ClusterFreeze", **{"from": "2026-03-01T12:30:00Z"})]}
    deployment = Deployment.parse(new_version())
    assert indexes.freeze_facts(deployment).cluster == "b"  # the Cluster the target names
    active, change = indexes.active_freezes(deployment, NOW)
    assert [f.name for f in active] == ["ours"]
    assert change == NOW + 1800  # the ClusterFreeze starts first
