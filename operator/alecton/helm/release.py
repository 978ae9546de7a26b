"""Helm's JSON output, parsed into small typed records (Helm 3 and Helm 4 agree here)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any

# The description alecton gives every revision it makes. It is how a later
# reconcile (or another tenant's Deployment) can tell who made a release, and how
# history entries get their Image version back.
_OWNER_RE = re.compile(r"^alecton: deployed version (?P<version>\S+) for (?P<owner>\S+/\S+)$")
_ROLLBACK_RE = re.compile(r"^Rollback to (?P<revision>\d+)$")
# alecton's descriptions are shorter (a version of at most 128 characters, a namespace and a
# name). A description is whatever helm's storage holds, which on a tenant's cluster is the
# tenant's to write, and `\S+/\S+$` backtracks quadratically: 60 KB of "a/" took 12 s.
_MAX_OWNER_DESCRIPTION = 1024


def owner_description(version: str, owner: str) -> str:
    return f"alecton: deployed version {version} for {owner}"


def _owner_match(description: str) -> re.Match[str] | None:
    if len(description) > _MAX_OWNER_DESCRIPTION:
        return None
    return _OWNER_RE.match(description)


def owner_from_description(description: str) -> str | None:
    """The owner a release made before owner labels recorded in its description."""
    match = _owner_match(description)
    return match["owner"] if match else None


_MAX_CORRECTIONS = 5

# What made a revision, recorded in status.history[].cause.
DEPLOY, PROMOTION, ROLLBACK, AUTOMATIC_ROLLBACK, RETRY = (
    "deploy",
    "promotion",
    "rollback",
    "automatic-rollback",
    "retry",
)
CAUSES = (DEPLOY, PROMOTION, ROLLBACK, AUTOMATIC_ROLLBACK, RETRY)


@dataclass(frozen=True)
class Correction:
    """A drift correction of a revision: its objects re-applied without a new revision."""

    at: str
    objects: int
    result: str  # Succeeded or Failed

    def as_status(self) -> dict[str, Any]:
        return {"at": self.at, "objects": self.objects, "result": self.result}


@dataclass(frozen=True)
class HistoryEntry:
    revision: int
    status: str
    chart: str
    app_version: str
    updated: str
    description: str
    version: str = ""  # Image version, when alecton made (or rolled back to) the revision
    healthy: bool | None = None  # did the revision become healthy (None: not checked yet)
    corrections: tuple[Correction, ...] = ()  # newest first; helm never sees them
    cause: str = ""  # what made the revision (CAUSES); "" when not known

    def as_status(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "revision": self.revision,
            "status": self.status,
            "chart": self.chart,
            "appVersion": self.app_version,
            "updated": self.updated,
            "description": self.description,
        }
        if self.version:
            entry["version"] = self.version
        if self.healthy is not None:
            entry["healthy"] = self.healthy
        if self.corrections:
            entry["corrections"] = [c.as_status() for c in self.corrections]
        if self.cause:
            entry["cause"] = self.cause
        return entry


@dataclass(frozen=True)
class ReleaseInfo:
    """The fields of `helm upgrade -o json` alecton needs. Values are never kept:
    they may hold secrets and must not reach logs or status."""

    name: str
    namespace: str
    revision: int
    status: str
    chart: str
    app_version: str
    last_deployed: str
    description: str


class HelmOutputError(ValueError):
    pass


def _load(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise HelmOutputError(f"helm printed something that is not JSON: {error}") from None


def parse_release(text: str) -> ReleaseInfo:
    data = _load(text)
    if not isinstance(data, dict):
        raise HelmOutputError("helm release output is not an object")
    info = data.get("info") or {}
    meta = (data.get("chart") or {}).get("metadata") or {}
    return ReleaseInfo(
        name=str(data.get("name", "")),
        namespace=str(data.get("namespace", "")),
        revision=int(data.get("version") or 0),
        status=str(info.get("status", "")),
        chart=f"{meta.get('name', '')}-{meta.get('version', '')}",
        app_version=str(meta.get("appVersion", "")),
        last_deployed=str(info.get("last_deployed", "")),
        description=str(info.get("description", "")),
    )


def parse_history(text: str) -> list[HistoryEntry]:
    """`helm history -o json`, newest first, with Image versions filled in where known."""
    data = _load(text)
    if not isinstance(data, list):
        raise HelmOutputError("helm history output is not a list")
    entries = [_entry(item, "app_version") for item in data if isinstance(item, dict)]
    entries.sort(key=lambda e: e.revision)
    versions: dict[int, str] = {}
    resolved: list[HistoryEntry] = []
    for entry in entries:  # oldest first, so a rollback finds its source's version
        version = ""
        if match := _owner_match(entry.description):
            version = match["version"]
        elif match := _ROLLBACK_RE.match(entry.description):
            version = versions.get(int(match["revision"]), "")
        versions[entry.revision] = version
        resolved.append(replace(entry, version=version))
    return list(reversed(resolved))


def _entry(item: dict[str, Any], app_version_key: str) -> HistoryEntry:
    """One history entry from helm's JSON (`app_version`) or from status (`appVersion`)."""
    return HistoryEntry(
        revision=int(item.get("revision") or 0),
        status=str(item.get("status", "")),
        chart=str(item.get("chart", "")),
        app_version=str(item.get(app_version_key, "")),
        updated=str(item.get("updated", "")),
        description=str(item.get("description", "")),
        version=str(item.get("version", "")),
        healthy=item["healthy"] if isinstance(item.get("healthy"), bool) else None,
        corrections=tuple(
            Correction(str(c.get("at", "")), int(c.get("objects") or 0), str(c.get("result", "")))
            for c in item.get("corrections") or []
            if isinstance(c, dict)
        ),
        cause=str(item.get("cause") or ""),
    )


def history_from_status(entries: list[dict[str, Any]]) -> list[HistoryEntry]:
    """The history a Deployment's status recorded (newest first)."""
    return [_entry(e, "appVersion") for e in entries if isinstance(e, dict)]


def history_after_upgrade(
    previous: list[HistoryEntry], release: ReleaseInfo, version: str, limit: int
) -> list[HistoryEntry] | None:
    """The history after a successful upgrade, without asking helm again: the new
    revision on top, the formerly deployed one now superseded (as helm records it).

    None when the recorded history cannot be extended (it does not end right below the
    new revision): then the caller asks helm.
    """
    if release.revision > 1 and (not previous or previous[0].revision != release.revision - 1):
        return None
    newest = HistoryEntry(
        revision=release.revision,
        status=release.status,
        chart=release.chart,
        app_version=release.app_version,
        updated=release.last_deployed,
        description=release.description,
        version=version,
    )
    older = [replace(e, status="superseded") if e.status == "deployed" else e for e in previous]
    return [newest, *older][:limit]


def carry_recorded(history: list[HistoryEntry], recorded: list[HistoryEntry]) -> list[HistoryEntry]:
    """Helm knows nothing of health, drift corrections or causes: keep what status recorded
    per revision."""
    known = {entry.revision: entry for entry in recorded}
    return [
        replace(entry, healthy=old.healthy, corrections=old.corrections, cause=old.cause)
        if (old := known.get(entry.revision))
        else entry
        for entry in history
    ]


def record_correction(
    history: list[HistoryEntry], revision: int, correction: Correction
) -> list[HistoryEntry]:
    """The revision's entry gains the correction (newest first, the last few kept)."""
    return [
        replace(e, corrections=(correction, *e.corrections)[:_MAX_CORRECTIONS])
        if e.revision == revision
        else e
        for e in history
    ]


def mark_cause(history: list[HistoryEntry], revision: int, cause: str) -> list[HistoryEntry]:
    """Record what made `revision` (helm's description says only "Upgrade complete" or
    "Rollback to 2", not whether a person, a promotion or a failed health check did it)."""
    return [replace(e, cause=cause) if e.revision == revision and cause else e for e in history]


def mark_health(history: list[HistoryEntry], revision: int, healthy: bool) -> list[HistoryEntry]:
    return [replace(e, healthy=healthy) if e.revision == revision else e for e in history]


def newest_healthy(history: list[HistoryEntry], below: int) -> HistoryEntry | None:
    """Where a failed upgrade rolls back to: the newest older revision that became
    healthy; else (revisions made before health checks) the newest older one that was
    deployed and never found unhealthy."""
    older = [e for e in history if e.revision < below]
    return next((e for e in older if e.healthy), None) or next(
        (e for e in older if e.healthy is None and e.status == "superseded"), None
    )


PENDING_STATUSES = frozenset({"pending-install", "pending-upgrade", "pending-rollback"})
