"""The release plan of one Deployment: which helm action its inputs need, over typed inputs.

`reconcile.decide` calls `plan_release` as the part of its one decision that concerns helm;
this module also resolves the inputs (Application, target, Cluster, Image, values) into
the desired release and its fingerprint. Nothing here touches the network or helm.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from alecton.api.models import Application, Cluster, Deployment, Image, ObjectRef, Target
from alecton.reconcile.chart import ChartPolicy, ChartRefusedError, ChartSource, resolve_chart
from alecton.reconcile.chart_signature import (
    CHART_VERIFICATION_FAILED,
    ChartVerdict,
    ChartVerificationFailedError,
    checked_chart,
)
from alecton.reconcile.history import find_revision, history_from_status
from alecton.reconcile.image_policy import (
    IMAGE_AMBIGUOUS,
    IMAGE_VERIFICATION_FAILED,
    VERIFICATION_SECRET_NOT_FOUND,
    AmbiguousVersion,
    ImageDigestMissingError,
    ImageVerificationFailedError,
    VerificationSecretMissingError,
    authoritative_image,
    checked_image,
)
from alecton.reconcile.redact import Redactor
from alecton.reconcile.registry_auth import RepositorySecretMissingError, repository_credentials
from alecton.reconcile.release import HistoryEntry
from alecton.reconcile.rollback_policy import ROLLBACK_REFUSED, refused_rollback_message, rollback_refusal
from alecton.reconcile.signatures import Verdict
from alecton.reconcile.times import epoch
from alecton.reconcile.values import (
    ValuesReference,
    ValuesSourceMissingError,
    compute_values,
    deep_merge,
    merge_values_from,
    secret_strings,
    values_depth_error,
)


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
    HELD = "Held"  # a rollback holds: input changes wait for a new version


# Values fetched from ConfigMaps/Secrets: each reference with its text (None: missing).
FetchedValues = list[tuple[ValuesReference, str | None]]


@dataclass(frozen=True)
class ValuesSources:
    """What the Application's and the target's valuesFrom read, in order, and the data of
    the Secrets spec.repositorySecretRef and spec.verify name (None: not there, or none
    named), and the verdicts on the Image's and the chart's signatures (alecton.registry.signatures),
    and on the recorded images (and, under spec.verify.chart, charts) of the revisions a rollback
    may restore in this pass, by revision (spec.verify only: reconcile.rollback_policy)."""

    application: FetchedValues = field(default_factory=list)
    target: FetchedValues = field(default_factory=list)
    repository_secret: dict[str, bytes] | None = field(default=None, repr=False)
    verify_secret: dict[str, bytes] | None = field(default=None, repr=False)
    image_verdict: Verdict | None = None
    chart_verdict: ChartVerdict | None = None  # spec.verify.chart only
    rollback_verdicts: Mapping[int, Verdict] = field(default_factory=dict)
    rollback_chart_verdicts: Mapping[int, Verdict] = field(default_factory=dict)  # verify.chart only

    @property
    def redactor(self) -> Redactor:
        return Redactor(secret_strings(self.application + self.target))


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
    # Secret strings in the values: kept out of every message alecton writes.
    redactor: Redactor = field(default_factory=Redactor, hash=False, compare=False)

    def location(self, identity: str = "") -> ReleaseLocation:
        """Where this release goes; `identity` (which cluster the Cluster reaches) is known
        once connected (an empty one matches any)."""
        return ReleaseLocation(self.cluster.ref.name, identity, self.namespace, self.name)

    def inputs(self) -> dict[str, str]:
        """A short digest per input, so a held rollback can say what changed."""
        material: dict[str, Any] = {
            "target": [self.name, self.namespace],
            "cluster": [
                self.cluster.ref.name,
                self.cluster.context,
                self.cluster.service_account if self.cluster.in_cluster else "",
                [self.cluster.kubeconfig_secret.name, self.cluster.kubeconfig_secret.key]
                if self.cluster.kubeconfig_secret
                else None,
            ],
            "chart": [self.chart.chart, self.chart.repository, self.chart.version],
            "values": self.values,
            "version": self.version,
        }
        return {key: _digest(value)[:12] for key, value in material.items()}

    @property
    def fingerprint(self) -> str:
        """Digest of every input of the upgrade: equal digests mean nothing to do."""
        return "sha256:" + _digest(self.inputs())


def _digest(material: Any) -> str:
    encoded = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()


@dataclass(frozen=True)
class Missing:
    reason: str
    message: str
    refused: bool = False  # never there by waiting: Failed (a person must act), not Pending


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
    applied_inputs: dict[str, str] = field(default_factory=dict, hash=False)
    applied_version: str = ""  # spec.version of the last successful helm action
    release: ReleaseLocation | None = None  # where this Deployment's release lives (or is claimed)
    release_revision: int = 0  # 0: claimed, but no helm action of ours has succeeded there yet
    rollback_revision: int | None = None
    rollback_request_id: str = ""
    rollback_result: str = ""
    failures: int = 0
    failed_fingerprint: str = ""  # inputs of the last failed attempt
    retry_after: float = 0.0  # epoch seconds before which those inputs are not retried
    unhealthy_fingerprint: str = ""  # inputs whose release failed its health check: not retried
    stalled_fingerprint: str = ""  # inputs helm refused for themselves (a template error): not retried
    retry_request_id: str = ""  # the spec.retryRequestId last acted on
    # status.promotion.promoted: the spec.version the operator wrote itself for a promotion
    promoted_version: str = ""
    history: tuple[HistoryEntry, ...] = field(default=(), hash=False)  # status.history, newest first

    @property
    def release_name(self) -> str:
        return self.release.name if self.release else ""

    def revision_at(self, location: ReleaseLocation) -> int:
        """The recorded revision of the release at `location`; 0 when status names another
        place, or only claims this one (the claim of a new place clears the revision, not the
        history)."""
        here = self.release is not None and self.release.same_place(location)
        return self.release_revision if here else 0

    def history_at(self, location: ReleaseLocation) -> tuple[HistoryEntry, ...]:
        """status.history when it is the record of the release at `location`, else nothing. A
        release at another place is another release: its revisions are numbered from 1 again,
        so revision N there has none of the image, health, causes or corrections recorded for
        revision N here."""
        return self.history if self.revision_at(location) else ()

    @classmethod
    def parse(cls, status: dict[str, Any] | None) -> RecordedStatus:
        status = status or {}
        last_rollback = status.get("lastRollback") or {}
        release = status.get("release") or {}
        inputs = status.get("appliedInputs")
        return cls(
            applied_fingerprint=str(status.get("appliedFingerprint") or ""),
            applied_inputs=dict(inputs) if isinstance(inputs, dict) else {},
            applied_version=str(status.get("appliedVersion") or ""),
            release=ReleaseLocation.parse(release),
            release_revision=int(release.get("revision") or 0),
            rollback_revision=last_rollback.get("revision"),
            rollback_request_id=str(last_rollback.get("requestId") or ""),
            rollback_result=str(last_rollback.get("result") or ""),
            failures=int(status.get("failures") or 0),
            failed_fingerprint=str(status.get("failedFingerprint") or ""),
            retry_after=epoch(status.get("retryAfter")),
            unhealthy_fingerprint=str(status.get("unhealthyFingerprint") or ""),
            stalled_fingerprint=str(status.get("stalledFingerprint") or ""),
            retry_request_id=str(status.get("lastRetryRequestId") or ""),
            promoted_version=str((status.get("promotion") or {}).get("promoted") or "")
            if isinstance(status.get("promotion"), dict)
            else "",
            history=tuple(history_from_status(status.get("history") or [])),
        )


@dataclass(frozen=True)
class ReleaseLocation:
    """Where a release lives: ownership is this whole triple, never the name alone."""

    cluster: str  # the Cluster object's name (to reach it again)
    identity: str  # which cluster that was (server or context): a changed Cluster is a new place
    namespace: str
    name: str

    @classmethod
    def parse(cls, release: dict[str, Any]) -> ReleaseLocation | None:
        if not release.get("name"):
            return None
        return cls(
            cluster=str(release.get("cluster") or ""),
            identity=str(release.get("clusterIdentity") or ""),
            namespace=str(release.get("namespace") or ""),
            name=str(release["name"]),
        )

    def same_place(self, other: ReleaseLocation) -> bool:
        # A status written before identities were recorded matches on the Cluster's name.
        identity_matches = self.identity == other.identity or not (self.identity and other.identity)
        return (self.name, self.namespace, self.cluster) == (other.name, other.namespace, other.cluster) and (
            identity_matches
        )

    def describe(self) -> str:
        return f"release {self.name!r} in namespace {self.namespace!r} of Cluster {self.cluster!r}"

    def as_status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "namespace": self.namespace,
            "cluster": self.cluster,
            "clusterIdentity": self.identity,
        }


@dataclass(frozen=True)
class Plan:
    action: Action
    reason: str = ""
    message: str = ""
    desired: DesiredRelease | None = None
    resolved: Resolved | None = None
    rollback_to: int | None = None  # an automatic rollback's revision (spec.rollback has its own)
    health_failure: str = ""  # why the revision rolled back from failed its health check
    # spec.verify: verdicts on the recorded images (and charts, under spec.verify.chart) of
    # the revisions a rollback may restore now
    rollback_verdicts: Mapping[int, Verdict] = field(default_factory=dict, hash=False)
    rollback_chart_verdicts: Mapping[int, Verdict] = field(default_factory=dict, hash=False)


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
    image = authoritative_image(images)
    if isinstance(image, AmbiguousVersion):
        return Missing(IMAGE_AMBIGUOUS, image.message, refused=True)
    if image is None:
        return Missing(
            "ImageNotFound",
            f"no Image with name {application.image!r} and version {deployment.version!r} "
            f"in namespace {ns!r}; create it (alecton image create {application.image} "
            f"{deployment.version} REF) and the deployment proceeds",
        )
    return Resolved(application, target, cluster, image)


class ValuesRefusedError(ValueError):
    """Values that can never be used as they are (too deep, a malformed valuesFrom)."""


def values_references(resolved: Resolved) -> tuple[list[ValuesReference], list[ValuesReference]]:
    """The Application's and the target's valuesFrom, parsed (ValuesRefusedError when malformed)."""
    app, target = resolved.application, resolved.target
    try:
        return (
            [ValuesReference.parse(raw, f"spec.valuesFrom[{i}]") for i, raw in enumerate(app.values_from)],
            [
                ValuesReference.parse(raw, f"target {target.name!r} valuesFrom[{i}]")
                for i, raw in enumerate(target.values_from)
            ],
        )
    except ValueError as error:
        raise ValuesRefusedError(str(error)) from None


def merged_values(resolved: Resolved, sources: ValuesSources) -> dict[str, Any]:
    """Lowest first: chart defaults < Application valuesFrom < Application values <
    target valuesFrom < target values < the image keys."""
    app, target = resolved.application, resolved.target
    for where, values in (("spec.values", app.values), (f"target {target.name!r} values", target.values)):
        if problem := values_depth_error(values):
            raise ValuesRefusedError(f"{where}: {problem}")
    values = merge_values_from({}, sources.application)
    values = deep_merge(values, app.values)
    values = merge_values_from(values, sources.target)
    if problem := values_depth_error(values):
        raise ValuesRefusedError(f"valuesFrom: {problem}")
    return compute_values(values, target.values, deployed_image(resolved, sources), app.image_values)


def deployed_image(resolved: Resolved, sources: ValuesSources | None = None) -> str:
    """The reference the chart gets (reconcile.image_policy: pinned, and signed when asked)."""
    return checked_image(resolved.application, resolved.image, sources.image_verdict if sources else None)


def desired_release(
    resolved: Resolved,
    deployment: Deployment,
    charts: ChartPolicy,
    sources: ValuesSources | None = None,
) -> DesiredRelease:
    app, target = resolved.application, resolved.target
    sources = sources or ValuesSources()
    chart = resolve_chart(app, charts)
    credentials = repository_credentials(app.chart, app.repository_secret, sources.repository_secret)
    chart = replace(chart, credentials=credentials)
    return DesiredRelease(
        name=deployment.release_name,
        namespace=target.namespace,
        cluster=resolved.cluster,
        # spec.verify.chart: pinned to the digest whose signature verified
        chart=checked_chart(app, chart, sources.chart_verdict),
        values=merged_values(resolved, sources),
        image=deployed_image(resolved, sources),
        version=deployment.version,
        redactor=sources.redactor,
    )


def rollback_pending(deployment: Deployment, recorded: RecordedStatus) -> bool:
    request = deployment.rollback
    if request is None:
        return False
    return (request.revision, request.request_id) != (
        recorded.rollback_revision,
        recorded.rollback_request_id,
    )


def retry_pending(deployment: Deployment, recorded: RecordedStatus) -> bool:
    """`alecton retry` (a new spec.retryRequestId) asks for helm to run again."""
    return bool(deployment.retry_request_id) and deployment.retry_request_id != recorded.retry_request_id


def _desired_or_refusal(
    resolution: Resolved, deployment: Deployment, charts: ChartPolicy, sources: ValuesSources | None
) -> DesiredRelease | Plan:
    """The desired release, or the plan that waits for or refuses its inputs."""
    try:
        return desired_release(resolution, deployment, charts, sources)
    except ChartRefusedError as error:
        return Plan(Action.REFUSED, "ChartRefused", str(error), resolved=resolution)
    except ValuesSourceMissingError as error:
        return Plan(Action.WAIT, "ValuesSourceNotFound", str(error), resolved=resolution)
    except RepositorySecretMissingError as error:
        return Plan(Action.WAIT, "RepositorySecretNotFound", str(error), resolved=resolution)
    except ImageDigestMissingError as error:
        return Plan(Action.REFUSED, "ImageDigestMissing", str(error), resolved=resolution)
    except ImageVerificationFailedError as error:
        return Plan(Action.REFUSED, IMAGE_VERIFICATION_FAILED, str(error), resolved=resolution)
    except ChartVerificationFailedError as error:
        return Plan(Action.REFUSED, CHART_VERIFICATION_FAILED, str(error), resolved=resolution)
    except VerificationSecretMissingError as error:
        return Plan(Action.WAIT, VERIFICATION_SECRET_NOT_FOUND, str(error), resolved=resolution)
    except ValueError as error:  # ValuesRefusedError, or a valuesFrom text that is not a map
        return Plan(Action.REFUSED, "ValuesRefused", str(error), resolved=resolution)


def plan_release(
    deployment: Deployment,
    recorded: RecordedStatus,
    resolution: Resolved | Missing,
    owner: ObjectRef,
    charts: ChartPolicy,
    sources: ValuesSources | None = None,
) -> Plan:
    """What the release needs for these inputs: the part of `reconcile.decide` that plans helm
    (deletion, ownership of the pair, missing inputs, rollback, upgrade). `owner` is the
    Deployment that owns the pair."""
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
        # Uninstall where status says the release lives, never at the current target.
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
        action = Action.REFUSED if resolution.refused else Action.WAIT
        return Plan(action, resolution.reason, resolution.message)
    desired = _desired_or_refusal(resolution, deployment, charts, sources)
    if isinstance(desired, Plan):
        return desired
    verdicts = sources.rollback_verdicts if sources is not None else {}
    chart_verdicts = sources.rollback_chart_verdicts if sources is not None else {}
    plan = _helm_plan(deployment, recorded, resolution, desired, verdicts, chart_verdicts)
    if not verdicts and not chart_verdicts:
        return plan
    return replace(plan, rollback_verdicts=verdicts, rollback_chart_verdicts=chart_verdicts)


def _helm_plan(
    deployment: Deployment,
    recorded: RecordedStatus,
    resolution: Resolved,
    desired: DesiredRelease,
    verdicts: Mapping[int, Verdict],
    chart_verdicts: Mapping[int, Verdict],
) -> Plan:
    """The helm action for inputs that resolved: rollback, retry, upgrade or nothing."""
    version_changed = bool(recorded.applied_version) and deployment.version != recorded.applied_version
    if rollback_pending(deployment, recorded):
        if version_changed:
            # A rollback and a new version in one update: the version wins.
            return Plan(
                Action.UPGRADE,
                "RollbackSuperseded",
                "spec.version changed in the same update as spec.rollback: the new version is "
                "deployed and the rollback request is superseded",
                desired=desired,
                resolved=resolution,
            )
        if refused := refused_rollback(deployment, recorded, resolution, desired, verdicts, chart_verdicts):
            return refused
        return Plan(Action.ROLLBACK, desired=desired, resolved=resolution)
    if retry_pending(deployment, recorded):
        return Plan(Action.UPGRADE, "RetryRequested", desired=desired, resolved=resolution)
    if desired.fingerprint == recorded.unhealthy_fingerprint:
        # Health failures are not transient: the same inputs fail the same way.
        return Plan(Action.NOTHING, "HealthCheckFailed", desired=desired, resolved=resolution)
    if desired.fingerprint != recorded.applied_fingerprint:
        if rollback_holds(deployment, recorded) and not version_changed:
            if recorded.applied_fingerprint == rolled_back_fingerprint(desired.fingerprint):
                return Plan(Action.NOTHING, desired=desired, resolved=resolution)  # nothing changed since
            return held_plan(desired, recorded, resolution)
        return Plan(Action.UPGRADE, desired=desired, resolved=resolution)
    return Plan(Action.NOTHING, desired=desired, resolved=resolution)


def refused_rollback(
    deployment: Deployment,
    recorded: RecordedStatus,
    resolution: Resolved,
    desired: DesiredRelease,
    verdicts: Mapping[int, Verdict],
    chart_verdicts: Mapping[int, Verdict],
) -> Plan | None:
    """spec.verify: a requested rollback to a revision whose recorded image (or, under
    spec.verify.chart, chart) does not pass the policy now is refused (nothing runs); it stays
    refused while spec.rollback asks for it."""
    assert deployment.rollback is not None
    revision = deployment.rollback.revision
    # Only the record of the place the rollback runs at says what its revision ran (R27B-3).
    entry = find_revision(list(recorded.history_at(desired.location())), revision)
    why = rollback_refusal(resolution.application, revision, entry, verdicts, chart_verdicts)
    if not why:
        return None
    hint = (
        f"alecton deploy {deployment.application} {deployment.target} VERSION -n {deployment.ref.namespace}"
    )
    message = refused_rollback_message(resolution.application, revision, why, recorded.release_revision, hint)
    return Plan(Action.REFUSED, ROLLBACK_REFUSED, message, resolved=resolution)


def rolled_back_fingerprint(fingerprint: str) -> str:
    """What a successful rollback records: the spec's inputs are *not* what runs (an older
    revision does), so removing spec.rollback deploys them again."""
    return f"rolled-back:{fingerprint}"


def rollback_holds(deployment: Deployment, recorded: RecordedStatus) -> bool:
    """A successful rollback holds while spec.rollback still asks for it."""
    return (
        deployment.rollback is not None
        and recorded.rollback_result == "Succeeded"
        and not rollback_pending(deployment, recorded)
    )


def held_plan(desired: DesiredRelease, recorded: RecordedStatus, resolved: Resolved) -> Plan:
    current = desired.inputs()
    changed = [key for key, digest in current.items() if recorded.applied_inputs.get(key) != digest]
    what = ", ".join(changed) if recorded.applied_inputs else "the inputs"
    return Plan(
        Action.HELD,
        "RollbackHeld",
        f"held at revision {recorded.release_revision} by spec.rollback (to revision "
        f"{recorded.rollback_revision}); {what} changed since and would be deployed by a new "
        "spec.version or by removing spec.rollback",
        desired=desired,
        resolved=resolved,
    )
