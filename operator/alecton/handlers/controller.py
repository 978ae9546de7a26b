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
from alecton.handlers.queue import WorkQueue
from alecton.helm.actions import HelmActionError, HelmActions, KubeAccess
from alecton.helm.release import (
    ReleaseInfo,
    history_after_upgrade,
    history_from_status,
    owner_description,
    release_owner,
)
from alecton.helm.runner import HelmTimeoutError
from alecton.kube.client import ApiException, KubeClient
from alecton.kube.releases import ReleaseStorage
from alecton.metrics import Metrics
from alecton.reconcile import status as st
from alecton.reconcile.plan import (
    Action,
    DesiredRelease,
    Missing,
    Plan,
    RecordedStatus,
    backoff_seconds,
    decide,
    is_unreachable,
    owner_of,
    pick_image,
    plan_repair,
    resolve,
    retry_wait,
)

log = logging.getLogger("alecton.controller")

ADOPT_ANNOTATION = "alecton.dev/adopt"
# Retry delay after an unexpected error (API server unreachable, a bug): short, so a
# restarted API server is caught up with quickly; errors are logged each time.
_ERROR_RETRY = 5.0
_CLUSTER_BUSY_RETRY = 1.0


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
        self._cluster_in_flight: dict[ObjectRef, int] = {}
        self._clusters_unreachable: set[ObjectRef] = set()
        self.metrics = metrics or Metrics()
        self.metrics.watch_phases(self._phases)

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
            return
        self.queue.add(ref)

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

    async def _work(self) -> None:
        while True:
            ref = await self.queue.get()
            try:
                result = await self.reconcile(ref)
                self.metrics.reconciles.labels(result).inc()
            except asyncio.CancelledError:
                raise
            except Exception:
                # Never let one Deployment kill a worker; retry it later.
                log.exception("reconcile of %s failed unexpectedly; retrying in %s s", ref, _ERROR_RETRY)
                self.metrics.reconciles.labels("error").inc()
                self.queue.add_after(ref, _ERROR_RETRY)
            finally:
                self.queue.done(ref)

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
            return "gone"
        try:
            deployment = Deployment.parse(snap.body)
        except InvalidResourceError as error:
            await self._write_if_changed(snap, Plan(Action.REFUSED, "InvalidSpec", f"invalid spec: {error}"))
            return "invalid"
        plan = self._plan(deployment, snap)
        logger = logging.LoggerAdapter(log, {"deployment": str(ref)})
        if plan.action is Action.NOTHING:
            await self._settle(snap, deployment)
            return "unchanged"
        if plan.action in (Action.WAIT, Action.CONFLICT, Action.SUSPENDED, Action.REFUSED):
            await self._write_if_changed(snap, plan)
            return plan.action.value.lower()
        if plan.action is Action.RELEASE_FINALIZER:
            if plan.reason != "NotOwner":
                await self._event(snap, "Normal", plan.reason, plan.message)
            await self._remove_finalizer(snap)
            return "finalized"
        if plan.action is Action.UNINSTALL:
            await self._uninstall(snap, deployment, plan, logger)
            return "uninstalled"
        assert plan.desired is not None
        wait = retry_wait(RecordedStatus.parse(snap.status), plan.desired.fingerprint, time.time())
        if wait > 0:
            # A failed attempt at these same inputs waits for its retry time; the
            # time is in status, so backoff survives an operator restart.
            self.queue.add_after(ref, wait)
            return "backoff"
        return await self._release(snap, deployment, plan, logger)

    def _plan(self, deployment: Deployment, snap: DeploymentSnapshot) -> Plan:
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
        owner = owner_of(self.indexes.deployments_for_pair(ns, deployment.application, deployment.target))
        return decide(
            deployment,
            RecordedStatus.parse(snap.status),
            resolution,
            owner.ref if owner else deployment.ref,
            self.config.charts_dir,
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
        ctx = self._ctx(snap, deployment.generation)
        rollback_record = None
        if plan.action is Action.ROLLBACK and deployment.rollback:
            rollback_record = {
                "revision": deployment.rollback.revision,
                "requestId": deployment.rollback.request_id,
            }
        cluster = desired.cluster.ref
        if not self._cluster_slot_free(cluster):
            self.queue.add_after(deployment.ref, _CLUSTER_BUSY_RETRY)
            return "throttled"
        snap = await self._ensure_finalizer(snap)
        repaired: str | None = None
        self._cluster_in_flight[cluster] = self._cluster_in_flight.get(cluster, 0) + 1
        try:
            async with cluster_access(desired.cluster, self.config, self.kube) as access:
                progress = st.in_progress_status(ctx, plan.action, desired)
                if recorded.release_name != desired.name:
                    # First helm action of this Deployment: say so, check that the release
                    # is not someone else's, and only then claim it (in progress["release"]).
                    claim = progress.pop("release")
                    snap = await self._write_status(snap, progress)
                    conflict = await self._foreign_owner(snap, deployment, desired, access)
                    if conflict:
                        await self._write_if_changed(snap, Plan(Action.CONFLICT, "ReleaseNotOwned", conflict))
                        return "conflict"
                    snap = await self._write_status(snap, {"release": claim})
                    progress_write = None
                else:
                    # Already claimed: show the progress while helm is already running.
                    progress_write = asyncio.create_task(self._write_status(snap, progress))
                try:
                    released = await self._helm_action(plan, deployment, desired, access, logger)
                except HelmActionError as error:
                    # A killed helm leaves the release locked in pending-*: unlock it
                    # (rollback to the last good revision, or uninstall), then retry once.
                    if not error.release_locked:
                        raise
                    repaired = await self._repair(snap, desired, access, logger)
                    if repaired is None:
                        raise
                    released = await self._helm_action(plan, deployment, desired, access, logger)
                finally:
                    if progress_write is not None:  # written before any later status
                        snap = await progress_write
                # An upgrade's JSON output extends the recorded history; a rollback or a
                # repair (or a gap in what was recorded) costs one `helm history`.
                history = None
                if released is not None and not repaired:
                    history = history_after_upgrade(
                        history_from_status(snap.status.get("history") or []),
                        released,
                        desired.version,
                        self.helm.history_max,
                    )
                if history is None:
                    history = await self.helm.history(desired.name, desired.namespace, access)
        except (HelmActionError, HelmTimeoutError, ClusterAccessError) as error:
            if is_unreachable(str(error)):
                self._clusters_unreachable.add(cluster)
            return await self._failed(snap, deployment, plan, recorded, str(error), rollback_record, logger)
        finally:
            self._cluster_in_flight[cluster] -= 1
        self._clusters_unreachable.discard(cluster)
        if rollback_record is not None:
            rollback_record["result"] = "Succeeded"
        status = st.succeeded_status(
            self._ctx(snap, deployment.generation),
            plan.action,
            desired,
            history,
            lambda version: self._image_ref(deployment, version),
            rollback_record,
            note=repaired or "",
        )
        await self._write_status(snap, status)
        await self._event(snap, "Normal", f"{plan.action.value}Succeeded", status["message"])
        logger.info("%s", status["message"])
        return plan.action.value.lower()

    def _cluster_slot_free(self, cluster: ObjectRef) -> bool:
        """No head-of-line blocking: a cluster that just failed as unreachable gets a
        single worker until it answers again, so the others keep the rest."""
        if cluster not in self._clusters_unreachable:
            return True
        return self._cluster_in_flight.get(cluster, 0) < 1

    async def _helm_action(
        self,
        plan: Plan,
        deployment: Deployment,
        desired: DesiredRelease,
        access: KubeAccess,
        logger: logging.LoggerAdapter,
    ) -> ReleaseInfo | None:
        """Run the plan's helm command; an upgrade returns the release helm reports."""
        if plan.action is Action.ROLLBACK and deployment.rollback:
            revision = deployment.rollback.revision
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
        )

    async def _repair(
        self,
        snap: DeploymentSnapshot,
        desired: DesiredRelease,
        access: KubeAccess,
        logger: logging.LoggerAdapter,
    ) -> str | None:
        """Unlock a release stuck in pending-*; the description of what was done."""
        repair = plan_repair(await self.helm.history(desired.name, desired.namespace, access))
        if repair is None:
            return None
        if repair.rollback_to is None:
            await self.helm.uninstall(desired.name, desired.namespace, access)
        else:
            await self.helm.rollback(desired.name, desired.namespace, repair.rollback_to, access)
        logger.warning("%s", repair.description)
        await self._event(snap, "Warning", "ReleaseRepaired", repair.description)
        return repair.description

    async def _failed(
        self,
        snap: DeploymentSnapshot,
        deployment: Deployment,
        plan: Plan,
        recorded: RecordedStatus,
        error: str,
        rollback_record: dict[str, Any] | None,
        logger: logging.LoggerAdapter,
    ) -> str:
        assert plan.desired is not None
        failures = recorded.failures + 1
        delay = backoff_seconds(failures)
        if rollback_record is not None:
            rollback_record["result"] = "Failed"
        else:
            self.queue.add_after(deployment.ref, delay)
        status = st.failed_status(
            self._ctx(snap, deployment.generation),
            plan.action,
            error,
            failures,
            delay,
            plan.desired.fingerprint,
            rollback_record,
        )
        await self._write_status(snap, status)
        await self._event(snap, "Warning", f"{plan.action.value}Failed", error)
        logger.warning("%s", status["message"])
        return "failed"

    async def _foreign_owner(
        self,
        snap: DeploymentSnapshot,
        deployment: Deployment,
        desired: DesiredRelease,
        access: KubeAccess,
    ) -> str | None:
        """A message when the release exists and was not made by this Deployment."""
        if not access.tenant_secret:
            # Usually the release does not exist yet: one API list instead of a helm run.
            exists = await self.storage.exists(
                access.kubeconfig, access.context, desired.name, desired.namespace
            )
            if exists is False:
                return None
        history = await self.helm.history(desired.name, desired.namespace, access)
        if not history:
            return None
        owner = release_owner(history)
        if owner == str(deployment.ref):
            return None
        annotations = (snap.body.get("metadata") or {}).get("annotations") or {}
        if owner is None and annotations.get(ADOPT_ANNOTATION) == "true":
            return None
        where = (
            f"release {desired.name!r} in namespace {desired.namespace!r} "
            f"of Cluster {desired.cluster.ref.name!r}"
        )
        if owner is None:
            return (
                f"{where} already exists and was not made by alecton; to let this Deployment "
                f"take it over, annotate it: kubectl annotate deployments.alecton.dev "
                f"{deployment.ref.name} -n {deployment.ref.namespace} {ADOPT_ANNOTATION}=true"
            )
        return f"{where} belongs to alecton Deployment {owner}; it is not taken over"

    async def _uninstall(
        self,
        snap: DeploymentSnapshot,
        deployment: Deployment,
        plan: Plan,
        logger: logging.LoggerAdapter,
    ) -> None:
        resolved = plan.resolved
        assert resolved is not None
        release, namespace = deployment.release_name, resolved.target.namespace
        try:
            async with cluster_access(resolved.cluster, self.config, self.kube) as access:
                logger.info("helm uninstall %s", release)
                removed = await self.helm.uninstall(release, namespace, access)
        except (HelmActionError, HelmTimeoutError, ClusterAccessError) as error:
            failures = RecordedStatus.parse(snap.status).failures + 1
            delay = backoff_seconds(failures)
            await self._write_status(
                snap,
                self._ctx(snap, deployment.generation).patch(
                    st.DELETING,
                    f"uninstall failed: {error} (retrying in {delay:.0f} s)",
                    [st.Condition(st.READY, False, "UninstallFailed", str(error))],
                    failures=failures,
                ),
            )
            await self._event(snap, "Warning", "UninstallFailed", str(error))
            self.queue.add_after(deployment.ref, delay)
            return
        message = f"uninstalled {release}" if removed else f"release {release} was already gone"
        await self._event(snap, "Normal", "UninstallSucceeded", message)
        await self._remove_finalizer(snap)

    # ----- status and metadata writes -------------------------------------------------

    def _ctx(self, snap: DeploymentSnapshot, generation: int) -> st.StatusContext:
        return st.StatusContext(generation, snap.status, st.now_rfc3339())

    async def _settle(self, snap: DeploymentSnapshot, deployment: Deployment) -> None:
        """Inputs match the applied release: make sure the status says so (cheaply)."""
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
        event_type = "Normal" if plan.action in (Action.WAIT, Action.SUSPENDED) else "Warning"
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
