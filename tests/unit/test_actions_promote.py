"""Promote (handlers/actions/promote.py): the Promoter gathers the promotion's inputs from the
indexes (real `Indexes`, filled by hand), asks the planner for the digest of a version's
inputs (a real plan), and writes Promotions, their states and spec.version through a fake
Kubernetes API."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from dataclasses import replace
from typing import Any

import pytest
from alecton.api.models import Application, Deployment, ObjectRef
from alecton.handlers.actions.promote import Promoter
from alecton.handlers.indexes import DeploymentSnapshot, Indexes
from alecton.kube.client import ApiException
from alecton.reconcile import promotion_hold as holds
from alecton.reconcile import promotion_records as records
from alecton.reconcile.decide import Do, Step
from alecton.reconcile.outcomes import Note, Promoted
from alecton.reconcile.plan import Action, Plan
from alecton.reconcile.summary import promotion_status

from tests.unit.fakes import (
    APP,
    NS,
    RELEASE,
    FakeKube,
    application,
    deployment_body,
    operator_config,
    plan_of,
    request,
    run,
)

AUTOMATIC = {"versions": {"semver": ">=1.0.0"}}
MANUAL = {**AUTOMATIC, "approval": "Manual"}
OLD, NEW = "1.0.0", "1.1.0"
KEY_SECRET = ("default", "alecton-promotion-key")  # the operator's namespace, the key's Secret
REASON = "1.1.0 is the newest Image version matching semver >=1.0.0"


def indexes(app: Application | None = APP, versions: tuple[str, ...] = ("1.0.0", "1.1.0")) -> Indexes:
    """The indexes kopf keeps, as (key -> store) mappings."""
    found = Indexes()
    found.applications = {(NS, "web"): [app]} if app is not None else {}
    found.versions = {(NS, "web"): list(versions)}
    return found


async def planner(deployment: Deployment, snap: DeploymentSnapshot) -> Plan:
    """The observer's plan: the version's Image exists, so its inputs are complete."""
    body = {**snap.body, "spec": {**snap.body["spec"], "version": deployment.version}}
    body["spec"].pop("rollback", None)
    return plan_of(body)


def digest_of(version: str, approval: str = "Automatic") -> str:
    plan = plan_of(deployment_body(version=version))
    assert plan.desired is not None
    return hashlib.sha256(f"{plan.desired.fingerprint}\0{approval}".encode()).hexdigest()[:32]


def promote(
    kube: FakeKube, body: dict[str, Any], found: Indexes | None = None, plan_for: Any = planner
) -> Promoted:
    promoter = Promoter(kube, operator_config(), found or indexes(), plan_for)  # type: ignore[arg-type]
    return run(promoter.run(request(body, Step(Do.PROMOTE))))


def with_deployment(body: dict[str, Any], resource_version: str | None = None) -> FakeKube:
    kube = FakeKube()
    stored = {**body, "metadata": {**body["metadata"]}}
    if resource_version is not None:
        stored["metadata"]["resourceVersion"] = resource_version
    kube.add("Deployment", stored)
    return kube


def kube_calls(kube: FakeKube) -> list[tuple[str, str]]:
    return [(call[0], call[1]) for call in kube.calls]


# ----- refused ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("promotion", "refused"),
    [
        ({**AUTOMATIC, "approvals": "Manual"}, "spec.promotion.approvals: not a field of a promotion"),
        ({"approval": "Manual"}, "spec.promotion.versions: required"),
        ({**AUTOMATIC, "from": "staging"}, "spec.promotion.from: must be another target, not this one"),
        ({**AUTOMATIC, "from": "qa"}, "spec.promotion.from: Application 'web' has no target 'qa'"),
    ],
)
def test_a_promotion_that_cannot_be_used_is_refused_and_nothing_is_written(
    promotion: dict[str, Any], refused: str
) -> None:
    body = deployment_body(version=OLD, promotion=promotion)
    kube = with_deployment(body)
    outcome = promote(kube, body)
    assert outcome.refused.startswith(refused)
    assert (outcome.wrote_version, outcome.step, outcome.notes) == (False, None, ())
    assert kube.calls == []


def test_without_its_application_the_promotion_waits_for_the_ordinary_reconcile() -> None:
    body = deployment_body(
        {"promotion": {"message": "no version qualifies yet"}}, version=OLD, promotion=AUTOMATIC
    )
    kube = with_deployment(body)
    assert promote(kube, body, indexes(app=None)) == Promoted(waiting="no version qualifies yet")
    assert kube.calls == []


def test_a_version_whose_inputs_are_incomplete_proposes_nothing_and_says_why() -> None:
    async def waiting(deployment: Deployment, snap: DeploymentSnapshot) -> Plan:
        return Plan(Action.WAIT, "ValuesSourceNotFound", "ConfigMap web-values does not exist")

    body = deployment_body({"promotion": {"message": "earlier"}}, version=OLD, promotion=AUTOMATIC)
    kube = with_deployment(body)
    outcome = promote(kube, body, plan_for=waiting)
    assert outcome.waiting == "version 1.1.0 is not proposed: ConfigMap web-values does not exist"
    assert outcome.step is not None and outcome.step.actions.message == outcome.waiting
    assert not outcome.wrote_version and kube.calls == []


def test_a_version_whose_image_fails_verification_is_not_promoted_and_status_says_why() -> None:
    """Review of issue 27's signatures: promotion chose an unsigned version, found no inputs
    to propose and kept the previous message, so it waited without a word."""

    async def refused(deployment: Deployment, snap: DeploymentSnapshot) -> Plan:
        return Plan(Action.REFUSED, "ImageVerificationFailed", "Image 'web-1.1.0': no signature")

    body = deployment_body({"promotion": {"message": "earlier"}}, version=OLD, promotion=AUTOMATIC)
    kube = with_deployment(body)
    outcome = promote(kube, body, plan_for=refused)
    assert outcome.waiting == "version 1.1.0 is not proposed: Image 'web-1.1.0': no signature"
    assert not outcome.wrote_version and kube.calls == []
    # status.promotion names the candidate and why it waits.
    assert outcome.step is not None
    status = promotion_status(
        *[getattr(outcome.step, f) for f in ("policy", "hold", "choice", "actions")], "t"
    )
    assert (status["candidate"], status["message"]) == ("1.1.0", outcome.waiting)


# ----- approved: spec.version is written ----------------------------------------------------------


def test_an_approved_version_is_written_with_the_operator_record() -> None:
    body = deployment_body(version=OLD, promotion=AUTOMATIC)
    kube = with_deployment(body)

    outcome = promote(kube, body)

    name = records.promotion_name(RELEASE, NEW, digest_of(NEW))
    assert outcome.wrote_version is True and outcome.wait is None
    assert outcome.notes == (
        Note("PromotionProposed", f"1.0.0 -> 1.1.0: {REASON}"),
        Note("Promoted", f"version 1.1.0: {REASON}"),
    )
    # The Promotion first, then spec.version (with the key), then the Promotion's state.
    assert kube_calls(kube) == [
        ("create", "Promotion"),
        ("read_or_create_secret_key", "default"),
        ("patch", "Deployment"),
        ("patch_status", "Promotion"),
    ]
    promotion = kube.object("Promotion", NS, name)
    assert promotion is not None
    assert promotion["spec"]["toVersion"] == NEW and promotion["spec"]["fromVersion"] == OLD
    assert promotion["spec"]["approval"] == {"decision": "Approved", "digest": digest_of(NEW)}
    assert promotion["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert promotion["status"]["state"] == records.APPLIED
    # The write: only if nobody changed the Deployment since, as the promotion's manager.
    patch = next(call for call in kube.calls if call[0] == "patch")
    assert patch[4]["metadata"]["resourceVersion"] == "7"
    assert patch[5] == holds.FIELD_MANAGER
    written = kube.object("Deployment", NS, RELEASE)
    assert written is not None and written["spec"]["version"] == NEW
    # The record proves this write: this Deployment, the generation the write made, 1.1.
    key = kube.secrets[KEY_SECRET]["key"]
    record = written["metadata"]["annotations"][records.PROMOTED_ANNOTATION]
    who = records.DeploymentIdentity(NS, RELEASE, "uid-1", written["metadata"]["generation"])
    assert written["metadata"]["generation"] == body["metadata"]["generation"] + 1
    assert records.verify_promoted(record, key, who, NEW) == name
    assert records.verify_promoted(record, key, replace(who, generation=who.generation - 1), NEW) == ""
    # What status.promotion records of the step: the write.
    facts = outcome.step
    assert facts is not None
    assert (facts.choice.version, facts.actions.write_version, facts.actions.write_promotion) == (
        NEW,
        NEW,
        name,
    )
    assert facts.hold.hold is None and facts.promote_request is None
    status = promotion_status(facts.policy, facts.hold, facts.choice, facts.actions, facts.checked_at)
    assert (status["written"], status["promoted"], status["candidate"]) == (NEW, NEW, NEW)
    assert outcome.waiting == status["message"] == f"promoting {OLD} to {NEW}: {REASON}"


def test_a_write_refused_because_the_deployment_changed_decides_again_at_once() -> None:
    body = deployment_body(version=OLD, promotion=AUTOMATIC)
    kube = with_deployment(body, resource_version="8")  # someone wrote it after the snapshot

    outcome = promote(kube, body)

    assert outcome == Promoted(
        wrote_version=True, notes=(Note("PromotionProposed", f"1.0.0 -> 1.1.0: {REASON}"),), wait=0.0
    )
    written = kube.object("Deployment", NS, RELEASE)
    assert written is not None and written["spec"]["version"] == OLD
    assert "patch_status" not in [call[0] for call in kube.calls]  # no state before the write


def test_another_error_on_the_write_is_raised() -> None:
    body = deployment_body(version=OLD, promotion=AUTOMATIC)
    kube = with_deployment(body)
    kube.fail("patch", 500, "Internal Server Error")
    with pytest.raises(ApiException) as raised:
        promote(kube, body)
    assert raised.value.status == 500


# ----- proposed: a Promotion waits for approval ---------------------------------------------------


def test_a_manual_promotion_is_proposed_and_waits_for_approval() -> None:
    body = deployment_body(version=OLD, promotion=MANUAL)
    kube = with_deployment(body)

    outcome = promote(kube, body)

    name = records.promotion_name(RELEASE, NEW, digest_of(NEW, "Manual"))
    assert outcome.notes == (Note("PromotionProposed", f"1.0.0 -> 1.1.0: {REASON}"),)
    assert outcome.wrote_version is False
    assert kube_calls(kube) == [("create", "Promotion"), ("patch_status", "Promotion")]
    promotion = kube.object("Promotion", NS, name)
    assert promotion is not None and "approval" not in promotion["spec"]
    assert promotion["status"]["state"] == records.PENDING and promotion["status"]["message"] == REASON
    written = kube.object("Deployment", NS, RELEASE)
    assert written is not None and written["spec"]["version"] == OLD
    assert outcome.waiting == "version 1.1.0 waits for approval: alecton approve web staging"
    facts = outcome.step
    assert facts is not None
    assert (facts.choice.version, facts.actions.write_version) == (NEW, None)
    status = promotion_status(facts.policy, facts.hold, facts.choice, facts.actions, facts.checked_at)
    assert (status["candidate"], status["written"], status["promoted"]) == (NEW, OLD, None)


def test_a_promotion_proposed_before_a_restart_is_not_proposed_twice() -> None:
    body = deployment_body(version=OLD, promotion=MANUAL)
    kube = with_deployment(body)
    name = records.promotion_name(RELEASE, NEW, digest_of(NEW, "Manual"))
    kube.add("Promotion", {"metadata": {"namespace": NS, "name": name}, "spec": {}})  # not in the index yet
    outcome = promote(kube, body)
    assert outcome.notes == ()
    assert kube_calls(kube) == [("create", "Promotion")]


def test_a_rollback_holds_the_promotion() -> None:
    body = deployment_body(version=OLD, promotion=AUTOMATIC, rollback={"revision": 1})
    kube = with_deployment(body)
    outcome = promote(kube, body)
    assert outcome.wrote_version is False
    assert [note.reason for note in outcome.notes] == ["PromotionHeld"]
    assert outcome.notes[0].message.startswith("promotion held: rollback requested by")
    assert kube.calls == []
    assert outcome.step is not None and outcome.step.hold.hold is not None
    assert outcome.step.hold.hold.reason == holds.ROLLBACK_HOLD
    assert outcome.step.actions.write_version is None


# ----- inputs from the other Deployments of the Application --------------------------------------

TWO_TARGETS = application(
    targets=[
        {"name": "staging", "cluster": "b", "namespace": "apps"},
        {"name": "qa", "cluster": "b", "namespace": "apps-qa"},
    ]
)


def qa_deployment(status: dict[str, Any]) -> dict[str, Any]:
    body = deployment_body(status, version=NEW, target="qa")
    body["metadata"]["name"] = "web-qa"
    return body


def with_sibling(found: Indexes, sibling: dict[str, Any], follows: str = "") -> Indexes:
    ref = ObjectRef(NS, "web-qa")
    found.deployments = {(NS, "web-qa"): [DeploymentSnapshot(sibling)]}
    found.pairs = {(NS, "web", "qa"): [Deployment.parse(sibling)]}
    found.by_application = {(NS, "web"): [(ref, follows)]}
    return found


def test_a_version_that_failed_at_another_target_is_not_promoted() -> None:
    sibling = qa_deployment({"failedVersions": [{"version": NEW, "revision": 2}]})
    body = deployment_body(version=OLD, promotion=AUTOMATIC)
    kube = with_deployment(body)
    outcome = promote(kube, body, with_sibling(indexes(), sibling))
    assert outcome.wrote_version is False and outcome.notes == ()
    assert kube.calls == []
    assert outcome.step is not None and outcome.step.choice.version is None
    assert f"skipping {NEW}: failed its health check" in outcome.waiting


def healthy_qa(since: float) -> dict[str, Any]:
    moment = dt.datetime.fromtimestamp(since, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return qa_deployment(
        {
            "phase": "Deployed",
            "appliedVersion": NEW,
            "observedGeneration": 3,
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": moment}],
            "release": {"version": NEW, "lastDeployed": moment},
        }
    )


def test_a_version_healthy_on_the_source_target_is_promoted_once_it_soaked() -> None:
    body = deployment_body(version=OLD, promotion={**AUTOMATIC, "from": "qa", "soak": "10m"})
    kube = with_deployment(body)
    outcome = promote(kube, body, with_sibling(indexes(TWO_TARGETS), healthy_qa(time.time() - 3600)))
    assert outcome.wrote_version is True
    written = kube.object("Deployment", NS, RELEASE)
    assert written is not None and written["spec"]["version"] == NEW
    assert outcome.step is not None
    assert outcome.step.choice.reason.startswith(f"{NEW} has been healthy on qa for 1h")


def test_a_version_still_soaking_on_the_source_target_waits_for_the_soak_to_end() -> None:
    body = deployment_body(version=OLD, promotion={**AUTOMATIC, "from": "qa", "soak": "10m"})
    kube = with_deployment(body)
    outcome = promote(kube, body, with_sibling(indexes(TWO_TARGETS), healthy_qa(time.time() - 60)))
    assert outcome.wrote_version is False and kube.calls == []
    assert outcome.wait is not None and 9 * 60 - 5 < outcome.wait <= 9 * 60 + 0.5
    assert "soak 10m ends at" in outcome.waiting


# ----- the key ------------------------------------------------------------------------------------


def test_the_key_is_made_once_and_kept() -> None:
    body = deployment_body(version=OLD, promotion=AUTOMATIC)
    kube = with_deployment(body)
    promoter = Promoter(kube, operator_config(), indexes(), planner)  # type: ignore[arg-type]

    async def twice() -> tuple[bytes, bytes]:
        return await promoter.key(), await promoter.key()

    first, second = run(twice())
    assert first == second == kube.secrets[KEY_SECRET]["key"] and len(first) == 32
    assert [call[0] for call in kube.calls] == ["read_or_create_secret_key"]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda kube: kube.secrets.update({KEY_SECRET: {"key": b"short"}}), "is shorter than 32 bytes"),
        (
            lambda kube: kube.fail("read_or_create_secret_key", 403, "Forbidden", "secrets is forbidden"),
            "forbidden",
        ),
        (lambda kube: kube.secrets.update({KEY_SECRET: {"other": b"x" * 32}}), "has no key 'key'"),
    ],
)
def test_a_key_that_cannot_be_used_stops_the_write(setup: Any, message: str) -> None:
    body = deployment_body(version=OLD, promotion=AUTOMATIC)
    kube = with_deployment(body)
    setup(kube)
    with pytest.raises(RuntimeError, match=message):
        promote(kube, body)
    written = kube.object("Deployment", NS, RELEASE)
    assert written is not None and written["spec"]["version"] == OLD
