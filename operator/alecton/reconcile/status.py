"""The Deployment status fields alecton writes, other than conditions: phases, times,
the release, health, failed versions. Pure; `reconcile.conditions` builds whole status
patches from these, and `reconcile.summary` decides which.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from alecton.reconcile.health import ReleaseHealth, State
from alecton.reconcile.history import history_from_status, mark_health
from alecton.reconcile.plan import DesiredRelease, ReleaseLocation
from alecton.reconcile.release import HistoryEntry

READY = "Ready"
RELEASED = "Released"
RECONCILING = "Reconciling"
STALLED = "Stalled"
HEALTH_CHECK_FAILED = "HealthCheckFailed"

# Phases a person sees in `kubectl get alecton`.
PENDING, DEPLOYING, DEPLOYED, FAILED = "Pending", "Deploying", "Deployed", "Failed"
VERIFYING, DEGRADED = "Verifying", "Degraded"
ROLLING_BACK, ROLLED_BACK, CONFLICT = "RollingBack", "RolledBack", "Conflict"
SUSPENDED, DELETING = "Suspended", "Deleting"

_MAX_MESSAGE = 1024


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def later(now: str, seconds: float) -> str:
    """`now` (RFC 3339) plus `seconds`, as RFC 3339."""
    moment = dt.datetime.fromisoformat(now.replace("Z", "+00:00")) + dt.timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def truncate(message: str) -> str:
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 3] + "..."


# What a claim of a new place clears of the release recorded before (a merge patch): a
# revision there is only ever what helm reported after an action of ours succeeded.
UNCONFIRMED_RELEASE: dict[str, Any] = {
    "revision": None,
    "status": None,
    "chart": None,
    "appVersion": None,
    "version": None,
    "image": None,
    "lastDeployed": None,
}


def release_status(
    desired: DesiredRelease,
    history: list[HistoryEntry],
    image_for_version: Callable[[str], str],
    location: ReleaseLocation,
) -> dict[str, Any]:
    latest = history[0] if history else None
    release: dict[str, Any] = location.as_status()
    if latest is not None:
        version = latest.version or desired.version
        release.update(
            revision=latest.revision,
            status=latest.status,
            chart=latest.chart,
            appVersion=latest.app_version,
            version=version,
            # What the revision was given, as recorded; else the Image of its version now.
            image=latest.image or (image_for_version(version) if latest.version else desired.image),
            lastDeployed=latest.updated,
        )
    return release


_MAX_FAILED_VERSIONS = 20
_MAX_PROGRESSING = 10


def health_field(health: ReleaseHealth, revision: int, deadline: str = "") -> dict[str, Any]:
    state = {State.CURRENT: "Healthy", State.FAILED: "Unhealthy"}.get(health.state, "Progressing")
    field: dict[str, Any] = {
        "state": state,
        "message": truncate(health.message),
        "progressing": health.progressing[:_MAX_PROGRESSING],
        "revision": revision,
        "deadline": deadline or None,
    }
    return field


def history_marked(previous: dict[str, Any], revision: int, healthy: bool) -> list[dict[str, Any]]:
    history = history_from_status(previous.get("history") or [])
    return [entry.as_status() for entry in mark_health(history, revision, healthy)]


def failed_version_entry(version: str, revision: int, reason: str, now: str) -> dict[str, Any]:
    return {"version": version, "revision": revision, "reason": truncate(reason), "failedAt": now}


def with_failed_version(previous: dict[str, Any], entry: dict[str, Any]) -> list[dict[str, Any]]:
    """Newest first; one entry per version."""
    older = [e for e in previous.get("failedVersions") or [] if e.get("version") != entry["version"]]
    return [entry, *older][:_MAX_FAILED_VERSIONS]


def health_after_release(verify_until: str | None, revision: Any) -> dict[str, Any]:
    if not verify_until:
        return {
            "state": "Unknown",
            "message": "health checks are off (health: None)",
            "progressing": None,  # a merge patch: clear what an earlier check recorded
            "deadline": None,
            "revision": revision,
        }
    return {
        "state": "Progressing",
        "message": "waiting for the first assessment",
        "progressing": [],
        "deadline": verify_until,
        "revision": revision,
    }
