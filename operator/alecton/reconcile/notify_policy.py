"""Notifiers, decided: a Notifier's spec as typed settings, which News it gets, how long to
wait before the next attempt, and how fast it may send. Pure: the delivery loop
(`handlers/notifiers.py`) does the I/O and asks these functions.
"""

from __future__ import annotations

import fnmatch
from collections import OrderedDict, deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from alecton.reconcile.news import SEVERITY_RANK, Kind, News, Severity

NOTIFIER = "Notifier"
CLUSTER_NOTIFIER = "ClusterNotifier"
GITHUB_API = "https://api.github.com"
GITLAB_API = "https://gitlab.com/api/v4"


class Provider(StrEnum):
    WEBHOOK = "webhook"
    SLACK = "slack"
    TEAMS = "teams"
    CLOUDEVENTS = "cloudevents"
    GITHUB = "github"
    GITLAB = "gitlab"


COMMIT_STATUS_PROVIDERS = frozenset({Provider.GITHUB, Provider.GITLAB})


class InvalidNotifierError(ValueError):
    """A Notifier spec that cannot be used; the message says which field and why."""


@dataclass(frozen=True)
class NotifierSettings:
    kind: str  # Notifier or ClusterNotifier
    namespace: str  # "" for a ClusterNotifier
    name: str
    generation: int
    provider: Provider
    address: str = ""  # may be overridden by the Secret's `address`
    api_url: str = ""  # github/gitlab base URL
    dashboard_url: str = ""
    secret_name: str = ""
    applications: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    repositories: tuple[str, ...] = ()  # github/gitlab: commit statuses only on these (globs)
    kinds: frozenset[Kind] = frozenset()
    min_severity: Severity = Severity.INFO
    namespaces: tuple[str, ...] = ()  # ClusterNotifier only
    suspend: bool = False

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace, self.name)

    @property
    def cluster_scoped(self) -> bool:
        return self.kind == CLUSTER_NOTIFIER

    @property
    def label(self) -> str:
        """How metrics and logs name it: `ns/name` or `cluster/name`."""
        return f"{self.namespace or 'cluster'}/{self.name}"

    @property
    def commit_status(self) -> bool:
        return self.provider in COMMIT_STATUS_PROVIDERS

    def base_api_url(self) -> str:
        default = GITHUB_API if self.provider is Provider.GITHUB else GITLAB_API
        return (self.api_url or default).rstrip("/")


def _strings(spec: dict[str, Any], field: str) -> tuple[str, ...]:
    raw = spec.get(field) or []
    if not isinstance(raw, list) or not all(isinstance(item, str) and item for item in raw):
        raise InvalidNotifierError(f"spec.{field} must be a list of names or globs")
    return tuple(raw)


def _url(spec: dict[str, Any], field: str) -> str:
    raw = spec.get(field) or ""
    if not isinstance(raw, str):
        raise InvalidNotifierError(f"spec.{field} must be a string")
    if raw and not raw.startswith(("https://", "http://")):
        raise InvalidNotifierError(f"spec.{field} must be an https:// URL")
    return raw


def parse_notifier(body: dict[str, Any], kind: str = NOTIFIER) -> NotifierSettings:
    """The typed settings of a Notifier or ClusterNotifier body (the API server has checked
    the schema; this catches what an older CRD let through)."""
    meta = body.get("metadata") or {}
    spec = body.get("spec")
    if not isinstance(spec, dict):
        raise InvalidNotifierError("spec is missing")
    try:
        provider = Provider(spec.get("provider"))
    except ValueError:
        choices = ", ".join(p.value for p in Provider)
        raise InvalidNotifierError(
            f"spec.provider {spec.get('provider')!r} is not one of {choices}"
        ) from None
    try:
        kinds = frozenset(Kind(k) for k in _strings(spec, "kinds"))
    except ValueError as error:
        raise InvalidNotifierError(f"spec.kinds: {error}") from None
    try:
        severity = Severity(spec.get("minSeverity") or Severity.INFO)
    except ValueError:
        raise InvalidNotifierError("spec.minSeverity must be info, warning or error") from None
    secret = spec.get("secretRef") or {}
    secret_name = str(secret.get("name") or "") if isinstance(secret, dict) else ""
    address = _url(spec, "address")
    if provider in COMMIT_STATUS_PROVIDERS and not secret_name:
        raise InvalidNotifierError(
            f"a {provider} notifier needs spec.secretRef (a Secret with the key `token`)"
        )
    if provider not in COMMIT_STATUS_PROVIDERS and not (address or secret_name):
        raise InvalidNotifierError("spec.address (or a secretRef with the key `address`) is required")
    return NotifierSettings(
        kind=kind,
        namespace="" if kind == CLUSTER_NOTIFIER else str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        generation=int(meta.get("generation") or 0),
        provider=provider,
        address=address,
        api_url=_url(spec, "apiURL"),
        dashboard_url=_url(spec, "dashboardURL"),
        secret_name=secret_name,
        applications=_strings(spec, "applications"),
        targets=_strings(spec, "targets"),
        repositories=_strings(spec, "repositories"),
        kinds=kinds,
        min_severity=severity,
        namespaces=_strings(spec, "namespaces") if kind == CLUSTER_NOTIFIER else (),
        suspend=bool(spec.get("suspend", False)),
    )


def _any_glob(patterns: tuple[str, ...], value: str) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(value, pattern) for pattern in patterns)


def matches(settings: NotifierSettings, news: News) -> bool:
    """Does this Notifier get this News? A namespaced Notifier only ever sees the News of its
    own namespace: that is the tenancy boundary, checked before any filter."""
    if settings.suspend:
        return False
    if settings.cluster_scoped:
        if not _any_glob(settings.namespaces, news.namespace):
            return False
    elif news.namespace != settings.namespace:
        return False
    if settings.kinds and news.kind not in settings.kinds:
        return False
    if SEVERITY_RANK[news.severity] < SEVERITY_RANK[settings.min_severity]:
        return False
    return _any_glob(settings.applications, news.application) and _any_glob(settings.targets, news.target)


def repository_allowed(settings: NotifierSettings, path: str) -> bool:
    """May this Notifier post a commit status on the repository `path` (`owner/repo`)? The
    path comes from a tenant's Image, so `spec.repositories` is how the platform bounds where
    its token writes. Compared case-insensitively, as GitHub and GitLab name repositories."""
    return _any_glob(tuple(p.lower() for p in settings.repositories), path.lower())


def backoff_seconds(attempt: int, base: float = 1.0, cap: float = 300.0) -> float:
    """Seconds to wait after failed attempt number `attempt` (1, 2, ...): doubling, capped."""
    if attempt <= 0:
        return 0.0
    return min(cap, base * 2 ** min(attempt - 1, 32))


def retry_after_seconds(header: str | None, cap: float = 300.0) -> float | None:
    """A receiver's Retry-After in seconds (its HTTP-date form is not honoured), capped."""
    if not header:
        return None
    try:
        return max(0.0, min(cap, float(header.strip())))
    except ValueError:
        return None


class TokenBucket:
    """A rate limit: `rate` sends a second on average, bursts up to `burst`. The caller passes
    the (monotonic) time, so the bucket is pure and testable."""

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.updated = now

    def _refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.updated) * self.rate)
        self.updated = max(self.updated, now)

    def wait_time(self, now: float) -> float:
        """Seconds until a send is allowed (0: now)."""
        self._refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self, now: float) -> bool:
        self._refill(now)
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class RecentKeys:
    """The last `size` news keys seen: the same News published twice is queued once."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._keys: OrderedDict[str, None] = OrderedDict()

    def first_time(self, key: str) -> bool:
        if key in self._keys:
            self._keys.move_to_end(key)
            return False
        self._keys[key] = None
        if len(self._keys) > self.size:
            self._keys.popitem(last=False)
        return True


class BoundedQueue:
    """A FIFO that keeps the newest `size` items: when full, the oldest is dropped and counted
    (a dead receiver must not grow the operator's memory)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: deque[News] = deque()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self.items)

    def put(self, news: News) -> bool:
        """False when an older item was dropped to make room."""
        self.items.append(news)
        if len(self.items) > self.size:
            self.items.popleft()
            self.dropped += 1
            return False
        return True

    def peek(self) -> News | None:
        return self.items[0] if self.items else None

    def pop(self) -> News | None:
        return self.items.popleft() if self.items else None
