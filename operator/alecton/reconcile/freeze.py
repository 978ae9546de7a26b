"""Deploy freezes: when nothing new may be released ("stop the line").

A `Freeze` (namespaced: a team stops its own line) or a `ClusterFreeze` (platform-wide)
is active either inside its cron windows (the form and parser of `reconcile.window`, as
promotion windows use) or from `spec.from` (default: always) until `spec.until` (default:
until the object is deleted or ended). It applies to a Deployment when every selector
given matches (applications, targets, clusters, and for a ClusterFreeze namespaces; a
selector is a list of names or shell-style globs; an empty or absent one matches all).

While a freeze applies, automatic promotions wait and upgrades (a new version or changed
inputs) are not released, unless the Deployment carries an override for its current
generation (`FREEZE_OVERRIDE_ANNOTATION`, `"<generation>:<reason>"`): an override is for
one change only, so a later spec change (a new generation) is frozen again. Rollbacks and
uninstalls always go through.

Everything here is pure: the caller passes the current time in.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from alecton.reconcile.grants import IN_CLUSTER
from alecton.reconcile.window import Window

FREEZE_OVERRIDE_ANNOTATION = "alecton.dev/freeze-override"  # "<generation>:<reason>"
# Who wrote the override: stamped by the API server (deploy/deployment-changed-by.yaml), since
# the override may come in a later request than the change it releases, by someone else.
FREEZE_OVERRIDE_BY_ANNOTATION = "alecton.dev/freeze-override-by"
FROZEN_REASON = "Frozen"  # the plan reason of a change a freeze holds
FREEZE = "Freeze"
CLUSTER_FREEZE = "ClusterFreeze"
MAX_REASON = 512
_SELECTORS = ("applications", "targets", "clusters")
_FIELDS = frozenset({"reason", "windows", "from", "until", *_SELECTORS, "namespaces"})


@dataclass(frozen=True)
class DeploymentFacts:
    """What a freeze's selectors match on: where a Deployment releases."""

    namespace: str
    application: str
    target: str
    cluster: str = ""  # the Cluster object the target names ("" while unknown)
    # Where that Cluster object reaches, as the platform names it in `--allow-context` grants:
    # a context of the operator's kubeconfig, or `in-cluster` ("" for a tenant's own kubeconfig
    # Secret or while unknown). The tenant names its Cluster objects, the platform names these.
    context: str = ""


@dataclass(frozen=True)
class ActiveFreeze:
    """A freeze that applies now: who set it, why, and until when (None: until it is ended)."""

    kind: str
    namespace: str  # "" for a ClusterFreeze
    name: str
    reason: str
    until: datetime | None

    @property
    def label(self) -> str:
        return f"ClusterFreeze {self.name}" if self.kind == CLUSTER_FREEZE else f"Freeze {self.name}"

    def describe(self) -> str:
        """One line for a message: `Freeze release-week ("quarter close") until 2026-...Z`."""
        return f'{self.label} ("{self.reason}") {until_text(self.until)}'


@dataclass(frozen=True)
class Freeze:
    """One Freeze or ClusterFreeze; build it with `Freeze.parse`, which validates every field."""

    kind: str
    namespace: str
    name: str
    reason: str
    windows: tuple[Window, ...] = ()
    start: datetime | None = None  # spec.from
    until: datetime | None = None  # spec.until
    applications: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    clusters: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> Freeze:
        """The freeze an object describes; ValueError naming the offending field otherwise."""
        kind = str(body.get("kind") or FREEZE)
        meta = body.get("metadata") or {}
        spec = body.get("spec")
        if not isinstance(spec, Mapping):
            raise ValueError("spec: required, with at least a reason")
        given = {key: value for key, value in spec.items() if value is not None}
        for key in given:
            if key not in _FIELDS or (key == "namespaces" and kind != CLUSTER_FREEZE):
                raise ValueError(f"spec.{key}: not a field of a {kind}")
        reason = given.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError("spec.reason: required: say why deploys are frozen")
        if len(reason) > MAX_REASON:
            raise ValueError(f"spec.reason: at most {MAX_REASON} characters")
        windows = given.get("windows") or []
        if not isinstance(windows, list | tuple):
            raise ValueError(f"spec.windows: must be a list of windows, not {windows!r}")
        parsed = tuple(Window.parse(w, field=f"spec.windows[{i}]") for i, w in enumerate(windows))
        start, until = _instant(given.get("from"), "spec.from"), _instant(given.get("until"), "spec.until")
        if parsed and (start or until):
            raise ValueError("spec.windows: give either windows or from/until, not both")
        if start and until and until <= start:
            raise ValueError("spec.until: must be later than spec.from")
        return cls(
            kind=kind,
            namespace="" if kind == CLUSTER_FREEZE else str(meta.get("namespace") or ""),
            name=str(meta.get("name") or ""),
            reason=reason.strip(),
            windows=parsed,
            start=start,
            until=until,
            **{key: _names(given.get(key), f"spec.{key}") for key in (*_SELECTORS, "namespaces")},
        )

    def applies_to(self, facts: DeploymentFacts) -> bool:
        if self.kind == FREEZE and self.namespace != facts.namespace:
            return False  # a team's Freeze never reaches another namespace
        return (
            _matches(self.namespaces, facts.namespace)
            and _matches(self.applications, facts.application)
            and _matches(self.targets, facts.target)
            and self._matches_cluster(facts)
        )

    def _matches_cluster(self, facts: DeploymentFacts) -> bool:
        """`clusters` names either the tenant's Cluster object or the place it reaches: a
        ClusterFreeze of `prod` holds every Cluster object pointing at context `prod`, whatever
        its name."""
        if not self.clusters:
            return True
        return _matches(self.clusters, facts.cluster) or bool(
            facts.context and _matches(self.clusters, facts.context)
        )

    def active_until(self, now: datetime) -> tuple[bool, datetime | None]:
        """(active at `now`, when that ends: None for open-ended or inactive)."""
        if self.windows:
            ends = [end for w in self.windows if (end := w.open_until(now)) is not None]
            return (True, max(ends)) if ends else (False, None)
        if self.start is not None and now < self.start:
            return False, None
        if self.until is not None and now >= self.until:
            return False, None
        return True, self.until

    def next_start(self, now: datetime) -> datetime | None:
        """When an inactive freeze becomes active next (None: active now, or never again)."""
        if self.active_until(now)[0]:
            return None
        if self.windows:
            return min(w.next_open(now) for w in self.windows)
        if self.start is not None and now < self.start:
            return self.start
        return None


def active_freezes(freezes: Iterable[Freeze], facts: DeploymentFacts, now: datetime) -> list[ActiveFreeze]:
    """The freezes that apply to a Deployment at `now`, ClusterFreezes first, then by name."""
    active = []
    for freeze in freezes:
        if not freeze.applies_to(facts):
            continue
        on, until = freeze.active_until(now)
        if on:
            active.append(ActiveFreeze(freeze.kind, freeze.namespace, freeze.name, freeze.reason, until))
    return sorted(active, key=lambda f: (f.kind != CLUSTER_FREEZE, f.name))


def look_again(freezes: Iterable[Freeze], facts: DeploymentFacts, now: datetime) -> datetime | None:
    """The next time the freezes of a Deployment change (one starts or ends), to requeue then."""
    times: list[datetime] = []
    for freeze in freezes:
        if not freeze.applies_to(facts):
            continue
        on, until = freeze.active_until(now)
        moment = until if on else freeze.next_start(now)
        if moment is not None:
            times.append(moment)
    return min(times, default=None)


def released_at(active: Sequence[ActiveFreeze]) -> datetime | None:
    """When every active freeze has ended, as far as known now: None when one is open-ended."""
    if not active or any(f.until is None for f in active):
        return None
    return max(f.until for f in active if f.until is not None)


def frozen_message(active: Sequence[ActiveFreeze], what: str) -> str:
    """`what` is not released: which freezes hold it, why, until when, and how to override."""
    held_by = "; ".join(f.describe() for f in active)
    return (
        f"{what} is frozen by {held_by}; it is released when the freeze ends, or deploy with "
        f"--override-freeze REASON"
    )


def override_value(generation: int, reason: str) -> str:
    """The annotation value that overrides freezes for one generation of the spec."""
    return f"{generation}:{reason.strip()}"


def reaches_namespace(body: Mapping[str, Any], namespace: str) -> bool:
    """Whether a Freeze or ClusterFreeze object may apply in `namespace` (what a namespace's
    freeze list shows): a ClusterFreeze whose `namespaces` select others is not that team's
    business, nor its reason. Read from the raw object so an invalid one is judged too."""
    if str(body.get("kind") or FREEZE) != CLUSTER_FREEZE:
        return str((body.get("metadata") or {}).get("namespace") or "") == namespace
    spec = body.get("spec")
    patterns = spec.get("namespaces") if isinstance(spec, Mapping) else None
    if not isinstance(patterns, list | tuple) or not patterns:
        return True
    return _matches(tuple(str(p) for p in patterns), namespace)


def cluster_context(context: str, own_kubeconfig: bool) -> str:
    """The platform's name of where a Cluster object reaches (`DeploymentFacts.context`): its
    context of the operator's kubeconfig, `in-cluster` for the operator's own cluster, and ""
    for a kubeconfig of the tenant's own (its context names are the tenant's choice)."""
    if own_kubeconfig:
        return ""
    return context or IN_CLUSTER


def override_reason(value: Any, generation: int) -> str:
    """The override's reason when the annotation was given for this generation, else ""."""
    if not isinstance(value, str):
        return ""
    number, sep, reason = value.partition(":")
    if not sep or not number.strip().isdigit() or int(number) != generation:
        return ""  # stale (an earlier change's) or malformed: it does not carry over
    return reason.strip()


def freeze_status(freeze: Freeze, now: datetime) -> dict[str, Any]:
    """status of a Freeze/ClusterFreeze object at `now` (the operator writes it)."""
    on, until = freeze.active_until(now)
    start = freeze.next_start(now)
    if on:
        message = f"active {until_text(until)}: {freeze.reason}"
    elif start is not None:
        message = f"inactive; starts at {rfc3339(start)}"
    else:
        message = "ended" if freeze.until is not None else "inactive"
    return {
        "active": on,
        "activeUntil": rfc3339(until) if on and until else None,
        "nextStart": rfc3339(start) if start else None,
        "message": message,
    }


def until_text(until: datetime | None) -> str:
    return f"until {rfc3339(until)}" if until is not None else "until it is ended"


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_instant(value: Any, field: str) -> datetime:
    """An RFC 3339 date-time (a zone is required: a naive time would be read in some zone)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{field}: must be a date-time like 2026-12-24T00:00:00Z, not {value!r}")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{field}: must be a date-time like 2026-12-24T00:00:00Z, not {value!r}") from None
    if moment.tzinfo is None:
        raise ValueError(f"{field}: needs a time zone (Z or +01:00), not {value!r}")
    return moment.astimezone(UTC)


def _instant(value: Any, field: str) -> datetime | None:
    return None if value is None else parse_instant(value, field)


def _names(value: Any, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{field}: must be a list of names or globs like web-*, not {value!r}")
    return tuple(value)


def _matches(patterns: Sequence[str], name: str) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)
