"""What a Notifier's status says."""

from __future__ import annotations

from alecton.reconcile.notify_status import (
    ADDRESS_REFUSED,
    FAILURE,
    SKIPPED,
    SUCCESS,
    Delivered,
    NotifierState,
    ready,
    status_patch,
)

NOW = "2026-12-03T06:00:00Z"


def test_a_new_notifier_is_ready_and_waiting() -> None:
    condition = ready(NotifierState())
    assert (condition.status, condition.reason) == (True, "Ready")


def test_failures_count_and_make_it_not_ready_until_a_success() -> None:
    state = NotifierState.resume({"failures": 2, "dropped": 1}, generation=4)
    state.record(Delivered(NOW, "Deployed", "k1", FAILURE, 503, "HTTP 503"))
    assert state.failures == 3 and state.retrying
    assert (ready(state).status, ready(state).reason) == (False, "DeliveryFailing")
    assert "HTTP 503" in ready(state).message
    state.record(Delivered(NOW, "Deployed", "k1", SUCCESS, 200))
    patch = status_patch(state, {}, NOW)
    assert patch["failures"] == 3 and patch["dropped"] == 1 and patch["observedGeneration"] == 4
    assert patch["lastDelivery"] == {
        "time": NOW, "kind": "Deployed", "key": "k1", "result": "success", "httpStatus": 200, "reason": None
    }  # fmt: skip
    assert patch["conditions"][0]["status"] == "True" and patch["conditions"][0]["reason"] == "Delivered"
    assert patch["lastError"] == "HTTP 503"  # the last error stays visible after recovery


def test_a_refused_address_is_a_clear_condition() -> None:
    state = NotifierState(problem=(ADDRESS_REFUSED, "receiver address refused: 0.0.0.0 is unspecified"))
    patch = status_patch(state, {}, NOW)
    assert patch["conditions"][0]["reason"] == ADDRESS_REFUSED
    assert patch["conditions"][0]["status"] == "False"
    assert "lastDelivery" not in patch


def test_a_skip_is_recorded_with_its_reason_and_is_not_a_failure() -> None:
    state = NotifierState()
    state.record(Delivered(NOW, "Healthy", "k", SKIPPED, reason="no source"))
    patch = status_patch(state, {}, NOW)
    assert patch["failures"] == 0 and patch["lastDelivery"]["reason"] == "no source"
    assert patch["lastDelivery"]["httpStatus"] is None


def test_suspended() -> None:
    assert ready(NotifierState(suspended=True)).reason == "Suspended"
