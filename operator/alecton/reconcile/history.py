"""A release's revision history as a Deployment's status records it (newest first), and
how alecton extends it without asking helm: upgrades, health, drift corrections, causes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from alecton.reconcile.chart import ChartSource
from alecton.reconcile.chart_signature import OCI_SCHEME
from alecton.reconcile.image_ref import pinned_digest
from alecton.reconcile.release import Correction, HistoryEntry, ReleaseInfo, history_entry, rollback_source

_MAX_CORRECTIONS = 5


def history_from_status(entries: list[dict[str, Any]]) -> list[HistoryEntry]:
    """The history a Deployment's status recorded (newest first)."""
    return [history_entry(e, "appVersion") for e in entries if isinstance(e, dict)]


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
    """Helm knows nothing of health, drift corrections, causes or the image and pinned chart
    alecton gave it: keep what status recorded per revision. A rollback's revision (one status
    has not recorded yet) runs its source revision's image and chart."""
    known = {entry.revision: entry for entry in recorded}
    carried = [
        replace(
            entry,
            healthy=old.healthy,
            corrections=old.corrections,
            cause=old.cause,
            image=old.image,
            chart_reference=old.chart_reference,
        )
        if (old := known.get(entry.revision))
        else entry
        for entry in history
    ]
    by_revision: dict[int, HistoryEntry] = {}
    restored: list[HistoryEntry] = []
    for entry in reversed(carried):  # oldest first, so a rollback finds its source's
        source = by_revision.get(rollback_source(entry.description) or 0)
        if source is not None and not entry.image and not entry.chart_reference:
            entry = replace(entry, image=source.image, chart_reference=source.chart_reference)
        by_revision[entry.revision] = entry
        restored.append(entry)
    return restored[::-1]


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


def mark_given(
    history: list[HistoryEntry], revision: int, image: str, chart_reference: str
) -> list[HistoryEntry]:
    """Record what the chart was given for `revision` (helm keeps the image only inside the
    values, and the chart's digest nowhere): the image reference, and the oci:// chart pinned
    to its digest (`pinned_chart_reference`). What a rollback to it would run again."""
    return [
        replace(e, image=image or e.image, chart_reference=chart_reference or e.chart_reference)
        if e.revision == revision
        else e
        for e in history
    ]


def pinned_chart_reference(source: ChartSource) -> str:
    """The chart a revision records: an oci:// chart pinned to its manifest digest (as
    spec.verify.chart pins it, or as spec.chart names it), else "" (pulled by tag or version,
    which may name another manifest by now; or not an oci:// chart)."""
    return source.chart if source.chart.startswith(OCI_SCHEME) and pinned_digest(source.chart) else ""


def find_revision(history: list[HistoryEntry], revision: int) -> HistoryEntry | None:
    return next((e for e in history if e.revision == revision), None)


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
