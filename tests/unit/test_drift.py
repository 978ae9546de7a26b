"""Pure drift decisions: when to check, what status and Events say."""

from __future__ import annotations

import pytest
from alecton.api.models import Application, InvalidResourceError
from alecton.api.objects import ObjectKey
from alecton.reconcile import conditions
from alecton.reconcile.conditions import recovered
from alecton.reconcile.diff import DiffResult, diff_release, key_of
from alecton.reconcile.drift import (
    CORRECTION_FAILED,
    correction_failed,
    drift_due,
    drift_event,
    drifted_objects,
    spread,
)
from alecton.reconcile.outcomes import DriftChecked

NOW = 1_800_000_000.0


def drift_patch(
    previous: dict,
    result: DiffResult,
    revision: int,
    now: str,
    generation: int,
    requested: str,
    correction: dict | None = None,
) -> dict:
    """The status patch of a check that found `result` (as the drift action reports it)."""
    checked = DriftChecked(
        revision, result.changed, result.summary, drifted_objects(result), requested, correction
    )
    return conditions.drift_patch(previous, checked, now, generation)


CONFIG = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "c", "namespace": "n"},
    "data": {"a": "1"},
}


def app(spec_drift: dict | None = None, target_drift: dict | None = None) -> Application:
    target = {
        "name": "t",
        "cluster": "c",
        "namespace": "x",
        **({"drift": target_drift} if target_drift else {}),
    }
    spec = {"chart": "c", "image": "i", "targets": [target], **({"drift": spec_drift} if spec_drift else {})}
    return Application.parse({"metadata": {"name": "a", "namespace": "n"}, "spec": spec})


def test_spread_is_stable_and_in_range() -> None:
    assert spread("n/a") == spread("n/a") and 0 <= spread("n/a") < 1 and spread("n/a") != spread("n/b")


def test_first_check_of_a_revision_lands_within_its_first_interval() -> None:
    due = drift_due({}, 1, NOW, 600, "n/a", NOW, "")
    assert not due.now and due.wait == pytest.approx(600 * spread("n/a"))
    assert drift_due({}, 1, NOW - 601, 600, "n/a", NOW, "").now


def test_next_check_one_interval_after_the_last_and_a_request_runs_at_once() -> None:
    checked = {"checkedAt": "2027-01-15T08:00:00Z", "revision": 2, "requestId": "old"}
    at = 1_800_000_000.0  # 2027-01-15T08:00:00Z
    assert drift_due(checked, 2, 0, 600, "n/a", at + 700, "old").now
    later = drift_due(checked, 2, 0, 600, "n/a", at + 100, "old")
    assert not later.now and later.wait == pytest.approx(500)
    asked = drift_due(checked, 2, 0, 600, "n/a", at + 100, "new")
    assert asked.now and asked.requested == "new"
    assert not drift_due({**checked, "revision": 1}, 2, at + 100, 600, "n/a", at + 100, "").now


def test_status_condition_and_events() -> None:
    live = {**CONFIG, "data": {"a": "2"}}
    result = diff_release([CONFIG], {_key(): live}, mode="drift")
    patch = drift_patch({}, result, 3, "2027-01-01T00:00:00Z", 4, "r1")
    assert patch["drift"]["drifted"] and patch["drift"]["objects"][0]["fields"] == ["/data/a"]
    condition = next(c for c in patch["conditions"] if c["type"] == "Drifted")
    assert (condition["type"], condition["status"], condition["reason"]) == ("Drifted", "True", "Drifted")
    assert "ConfigMap c (changed)" in condition["message"] and patch["drift"]["requestId"] == "r1"
    assert drift_event(None, True) == ("Warning", "DriftDetected")
    assert drift_event(True, False) == ("Normal", "DriftResolved")
    assert drift_event(True, True) is None and drift_event(False, False) is None


def _conditions(patch: dict) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in patch["conditions"]}


DEPLOYED = {
    "phase": "Deployed",
    "settledPhase": "Deployed",
    "conditions": [{"type": "Ready", "status": "True", "reason": "Healthy", "message": ""}],
    "history": [
        {
            "revision": 2,
            "status": "deployed",
            "chart": "c-1",
            "appVersion": "1",
            "updated": "",
            "description": "",
        },
        {
            "revision": 1,
            "status": "superseded",
            "chart": "c-1",
            "appVersion": "1",
            "updated": "",
            "description": "",
        },
    ],
}


def _correction(result: str) -> dict:
    return {
        "at": "2027-01-01T00:00:00Z",
        "revision": 2,
        "objects": 1,
        "result": result,
        "detail": "ConfigMap c",
    }


def test_a_correction_is_recorded_on_its_revision_in_the_history() -> None:
    result = diff_release([CONFIG], {_key(): CONFIG}, mode="drift")
    patch = drift_patch(DEPLOYED, result, 2, "2027-01-01T00:00:01Z", 4, "", _correction("Succeeded"))
    assert patch["history"][0]["corrections"] == [
        {"at": "2027-01-01T00:00:00Z", "objects": 1, "result": "Succeeded"}
    ]
    assert "corrections" not in patch["history"][1]
    assert "phase" not in patch  # a good correction of a settled release changes no phase
    # Later corrections stack up, newest first, the last five kept.
    previous = DEPLOYED
    for _ in range(7):
        previous = {
            **previous,
            **drift_patch(previous, result, 2, "2027-01-01T00:00:01Z", 4, "", _correction("Succeeded")),
        }
    assert len(previous["history"][0]["corrections"]) == 5


def test_a_failed_correction_fails_the_deployment_with_backoff_and_a_good_check_restores_it() -> None:
    live = {**CONFIG, "data": {"a": "2"}}
    drifted = diff_release([CONFIG], {_key(): live}, mode="drift")
    first = {
        **DEPLOYED,
        **drift_patch(DEPLOYED, drifted, 2, "2027-01-01T00:00:00Z", 4, "", _correction("Failed")),
    }
    assert first["phase"] == "Failed" and correction_failed(first)
    assert _conditions(first)["Ready"] == ("False", CORRECTION_FAILED)
    assert (
        "drift correction of revision 2 failed: ConfigMap c (attempt 1; retrying in 5 s)" in first["message"]
    )
    assert first["drift"]["retryAt"] == "2027-01-01T00:00:05Z"
    assert first["history"][0]["corrections"][0]["result"] == "Failed"
    # Retried on the backoff, not the interval.
    at = 1_798_761_600.0  # 2027-01-01T00:00:00Z
    assert not drift_due(first["drift"], 2, 0, 600, "n/a", at + 4, "").now
    assert drift_due(first["drift"], 2, 0, 600, "n/a", at + 5, "").now
    second = {**first, **drift_patch(first, drifted, 2, "2027-01-01T00:00:05Z", 4, "", _correction("Failed"))}
    assert second["drift"]["failures"] == 2 and "retrying in 10 s" in second["message"]
    # The next correction works: back to the settled phase, Ready again, no retry pending.
    in_sync = diff_release([CONFIG], {_key(): CONFIG}, mode="drift")
    fixed = {
        **second,
        **drift_patch(second, in_sync, 2, "2027-01-01T00:00:15Z", 4, "", _correction("Succeeded")),
    }
    assert fixed["phase"] == "Deployed" and not correction_failed(fixed)
    assert _conditions(fixed)["Ready"] == ("True", "DriftCorrected") and fixed["drift"]["retryAt"] is None
    assert [c["result"] for c in fixed["history"][0]["corrections"]] == ["Succeeded", "Failed", "Failed"]
    # Turning drift off (or to Warn) also ends the failure: nothing is being corrected any more.
    off = recovered(second, "drift is no longer checked", 4, "2027-01-01T00:00:20Z")
    assert off["phase"] == "Deployed" and _conditions(off)["Ready"][0] == "True"
    warn = drift_patch(second, drifted, 2, "2027-01-01T00:00:20Z", 4, "")
    assert warn["phase"] == "Deployed" and _conditions(warn)["Drifted"][0] == "True"


def test_policy_target_overrides_and_rules_add_up() -> None:
    rule = {"kind": "Deployment", "jsonPointers": ["/spec/replicas"]}
    overridden = app({"mode": "Correct"}, {"mode": "Warn"})
    assert overridden.drift_policy(overridden.targets[0]).mode == "Warn"
    full = app({"mode": "Correct", "ignore": [rule]}, {"interval": "1m", "ignore": [{"kind": "Secret"}]})
    policy = full.drift_policy(full.targets[0])
    assert (policy.mode, policy.interval, len(policy.ignore)) == ("Correct", 60.0, 2)
    assert app().drift_policy(app().targets[0]).mode == "Warn"


@pytest.mark.parametrize(
    "drift",
    [{"mode": "Sometimes"}, {"interval": "5s"}, {"ignore": [{"jsonPointers": ["spec"]}]}, {"ignore": "x"}],
)
def test_bad_drift_settings_are_refused_with_the_field(drift: dict) -> None:
    with pytest.raises(InvalidResourceError, match="drift"):
        app(drift)


def _key() -> ObjectKey:
    return key_of(CONFIG, "n")


def test_overdue_checks_are_spread_from_when_this_process_first_considered_them() -> None:
    # Deployed long ago, never checked (drift just switched on, or a restart): not all at
    # once, but at each release's own point of the interval that starts now.
    refs = [f"n/d{i}" for i in range(200)]
    due_now = [r for r in refs if drift_due({}, 1, NOW - 86400, 600, r, NOW, "", considered_since=NOW).now]
    assert len(due_now) <= 2
    waits = [drift_due({}, 1, NOW - 86400, 600, r, NOW, "", considered_since=NOW).wait for r in refs]
    assert max(waits) < 600 and min(waits) < 60 and max(waits) > 540
    # Never earlier than one interval after the last check.
    checked = {"checkedAt": "2027-01-15T08:00:00Z", "revision": 1}
    at = 1_800_000_000.0
    assert not drift_due(checked, 1, 0, 600, "n/a", at + 300, "", considered_since=at - 3600).now


def test_a_correction_applies_only_this_releases_objects() -> None:
    """Issue 23: drift correction re-applied whatever helm's storage held, with the identity
    helm uses: a rewritten storage Secret could plant objects anywhere that identity reaches."""
    from alecton.api.objects import ObjectKey
    from alecton.reconcile.drift import correction_refusal

    mine = {
        "metadata": {
            "annotations": {"meta.helm.sh/release-name": "web", "meta.helm.sh/release-namespace": "ns"}
        }
    }
    other = {
        "metadata": {
            "annotations": {"meta.helm.sh/release-name": "db", "meta.helm.sh/release-namespace": "ns"}
        }
    }
    config = ObjectKey("v1", "ConfigMap", "ns", "web")
    assert correction_refusal(config, mine, "web", "ns") == ""
    assert correction_refusal(config, None, "web", "ns") == ""  # deleted by hand: re-created
    assert "not annotated as an object of this release" in correction_refusal(config, other, "web", "ns")
    assert "not annotated" in correction_refusal(config, {"metadata": {}}, "web", "ns")
    binding = ObjectKey("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "", "take-over")
    assert "cluster scope" in correction_refusal(binding, None, "web", "ns")
    elsewhere = ObjectKey("v1", "ConfigMap", "kube-system", "planted")
    assert "namespace 'kube-system'" in correction_refusal(elsewhere, None, "web", "ns")
