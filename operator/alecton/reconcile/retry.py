"""When to try again: backoff after failures, the wait of a failed attempt at the same
inputs, targets that cannot be reached, and releases a killed helm left locked. Pure."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from alecton.reconcile.plan import RecordedStatus
from alecton.reconcile.release import PENDING_STATUSES, HistoryEntry
from alecton.reconcile.times import epoch


def retry_wait(recorded: RecordedStatus, fingerprint: str, now: float) -> float:
    """Seconds to wait before retrying `fingerprint`; 0 when it may run now, infinity when
    only a change of the inputs (or a retry request) may run it again.

    Only the inputs that failed wait: a spec change (new fingerprint) runs at once.
    """
    if recorded.failed_fingerprint != fingerprint:
        return 0.0
    if recorded.stalled_fingerprint == fingerprint:
        return math.inf
    return max(0.0, recorded.retry_after - now)


@dataclass(frozen=True)
class Repair:
    """How to unlock a release a killed helm left in `pending-*`."""

    stuck_status: str
    rollback_to: int | None  # None: no good revision, uninstall instead

    @property
    def description(self) -> str:
        if self.rollback_to is None:
            return f"release was stuck in {self.stuck_status} with no good revision: uninstalled it"
        return f"release was stuck in {self.stuck_status}: rolled back to revision {self.rollback_to}"


@dataclass(frozen=True)
class LiveLock:
    """A pending-* revision that may still belong to a running helm: not to be touched."""

    stuck_status: str
    revision: int
    repair_after: float  # epoch seconds

    @property
    def description(self) -> str:
        when = dt.datetime.fromtimestamp(self.repair_after, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return (
            f"another operation (install/upgrade/rollback) is in progress: revision {self.revision} "
            f"is {self.stuck_status} and may still be running, so it is not repaired before {when}"
        )


def plan_repair(history: list[HistoryEntry], now: float, stale_after: float) -> Repair | LiveLock | None:
    """`history` newest first. None when the release is not stuck. A pending revision
    younger than `stale_after` seconds (helm's timeout plus a grace) may belong to a helm
    that is still running, a person's or ours from before a restart: it is a LiveLock."""
    if not history or history[0].status not in PENDING_STATUSES:
        return None
    stuck = history[0]
    updated = epoch(stuck.updated)
    if not updated or now - updated < stale_after:
        return LiveLock(stuck.status, stuck.revision, (updated or now) + stale_after)
    good = next((e for e in history[1:] if e.status in ("deployed", "superseded")), None)
    return Repair(stuck.status, good.revision if good else None)


_UNREACHABLE_MARKERS = (
    "cluster unreachable",
    "connection refused",
    "i/o timeout",
    "no such host",
    "did not finish within",  # our own helm timeout
    "tls handshake timeout",
    "context deadline exceeded",
    "cannot reach the cluster",  # our own owner lookup
)


def is_unreachable(message: str) -> bool:
    """Does a helm failure say the target cluster could not be reached?"""
    lowered = message.lower()
    return any(marker in lowered for marker in _UNREACHABLE_MARKERS)


def backoff_seconds(failures: int, base: float = 5.0, cap: float = 300.0) -> float:
    """Capped exponential backoff after `failures` consecutive failures (1 -> base)."""
    if failures <= 0:
        return 0.0
    return float(min(cap, base * 2 ** (failures - 1)))
