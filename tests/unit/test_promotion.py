"""Promotion decisions, as the stories a user of `spec.promotion` would tell them.

A small in-memory `Cluster` plays the API server (Promotion objects and spec.version) so
each test can run the operator's step (`choose` then `act`), apply what it asks for, and
check both the outcome and that running the step again changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import pytest
from alecton.reconcile.promotion_actions import Actions, act
from alecton.reconcile.promotion_choice import Choice, Source, choose, source_of
from alecton.reconcile.promotion_hold import (
    FIELD_MANAGER,
    MANUAL_DEPLOY_HOLD,
    ROLLBACK_HOLD,
    Hold,
    HoldDecision,
    RecordedPromotion,
    field_manager_of,
    hold_of,
)
from alecton.reconcile.promotion_policy import AUTOMATIC, MANUAL, PromotionPolicy
from alecton.reconcile.promotion_records import (
    APPLIED,
    APPROVED,
    FAILED,
    PENDING,
    REJECTED,
    SUPERSEDED,
    DeploymentIdentity,
    PromotionRecord,
    promoted_record,
    promotion_name,
    verify_promoted,
)
from alecton.reconcile.status import DEGRADED, DEPLOYED, READY, ROLLED_BACK, VERIFYING
from alecton.reconcile.status import FAILED as PHASE_FAILED
from alecton.reconcile.summary import promotion_status as status_of
from alecton.reconcile.times import epoch
from hypothesis import given, settings
from hypothesis import strategies as st

APP = "shop"
TODAY = "2024-07-01T12:00:00Z"  # a Monday
NOW = epoch(TODAY)
MINUTE = 60.0
OPERATOR = "system:serviceaccount:alecton:alecton-operator"
RANGE = {"semver": ">=1.4.0 <2"}
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def at(text: str) -> float:
    return epoch(text)


def staging_policy(**extra: Any) -> PromotionPolicy:
    """Staging takes every new Image in the range, on its own."""
    return PromotionPolicy.parse({"versions": RANGE, **extra})


def prod_policy(**extra: Any) -> PromotionPolicy:
    """Prod takes what has been healthy on staging for 10 minutes, once a person approves."""
    return PromotionPolicy.parse(
        {"versions": RANGE, "from": "staging", "soak": "10m", "approval": MANUAL, **extra}
    )


def staging_runs(version: str, ready_since: str, phase: str = DEPLOYED, deployed: str = "") -> Source:
    """The staging Deployment's status as the controller writes it, read by `source_of`."""
    status = {
        "phase": phase,
        "appliedVersion": version,
        "conditions": [{"type": READY, "status": "True", "lastTransitionTime": ready_since}],
        "release": {"version": version, "lastDeployed": deployed or ready_since},
    }
    return source_of("staging", status)


@dataclass
class Cluster:
    """The API server as far as promotions go: one Deployment's spec.version and Promotions."""

    deployment: str
    current: str = ""
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)

    def records(self) -> list[PromotionRecord]:
        return [PromotionRecord.parse(body) for body in self.objects.values()]

    def apply(self, actions: Actions) -> None:
        """What the controller does with `act`'s answer: spec.version first, then objects."""
        if actions.write_version is not None:
            self.current = actions.write_version
        for spec in actions.create:
            body = {key: value for key, value in spec.items() if key != "name"}
            if "approval" in body:
                body["approval"] = {**body["approval"], "by": OPERATOR}  # the API server stamps who
            metadata = {"name": spec["name"], "creationTimestamp": TODAY}
            # Creating a name that exists is a no-op (AlreadyExists), never a second object.
            self.objects.setdefault(spec["name"], {"metadata": metadata, "spec": body, "status": {}})
        for name, state, message in actions.states:
            self.objects[name]["status"] = {"state": state, "message": message}

    def decide(self, name: str, decision: str, by: str, digest: str | None = None) -> None:
        """`alecton approve` / `alecton reject`: the decision for the digest the person saw."""
        spec = self.objects[name]["spec"]
        spec["approval"] = {
            "decision": decision,
            "digest": spec["digest"] if digest is None else digest,
            "by": by,
        }

    def state(self, name: str) -> str:
        return str(self.objects[name]["status"].get("state") or PENDING)

    def open_promotions(self) -> list[str]:
        return [p.name for p in self.records() if p.effective_state in (PENDING, APPROVED)]


def step(
    cluster: Cluster,
    policy: PromotionPolicy,
    images: list[str],
    *,
    inputs: str = "values-1",
    failed: Collection[str] = (),
    source: Source | None = None,
    now: float = NOW,
    hold: Hold | None = None,
    requested: str = "",
) -> tuple[Choice, Actions]:
    """One reconcile of the promotion: choose, act, apply. The digest stands for the inputs
    (values, chart) the chosen version would deploy with."""
    choice = choose(policy, cluster.current, images, failed, source, now, requested)
    digest = f"{choice.version}@{inputs}" if choice.version else ""
    target = cluster.deployment.removeprefix(f"{APP}-")
    actions = act(
        policy,
        cluster.deployment,
        cluster.current,
        choice,
        digest,
        cluster.records(),
        failed,
        now,
        hold,
        application=APP,
        target=target,
    )
    cluster.apply(actions)
    return choice, actions


def assert_settled(cluster: Cluster, policy: PromotionPolicy, images: list[str], **kwargs: Any) -> Actions:
    """Running the step again with the state its own actions left changes nothing."""
    _, again = step(cluster, policy, images, **kwargs)
    assert again.create == []
    assert again.states == []
    assert again.write_version is None
    return again


# ---------------------------------------------------------------------------
# The policy


def test_policy_defaults_deploy_the_newest_image_automatically_at_any_time() -> None:
    policy = staging_policy()
    assert (policy.source, policy.soak, policy.approval, policy.windows) == ("", 0.0, AUTOMATIC, ())
    assert policy.describe() == "semver >=1.4.0 <2, approval Automatic"


def test_policy_describes_itself_in_one_line() -> None:
    assert prod_policy().describe() == "semver >=1.4.0 <2 from staging after 10m, approval Manual"
    windowed = staging_policy(
        windows=[{"schedule": "0 9 * * 1-5", "duration": "8h", "timeZone": "Europe/Berlin"}]
    )
    assert (
        windowed.describe()
        == "semver >=1.4.0 <2, approval Automatic, windows 0 9 * * 1-5 for 8h Europe/Berlin"
    )


@pytest.mark.parametrize("soak", ["0", "0s", "0m0s", "0.0h", "+0s", 0])
def test_a_zero_soak_is_allowed_although_health_durations_refuse_zero(soak: Any) -> None:
    """Promoting as soon as the source is healthy is a legitimate choice."""
    assert prod_policy(soak=soak).soak == 0.0


def test_null_fields_count_as_absent_as_the_api_server_treats_them() -> None:
    policy = PromotionPolicy.parse({"versions": RANGE, "from": None, "soak": None, "windows": None})
    assert (policy.source, policy.soak, policy.windows) == ("", 0.0, ())


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (None, "spec.promotion: must be an object"),
        ("1.4.0", "spec.promotion: must be an object"),
        ({}, "spec.promotion.versions: required"),
        ({"versions": {"semver": "banana"}}, "spec.promotion.versions.semver: invalid range"),
        ({"versions": RANGE, "approvals": "Manual"}, "spec.promotion.approvals: not a field of a promotion"),
        ({"versions": RANGE, "soak": "10m"}, "spec.promotion.soak: needs from"),
        ({"versions": RANGE, "from": ""}, "spec.promotion.from: must be the name of a target"),
        ({"versions": RANGE, "from": ["staging"]}, "spec.promotion.from: must be the name of a target"),
        ({"versions": RANGE, "from": "staging", "soak": "soon"}, "spec.promotion.soak: must be a duration"),
        ({"versions": RANGE, "from": "staging", "soak": "-10m"}, "spec.promotion.soak: must be a duration"),
        ({"versions": RANGE, "from": "staging", "soak": "-0s"}, "spec.promotion.soak: must be a duration"),
        ({"versions": RANGE, "from": "staging", "soak": True}, "spec.promotion.soak: must be a duration"),
        ({"versions": RANGE, "approval": "manual"}, "spec.promotion.approval: must be Automatic or Manual"),
        ({"versions": RANGE, "windows": "0 9 * * *"}, "spec.promotion.windows: must be a list"),
        (
            {"versions": RANGE, "windows": [{"schedule": "0 9 * * *"}]},
            "spec.promotion.windows[0].duration: required",
        ),
    ],
)
def test_a_bad_policy_names_the_field_to_fix(raw: Any, message: str) -> None:
    with pytest.raises(ValueError, match=r"^" + re.escape(message)):
        PromotionPolicy.parse(raw)


def test_errors_name_the_field_where_the_caller_found_the_policy() -> None:
    with pytest.raises(ValueError, match=r"^spec\.targets\[1\]\.promotion\.soak: needs from"):
        PromotionPolicy.parse({"versions": RANGE, "soak": "1m"}, where="spec.targets[1].promotion")


# ---------------------------------------------------------------------------
# The source target


def test_a_deployed_and_ready_source_offers_its_version_since_it_became_ready() -> None:
    source = staging_runs("1.5.0", "2024-07-01T11:00:00Z", deployed="2024-07-01T10:58:00Z")
    assert source == Source("staging", "1.5.0", at("2024-07-01T11:00:00Z"))


def test_without_health_checks_the_soak_starts_at_the_deploy_not_at_an_older_ready() -> None:
    """Ready stays True across an upgrade when health checks are off; its time is the old
    version's, so the soak of the new version counts from its deploy."""
    source = staging_runs("1.5.0", "2024-06-01T00:00:00Z", deployed="2024-07-01T11:55:00.123456789Z")
    assert source.healthy_since == pytest.approx(at("2024-07-01T11:55:00.123456Z"))


@pytest.mark.parametrize("phase", [ROLLED_BACK, DEGRADED, VERIFYING, PHASE_FAILED, "Pending", ""])
def test_a_source_that_is_not_settled_and_healthy_offers_nothing(phase: str) -> None:
    source = staging_runs("1.5.0", "2024-07-01T11:00:00Z", phase=phase)
    assert (source.version, source.healthy_since) == ("", 0.0)
    assert source.why


@pytest.mark.parametrize(
    "status",
    [
        None,
        {},
        {"phase": DEPLOYED, "appliedVersion": "1.5.0", "conditions": []},
        {"phase": DEPLOYED, "appliedVersion": "1.5.0", "conditions": [{"type": READY, "status": "Unknown"}]},
        {"phase": DEPLOYED, "appliedVersion": "1.5.0", "conditions": [{"type": READY, "status": "True"}]},
        {"phase": DEPLOYED, "conditions": [{"type": READY, "status": "True", "lastTransitionTime": TODAY}]},
    ],
)
def test_a_source_without_a_ready_version_since_a_known_time_offers_nothing(status: Any) -> None:
    assert source_of("staging", status).version == ""


def test_a_source_whose_status_lags_its_spec_offers_nothing() -> None:
    status = {
        "phase": DEPLOYED,
        "appliedVersion": "1.5.0",
        "conditions": [{"type": READY, "status": "True", "lastTransitionTime": TODAY}],
    }
    assert source_of("staging", status).version == "1.5.0"
    assert source_of("staging", status, generation_ok=False).version == ""


# ---------------------------------------------------------------------------
# Promotion objects and their names


def test_a_promotion_object_is_read_field_by_field() -> None:
    body = {
        "metadata": {"name": "shop-prod-1-5-0-0123456789", "creationTimestamp": TODAY},
        "spec": {
            "deployment": "shop-prod",
            "fromVersion": "1.4.0",
            "toVersion": "1.5.0",
            "digest": "sha256:aaa",
            "reason": "1.5.0 has been healthy on staging for 12m",
            "approval": {"decision": "Approved", "digest": "sha256:aaa", "by": "alice"},
        },
        "status": {"state": "Applied"},
    }
    record = PromotionRecord.parse(body)
    assert record == PromotionRecord(
        name="shop-prod-1-5-0-0123456789",
        deployment="shop-prod",
        to_version="1.5.0",
        from_version="1.4.0",
        digest="sha256:aaa",
        state=APPLIED,
        decision=APPROVED,
        decision_digest="sha256:aaa",
        decided_by="alice",
        created=TODAY,
        reason="1.5.0 has been healthy on staging for 12m",
    )
    assert record.approved


def test_a_new_promotion_object_has_no_state_yet_which_means_pending() -> None:
    record = PromotionRecord.parse({"metadata": {"name": "p"}, "spec": {"toVersion": "1.5.0"}})
    assert (record.state, record.effective_state, record.decision) == ("", PENDING, "")
    assert PromotionRecord.parse({}).name == ""


def test_promotion_names_are_readable_and_valid_even_for_odd_versions() -> None:
    name = promotion_name("shop-prod", "V1.2.3+Build_7", "sha256:abc")
    assert re.fullmatch(r"shop-prod-v1-2-3-build-7-[0-9a-f]{10}", name)
    assert promotion_name("shop-prod", "V1.2.3+Build_7", "sha256:abc") == name  # a restart agrees
    assert promotion_name("shop-prod", "V1.2.3+Build_7", "sha256:abd") != name
    assert promotion_name("shop-prod", "v1.2.3-build-7", "sha256:abc") != name  # same slug


def test_promotion_names_stay_within_253_characters() -> None:
    long_deployment = ".".join(["a" * 60] * 4)  # 243 characters, a valid object name
    name = promotion_name(long_deployment, "9" * 300, "d")
    assert len(name) <= 253
    assert DNS_SUBDOMAIN.fullmatch(name)
    assert DNS_SUBDOMAIN.fullmatch(promotion_name("shop-prod", "+++", "d"))


@settings(max_examples=300)
@given(deployment=st.text(max_size=300), version=st.text(max_size=300), digest=st.text(max_size=80))
def test_every_promotion_name_is_a_dns_subdomain(deployment: str, version: str, digest: str) -> None:
    name = promotion_name(deployment, version, digest)
    assert len(name) <= 253
    assert DNS_SUBDOMAIN.fullmatch(name), name


@given(
    first=st.tuples(st.text(max_size=20), st.text(max_size=20), st.text(max_size=20)),
    second=st.tuples(st.text(max_size=20), st.text(max_size=20), st.text(max_size=20)),
)
def test_different_proposals_get_different_names(
    first: tuple[str, str, str], second: tuple[str, str, str]
) -> None:
    """Two proposals sharing a name would let one silently stand for the other."""
    if first != second:
        assert promotion_name(*first) != promotion_name(*second)


# ---------------------------------------------------------------------------
# Holds


def test_a_rollback_holds_automation_until_resume() -> None:
    """Someone rolled prod back: the operator must not roll forward behind their back."""
    prod = Cluster("shop-prod", current="1.5.0")
    recorded = RecordedPromotion(written="1.5.0")
    decision = hold_of("1.5.0", True, recorded, "", "alecton-promotion", "alice", TODAY)
    assert decision == HoldDecision(Hold(ROLLBACK_HOLD, "alice", TODAY, "1.5.0"), "", "1.5.0", False)

    policy = staging_policy()
    _, actions = step(prod, policy, ["1.5.0", "1.6.0"], hold=decision.hold)
    assert (actions.create, actions.write_version, prod.current) == ([], None, "1.5.0")
    assert "rollback requested by alice since 2024-07-01T12:00:00Z" in actions.message
    assert "alecton resume shop prod" in actions.message

    # Later steps keep the recorded hold, even with spec.rollback gone.
    held = RecordedPromotion(written="1.5.0", hold=decision.hold)
    later = hold_of("1.5.0", False, held, "", "", "", "2024-07-01T13:00:00Z")
    assert later.hold == decision.hold

    # `alecton resume` (a new request id; it also removes spec.rollback): promotion goes on.
    resumed = hold_of("1.5.0", False, held, "r-1", "", "", "2024-07-01T14:00:00Z")
    assert resumed == HoldDecision(None, "r-1", "1.5.0", True)
    _, actions = step(prod, policy, ["1.5.0", "1.6.0"], hold=resumed.hold)
    assert actions.write_version == "1.6.0"


def test_a_resume_request_is_handled_once() -> None:
    hold = Hold(ROLLBACK_HOLD, "alice", TODAY, "1.5.0")
    recorded = RecordedPromotion(written="1.5.0", hold=hold, resumed="r-1")
    assert hold_of("1.5.0", False, recorded, "r-1", "", "", TODAY).hold == hold  # already handled


def test_a_version_set_by_hand_holds_automation() -> None:
    """`alecton deploy shop prod 1.3.0` (or kubectl edit) while promotion wrote 1.5.0."""
    recorded = RecordedPromotion(written="1.5.0")
    decision = hold_of("1.3.0", False, recorded, "", "kubectl-edit", "", TODAY)
    assert decision.hold == Hold(MANUAL_DEPLOY_HOLD, "kubectl-edit", TODAY, "1.3.0")
    assert decision.written == "1.5.0"  # until resumed
    _, actions = step(Cluster("shop-prod", "1.3.0"), staging_policy(), ["1.6.0"], hold=decision.hold)
    assert actions.write_version is None and actions.create == []
    assert "version 1.3.0 set by kubectl-edit since 2024-07-01T12:00:00Z" in actions.message

    resumed = hold_of("1.3.0", False, RecordedPromotion("1.5.0", decision.hold), "r-2", "", "", TODAY)
    assert (resumed.hold, resumed.written, resumed.lifted) == (None, "1.3.0", True)  # the new baseline


def test_the_operators_own_write_is_not_a_manual_deploy() -> None:
    """A crash between writing spec.version and recording it must not hold the Deployment:
    the operator's valid record of the write (`verify_promoted`) says it wrote it."""
    recorded = RecordedPromotion(written="1.5.0")
    decision = hold_of("1.6.0", False, recorded, "", FIELD_MANAGER, "", TODAY, verified="shop-prod-1-6-0-x")
    assert decision == HoldDecision(None, "", "1.6.0", False, promoted="1.6.0")


def test_the_operators_field_manager_name_alone_is_a_person_deploying() -> None:
    """`kubectl apply --field-manager=alecton-promotion` (issue 23, finding 5): any client may
    choose that name, so without the operator's record the version is a change by hand."""
    recorded = RecordedPromotion(written="1.5.0", promoted="1.5.0")
    decision = hold_of("1.6.0", False, recorded, "", FIELD_MANAGER, "", TODAY)
    assert decision.hold == Hold(MANUAL_DEPLOY_HOLD, f"{FIELD_MANAGER} (unverified)", TODAY, "1.6.0")
    assert (decision.written, decision.promoted) == ("1.5.0", "")  # the revision's cause is not promotion
    _, actions = step(Cluster("shop-prod", "1.6.0"), staging_policy(), ["1.7.0"], hold=decision.hold)
    assert actions.write_version is None and actions.create == []  # automation does not move it


def test_the_promoted_version_is_kept_while_spec_version_holds_it() -> None:
    recorded = RecordedPromotion(written="1.5.0", promoted="1.5.0")
    assert hold_of("1.5.0", False, recorded, "", "kubectl", "", TODAY).promoted == "1.5.0"
    # A person's rollback keeps spec.version: still the operator's version.
    rolled_back = hold_of("1.5.0", True, recorded, "", "", "alice", TODAY)
    assert rolled_back.hold is not None and rolled_back.promoted == "1.5.0"
    # Set by hand to 1.4.0 and back to 1.5.0 (the hold was resumed meanwhile): a person's now.
    by_hand = hold_of("1.4.0", False, recorded, "", "kubectl", "", TODAY)
    assert by_hand.promoted == ""
    after = RecordedPromotion(written="1.5.0", hold=by_hand.hold, promoted=by_hand.promoted)
    assert hold_of("1.5.0", False, after, "r-1", "kubectl", "", TODAY).promoted == ""


KEY = bytes(range(32))
WHO = DeploymentIdentity("team", "shop-prod", "uid-1", 7)


def test_the_operators_record_is_accepted() -> None:
    record = promoted_record(KEY, WHO, "1.6.0", "shop-prod-1-6-0-abc")
    assert record.startswith("1.6.0@shop-prod-1-6-0-abc@")
    assert verify_promoted(record, KEY, WHO, "1.6.0") == "shop-prod-1-6-0-abc"
    # Versions may contain "@" (the record is read from the right).
    odd = promoted_record(KEY, WHO, "1.6.0@sha", "p")
    assert verify_promoted(odd, KEY, WHO, "1.6.0@sha") == "p"


@pytest.mark.parametrize(
    ("who", "version", "key"),
    [
        (WHO, "1.7.0", KEY),  # copied to another version
        (DeploymentIdentity("team", "shop-staging", "uid-1", 7), "1.6.0", KEY),  # another Deployment
        (DeploymentIdentity("other", "shop-prod", "uid-1", 7), "1.6.0", KEY),  # another namespace
        (DeploymentIdentity("team", "shop-prod", "uid-2", 7), "1.6.0", KEY),  # deleted and made again
        (DeploymentIdentity("team", "shop-prod", "uid-1", 9), "1.6.0", KEY),  # the spec changed since
        (WHO, "1.6.0", bytes(32)),  # another key (another install)
        (WHO, "1.6.0", b""),  # no key: nothing verifies
    ],
)
def test_a_record_copied_elsewhere_or_kept_across_a_spec_change_does_not_verify(
    who: DeploymentIdentity, version: str, key: bytes
) -> None:
    record = promoted_record(KEY, WHO, "1.6.0", "shop-prod-1-6-0-abc")
    assert verify_promoted(record, key, who, version) == ""


@pytest.mark.parametrize(
    "forged",
    [
        "",
        "1.6.0",
        "1.6.0@shop-prod-1-6-0-abc",
        "1.6.0@shop-prod-1-6-0-abc@" + "0" * 64,  # a made-up MAC
        "1.6.0@@{mac}",  # the Promotion's name removed
        "1.6.0@other-promotion@{mac}",  # another Promotion's name with this MAC
        "1.7.0@shop-prod-1-6-0-abc@{mac}",  # the version edited
    ],
)
def test_a_forged_or_edited_record_does_not_verify(forged: str) -> None:
    mac = promoted_record(KEY, WHO, "1.6.0", "shop-prod-1-6-0-abc").rsplit("@", 1)[1]
    value = forged.replace("{mac}", mac)
    assert verify_promoted(value, KEY, WHO, value.split("@", 1)[0]) == ""


def test_a_short_key_signs_nothing() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        promoted_record(b"short", WHO, "1.6.0", "p")


def test_a_version_given_at_creation_is_the_baseline_not_a_hold() -> None:
    assert hold_of("1.4.0", False, RecordedPromotion(), "", "kubectl-client-side-apply", "", TODAY) == (
        HoldDecision(None, "", "1.4.0", False)
    )
    assert hold_of("", False, RecordedPromotion(), "", "", "", TODAY) == HoldDecision(None, "", "", False)


def test_the_recorded_promotion_status_reads_back_what_status_of_wrote() -> None:
    hold = Hold(ROLLBACK_HOLD, "alice", TODAY, "1.5.0")
    patch = status_of(
        prod_policy(), HoldDecision(hold, "r-1", "1.5.0"), Choice(None, "held"), Actions(), TODAY
    )
    assert RecordedPromotion.parse({"promotion": patch}) == RecordedPromotion("1.5.0", hold, "r-1")
    assert RecordedPromotion.parse(None) == RecordedPromotion()
    assert RecordedPromotion.parse({"promotion": {"hold": {"reason": "Whatever"}}}).hold is None


def test_who_set_a_field_is_the_newest_manager_that_owns_it() -> None:
    version = {"f:spec": {"f:version": {}, "f:application": {}}}
    managed = [
        {"manager": "alecton", "operation": "Update", "time": "2024-07-01T10:00:00Z", "fieldsV1": version},
        {"manager": FIELD_MANAGER, "operation": "Apply", "time": "2024-07-01T11:00:00Z", "fieldsV1": version},
        {
            "manager": "kubectl-edit",
            "operation": "Update",
            "time": "2024-07-01T11:30:00Z",
            "fieldsV1": version,
        },
        {
            "manager": "kopf",
            "operation": "Update",
            "time": "2024-07-01T12:00:00Z",
            "fieldsV1": {"f:metadata": {}},
        },
        {"manager": "bad", "time": "2024-07-01T13:00:00Z", "fieldsV1": {"f:spec": "not a map"}},
    ]
    assert field_manager_of(managed, ("spec", "version")) == "kubectl-edit"
    assert field_manager_of(managed, ("spec", "rollback")) == ""
    assert field_manager_of(None, ("spec", "version")) == ""


# ---------------------------------------------------------------------------
# Choosing


def test_a_version_outside_the_constraint_is_ignored() -> None:
    images = ["1.3.9", "1.4.0", "1.5.0", "2.0.0", "1.6.0-rc.1", "main-4f2a9c"]
    choice = choose(staging_policy(), "1.4.0", images, (), None, NOW)
    assert choice == Choice("1.5.0", "1.5.0 is the newest Image version matching semver >=1.4.0 <2")
    source = staging_runs("2.0.0", "2024-07-01T10:00:00Z")
    choice = choose(prod_policy(), "1.4.0", images, (), source, NOW)
    assert choice.version is None
    assert choice.reason == "2.0.0 runs on staging but does not match semver >=1.4.0 <2"


def test_nothing_newer_means_no_downgrade() -> None:
    choice = choose(staging_policy(), "1.5.0", ["1.4.0", "1.5.0"], (), None, NOW)
    assert choice == Choice(None, "1.5.0 is the newest version matching semver >=1.4.0 <2; nothing newer")
    choice = choose(staging_policy(), "1.7.0", ["1.4.0", "1.5.0"], (), None, NOW)  # deployed by hand earlier
    assert choice.version is None and "not newer than 1.7.0" in choice.reason
    assert (
        choose(staging_policy(), "", ["3.0.0"], (), None, NOW).reason
        == "no Image version matches semver >=1.4.0 <2"
    )


def test_the_soak_waits_exactly_as_long_as_it_has_left() -> None:
    source = staging_runs("1.5.0", "2024-07-01T11:57:00Z")
    choice = choose(prod_policy(), "1.4.0", ["1.4.0", "1.5.0"], (), source, NOW)
    assert choice == Choice(
        None,
        "1.5.0 is healthy on staging since 2024-07-01T11:57:00Z; soak 10m ends at 2024-07-01T12:07:00Z",
        wait=7 * MINUTE,
    )
    choice = choose(prod_policy(), "1.4.0", ["1.4.0", "1.5.0"], (), source, NOW + 9 * MINUTE)
    assert choice.version == "1.5.0"
    assert (
        choice.reason == "1.5.0 has been healthy on staging for 12m (soak 10m) and matches semver >=1.4.0 <2"
    )


@pytest.mark.parametrize(
    ("current", "images", "source", "why"),
    [
        ("1.5.0", ["1.5.0"], staging_runs("1.5.0", "2024-07-01T10:00:00Z"), "at 1.5.0, the version healthy"),
        ("1.6.0", ["1.5.0", "1.6.0"], staging_runs("1.5.0", "2024-07-01T10:00:00Z"), "not newer than 1.6.0"),
        ("1.4.0", ["1.4.0"], staging_runs("1.5.0", "2024-07-01T10:00:00Z"), "no Image has that version"),
        ("1.4.0", ["1.5.0"], staging_runs("1.5.0", TODAY, phase=ROLLED_BACK), "staging is RolledBack"),
        ("1.4.0", ["1.5.0"], None, "no Deployment for that target"),
    ],
)
def test_the_source_offers_nothing_to_promote(
    current: str, images: list[str], source: Source | None, why: str
) -> None:
    choice = choose(prod_policy(), current, images, (), source, NOW)
    assert choice.version is None and choice.wait is None
    assert why in choice.reason


def test_a_version_given_by_hand_is_proposed_whatever_the_policy_says() -> None:
    """`alecton promote shop prod 1.4.0`: a person decided; it still needs approval."""
    images = ["1.4.0", "1.5.0", "2.0.0"]
    policy = prod_policy()
    assert choose(policy, "1.5.0", images, (), None, NOW, requested="1.4.0") == Choice(
        "1.4.0", "proposed by hand"
    )
    failed_one = choose(policy, "1.4.0", images, {"1.5.0"}, None, NOW, requested="1.5.0")
    assert failed_one.version == "1.5.0" and "failed its health check before" in failed_one.reason
    outside = choose(policy, "1.5.0", images, (), None, NOW, requested="2.0.0")
    assert outside.version == "2.0.0" and "does not match semver >=1.4.0 <2" in outside.reason
    unknown = choose(policy, "1.5.0", images, (), None, NOW, requested="1.9.9")
    assert unknown == Choice(None, "1.9.9 was proposed by hand but no Image has that version")


# ---------------------------------------------------------------------------
# The stories


def test_a_new_image_deploys_to_staging_automatically() -> None:
    staging = Cluster("shop-staging", current="1.4.0")
    policy = staging_policy()
    choice, actions = step(staging, policy, ["1.4.0", "1.5.0"])
    name = promotion_name("shop-staging", "1.5.0", "1.5.0@values-1")
    assert actions.create == [
        {
            "name": name,
            "deployment": "shop-staging",
            "fromVersion": "1.4.0",
            "toVersion": "1.5.0",
            "reason": choice.reason,
            "digest": "1.5.0@values-1",
            "approval": {"decision": APPROVED, "digest": "1.5.0@values-1"},
        }
    ]
    assert actions.write_version == "1.5.0"
    assert actions.states == [(name, APPLIED, "wrote version 1.5.0 into spec.version (was 1.4.0)")]
    assert actions.message == f"promoting 1.4.0 to 1.5.0: {choice.reason}"
    assert (staging.current, staging.state(name)) == ("1.5.0", APPLIED)
    settled = assert_settled(staging, policy, ["1.4.0", "1.5.0"])
    assert settled.message == "1.5.0 is the newest version matching semver >=1.4.0 <2; nothing newer"


def test_after_the_soak_prod_gets_a_pending_promotion_and_approval_deploys_it() -> None:
    prod = Cluster("shop-prod", current="1.4.0")
    policy = prod_policy()
    images = ["1.4.0", "1.5.0"]
    source = staging_runs("1.5.0", "2024-07-01T11:55:00Z")

    _, soaking = step(prod, policy, images, source=source)
    assert (soaking.create, soaking.wait) == ([], 5 * MINUTE)
    assert "soak 10m ends at " in soaking.message

    _, proposed = step(prod, policy, images, source=source, now=NOW + 5 * MINUTE)
    (promotion,) = proposed.create
    assert "approval" not in promotion  # a person approves
    assert (promotion["fromVersion"], promotion["toVersion"]) == ("1.4.0", "1.5.0")
    assert proposed.write_version is None and proposed.states == []
    assert proposed.message == "version 1.5.0 waits for approval: alecton approve shop prod"
    assert prod.state(promotion["name"]) == PENDING
    assert_settled(prod, policy, images, source=source, now=NOW + 6 * MINUTE)

    prod.decide(promotion["name"], APPROVED, by="alice")
    _, approved = step(prod, policy, images, source=source, now=NOW + 7 * MINUTE)
    assert approved.write_version == "1.5.0"
    assert approved.states == [
        (promotion["name"], APPLIED, "wrote version 1.5.0 into spec.version (was 1.4.0)")
    ]
    assert approved.decided == [(promotion["name"], APPROVED, "alice")]  # news: who approved
    assert proposed.decided == []
    assert prod.current == "1.5.0"
    assert_settled(prod, policy, images, source=source, now=NOW + 8 * MINUTE)


def test_inputs_changing_after_approval_void_the_approval_and_propose_again() -> None:
    """Alice approved 1.5.0 with the values she saw; new values need a new look."""
    prod = Cluster("shop-prod", current="1.4.0")
    policy = prod_policy()
    images = ["1.4.0", "1.5.0"]
    source = staging_runs("1.5.0", "2024-07-01T11:00:00Z")
    (first,) = step(prod, policy, images, source=source)[1].create
    prod.decide(first["name"], APPROVED, by="alice")

    _, actions = step(prod, policy, images, source=source, inputs="values-2")
    (second,) = actions.create
    assert second["digest"] == "1.5.0@values-2" and second["name"] != first["name"]
    assert actions.write_version is None
    assert actions.states == [
        (first["name"], SUPERSEDED, f"the inputs changed after approval; proposed again as {second['name']}")
    ]
    assert prod.open_promotions() == [second["name"]]
    assert_settled(prod, policy, images, source=source, inputs="values-2")


def test_an_approval_given_for_other_inputs_is_no_approval() -> None:
    prod = Cluster("shop-prod", current="1.4.0")
    policy = prod_policy()
    source = staging_runs("1.5.0", "2024-07-01T11:00:00Z")
    (promotion,) = step(prod, policy, ["1.5.0"], source=source)[1].create
    prod.decide(promotion["name"], APPROVED, by="alice", digest="1.5.0@values-0")
    _, actions = step(prod, policy, ["1.5.0"], source=source)
    assert actions.write_version is None and actions.states == []
    assert "was for other inputs" in actions.message and "alecton approve shop prod" in actions.message


def test_a_version_that_failed_on_staging_is_never_proposed_for_prod() -> None:
    prod = Cluster("shop-prod", current="1.4.0")
    images = ["1.4.0", "1.5.0", "1.5.1"]
    failed = {"1.5.0"}  # from staging's status.failedVersions
    # Staging was rolled back to 1.5.0's predecessor, then someone redeployed 1.5.0 and it looks healthy.
    source = staging_runs("1.5.0", "2024-07-01T10:00:00Z")
    choice, actions = step(prod, prod_policy(), images, failed=failed, source=source)
    assert choice.version is None and "failed its health check before" in choice.reason
    assert actions.create == []
    # Without a source target, the newest version that did not fail is taken.
    choice = choose(staging_policy(), "1.4.0", ["1.4.0", "1.4.1", "1.5.0"], failed, None, NOW)
    assert choice.version == "1.4.1" and "skipping 1.5.0" in choice.reason


def test_an_applied_promotion_whose_version_failed_becomes_failed() -> None:
    staging = Cluster("shop-staging", current="1.4.0")
    policy = staging_policy()
    (promotion,) = step(staging, policy, ["1.4.0", "1.5.0"])[1].create
    assert staging.state(promotion["name"]) == APPLIED
    # The controller rolled 1.5.0 back after its health check failed.
    _, actions = step(staging, policy, ["1.4.0", "1.5.0"], failed={"1.5.0"})
    assert actions.states == [(promotion["name"], FAILED, "version 1.5.0 failed its health check")]
    assert actions.create == [] and actions.write_version is None
    assert_settled(staging, policy, ["1.4.0", "1.5.0"], failed={"1.5.0"})


def test_a_rejected_promotion_is_not_proposed_again() -> None:
    prod = Cluster("shop-prod", current="1.4.0")
    policy = prod_policy()
    source = staging_runs("1.5.0", "2024-07-01T11:00:00Z")
    (promotion,) = step(prod, policy, ["1.5.0"], source=source)[1].create
    prod.decide(promotion["name"], REJECTED, by="bob")
    _, actions = step(prod, policy, ["1.5.0"], source=source)
    assert actions.states == [(promotion["name"], REJECTED, "rejected by bob")]
    assert actions.decided == [(promotion["name"], REJECTED, "bob")]
    assert "rejected by bob" in actions.message
    again = assert_settled(prod, policy, ["1.5.0"], source=source)
    assert again.decided == []  # said once
    assert "rejected by bob" in again.message and prod.current == "1.4.0"


def test_a_newer_version_supersedes_a_pending_one() -> None:
    prod = Cluster("shop-prod", current="1.4.0")
    policy = staging_policy(approval=MANUAL)
    (old,) = step(prod, policy, ["1.4.0", "1.5.0"])[1].create
    _, actions = step(prod, policy, ["1.4.0", "1.5.0", "1.6.0"])
    (new,) = actions.create
    assert new["toVersion"] == "1.6.0" and new["fromVersion"] == "1.4.0"
    assert actions.states == [(old["name"], SUPERSEDED, "superseded by 1.6.0")]
    assert prod.open_promotions() == [new["name"]]


def test_a_pending_promotion_that_no_longer_qualifies_is_superseded() -> None:
    prod = Cluster("shop-prod", current="1.4.0")
    policy = prod_policy()
    (promotion,) = step(prod, policy, ["1.5.0"], source=staging_runs("1.5.0", "2024-07-01T11:00:00Z"))[
        1
    ].create
    degraded = staging_runs("1.5.0", TODAY, phase=DEGRADED)
    _, actions = step(prod, policy, ["1.5.0"], source=degraded)
    ((name, state, message),) = actions.states
    assert (name, state) == (promotion["name"], SUPERSEDED)
    assert message == "no longer qualifies: nothing to promote from staging: staging is Degraded"


def test_closed_windows_make_automatic_promotion_wait_for_the_next_opening() -> None:
    office_hours = [{"schedule": "0 9 * * 1-5", "duration": "8h"}]
    policy = staging_policy(windows=office_hours)
    staging = Cluster("shop-staging", current="1.4.0")
    saturday = at("2024-07-06T12:00:00Z")
    _, actions = step(staging, policy, ["1.5.0"], now=saturday)
    (promotion,) = actions.create
    assert promotion["approval"]["decision"] == APPROVED
    assert actions.write_version is None
    assert actions.wait == at("2024-07-08T09:00:00Z") - saturday  # Monday 09:00
    assert "waiting for the window; opens at 2024-07-08T09:00:00Z" in actions.message
    assert staging.state(promotion["name"]) == APPROVED
    assert_settled(staging, policy, ["1.5.0"], now=saturday + 3600)

    _, monday = step(staging, policy, ["1.5.0"], now=at("2024-07-08T09:00:00Z"))
    assert monday.write_version == "1.5.0"
    assert staging.state(promotion["name"]) == APPLIED


def test_a_person_who_approves_is_not_kept_waiting_for_a_window() -> None:
    policy = prod_policy(windows=[{"schedule": "0 9 * * 1-5", "duration": "8h"}])
    prod = Cluster("shop-prod", current="1.4.0")
    saturday = at("2024-07-06T12:00:00Z")
    source = staging_runs("1.5.0", "2024-07-06T10:00:00Z")
    (promotion,) = step(prod, policy, ["1.5.0"], source=source, now=saturday)[1].create
    prod.decide(promotion["name"], APPROVED, by="alice")
    _, actions = step(prod, policy, ["1.5.0"], source=source, now=saturday)
    assert actions.write_version == "1.5.0" and actions.wait is None


def test_the_shorter_wait_wins_between_soak_and_window() -> None:
    policy = PromotionPolicy.parse(
        {
            "versions": RANGE,
            "from": "staging",
            "soak": "1h",
            "windows": [{"schedule": "0 9 * * 1-5", "duration": "8h"}],
        }
    )
    prod = Cluster("shop-prod", current="1.4.0")
    friday_evening = at("2024-07-05T18:00:00Z")
    _, actions = step(
        prod, policy, ["1.5.0"], source=staging_runs("1.5.0", "2024-07-05T17:30:00Z"), now=friday_evening
    )
    assert actions.wait == 30 * MINUTE  # the soak ends first; the window is checked then


def test_a_proposal_by_hand_goes_through_approval_and_may_downgrade() -> None:
    prod = Cluster("shop-prod", current="1.5.0")
    policy = prod_policy()
    images = ["1.4.0", "1.5.0"]
    _, actions = step(prod, policy, images, requested="1.4.0")
    (promotion,) = actions.create
    assert (promotion["toVersion"], promotion["reason"]) == ("1.4.0", "proposed by hand")
    assert actions.write_version is None  # Manual: a person approves first
    prod.decide(promotion["name"], APPROVED, by="alice")
    _, actions = step(prod, policy, images, requested="1.4.0")
    assert actions.write_version == "1.4.0"
    settled = assert_settled(prod, policy, images, requested="1.4.0")
    assert settled.message == "at 1.4.0"


def test_a_superseded_promotion_comes_back_when_its_exact_proposal_qualifies_again() -> None:
    """Its name is taken, so it cannot be created anew; the approval was for these inputs."""
    prod = Cluster("shop-prod", current="1.4.0")
    policy = prod_policy()
    source = staging_runs("1.5.0", "2024-07-01T11:00:00Z")
    (first,) = step(prod, policy, ["1.5.0"], source=source)[1].create
    prod.decide(first["name"], APPROVED, by="alice")
    step(prod, policy, ["1.5.0"], source=source, inputs="values-2")  # supersedes the approved one
    assert prod.state(first["name"]) == SUPERSEDED
    _, back = step(prod, policy, ["1.5.0"], source=source)  # the values were reverted
    assert back.create == [] and back.write_version == "1.5.0"
    assert prod.state(first["name"]) == APPLIED
    assert all(prod.state(name) != PENDING for name in prod.objects)


def test_promotions_of_other_deployments_are_left_alone() -> None:
    prod = Cluster("shop-prod", current="1.4.0")
    foreign = {"metadata": {"name": "shop-staging-1-5-0-aaaaaaaaaa"}, "spec": {"deployment": "shop-staging"}}
    prod.objects["shop-staging-1-5-0-aaaaaaaaaa"] = {**foreign, "status": {}}
    _, actions = step(prod, staging_policy(approval=MANUAL), ["1.6.0"])
    assert [name for name, _, _ in actions.states] == []


# ---------------------------------------------------------------------------
# Restarts and idempotence


def test_a_restarted_operator_proposes_nothing_twice() -> None:
    """Two operator processes (or one before and after a restart) see the same inputs: they
    compute the same names, and the second create of a name is a no-op."""
    policy = prod_policy()
    source = staging_runs("1.5.0", "2024-07-01T11:00:00Z")
    prod = Cluster("shop-prod", current="1.4.0")
    before = choose(policy, prod.current, ["1.5.0"], (), source, NOW)
    first = act(policy, "shop-prod", prod.current, before, "d", prod.records(), (), NOW, None)
    second = act(policy, "shop-prod", prod.current, before, "d", prod.records(), (), NOW, None)
    assert first == second
    prod.apply(first)
    prod.apply(second)  # the other process's create loses with AlreadyExists
    assert len(prod.objects) == 1
    after_restart = act(policy, "shop-prod", prod.current, before, "d", prod.records(), (), NOW + 1, None)
    assert (after_restart.create, after_restart.states, after_restart.write_version) == ([], [], None)


def test_a_crash_between_writing_the_version_and_the_state_is_recognised() -> None:
    """spec.version was written, the Promotion's state was not: it is applied, not superseded."""
    staging = Cluster("shop-staging", current="1.4.0")
    policy = staging_policy()
    choice = choose(policy, "1.4.0", ["1.5.0"], (), None, NOW)
    actions = act(policy, "shop-staging", "1.4.0", choice, "d", staging.records(), (), NOW, None)
    staging.apply(Actions(create=actions.create, write_version=actions.write_version))  # states lost
    (name,) = staging.objects
    assert staging.state(name) == PENDING and staging.current == "1.5.0"
    _, recovered = step(staging, policy, ["1.5.0"])
    assert recovered.states == [(name, APPLIED, "version 1.5.0 is in spec.version")]
    assert recovered.write_version is None


VERSIONS = ["1.3.0", "1.4.0", "1.4.1", "1.5.0", "1.6.0", "2.0.0", "main"]
EVENTS = st.one_of(
    st.tuples(st.just("image"), st.sampled_from(VERSIONS)),
    st.tuples(st.just("inputs"), st.sampled_from(["values-1", "values-2", "values-3"])),
    st.tuples(st.just("approve"), st.booleans()),  # True: for the digest shown, False: a stale one
    st.tuples(st.just("reject"), st.just(True)),
    st.tuples(st.just("fail"), st.just(True)),
    st.tuples(st.just("time"), st.sampled_from([0.0, 3600.0, 86_400.0])),
)


@settings(max_examples=200, deadline=None)
@given(
    approval=st.sampled_from([AUTOMATIC, MANUAL]),
    windowed=st.booleans(),
    start=st.sampled_from(["", "1.4.0", "1.5.0"]),
    events=st.lists(EVENTS, max_size=12),
)
def test_every_step_is_idempotent_and_leaves_at_most_one_open_promotion(
    approval: str, windowed: bool, start: str, events: list[tuple[str, Any]]
) -> None:
    windows = [{"schedule": "0 9 * * 1-5", "duration": "8h"}] if windowed else []
    policy = staging_policy(approval=approval, windows=windows)
    cluster = Cluster("shop-prod", current=start)
    images: list[str] = ["1.4.0"]
    failed: set[str] = set()
    inputs, now = "values-1", at("2024-07-06T12:00:00Z")  # a Saturday: windows closed
    for kind, value in events:
        if kind == "image":
            images.append(value)
        elif kind == "inputs":
            inputs = value
        elif kind == "time":
            now += value
        elif kind == "fail" and cluster.current:
            failed.add(cluster.current)
        elif kind in ("approve", "reject") and cluster.open_promotions():
            name = cluster.open_promotions()[-1]
            digest = None if value else "stale"
            cluster.decide(name, APPROVED if kind == "approve" else REJECTED, by="alice", digest=digest)
        names_before = set(cluster.objects)
        _, actions = step(cluster, policy, images, inputs=inputs, failed=failed, now=now)
        assert len(actions.create) <= 1
        assert not {spec["name"] for spec in actions.create} & names_before  # nothing proposed twice
        assert_settled(cluster, policy, images, inputs=inputs, failed=failed, now=now)
        assert len(cluster.open_promotions()) <= 1
        assert cluster.current in ("", start, *images)  # only ever versions that exist (or the start)


# ---------------------------------------------------------------------------
# Status


def test_the_status_says_what_automation_does_and_what_it_recorded() -> None:
    policy = staging_policy()
    staging = Cluster("shop-staging", current="1.4.0")
    hold = HoldDecision(None, "r-1", "1.4.0")
    choice, actions = step(staging, policy, ["1.5.0"])
    assert status_of(policy, hold, choice, actions, TODAY) == {
        "policy": "semver >=1.4.0 <2, approval Automatic",
        "written": "1.5.0",
        "promoted": "1.5.0",  # written by the operator itself: its revision's cause is promotion
        "resumed": "r-1",
        "hold": None,
        "candidate": "1.5.0",
        "message": actions.message,
        "checkedAt": TODAY,
    }
    choice, actions = step(staging, policy, ["1.5.0"])
    patch = status_of(policy, HoldDecision(None, "r-1", "1.5.0"), choice, actions, TODAY)
    assert (patch["written"], patch["candidate"]) == ("1.5.0", None)
    held = HoldDecision(Hold(MANUAL_DEPLOY_HOLD, "kubectl-edit", TODAY, "1.3.0"), "", "1.5.0")
    assert status_of(policy, held, choice, actions, TODAY)["hold"] == {
        "reason": MANUAL_DEPLOY_HOLD,
        "by": "kubectl-edit",
        "since": TODAY,
        "version": "1.3.0",
    }


def test_no_automatic_downgrade_from_a_version_outside_the_policy() -> None:
    policy = PromotionPolicy.parse({"versions": {"semver": ">=1.4.0 <2"}})
    choice = choose(policy, "2.1.0", ["1.9.0", "2.1.0"], (), None, 0.0)
    assert choice.version is None
