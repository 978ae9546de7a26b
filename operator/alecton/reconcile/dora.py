"""DORA figures from release news: deployment frequency, lead time for changes, change
failure rate and time to restore, per (namespace, application, target). Pure.

One state machine (`advance`) reads one piece of news at a time and says what it completed
(`Finding`s); the batch figures (`dora_figures`, over stored ReleaseRecords) and the live
Prometheus metrics (`handlers.dora_metrics`) both use it, so the two never disagree.

What counts:
- A **deploy** is a version that reached the target: `Deployed` without health checks, or
  `Healthy` after a verifying `Deployed` (success); `Failed` with reason HealthCheckFailed or
  an automatic `RolledBack` (change failure). Each (version, revision) counts once. A helm
  failure is no deploy (nothing new ran) but does start an incident.
- **Lead time**: from the version's source commit (`source.committedAt`), else the Image's
  creation, to the first successful deploy of that version on the target.
- **Time to restore**: from the first `Failed`, `Degraded` or automatic `RolledBack` to the
  next `Healthy` or `Deployed` without health checks.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from alecton.reconcile.news import Kind, News
from alecton.reconcile.times import epoch

HEALTH_CHECK_FAILED = "HealthCheckFailed"
AUTOMATIC = "automatic"
DAY = 86400.0
# Bounded memory per stream in the live sink: versions and deploys older than this many are
# forgotten (a forgotten deploy could only be counted twice if its news came again).
REMEMBERED = 128

StreamKey = tuple[str, str, str]  # namespace, application, target
DeployId = tuple[str, int]  # version, revision


@dataclass(frozen=True)
class Record:
    """One ReleaseRecord's spec: the news, and where its version came from."""

    news: News
    committed_at: str = ""  # spec.source.committedAt
    image_created_at: str = ""  # spec.imageCreatedAt

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Record | None:
        """None for a spec that is not readable news (an unknown kind, a missing field)."""
        try:
            news = News.from_dict(spec)
        except (KeyError, ValueError, TypeError, AttributeError):
            return None
        source = spec.get("source")
        committed = source.get("committedAt") if isinstance(source, dict) else ""
        return cls(news, str(committed or ""), str(spec.get("imageCreatedAt") or ""))

    @property
    def origin(self) -> tuple[float, str]:
        """(epoch, "commit" | "image") of the version's origin; (0, "") when unknown."""
        if epoch(self.committed_at):
            return epoch(self.committed_at), "commit"
        if epoch(self.image_created_at):
            return epoch(self.image_created_at), "image"
        return 0.0, ""


# ----- what one piece of news completes ------------------------------------------------------
@dataclass(frozen=True)
class Deploy:
    version: str
    revision: int
    success: bool
    at: float


@dataclass(frozen=True)
class LeadTime:
    version: str
    seconds: float
    at: float  # when the version was first healthy
    origin: str  # commit | image


@dataclass(frozen=True)
class Restore:
    started: float
    at: float

    @property
    def seconds(self) -> float:
        return max(0.0, self.at - self.started)


Finding = Deploy | LeadTime | Restore


@dataclass(frozen=True)
class StreamState:
    """What one (namespace, application, target) remembers between pieces of news."""

    pending: DeployId | None = None  # a verifying deploy awaiting its verdict
    counted: tuple[DeployId, ...] = ()  # deploys already counted (newest last)
    healthy_versions: tuple[str, ...] = ()  # versions whose lead time was measured
    incident_since: float | None = None  # the first failure not yet restored
    origins: dict[str, tuple[float, str]] = field(default_factory=dict, compare=False)


def _remember(items: tuple[Any, ...], item: Any) -> tuple[Any, ...]:
    return (*items, item)[-REMEMBERED:]


def _count(
    state: StreamState, deploy: DeployId, success: bool, at: float
) -> tuple[StreamState, list[Finding]]:
    if deploy in state.counted:
        return state, []
    state = replace(state, counted=_remember(state.counted, deploy))
    return state, [Deploy(deploy[0], deploy[1], success, at)]


def _lead_time(
    state: StreamState, record: Record, version: str, at: float
) -> tuple[StreamState, list[Finding]]:
    if not version or version in state.healthy_versions:
        return state, []
    state = replace(state, healthy_versions=_remember(state.healthy_versions, version))
    origin, kind = record.origin
    if not origin:
        origin, kind = state.origins.get(version, (0.0, ""))
    if not origin or at < origin:  # unknown, or clocks that disagree: no figure beats a wrong one
        return state, []
    return state, [LeadTime(version, at - origin, at, kind)]


def _restored(state: StreamState, at: float) -> tuple[StreamState, list[Finding]]:
    if state.incident_since is None:
        return state, []
    return replace(state, incident_since=None), [Restore(state.incident_since, at)]


def _failing(state: StreamState, at: float) -> StreamState:
    return state if state.incident_since is not None else replace(state, incident_since=at)


def _succeeded(
    state: StreamState, record: Record, deploy: DeployId | None, at: float
) -> tuple[StreamState, list[Finding]]:
    found: list[Finding] = []
    if deploy is not None:
        state, counted = _count(state, deploy, True, at)
        found += counted
        if counted:
            state, lead = _lead_time(state, record, deploy[0], at)
            found += lead
    state, restore = _restored(state, at)
    return state, found + restore


def advance(state: StreamState, record: Record, at: float) -> tuple[StreamState, list[Finding]]:
    """The next state of one stream after one piece of news at `at` (epoch seconds)."""
    news = record.news
    origin = record.origin
    if news.version and origin[0] and news.version not in state.origins:
        origins = list({**state.origins, news.version: origin}.items())[-REMEMBERED:]
        state = replace(state, origins=dict(origins))
    if news.kind is Kind.DEPLOYED and news.verifying:
        return replace(state, pending=(news.version, news.revision)), []
    if news.kind is Kind.DEPLOYED:
        return _succeeded(replace(state, pending=None), record, (news.version, news.revision), at)
    if news.kind is Kind.HEALTHY:
        pending = state.pending
        deploy = pending if pending is not None and (not news.version or news.version == pending[0]) else None
        return _succeeded(replace(state, pending=None), record, deploy, at)
    if news.kind is Kind.FAILED and news.reason == HEALTH_CHECK_FAILED:
        deploy = state.pending or (news.version, news.revision)
        state, found = _count(replace(state, pending=None), deploy, False, at)
        return _failing(state, at), found
    if news.kind is Kind.ROLLED_BACK and news.cause == AUTOMATIC:
        # The deploy being verified failed and was rolled back (its own news says the version
        # it went back to; `previous_version` is the one that failed).
        deploy = state.pending or (news.previous_version, 0)
        state, found = _count(replace(state, pending=None), deploy, False, at)
        return _failing(state, at), found
    if news.kind is Kind.FAILED and not news.reason.startswith("Uninstall"):
        return _failing(state, at), []
    if news.kind is Kind.DEGRADED:
        return _failing(state, at), []
    if news.kind is Kind.UNINSTALLED:  # gone: nothing is left to restore
        return replace(state, pending=None, incident_since=None), []
    return state, []


# ----- batch figures over stored records ----------------------------------------------------
# Stored times have one-second resolution: of two pieces of news in one second, the one a
# release produces first goes first.
_ORDER = {
    Kind.DEPLOY_STARTED: 0,
    Kind.DEPLOYED: 1,
    Kind.FAILED: 2,
    Kind.ROLLED_BACK: 3,
    Kind.DEGRADED: 4,
    Kind.HEALTHY: 5,
    Kind.UNINSTALLED: 6,
}


@dataclass(frozen=True)
class Day:
    date: str  # YYYY-MM-DD (UTC)
    successes: int = 0
    failures: int = 0


@dataclass(frozen=True)
class Figures:
    """The DORA figures of one (namespace, application, target) over [since, until]."""

    namespace: str
    application: str
    target: str
    since: float
    until: float
    deploys: int = 0
    change_failures: int = 0
    lead_times: tuple[LeadTime, ...] = ()
    restores: tuple[Restore, ...] = ()
    open_incident_since: float | None = None
    daily: tuple[Day, ...] = ()

    @property
    def days(self) -> float:
        return max(self.until - self.since, 0.0) / DAY

    @property
    def deployment_frequency(self) -> float:
        """Successful deploys per day."""
        return (self.deploys - self.change_failures) / self.days if self.days else 0.0

    @property
    def change_failure_rate(self) -> float | None:
        return self.change_failures / self.deploys if self.deploys else None

    @property
    def lead_time_median(self) -> float | None:
        return percentile([lead.seconds for lead in self.lead_times], 50)

    @property
    def lead_time_p90(self) -> float | None:
        return percentile([lead.seconds for lead in self.lead_times], 90)

    @property
    def time_to_restore_median(self) -> float | None:
        return percentile([restore.seconds for restore in self.restores], 50)

    def as_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "application": self.application,
            "target": self.target,
            "since": rfc3339(self.since),
            "until": rfc3339(self.until),
            "days": round(self.days, 3),
            "deploys": self.deploys,
            "successfulDeploys": self.deploys - self.change_failures,
            "changeFailures": self.change_failures,
            "deploymentFrequencyPerDay": round(self.deployment_frequency, 3),
            "changeFailureRate": _rounded(self.change_failure_rate, 4),
            "leadTimeSeconds": {
                "median": _rounded(self.lead_time_median, 1),
                "p90": _rounded(self.lead_time_p90, 1),
                "count": len(self.lead_times),
            },
            "timeToRestoreSeconds": {
                "median": _rounded(self.time_to_restore_median, 1),
                "count": len(self.restores),
            },
            "openIncidentSince": rfc3339(self.open_incident_since) if self.open_incident_since else None,
            "leadTimes": [
                {
                    "version": lead.version,
                    "seconds": round(lead.seconds, 1),
                    "at": rfc3339(lead.at),
                    "origin": lead.origin,
                }
                for lead in self.lead_times
            ],
            "restores": [
                {"started": rfc3339(r.started), "restored": rfc3339(r.at), "seconds": round(r.seconds, 1)}
                for r in self.restores
            ],
            "daily": [{"date": d.date, "successes": d.successes, "failures": d.failures} for d in self.daily],
        }


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def percentile(values: list[float], rank: float) -> float | None:
    """Nearest-rank percentile (the value below which `rank` % of the values lie); None when
    there are no values."""
    if not values:
        return None
    ordered = sorted(values)
    index = max(math.ceil(rank / 100 * len(ordered)) - 1, 0)
    return ordered[min(index, len(ordered) - 1)]


def rfc3339(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ordered(records: Iterable[Record]) -> list[tuple[float, Record]]:
    """Readable records in the order things happened, each piece of news once (by its key:
    the earliest copy is kept)."""
    timed = [
        (moment, _ORDER.get(record.news.kind, 7), index, record)
        for index, record in enumerate(records)
        if (moment := epoch(record.news.time))
    ]
    timed.sort(key=lambda item: item[:3])
    seen: set[str] = set()
    found: list[tuple[float, Record]] = []
    for moment, _, _, record in timed:
        if record.news.key not in seen:
            seen.add(record.news.key)
            found.append((moment, record))
    return found


def stream_of(news: News) -> StreamKey:
    return (news.namespace, news.application, news.target)


def dora_figures(records: Iterable[Record], since: float, until: float) -> list[Figures]:
    """The figures of every stream over [since, until] (epoch seconds). Every record counts for
    the state (an incident opened before `since` and restored inside it is measured in full);
    only what completes inside the period is counted."""
    states: dict[StreamKey, StreamState] = {}
    found: dict[StreamKey, list[Finding]] = {}
    for moment, record in ordered(records):
        key = stream_of(record.news)
        if moment > until:
            continue
        state, findings = advance(states.get(key, StreamState()), record, moment)
        states[key] = state
        found.setdefault(key, []).extend(f for f in findings if since <= f.at <= until)
    return [_figures(key, found.get(key, []), states[key], since, until) for key in sorted(states)]


def _figures(
    key: StreamKey, findings: list[Finding], state: StreamState, since: float, until: float
) -> Figures:
    deploys = [f for f in findings if isinstance(f, Deploy)]
    return Figures(
        namespace=key[0],
        application=key[1],
        target=key[2],
        since=since,
        until=until,
        deploys=len(deploys),
        change_failures=sum(1 for d in deploys if not d.success),
        lead_times=tuple(f for f in findings if isinstance(f, LeadTime)),
        restores=tuple(f for f in findings if isinstance(f, Restore)),
        open_incident_since=state.incident_since,
        daily=_daily(deploys, since, until),
    )


def _daily(deploys: list[Deploy], since: float, until: float) -> tuple[Day, ...]:
    """One entry per UTC day of the period (at most 366, the newest), zeros included."""
    first = dt.datetime.fromtimestamp(max(since, until - 365 * DAY), dt.UTC).date()
    last = dt.datetime.fromtimestamp(until, dt.UTC).date()
    days: dict[str, list[int]] = {}
    current = first
    while current <= last:
        days[current.isoformat()] = [0, 0]
        current += dt.timedelta(days=1)
    for deploy in deploys:
        date = dt.datetime.fromtimestamp(deploy.at, dt.UTC).date().isoformat()
        if date in days:
            days[date][0 if deploy.success else 1] += 1
    return tuple(Day(date, ok, failed) for date, (ok, failed) in days.items())


_PERIOD = re.compile(r"(\d+)([smhdw])", re.ASCII)
_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": DAY, "w": 7 * DAY}


def period_seconds(text: str) -> float:
    """ "30d", "2w", "12h", "1d12h" -> seconds. Positive, at most ten years."""
    body = (text or "").strip()
    parts = _PERIOD.findall(body)
    if not parts or "".join(n + u for n, u in parts) != body:
        raise ValueError(f"a period is a number with a unit (s, m, h, d, w), like 30d, not {text!r}")
    seconds = sum(int(number) * _UNIT[unit] for number, unit in parts)
    if not 0 < seconds <= 3660 * DAY:
        raise ValueError(f"a period must be positive and at most ten years, not {text!r}")
    return seconds
