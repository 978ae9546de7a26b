"""Helm releases as alecton records them: revisions, their causes, drift corrections and
who made them (pure types; helm/release.py parses helm's JSON into them)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# The description alecton gives every revision it makes. It is how a later
# reconcile (or another tenant's Deployment) can tell who made a release, and how
# history entries get their Image version back.
_OWNER_RE = re.compile(r"^alecton: deployed version (?P<version>\S+) for (?P<owner>\S+/\S+)$")
# alecton's descriptions are shorter (a version of at most 128 characters, a namespace and a
# name). A description is whatever helm's storage holds, which on a tenant's cluster is the
# tenant's to write, and `\S+/\S+$` backtracks quadratically: 60 KB of "a/" took 12 s.
_MAX_OWNER_DESCRIPTION = 1024


def owner_description(version: str, owner: str) -> str:
    return f"alecton: deployed version {version} for {owner}"


def owner_match(description: str) -> re.Match[str] | None:
    if len(description) > _MAX_OWNER_DESCRIPTION:
        return None
    return _OWNER_RE.match(description)


# The description helm gives a rollback's revision ("Rollback to 2"): it runs its source's
# Image version and image, as helm restores that revision's values.
_ROLLBACK_RE = re.compile(r"^Rollback to (?P<revision>\d{1,9})$")


def rollback_source(description: str) -> int | None:
    """The revision a rollback's revision restored, from helm's description; None otherwise."""
    match = _ROLLBACK_RE.match(description)
    return int(match["revision"]) if match else None


def owner_from_description(description: str) -> str | None:
    """The owner a release made before owner labels recorded in its description."""
    match = owner_match(description)
    return match["owner"] if match else None


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
    # The image reference the chart was given (a rollback's: its source's), as alecton
    # recorded it; "" when alecton did not make the revision or made it before recording them.
    image: str = ""
    # The oci:// chart helm was given pinned to its manifest digest (`oci://host/repo@sha256:..`,
    # as spec.verify.chart pins it; a rollback's: its source's); "" when the chart was pulled by
    # tag or version, or the revision was made before alecton recorded charts per revision.
    chart_reference: str = ""

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
        if self.image:
            entry["image"] = self.image
        if self.chart_reference:
            entry["chartReference"] = self.chart_reference
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


def history_entry(item: dict[str, Any], app_version_key: str) -> HistoryEntry:
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
        image=str(item.get("image") or ""),
        chart_reference=str(item.get("chartReference") or ""),
    )


PENDING_STATUSES = frozenset({"pending-install", "pending-upgrade", "pending-rollback"})
