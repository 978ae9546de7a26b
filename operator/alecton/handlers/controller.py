"""The Deployment controller: a keyed work queue drained by a fixed pool of workers.

kopf watches the four kinds and keeps them in in-memory indexes (`handlers.kopf_app`);
every watch event enqueues the Deployments it can affect. A worker takes one
Deployment, asks `reconcile.plan.decide` what to do, runs that helm action and
writes the status. The pool size is the helm concurrency limit, and the queue
guarantees one release never has two helm processes at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from alecton.api.models import (
    FINALIZER,
    Application,
    Cluster,
    Deployment,
    Image,
    InvalidResourceError,
    ObjectRef,
)
from alecton.handlers.access import ClusterAccessError, cluster_access
from alecton.handlers.config import OperatorConfig
from alecton.handlers.drift import DriftChecker
from alecton.handlers.health_monitor import HealthMonitor
from alecton.handlers.ownership import check_ownership
from alecton.handlers.promoter import Promoter
from alecton.handlers.queue import WorkQueue
from alecton.handlers.slots import Slots
from alecton.handlers.unlock import ReleaseLockedError, unlock
from alecton.handlers.verify import Verifier
from alecton.helm.actions import HelmActionError, HelmActions
from alecton.helm.runner import HelmTimeoutError
from alecton.kube.access import KubeAccess
from alecton.kube.client import ApiException, KubeClient
from alecton.kube.releases import ReleaseLookupError, ReleaseStorage, owner_labels
from alecton.kube.values_sources import fetch_values_sources
from alecton.metrics import Metrics
from alecton.reconcile import status as st
from alecton.reconcile.cause import cause_of
from alecton.reconcile.helm_failure import FailureClass, FailureKind, classify_helm_failure
from alecton.reconcile.history import (
    carry_recorded,
    history_after_upgrade,
    history_from_status,
    mark_cause,
    mark_health,
)
from alecton.reconcile.plan import (
    Action,
    DesiredRelease,
    Missing,
    Plan,
    RecordedStatus,
    ReleaseLocation,
    Resolved,
    ValuesRefusedError,
    backoff_seconds,
    decide,
    is_unreachable,
    owner_of,
    pick_image,
    resolve,
    retry_wait,
)
from alecton.reconcile.promotion_records import PromotionRecord
from alecton.reconcile.redact import Redactor
from alecton.reconcile.release import ReleaseInfo, owner_description

log = logging.getLogger("alecton.controller")

_SLOT_BUSY_RETRY = 1.0
_VALUES_SOURCE_RETRY = 30.0  # ConfigMaps and Secrets are not watched: look again later
# Failures that are about the target or its inputs, reported in status with backoff.
_ACTION_ERRORS = (
    HelmActionError,
    HelmTimeoutError,
    ClusterAccessError,
    ReleaseLookupError,
    ReleaseLockedError,
)


def _stalls(error: Exception) -> FailureClass | None:
    """The class of a helm failure that only a change of the inputs can fix, else None. Only
    helm's own words are read (its whole stderr); the operator's other errors are transient."""
    if not isinstance(error, HelmActionError):
        return None
    found = classify_helm_failure(error.result.stderr or str(error))
    return found if found.kind is FailureKind.INPUT else None


@dataclass(frozen=True)
class DeploymentSnapshot:
    """What the index keeps of a Deployment: the raw body's few parts we use."""

    body: dict[str, Any]  # apiVersion, kind, metadata, spec, status

    @property
    def ref(self) -> ObjectRef:
        meta = self.body["metadata"]
        return ObjectRef(meta["namespace"], meta["name"])

    @property
    def resource_version(self) -> int:
        try:
            return int(self.body["metadata"].get("resourceVersion") or 0)
        except ValueError:
            return 0

    @property
    def status(self) -> dict[str, Any]:
        return self.body.get("status") or {}


class Indexes:
    """Read access to kopf's live indexes, bound when kopf first calls a handler."""

    def __init__(self) -> None:
        self.deployments: Mapping[Any, Any] = {}
        self.pairs: Mapping[Any, Any] = {}
        self.applications: Mapping[Any, Any] = {}
        self.clusters: Mapping[Any, Any] = {}
        self.images: Mapping[Any, Any] = {}
        self.promotions: Mapping[Any, Any] = {}
        self.by_application: Mapping[Any, Any] = {}
        self.versions: Mapping[Any, Any] = {}

    @staticmethod
    def _one(index: Mapping[Any, Any], key: Any) -> Any:
        store = index.get(key) if key in index else None
        return next(iter(store), None) if store is not None else None

    def deployment(self, ref: ObjectRef) -> DeploymentSnapshot | None:
        return self._one(self.deployments, (ref.namespace, ref.name))

    def application(self, namespace: str, name: str) -> Application | str | None:
        return self._one(self.applications, (namespace, name))

    def cluster(self, namespace: str, name: str) -> Cluster | None:
        return self._one(self.clusters, (namespace, name))

    def images_for(self, namespace: str, name: str, version: str) -> list[Image]:
        key = (namespace, name, version)
        return list(self.images[key]) if key in self.images else []

    def image_versions(self, namespace: str, name: str) -> list[str]:
        key = (namespace, name)
        return list(dict.fromkeys(self.versions[key])) if key in self.versions else []

    def of_application(self, namespace: str, application: str) -> list[ObjectRef]:
        key = (namespace, application)
        return [ref for ref, _ in self.by_application[key]] if key in self.by_application else []

    def promotions_for(self, namespace: str, deployment: str) -> list[PromotionRecord]:
        key = (namespace, deployment)
        return list(self.promotions[key]) if key in self.promotions else []

    def followers(self, namespace: str, application: str, target: str) -> list[ObjectRef]:
        """Deployments of `application` whose spec.promotion follows `target`."""
        key = (namespace, application)
        return (
            [ref for ref, source in self.by_application[key] if source == target]
            if key in self.by_application
            else []
        )

    def deployments_for_pair(self, namespace: str, application: str, target: str) -> list[Deployment]:
        key = (namespace, application, target)
        return list(self.pairs[key]) if key in self.pairs else []

    def deployment_refs(self, namespace: str) -> Iterable[ObjectRef]:
        return [ObjectRef(ns, name) for ns, name in list(self.deployments) if ns == namespace]


class Controller:
    def __init__(
        self, config: OperatorConfig, kube: KubeClient, helm: HelmActions, metrics: Metrics | None = None
    ) -> None:
        self.config = config
        self.kube = kube
        self.helm = helm
        self.indexes = Indexes()
        self.queue: WorkQueue[ObjectRef] = WorkQueue()
        # Bodies returned by our own writes, newer than the index until the watch
        # delivers them; without this a quick re-reconcile would act on stale status.
        self._written: dict[ObjectRef, DeploymentSnapshot] = {}
        self._workers: list[asyncio.Task[None]] = []
        self.storage = ReleaseStorage()
        self.slots = Slots(config.namespace_workers)
        self._errors: dict[ObjectRef, int] = {}  # consecutive unexpected errors per Deployment
        self.metrics = metrics or Metrics()
        self.metrics.watch_phases(self._phases)
        # Health after helm: shared watches; a verdict change requeues the Deployment.
        self.monitor = HealthMonitor(self.queue.add)
        self.verifier = Verifier(self)
        self.drift = DriftChecker(self)
        self.promoter = Promoter(self)
        self.metrics.health_watches.set_function(lambda: self.monitor.watches)
        self.metrics.health_tracked.set_function(lambda: self.monitor.tracked_count)

    def _phases(self) -> list[str]:
        snapshots = (next(iter(store), None) for store in list(self.indexes.deployments.values()))
        return [(snap.status.get("phase") or "Pending") for snap in snapshots if snap is not None]

    @property
    def ready(self) -> bool:
        return bool(self._workers)

    # ----- triggers (called from kopf handlers) --------------------------------------

    def deployment_event(self, ref: ObjectRef, resource_version: int, deleted: bool) -> None:
        written = self._written.get(ref)
        if written and (deleted or resource_version >= written.resource_version):
            del self._written[ref]
        if deleted:
            self.queue.forget(ref)
            self._errors.pop(ref, None)
            self.monitor.untrack(ref)
            self.drift.forget(ref)
            return
        self.queue.add(ref)
        self._requeue_followers(ref)

    def _requeue_followers(self, ref: ObjectRef) -> None:
        """A Deployment's status is the `from` of promotions of its siblings."""
        snap = self.indexes.deployment(ref)
        spec = (snap.body.get("spec") or {}) if snap else {}
        if spec.get("application") and spec.get("target"):
            for follower in self.indexes.followers(ref.namespace, spec["application"], spec["target"]):
                self.queue.add(follower)

    def namespace_changed(self, namespace: str, application: str | None = None) -> None:
        """An Application, Cluster or Image changed: requeue the Deployments it may affect.

        Reconciling an unaffected Deployment is a cheap no-op (its fingerprint matches).
        """
        for ref in self.indexes.deployment_refs(namespace):
            if application is None:
                self.queue.add(ref)
                continue
            snap = self.indexes.deployment(ref)
            if snap and (snap.body.get("spec") or {}).get("application") == application:
                self.queue.add(ref)

    # ----- workers --------------------------------------------------------------------

    def start(self) -> None:
        for number in range(self.config.helm_concurrency):
            self._workers.append(asyncio.create_task(self._work(), name=f"alecton-worker-{number}"))

    async def stop(self) -> None:
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers.clear()
        await self.storage.close()
        await self.monitor.close()
        await self.drift.close()

    async def _work(self) -> None:
        while True:
            ref = await self.queue.get()
            try:
                result = await self.reconcile(ref)
                self._errors.pop(ref, None)
                self.metrics.reconciles.labels(result).inc()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # Never let one Deployment kill a worker, nor retry it in a hot loop.
                await self._unexpected(ref, error)
            finally:
                self.queue.done(ref)

    async def _unexpected(self, ref: ObjectRef, error: Exception) -> None:
        """Back off per Deployment and say so in a Stalled condition (one line, no traceback
        in status; the traceback is logged at debug level only)."""
        self.metrics.reconciles.labels("error").inc()
        failures = self._errors[ref] = self._errors.get(ref, 0) + 1
        delay = backoff_seconds(failures)
        first_line = (str(error).strip().splitlines() or [""])[0][:300]
        reason = f"unexpected {type(error).__name__}: {first_line}".rstrip(": ")
        log.error("reconcile of %s failed: %s; retrying in %.0f s", ref, reason, delay)
        log.debug("traceback of the failed reconcile of %s", ref, exc_info=error)
        self.queue.add_after(ref, delay)
        snap = self._snapshot(ref)
        if snap is not None:
            generation = int(snap.body["metadata"].get("generation") or 0)
            with contextlib.suppress(Exception):  # the API server may be what failed
                await self._write_status(snap, st.stalled_status(self._ctx(snap, generation), reason, delay))

    # ----- one reconcile --------------------------------------------------------------

    def _snapshot(self, ref: ObjectRef) -> DeploymentSnapshot | None:
        indexed = self.indexes.deployment(ref)
        written = self._written.get(ref)
        if written and (indexed is None or written.resource_version > indexed.resource_version):
            return written
        return indexed

    async def reconcile(self, ref: ObjectRef) -> str:
        snap = self._snapshot(ref)
        if snap is None:
            self._written.pop(ref, None)
            return "gone"
        try:
            deployment = Deployment.parse(snap.body)
        except InvalidResourceError as error:
            await self._write_if_changed(snap, Plan(Action.REFUSED, "InvalidSpec", f"invalid spec: {error}"))
            return "invalid"
        if deployment.promotion is not None and not deployment.deleting and not deployment.suspend:
            step = await self.promoter.step(snap, deployment)
            if step.refused:
                await self._write_if_changed(snap, Plan(Action.REFUSED, "PromotionRefused", step.refused))
                return "invalid"
            if step.wrote_version:
                return "promoted"  # the update's own event deploys the version
            snap = self._snapshot(ref) or snap
            app = self.indexes.application(ref.namespace, deployment.application)
            if not deployment.version and isinstance(app, Application):  # else the plan says what is missing
                waiting = str(
                    (snap.status.get("promotion") or {}).get("message") or "no version qualifies yet"
                )
                await self._write_if_changed(snap, Plan(Action.WAIT, "AwaitingVersion", waiting))
                return "wait"
        plan = await self._plan(deployment, snap)
        logger = logging.LoggerAdapter(log, {"deployment": str(ref)})
        if plan.action is Action.NOTHING:
            result = await self.verifier.settle(snap, deployment, plan)
            latest = self._snapshot(ref)
            if latest is not None:
                await self.drift.check_if_due(latest, deployment, plan)
            return result
        if plan.action in (Action.WAIT, Action.CONFLICT, Action.SUSPENDED, Action.REFUSED, Action.HELD):
            await self._write_if_changed(snap, plan)
            if plan.reason == "ValuesSourceNotFound":
                self.queue.add_after(ref, _VALUES_SOURCE_RETRY)
            return plan.action.value.lower()
        if plan.action is Action.RELEASE_FINALIZER:
            if plan.reason != "NotOwner":
                await self._event(snap, "Normal", plan.reason, plan.message)
            await self._remove_finalizer(snap)
            return "finalized"
        if plan.action is Action.UNINSTALL:
            self.monitor.untrack(ref)
            await self._uninstall(snap, deployment, logger)
            return "uninstalled"
        assert plan.desired is not None
        wait = retry_wait(RecordedStatus.parse(snap.status), plan.desired.fingerprint, time.time())
        if wait > 0 and plan.reason != "RetryRequested":
            # A failed attempt at these same inputs waits for its retry time (or, for inputs
            # helm refused, for a change); it is in status, so it survives an operator restart.
            if math.isinf(wait):
                return "stalled"
            self.queue.add_after(ref, wait)
            return "backoff"
        return await self._release(snap, deployment, plan, logger)

    async def _plan(self, deployment: Deployment, snap: DeploymentSnapshot) -> Plan:
        ns = deployment.ref.namespace
        app = self.indexes.application(ns, deployment.application)
        resolution: Any
        if isinstance(app, str):  # the Application failed to parse
            resolution = Missing("InvalidApplication", f"Application {deployment.application!r}: {app}")
        else:
            resolution = resolve(
                deployment,
                app,
                lambda name: self.indexes.cluster(ns, name),
                self.indexes.images_for(ns, app.image, deployment.version) if app else [],
            )
        sources = None
        if isinstance(resolution, Resolved) and not deployment.deleting:
            try:
                sources = await fetch_values_sources(self.kube, resolution)
            except ValuesRefusedError as error:
                return Plan(Action.REFUSED, "ValuesRefused", str(error), resolved=resolution)
        owner = owner_of(self.indexes.deployments_for_pair(ns, deployment.application, deployment.target))
        return decide(
            deployment,
            RecordedStatus.parse(snap.status),
            resolution,
            owner.ref if owner else deployment.ref,
            self.config.charts,
            sources,
        )

    async def _release(
        self,
        snap: DeploymentSnapshot,
        deployment: Deployment,
        plan: Plan,
        logger: logging.LoggerAdapter,
    ) -> str:
        desired = plan.desired
        assert desired is not None
        recorded = RecordedStatus.parse(snap.status)
        cluster, namespace = desired.cluster.ref, deployment.ref.namespace
        if self.slots.try_acquire(namespace, cluster) is not None:
            self.queue.add_after(deployment.ref, _SLOT_BUSY_RETRY)
            return "throttled"
        rollback_record = self._rollback_record(plan, deployment)
        repaired = after = ""
        try:
            snap = await self._ensure_finalizer(snap)
            async with cluster_access(desired.cluster, desired.namespace, self.config, self.kube) as access:
                location = ReleaseLocation(
                    desired.cluster.ref.name, access.identity, desired.namespace, desired.name
                )
                moved_from = self._moved_from(snap, recorded, location)
                snap, conflict, progress = await self._claim(
                    snap, deployment, plan, recorded, location, moved_from, access
                )
                if conflict:
                    await self._write_if_changed(snap, Plan(Action.CONFLICT, "ReleaseNotOwned", conflict))
                    return "conflict"
                try:
                    released, repaired = await self._helm_action_unlocking(
                        snap, plan, deployment, desired, access, logger
                    )
                finally:
                    if progress is not None:  # written before any later status
                        snap = await progress
                # An upgrade's JSON output extends the recorded history; a rollback or a
                # repair (or a gap in what was recorded) costs one `helm history`.
                history = None
                if released is not None and not repaired:
                    # The recorded history is of this place only (a move starts afresh).
                    same_place = recorded.release is not None and recorded.release.same_place(location)
                    recorded_history = (snap.status.get("history") or []) if same_place else []
                    history = history_after_upgrade(
                        history_from_status(recorded_history),
                        released,
                        desired.version,
                        self.helm.history_max,
                    )
                if history is None:
                    history = carry_recorded(
                        await self.helm.history(desired.name, desired.namespace, access),
                        history_from_status(snap.status.get("history") or []),
                    )
                if plan.health_failure:
                    history = mark_health(history, recorded.release_revision, False)
                if released is not None or plan.action is Action.ROLLBACK:
                    history = mark_cause(history, history[0].revision, cause_of(plan, deployment, recorded))
                verify_until = await self.verifier.start(deployment, plan, access, history, logger)
            if moved_from is not None:
                after = await self._remove_moved(snap, deployment, moved_from, logger)
        except _ACTION_ERRORS as error:
            if is_unreachable(str(error)):
                self.slots.unreachable.add(cluster)
            reason = "ClusterRefused" if isinstance(error, ClusterAccessError) else ""
            return await self._failed(
                snap, deployment, plan, recorded, str(error), rollback_record, logger, reason, _stalls(error)
            )
        finally:
            self.slots.release(namespace, cluster)
        self.slots.unreachable.discard(cluster)
        if rollback_record is not None and plan.action is Action.ROLLBACK:
            rollback_record["result"] = "Succeeded"
        ctx = self._ctx(snap, deployment.generation)
        note = repaired
        if plan.health_failure:
            note = "; ".join(filter(None, [repaired, plan.health_failure]))
        status = st.succeeded_status(
            ctx,
            plan.action,
            desired,
            history,
            lambda version: self._image_ref(deployment, version),
            location,
            rollback_record,
            note=note,
            after=after,
            verify_until=verify_until,
            rolled_back_to=plan.rollback_to,
        )
        status["movedFrom"] = None
        if plan.action is Action.UPGRADE:
            status["unhealthyFingerprint"] = None  # these inputs are verified afresh
            if deployment.retry_request_id:
                status["lastRetryRequestId"] = deployment.retry_request_id
        if plan.health_failure:
            status["unhealthyFingerprint"] = desired.fingerprint
            status["failedVersions"] = st.with_failed_version(
                snap.status,
                st.failed_version_entry(
                    recorded.applied_version, recorded.release_revision, plan.health_failure, ctx.now
                ),
            )
        await self._write_status(snap, status)
        reason = "AutomaticRollback" if plan.health_failure else f"{plan.action.value}Succeeded"
        await self._event(snap, "Warning" if plan.health_failure else "Normal", reason, status["message"])
        logger.info("%s", status["message"])
        return plan.action.value.lower()

    @staticmethod
    def _rollback_record(plan: Plan, deployment: Deployment) -> dict[str, Any] | None:
        if deployment.rollback is None or plan.action not in (Action.ROLLBACK, Action.UPGRADE):
            return None
        if plan.action is Action.UPGRADE and plan.reason != "RollbackSuperseded":
            return None
        record: dict[str, Any] = {
            "revision": deployment.rollback.revision,
            "requestId": deployment.rollback.request_id,
        }
        if plan.action is Action.UPGRADE:
            record["result"] = "Superseded"
        return record

    @staticmethod
    def _moved_from(
        snap: DeploymentSnapshot, recorded: RecordedStatus, location: ReleaseLocation
    ) -> ReleaseLocation | None:
        """The place a release of this Deployment lived before, when the target moved."""
        pending = ReleaseLocation.parse(snap.status.get("movedFrom") or {})
        if pending is not None and not pending.same_place(location):
            return pending
        previous = recorded.release
        if previous is not None and recorded.release_revision > 0 and not previous.same_place(location):
            return previous
        return None

    async def _claim(
        self,
        snap: DeploymentSnapshot,
        deployment: Deployment,
        plan: Plan,
        recorded: RecordedStatus,
        location: ReleaseLocation,
        moved_from: ReleaseLocation | None,
        access: KubeAccess,
    ) -> tuple[DeploymentSnapshot, str | None, asyncio.Task[DeploymentSnapshot] | None]:
        """Check the owner in helm's storage, then write the in-progress status (or start
        writing it: the task to await).

        The owner is read before every mutating helm action, also at a place this
        Deployment already holds: status is writable by whoever may write Deployment status,
        and a claim written before a failed first install proves nothing (issue 23: a place
        claimed by a failed install was later taken by another tenant's release, which was then
        upgraded and uninstalled as this Deployment's). A claim of a new place clears the
        recorded revision, so only helm's storage can confirm it; the previous place is kept
        in movedFrom until it is cleaned up."""
        assert plan.desired is not None
        progress = st.in_progress_status(
            self._ctx(snap, deployment.generation), plan.action, plan.desired, location
        )
        annotations = (snap.body.get("metadata") or {}).get("annotations") or {}
        conflict = await check_ownership(
            self.storage, access, location, deployment.ref, annotations, self.config.allow_adopt
        )
        if conflict:
            return snap, conflict, None
        if recorded.release is not None and recorded.release.same_place(location):
            # Ours here, as helm's storage just said: show the progress while helm already runs.
            return snap, None, asyncio.create_task(self._write_status(snap, progress))
        progress["release"] = {**progress["release"], **st.UNCONFIRMED_RELEASE}
        if moved_from is not None:
            progress["movedFrom"] = moved_from.as_status()
        return await self._write_status(snap, progress), None, None

    async def _remove_moved(
        self,
        snap: DeploymentSnapshot,
        deployment: Deployment,
        old: ReleaseLocation,
        logger: logging.LoggerAdapter,
    ) -> str:
        """After a move succeeded: remove the release at its old place per deletionPolicy."""
        if deployment.orphan_on_delete:
            message = f"left the release in namespace {old.namespace!r} running (deletionPolicy Orphan)"
        else:
            try:
                message = await self._uninstall_at(deployment, old, logger)
            except _ACTION_ERRORS as error:
                # The release runs at its new place; the old one is reported, not retried
                # (nothing would bring this Deployment back to it).
                message = (
                    f"could not remove {old.describe()}: {error}; remove it by hand "
                    f"(helm uninstall {old.name} -n {old.namespace})"
                )
                await self._event(snap, "Warning", "ReleaseMoved", message)
                return message
        await self._event(snap, "Normal", "ReleaseMoved", message)
        return message

    async def _uninstall_at(
        self, deployment: Deployment, where: ReleaseLocation, logger: logging.LoggerAdapter
    ) -> str:
        """Uninstall the release at `where` only if its owner label names this Deployment.
        What was done, as a message; raises the action errors on failure."""
        cluster = self.indexes.cluster(deployment.ref.namespace, where.cluster)
        if cluster is None:
            return f"left {where.describe()}: the Cluster no longer exists, so it cannot be reached"
        async with cluster_access(cluster, where.namespace, self.config, self.kube) as access:
            if where.identity and access.identity != where.identity:
                return f"left {where.describe()}: the Cluster now points at another cluster"
            conflict = await check_ownership(self.storage, access, where, deployment.ref, {}, False)
            if conflict:
                return f"left {where.describe()}: {conflict}"
            logger.info("helm uninstall %s in %s", where.name, where.namespace)
            removed = await self.helm.uninstall(where.name, where.namespace, access)
        if not removed:
            return f"the release in namespace {where.namespace!r} was already gone"
        return f"removed the release from namespace {where.namespace}"

    async def _helm_action_unlocking(
        self,
        snap: DeploymentSnapshot,
        plan: Plan,
        deployment: Deployment,
        desired: DesiredRelease,
        access: KubeAccess,
        logger: logging.LoggerAdapter,
    ) -> tuple[ReleaseInfo | None, str]:
        """The helm action; a release locked by a killed helm is unlocked (rollback to the
        last good revision, or uninstall) and the action retried once. Returns what helm
        reported and what was repaired."""
        try:
            return await self._helm_action(plan, deployment, desired, access, logger), ""
        except HelmActionError as error:
            if not error.release_locked:
                raise
            stale_after = self.config.stale_lock_after
            repaired = await unlock(self.helm, desired.name, desired.namespace, access, stale_after, logger)
            if not repaired:
                raise
        await self._event(snap, "Warning", "ReleaseRepaired", repaired)
        return await self._helm_action(plan, deployment, desired, access, logger), repaired

    async def _helm_action(
        self,
        plan: Plan,
        deployment: Deployment,
        desired: DesiredRelease,
        access: KubeAccess,
        logger: logging.LoggerAdapter,
    ) -> ReleaseInfo | None:
        """Run the plan's helm command; an upgrade returns the release helm reports."""
        if plan.action is Action.ROLLBACK and (plan.rollback_to or deployment.rollback):
            revision = plan.rollback_to or deployment.rollback.revision  # type: ignore[union-attr]
            logger.info("helm rollback %s to revision %s", desired.name, revision)
            await self.helm.rollback(desired.name, desired.namespace, revision, access)
            return None
        logger.info("helm upgrade --install %s (version %s)", desired.name, desired.version)
        return await self.helm.upgrade(
            desired.name,
            desired.namespace,
            desired.chart,
            desired.values,
            access,
            owner_description(desired.version, str(deployment.ref)),
            owner_labels(deployment.ref.namespace, deployment.ref.name),
        )

    async def _failed(
        self,
        snap: DeploymentSnapshot,
        deployment: Deployment,
        plan: Plan,
        recorded: RecordedStatus,
        error: str,
        rollback_record: dict[str, Any] | None,
        logger: logging.LoggerAdapter,
        reason: str = "",
        stalled: FailureClass | None = None,
    ) -> str:
        """`stalled`: helm refused the inputs themselves; no timer, they wait for a change."""
        assert plan.desired is not None
        error = plan.desired.redactor.redact(error)
        failures = recorded.failures + 1
        delay = backoff_seconds(failures)
        rollback_once = rollback_record is not None and plan.action is Action.ROLLBACK
        if rollback_once:
            rollback_record["result"] = "Failed"  # type: ignore[index]
            stalled = None
        elif stalled is None:
            self.queue.add_after(deployment.ref, delay)
        if plan.health_failure:
            # The automatic rollback failed: the health failure stands; not retried on a timer.
            status = st.health_failed_status(
                self._ctx(snap, deployment.generation),
                plan.health_failure,
                recorded.release_revision,
                recorded.applied_version,
                plan.desired.fingerprint,
                Verifier.retry_hint(deployment),
                no_rollback=f"the automatic rollback to revision {plan.rollback_to} failed: {error}",
            )
            await self._write_status(snap, status)
            await self._event(snap, "Warning", st.HEALTH_CHECK_FAILED, status["message"])
            return "failed"
        status = st.failed_status(
            self._ctx(snap, deployment.generation),
            plan.action,
            error,
            failures,
            delay,
            plan.desired.fingerprint,
            rollback_record if rollback_once else None,
            reason,
            stalled,
            Verifier.retry_hint(deployment),
        )
        if deployment.retry_request_id and plan.action is Action.UPGRADE:
            status["lastRetryRequestId"] = deployment.retry_request_id
        await self._write_status(snap, status)
        await self._event(snap, "Warning", reason or f"{plan.action.value}Failed", error)
        logger.warning("%s", status["message"])
        return "failed"

    async def _uninstall(
        self, snap: DeploymentSnapshot, deployment: Deployment, logger: logging.LoggerAdapter
    ) -> None:
        """Deletion: uninstall where status.release says the release lives, and only if
        its owner label names this Deployment (never at the Application's current target)."""
        where = RecordedStatus.parse(snap.status).release
        assert where is not None  # decide() finalizes without an uninstall otherwise
        # A move that never succeeded leaves the release at its previous place (movedFrom):
        # it goes too. Each place is uninstalled only if helm's storage names this Deployment.
        previous = ReleaseLocation.parse(snap.status.get("movedFrom") or {})
        places = [where] + ([previous] if previous is not None and not previous.same_place(where) else [])
        try:
            message = "; ".join([await self._uninstall_at(deployment, place, logger) for place in places])
        except _ACTION_ERRORS as error:
            failures = RecordedStatus.parse(snap.status).failures + 1
            delay = backoff_seconds(failures)
            text = Redactor().redact(str(error))
            await self._write_status(
                snap,
                self._ctx(snap, deployment.generation).patch(
                    st.DELETING,
                    f"uninstall failed: {text} (retrying in {delay:.0f} s)",
                    [st.Condition(st.READY, False, "UninstallFailed", text)],
                    failures=failures,
                ),
            )
            await self._event(snap, "Warning", "UninstallFailed", text)
            self.queue.add_after(deployment.ref, delay)
            return
        await self._event(snap, "Normal", "UninstallSucceeded", message)
        await self._remove_finalizer(snap)

    # ----- status and metadata writes -------------------------------------------------

    def _ctx(self, snap: DeploymentSnapshot, generation: int) -> st.StatusContext:
        return st.StatusContext(generation, snap.status, st.now_rfc3339())

    async def _settle_without_health(self, snap: DeploymentSnapshot, deployment: Deployment) -> None:
        """Health checks off: make sure the status says Deployed (cheaply)."""
        status = snap.status
        settled = status.get("phase") in (st.DEPLOYED, st.ROLLED_BACK)
        same_generation = status.get("observedGeneration") == deployment.generation
        # A failed rollback (run once per request) stays visible until the spec changes.
        if same_generation and (settled or status.get("phase") == st.FAILED):
            return
        phase = status.get("phase") if settled else st.DEPLOYED
        message = status.get("message") if settled else "the release matches the desired state"
        await self._write_status(
            snap,
            self._ctx(snap, deployment.generation).patch(
                phase,
                message,
                [
                    st.Condition(st.READY, True, "Succeeded", message),
                    st.Condition(st.RECONCILING, False, "Succeeded", ""),
                    st.Condition(st.STALLED, False, "Succeeded", ""),
                ],
            ),
        )

    async def _write_if_changed(self, snap: DeploymentSnapshot, plan: Plan) -> None:
        generation = int(snap.body["metadata"].get("generation") or 0)
        status = st.waiting_status(self._ctx(snap, generation), plan)
        current = snap.status
        if (
            current.get("phase") == status["phase"]
            and current.get("message") == status["message"]
            and current.get("observedGeneration") == generation
        ):
            return  # no write, no event: this is what keeps a waiting Deployment quiet
        await self._write_status(snap, status)
        event_type = "Normal" if plan.action in (Action.WAIT, Action.SUSPENDED, Action.HELD) else "Warning"
        await self._event(snap, event_type, plan.reason, plan.message)

    async def _write_status(self, snap: DeploymentSnapshot, status: dict[str, Any]) -> DeploymentSnapshot:
        ref = snap.ref
        return await self._remember(
            snap, self.kube.patch_status("Deployment", ref.namespace, ref.name, status)
        )

    async def _remember(
        self, snap: DeploymentSnapshot, write: Coroutine[Any, Any, dict[str, Any]]
    ) -> DeploymentSnapshot:
        """Run a write of the Deployment and keep the body it returns (see `_written`);
        a Deployment deleted meanwhile is not an error."""
        try:
            body = await write
        except ApiException as error:
            if error.status == 404:
                return snap
            raise
        written = DeploymentSnapshot(body)
        self._written[snap.ref] = written
        return written

    async def _ensure_finalizer(self, snap: DeploymentSnapshot) -> DeploymentSnapshot:
        finalizers = list(snap.body["metadata"].get("finalizers") or [])
        if FINALIZER in finalizers:
            return snap
        return await self._patch_finalizers(snap, [*finalizers, FINALIZER])

    async def _remove_finalizer(self, snap: DeploymentSnapshot) -> None:
        finalizers = list(snap.body["metadata"].get("finalizers") or [])
        if FINALIZER in finalizers:
            await self._patch_finalizers(snap, [f for f in finalizers if f != FINALIZER])

    async def _patch_finalizers(self, snap: DeploymentSnapshot, finalizers: list[str]) -> DeploymentSnapshot:
        ref = snap.ref
        meta = snap.body["metadata"]
        # resourceVersion makes this an optimistic write: a concurrent change of the
        # finalizer list fails with 409 and the reconcile is retried.
        patch = {"metadata": {"finalizers": finalizers, "resourceVersion": meta.get("resourceVersion")}}
        return await self._remember(snap, self.kube.patch("Deployment", ref.namespace, ref.name, patch))

    async def _event(self, snap: DeploymentSnapshot, event_type: str, reason: str, message: str) -> None:
        try:
            await self.kube.post_event(snap.body, event_type, reason, message)
        except ApiException as error:  # an Event is best effort; the status is the record
            log.warning("could not post event %s for %s: %s", reason, snap.ref, error.reason)

    def _image_ref(self, deployment: Deployment, version: str) -> str:
        app = self.indexes.application(deployment.ref.namespace, deployment.application)
        if not isinstance(app, Application):
            return ""
        image = pick_image(self.indexes.images_for(deployment.ref.namespace, app.image, version))
        return image.image if image else ""
