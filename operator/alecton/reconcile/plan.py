"""What to do for one Deployment: a pure decision over typed inputs.

The handlers gather the inputs (indexes, the Deployment's status); this module
decides; the handlers then run the chosen helm action and write the status that
`alecton.reconcile.status` builds. Nothing here touches the network or helm.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alecton.api.models import Application, Cluster, Deployment, Image, ObjectRef, Target
from alecton.helm.release import PENDING_STATUSES, HistoryEntry
from alecton.reconcile.chart import ChartRefusedError, ChartSource, resolve_chart
from alecton.reconcile.values import compute_values


class Action(enum.Enum):
    NOTHING = "Nothing"  # desired state already applied
    WAIT = "Wait"  # a reference is missing: Pending until it appears
    CONFLICT = "Conflict"  # another Deployment owns this application/target
    SUSPENDED = "Suspended"
    REFUSED = "Refused"  # the inputs can never work as they are (bad chart path, ...)
    UPGRADE = "Upgrade"  # helm upgrade --install
    ROLLBACK = "Rollback"
    UNINSTALL = "Uninstall"  # deletion with policy Delete
    RELEASE_FINALIZER = "ReleaseFinalizer"  # deletion without a helm action


@dataclass(frozen=True)
class DesiredRelease:
    """Everything `helm upgrade --install` needs, computed from scratch."""

    name: str
    namespace: str
    cluster: Cluster
    chart: ChartSource
    values: dict[str, Any] = field(hash=False)
    image: str
    version: str

    @property
    def fingerprint(self) -> str:
        """Digest of every input of the upgrade: equal digests mean nothing to do."""
        material = {
            "release": self.name,
            "namespace": self.namespace,
            "cluster": {
                "name": self.cluster.ref.name,
                "context": self.cluster.context,
                "secret": (
                    [self.cluster.kubeconfig_secret.name, self.cluster.kubeconfig_secret.key]
                    if self.cluster.kubeconfig_secret
                    else None
                ),
            },
            "chart": [self.chart.chart, self.chart.repository, self.chart.version],
            "values": self.values,
            "version": self.version,
        }
        encoded = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)
        return "sha256:" + hashlib.sha256(encoded.encode()).hexdigest()


@dataclass(frozen=True)
class Missing:
    reason: str
    message: str


@dataclass(frozen=True)
class Resolved:
    application: Application
    target: Target
    cluster: Cluster
    image: Image


@dataclass(frozen=True)
class RecordedStatus:
    """The parts of a Deployment's status that drive decisions."""

    applied_fingerprint: str = ""
    release_name: str = ""  # set once this Deployment has made the release
    rollback_revision: int | None = None
    rollback_request_id: str = ""
    failures: int = 0
    failed_fingerprint: str = ""  # inputs of the last failed attempt
    retry_after: float = 0.0  # epoch seconds before which those inputs are not retried

    @classmethod
    def parse(cls, status: dict[str, Any] | None) -> RecordedStatus:
        status = status or {}
        last_rollback = status.get("lastRollback") or {}
        return cls(
            applied_fingerprint=str(status.get("appliedFingerprint") or ""),
            release_name=str((status.get("release") or {}).get("name") or ""),
            rollback_revision=last_rollback.get("revision"),
            rollback_request_id=str(last_rollback.get("requestId") or ""),
            failures=int(status.get("failures") or 0),
            failed_fingerprint=str(status.get("failedFingerprint") or ""),
            retry_after=_epoch(status.get("retryAfter")),
        )


@dataclass(frozen=True)
class Plan:
    action: Action
    reason: str = ""
    message: str = ""
    desired: DesiredRelease | None = None
    resolved: Resolved | None = None


def pick_image(candidates: Iterable[Image]) -> Image | None:
    """The authoritative Image of a (name, version): the one created first."""
    return min(candidates, key=lambda i: (i.created, i.ref.name), default=None)


def owner_of(candidates: Iterable[Deployment]) -> Deployment | None:
    """Of several Deployments for one application/target, which one owns the release:
    the one that already made it, else the oldest (creation times have one-second
    resolution, so ties go to the canonical name `<application>-<target>`, then by name).
    """
    return min(
        candidates,
        key=lambda d: (not d.made_release, d.created, d.ref.name != d.release_name, d.ref.name),
        default=None,
    )


def resolve(
    deployment: Deployment,
    application: Application | None,
    find_cluster: Callable[[str], Cluster | None],
    images: Iterable[Image],
) -> Resolved | Missing:
    """`find_cluster` looks up this namespace's Clusters; `images` are this namespace's
    Images with the application's image name and the deployment's version."""
    ns = deployment.ref.namespace
    if application is None:
        return Missing(
            "ApplicationNotFound",
            f"Application {deployment.application!r} does not exist in namespace {ns!r}",
        )
    target = application.target(deployment.target)
    if target is None:
        known = ", ".join(t.name for t in application.targets) or "none"
        return Missing(
            "TargetNotFound",
            f"Application {application.ref.name!r} has no target {deployment.target!r} (targets: {known})",
        )
    cluster = find_cluster(target.cluster)
    if cluster is None:
        return Missing(
            "ClusterNotFound",
            f"Cluster {target.cluster!r} (target {target.name!r}) does not exist in namespace {ns!r}",
        )
    image = pick_image(images)
    if image is None:
        return Missing(
            "ImageNotFound",
            f"no Image with name {application.image!r} and version {deployment.version!r} "
            f"in namespace {ns!r}; create it (alecton image create {application.image} "
            f"{deployment.version} REF) and the deployment proceeds",
        )
    return Resolved(application, target, cluster, image)


def desired_release(resolved: Resolved, deployment: Deployment, charts_dir: Path | None) -> DesiredRelease:
    app, target = resolved.application, resolved.target
    return DesiredRelease(
        name=deployment.release_name,
        namespace=target.namespace,
        cluster=resolved.cluster,
        chart=resolve_chart(app, charts_dir),
        values=compute_values(app.values, target.values, resolved.image.image, app.image_values),
        image=resolved.image.image,
        version=deployment.version,
    )


def rollback_pending(deployment: Deployment, recorded: RecordedStatus) -> bool:
    request = deployment.rollback
    if request is None:
        return False
    return (request.revision, request.request_id) != (
        recorded.rollback_revision,
        recorded.rollback_request_id,
    )


def decide(
    deployment: Deployment,
    recorded: RecordedStatus,
    resolution: Resolved | Missing,
    owner: ObjectRef,
    charts_dir: Path | None,
) -> Plan:
    """The single decision of a reconcile. `owner` is the Deployment that owns the pair."""
    is_owner = owner == deployment.ref
    resolved = resolution if isinstance(resolution, Resolved) else None

    if deployment.deleting:
        if not deployment.has_finalizer:
            return Plan(Action.NOTHING)
        if deployment.orphan_on_delete:
            return Plan(
                Action.RELEASE_FINALIZER,
                "Orphaned",
                "deletionPolicy is Orphan: the release is left running",
            )
        if not is_owner or not recorded.release_name:
            return Plan(
                Action.RELEASE_FINALIZER,
                "NotOwner",
                "this Deployment never made the release: nothing to uninstall",
            )
        if resolved is None:
            # Without the Cluster we cannot reach the release; do not block deletion forever.
            return Plan(
                Action.RELEASE_FINALIZER,
                "ClusterUnknown",
                f"cannot uninstall: {resolution.message}; the release may still be running",  # type: ignore[union-attr]
            )
        return Plan(Action.UNINSTALL, resolved=resolved)

    if not is_owner:
        return Plan(
            Action.CONFLICT,
            "DuplicateDeployment",
            f"Deployment {owner.name!r} already deploys application {deployment.application!r} "
            f"to target {deployment.target!r}; delete one of the two",
        )
    if deployment.suspend:
        return Plan(Action.SUSPENDED, "Suspended", "spec.suspend is true: helm is not run")
    if isinstance(resolution, Missing):
        return Plan(Action.WAIT, resolution.reason, resolution.message)
    try:
        desired = desired_release(resolution, deployment, charts_dir)
    except ChartRefusedError as error:
        return Plan(Action.REFUSED, "ChartRefused", str(error), resolved=resolution)
    if rollback_pending(deployment, recorded):
        return Plan(Action.ROLLBACK, desired=desired, resolved=resolution)
    if desired.fingerprint != recorded.applied_fingerprint:
        return Plan(Action.UPGRADE, desired=desired, resolved=resolution)
    return Plan(Action.NOTHING, desired=desired, resolved=resolution)


def _epoch(timestamp: Any) -> float:
    if not timestamp:
        return 0.0
    try:
        return dt.datetime.fromisoformat(str(timestamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def retry_wait(recorded: RecordedStatus, fingerprint: str, now: float) -> float:
    """Seconds to wait before retrying `fingerprint`; 0 when it may run now.

    Only the inputs that failed wait: a spec change (new fingerprint) runs at once.
    """
    if recorded.failed_fingerprint != fingerprint:
        return 0.0
    return max(0.0, recorded.retry_after - now)


@dataclass(frozen=True)
class Repair:
    """How to unlock a release a killed helm left in `pending-*`."""

    stuck_status: str
    rollback_to: int | None  # None: no good revision, uninstall instead

    @property
    def description(self) -> str:
        if self.rollback_to is None:
            return f"release was stuck in {self.stuck_status} with no good revision: uninstalled it"
        return f"release was stuck in {self.stuck_status}: rolled back to revision {self.rollback_to}"


def plan_repair(history: list[HistoryEntry]) -> Repair | None:
    """`history` newest first. None when the release is not stuck."""
    if not history or history[0].status not in PENDING_STATUSES:
        return None
    good = next((e for e in history[1:] if e.status in ("deployed", "superseded")), None)
    return Repair(history[0].status, good.revision if good else None)


_UNREACHABLE_MARKERS = (
    "cluster unreachable",
    "connection refused",
    "i/o timeout",
    "no such host",
    "did not finish within",  # our own helm timeout
    "tls handshake timeout",
    "context deadline exceeded",
)


def is_unreachable(message: str) -> bool:
    """Does a helm failure say the target cluster could not be reached?"""
    lowered = message.lower()
    return any(marker in lowered for marker in _UNREACHABLE_MARKERS)


def backoff_seconds(failures: int, base: float = 5.0, cap: float = 300.0) -> float:
    """Capped exponential backoff after `failures` consecutive failures (1 -> base)."""
    if failures <= 0:
        return 0.0
    return float(min(cap, base * 2 ** (failures - 1)))
