"""What runs where: one row per target of every Application, from the custom resources."""

from __future__ import annotations

from typing import Any


def status_rows(
    applications: list[dict[str, Any]], deployments: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """One row per target of every Application, with the Deployment's state if any;
    Deployments whose Application or target does not exist appear too."""
    by_pair: dict[tuple[str, str], dict[str, Any]] = {}
    for dep in deployments:
        spec = dep.get("spec") or {}
        by_pair.setdefault((spec.get("application", ""), spec.get("target", "")), dep)
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for app in applications:
        app_name = app["metadata"]["name"]
        for target in (app.get("spec") or {}).get("targets") or []:
            pair = (app_name, target.get("name", ""))
            seen.add(pair)
            rows.append(_row(pair, by_pair.get(pair), target.get("cluster", "")))
    for pair, dep in by_pair.items():
        if pair not in seen:
            rows.append(_row(pair, dep, ""))
    return sorted(rows, key=lambda r: (r["application"], r["target"]))


def running_version(status: dict[str, Any]) -> str:
    """The Image version that runs: the one of the revision helm reports as `deployed`.

    Neither spec.version (what is asked for) nor status.appliedVersion (the spec.version of
    the last helm action, a rollback included) says it: after a rollback an older revision
    runs, recorded in status.history with the version it was made from. status.release.version
    mostly agrees, but falls back to spec.version when the newest revision's version is not
    known. "" when nothing is deployed or that version is not known (a release alecton did
    not make)."""
    for entry in status.get("history") or []:
        if entry.get("status") == "deployed":
            return str(entry.get("version") or "")
    return ""


def _row(pair: tuple[str, str], dep: dict[str, Any] | None, cluster: str) -> dict[str, Any]:
    status = (dep or {}).get("status") or {}
    release = status.get("release") or {}
    return {
        "application": pair[0],
        "target": pair[1],
        "cluster": release.get("cluster") or cluster,
        "deployment": (dep or {}).get("metadata", {}).get("name", ""),
        "version": (dep or {}).get("spec", {}).get("version", ""),
        "running": running_version(status),
        "phase": status.get("phase", "NotDeployed" if dep is None else "Pending"),
        "revision": release.get("revision"),
        "lastDeployed": release.get("lastDeployed", ""),
        "message": status.get("message", ""),
    }
