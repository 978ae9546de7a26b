"""Pure decisions of the CLI: object names, request bodies, wait outcomes, table rows.

Kept apart from the commands so they are unit-tested without a cluster.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from alecton.api.models import API_VERSION, release_name

_DNS_INVALID = re.compile(r"[^a-z0-9.-]+")
_LABEL_INVALID = re.compile(r"[^A-Za-z0-9_.-]+")

IMAGE_NAME_LABEL = "alecton.dev/image-name"
IMAGE_VERSION_LABEL = "alecton.dev/image-version"


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def image_object_name(name: str, version: str) -> str:
    """A valid, deterministic object name for an Image: `<name>-<version>`, cleaned up.

    When cleaning changed anything (uppercase, `+`, `_`, overlong), a short hash of the
    original pair keeps different versions from colliding.
    """
    raw = f"{name}-{version}"
    cleaned = _DNS_INVALID.sub("-", raw.lower()).strip("-.")
    if cleaned == raw and len(cleaned) <= 253:
        return cleaned
    return f"{cleaned[:240].rstrip('-.')}-{_short_hash(raw)}"


def label_value(value: str) -> str:
    cleaned = _LABEL_INVALID.sub("-", value).strip("-_.")
    if cleaned == value and len(cleaned) <= 63:
        return cleaned
    return f"{cleaned[:54].rstrip('-_.')}-{_short_hash(value)}"


def image_body(name: str, version: str, reference: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Image",
        "metadata": {
            "name": image_object_name(name, version),
            "labels": {IMAGE_NAME_LABEL: label_value(name), IMAGE_VERSION_LABEL: label_value(version)},
        },
        "spec": {"name": name, "version": version, "image": reference},
    }


def field_selector(**fields: str | None) -> str:
    """`spec.name=web,spec.version=1.0` from the filters that are set."""
    return ",".join(f"{key}={value}" for key, value in fields.items() if value)


def deployment_body(application: str, target: str, version: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Deployment",
        "metadata": {"name": release_name(application, target)},
        "spec": {"application": application, "target": target, "version": version},
    }


@dataclass(frozen=True)
class WaitOutcome:
    done: bool
    ok: bool = False
    message: str = ""


def deploy_outcome(obj: dict[str, Any], generation: int) -> WaitOutcome:
    """Has the operator finished with generation `generation` of this Deployment? Done
    means healthy (or health checks off); an automatic rollback is a failed deploy."""
    status = obj.get("status") or {}
    phase = status.get("phase", "")
    message = status.get("message", "")
    if int(status.get("observedGeneration") or 0) < generation:
        return WaitOutcome(False, message="waiting for the operator to pick up the change")
    if phase == "Deployed":
        return WaitOutcome(True, True, message)
    if phase == "RolledBack":
        if (obj.get("spec") or {}).get("rollback"):
            return WaitOutcome(True, True, message)  # a rollback someone asked for, holding
        return WaitOutcome(True, False, f"RolledBack: {message}")
    if phase in ("Failed", "Conflict"):
        return WaitOutcome(True, False, f"{phase}: {message}")
    stalled = any(
        c.get("type") == "Stalled" and c.get("status") == "True" for c in status.get("conditions") or []
    )
    if stalled:
        return WaitOutcome(True, False, f"Stalled: {message}")
    if phase == "Verifying":
        waiting = (status.get("health") or {}).get("progressing") or []
        shown = "; ".join(waiting[:3]) + (f" (and {len(waiting) - 3} more)" if len(waiting) > 3 else "")
        return WaitOutcome(False, message=f"Verifying: waiting for {shown or 'the first assessment'}")
    return WaitOutcome(False, message=f"{phase or 'Pending'}: {message}")


def rollback_outcome(obj: dict[str, Any], revision: int, request_id: str) -> WaitOutcome:
    status = obj.get("status") or {}
    last = status.get("lastRollback") or {}
    if last.get("requestId") != request_id or last.get("revision") != revision:
        phase = status.get("phase") or "Pending"
        return WaitOutcome(False, message=f"{phase}: {status.get('message', '')}")
    if last.get("result") == "Succeeded":
        phase = status.get("phase")
        if phase == "Verifying":  # helm rolled back; done once the old revision is healthy again
            return deploy_outcome(obj, 0)
        if phase == "Failed":
            return WaitOutcome(True, False, f"Failed: {status.get('message', '')}")
        return WaitOutcome(True, True, status.get("message", ""))
    return WaitOutcome(True, False, f"rollback failed: {status.get('message', '')}")


def age(timestamp: str | None, now: dt.datetime | None = None) -> str:
    """kubectl-style age: 45s, 3m, 5h, 2d."""
    if not timestamp:
        return ""
    then = dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    seconds = int(((now or dt.datetime.now(dt.UTC)) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "m" else 1):
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


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


def drift_outcome(obj: dict[str, Any], request_id: str) -> WaitOutcome:
    """Has the operator answered drift check `request_id`? ok: in sync."""
    drift = (obj.get("status") or {}).get("drift") or {}
    if drift.get("requestId") != request_id:
        phase = (obj.get("status") or {}).get("phase") or "Pending"
        return WaitOutcome(False, message=f"waiting for the operator to compare ({phase})")
    lines = [f"revision {drift.get('revision')}: {drift.get('summary', '')}"]
    for item in drift.get("objects") or []:
        fields = ", ".join(item.get("fields") or [])
        lines.append(f"  {item.get('kind')} {item.get('name')} ({item.get('change')}): {fields}")
    correction = drift.get("lastCorrection") or {}
    if correction.get("at") and correction.get("revision") == drift.get("revision"):
        outcome, detail = correction.get("result"), correction.get("detail", "")
        lines.append(f"last correction {correction.get('at')}: {outcome}, {detail}")
    return WaitOutcome(True, not drift.get("drifted"), "\n".join(lines))


def corrected(corrections: list[dict[str, Any]]) -> str:
    """A history row's drift corrections: how many, and how the last one went."""
    if not corrections:
        return ""
    return f"{len(corrections)}x, last {str(corrections[0].get('result', '')).lower()}"
