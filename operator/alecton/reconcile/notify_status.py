"""What a Notifier's status says: the last delivery, the failures, the queue, and Ready.
Pure: the delivery loop records what happened here and writes `status_patch` now and then
(at most every few seconds, never per News)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alecton.reconcile.conditions import Condition, merge_conditions
from alecton.reconcile.status import truncate

READY = "Ready"
# Ready=False reasons
INVALID_SPEC = "InvalidSpec"
ADDRESS_REFUSED = "AddressRefused"
SECRET_NOT_FOUND = "SecretNotFound"  # noqa: S105 (a condition reason)
DELIVERY_FAILING = "DeliveryFailing"
SUSPENDED = "Suspended"
# lastDelivery.result
SUCCESS = "success"
FAILURE = "failure"
SKIPPED = "skipped"
REFUSED = "refused"


@dataclass
class Delivered:
    """One attempt, as status shows it."""

    time: str
    kind: str
    key: str
    result: str  # success | failure | skipped | refused
    http_status: int = 0
    reason: str = ""  # why skipped, refused or failed (no secrets: built by the caller from scrubbed text)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"time": self.time, "kind": self.kind, "key": self.key, "result": self.result}
        if self.http_status:
            out["httpStatus"] = self.http_status
        if self.reason:
            out["reason"] = truncate(self.reason)
        return out


@dataclass
class NotifierState:
    """What the delivery loop knows, turned into status by `status_patch`."""

    generation: int = 0
    failures: int = 0  # failed attempts, all time (carried over from the status at start)
    dropped: int = 0
    queued: int = 0
    last: Delivered | None = None
    last_error: str = ""
    problem: tuple[str, str] | None = None  # (reason, message) that makes Ready False
    suspended: bool = False
    retrying: bool = False  # the newest attempt failed and will be retried

    @classmethod
    def resume(cls, status: dict[str, Any], generation: int) -> NotifierState:
        """Counters continue from what the status said before a restart."""
        return cls(
            generation=generation,
            failures=int(status.get("failures") or 0),
            dropped=int(status.get("dropped") or 0),
        )

    def record(self, delivered: Delivered) -> None:
        self.last = delivered
        if delivered.result == FAILURE:
            self.failures += 1
            self.last_error = delivered.reason
            self.retrying = True
        elif delivered.result == SUCCESS:
            self.retrying = False
        elif delivered.result in (SKIPPED, REFUSED):
            self.retrying = False
            if delivered.result == REFUSED:
                self.last_error = delivered.reason


def ready(state: NotifierState) -> Condition:
    if state.problem is not None:
        reason, message = state.problem
        return Condition(READY, False, reason, message)
    if state.suspended:
        return Condition(READY, False, SUSPENDED, "spec.suspend is true: nothing is delivered")
    if state.retrying:
        return Condition(READY, False, DELIVERY_FAILING, f"retrying: {state.last_error}")
    if state.last is not None and state.last.result == SUCCESS:
        return Condition(READY, True, "Delivered", "the last delivery succeeded")
    return Condition(READY, True, "Ready", "waiting for news")


def status_patch(state: NotifierState, previous: dict[str, Any], now: str) -> dict[str, Any]:
    patch: dict[str, Any] = {
        "observedGeneration": state.generation,
        "conditions": merge_conditions(previous.get("conditions"), [ready(state)], state.generation, now),
        "failures": state.failures,
        "dropped": state.dropped,
        "queued": state.queued,
        "lastError": truncate(state.last_error) if state.last_error else None,
    }
    if state.last is not None:
        # A merge patch: fields this delivery lacks are nulled, not left from the one before.
        patch["lastDelivery"] = {"httpStatus": None, "reason": None, **state.last.as_dict()}
    return patch
