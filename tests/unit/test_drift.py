"""Pure drift decisions: when to check, what status and Events say."""

from __future__ import annotations

import pytest
from alecton.api.models import Application, InvalidResourceError
from alecton.reconcile.diff import diff_release, key_of
from alecton.reconcile.drift import drift_due, drift_event, drift_patch, spread
from alecton.reconcile.health import ObjectKey

NOW = 1_800_000_000.0
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
    condition = patch["conditions"][0]
    assert (condition["type"], condition["status"], condition["reason"]) == ("Drifted", "True", "Drifted")
    assert "ConfigMap c (changed)" in condition["message"] and patch["drift"]["requestId"] == "r1"
    assert drift_event(None, True) == ("Warning", "DriftDetected")
    assert drift_event(True, False) == ("Normal", "DriftResolved")
    assert drift_event(True, True) is None and drift_event(False, False) is None


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
