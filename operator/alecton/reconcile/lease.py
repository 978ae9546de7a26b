"""Leader election over a Kubernetes `Lease` (coordination.k8s.io/v1): the pure decisions.

Several operator replicas may run; one holds the Lease and reconciles, the others wait.
The holder renews `renewTime` every few seconds. A replica may take the Lease when it is
free (no holder: the last one stepped down) or expired (`renewTime + leaseDurationSeconds`
in the past: the holder died). The holder steps down on its own when it could not renew
for `renew_deadline` seconds, which is shorter than the duration: by the time anyone else
may take over, it has stopped its helm processes. Writes carry the Lease's
resourceVersion, so two replicas that decide to take it at once cannot both succeed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

ACQUIRE, RENEW, WAIT = "acquire", "renew", "wait"


def micro_time(moment: float) -> str:
    """A Kubernetes MicroTime (RFC 3339 with microseconds, UTC)."""
    return dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _epoch(value: Any) -> float | None:
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class LeaseRecord:
    """What a Lease's spec says about its holder."""

    holder: str = ""
    renewed: float | None = None  # epoch seconds
    acquired: float | None = None
    duration: float = 0.0
    transitions: int = 0

    @classmethod
    def parse(cls, spec: dict[str, Any] | None) -> LeaseRecord:
        spec = spec or {}
        return cls(
            holder=str(spec.get("holderIdentity") or ""),
            renewed=_epoch(spec.get("renewTime")),
            acquired=_epoch(spec.get("acquireTime")),
            duration=float(spec.get("leaseDurationSeconds") or 0),
            transitions=int(spec.get("leaseTransitions") or 0),
        )

    def expires(self) -> float:
        """When another replica may take the Lease (epoch seconds)."""
        return (self.renewed or 0.0) + self.duration


@dataclass(frozen=True)
class LeaseStep:
    action: str  # ACQUIRE, RENEW or WAIT
    spec: dict[str, Any] | None = None  # the spec to write (ACQUIRE, RENEW)
    holder: str = ""  # who holds it (WAIT)
    wait: float = 0.0  # seconds until it may be free (WAIT)


def lease_step(record: LeaseRecord | None, me: str, now: float, duration: float) -> LeaseStep:
    """What replica `me` does with the Lease now (`record` None: there is no Lease yet)."""
    if record is not None and record.holder == me:
        spec = _spec(me, now, duration, record.acquired or now, record.transitions)
        return LeaseStep(RENEW, spec)
    if record is None or not record.holder or now >= record.expires():
        transitions = 0 if record is None else record.transitions + (1 if record.holder else 0)
        return LeaseStep(ACQUIRE, _spec(me, now, duration, now, transitions))
    return LeaseStep(WAIT, holder=record.holder, wait=max(0.0, record.expires() - now))


def released(record: LeaseRecord, me: str, now: float) -> dict[str, Any] | None:
    """The spec that hands the Lease over at once on a clean shutdown (None: not ours).

    An empty holder is free to take: the standby need not wait for the duration to pass."""
    if record.holder != me:
        return None
    spec = _spec("", now, 1.0, record.acquired or now, record.transitions)
    spec["holderIdentity"] = None
    return spec


def _spec(me: str, now: float, duration: float, acquired: float, transitions: int) -> dict[str, Any]:
    return {
        "holderIdentity": me,
        "leaseDurationSeconds": max(1, round(duration)),
        "acquireTime": micro_time(acquired),
        "renewTime": micro_time(now),
        "leaseTransitions": transitions,
    }


def lost(last_renewed: float, now: float, renew_deadline: float) -> bool:
    """The holder could not renew in time: it must stop before anyone else may start."""
    return now - last_renewed >= renew_deadline
