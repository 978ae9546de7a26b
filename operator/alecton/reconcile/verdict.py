"""What a health assessment means for a Deployment's phase: a pure decision.

`Verifying` waits for the release to become healthy, fails early on a failed object
and fails at its deadline; the settled phases (`Deployed`, `RolledBack`) turn
`Degraded` when their objects stop being healthy and come back when they are again.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from alecton.reconcile.health import ReleaseHealth, State

VERIFYING, DEPLOYED, DEGRADED, ROLLED_BACK = "Verifying", "Deployed", "Degraded", "RolledBack"
HEALTH_PHASES = frozenset({VERIFYING, DEPLOYED, DEGRADED, ROLLED_BACK})


class Outcome(enum.Enum):
    WAIT = "Wait"  # nothing new to write
    HEALTHY = "Healthy"  # Verifying or Degraded -> the settled phase
    PROGRESS = "Progress"  # still Verifying: what is not healthy yet
    FAILED = "Failed"  # Verifying failed: early (a failed object) or at the deadline
    DEGRADED = "Degraded"  # a settled release whose objects are not healthy


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    timed_out: bool = False
    wake_in: float | None = None  # seconds until the deadline, to look again then


def health_outcome(phase: str, health: ReleaseHealth | None, now: float, deadline: float) -> Verdict:
    """`health` None: not every watch has listed yet."""
    if phase == VERIFYING:
        remaining = deadline - now if deadline else 0.0
        if health is not None and health.state is State.CURRENT:
            return Verdict(Outcome.HEALTHY)
        if health is not None and health.state is State.FAILED:
            return Verdict(Outcome.FAILED)
        if remaining <= 0:
            return Verdict(Outcome.FAILED, timed_out=True)
        return Verdict(Outcome.PROGRESS if health is not None else Outcome.WAIT, wake_in=remaining)
    if health is None:
        return Verdict(Outcome.WAIT)
    if health.state is State.CURRENT:
        return Verdict(Outcome.HEALTHY if phase == DEGRADED else Outcome.WAIT)
    return Verdict(Outcome.DEGRADED)
