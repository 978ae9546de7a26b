"""The Deployment controller: a keyed work queue drained by a fixed pool of workers.

kopf watches the four kinds and keeps them in in-memory indexes (`handlers.kopf_app`);
every watch event enqueues the Deployments it can affect. A worker takes one Deployment
and runs its loop: observe (`handlers.observe`) -> decide (`reconcile.decide`, the one
decision) -> act (one module per action, `handlers.actions`) -> summarize
(`reconcile.summary`, the one place status and Events are made) -> write
(`handlers.writer`), until the decision says to stop. The pool size is the helm
concurrency limit, and the queue guarantees one release never has two helm processes at
once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

from alecton.api.models import Application, Deployment, ObjectRef
from alecton.handlers.actions import drift as drift_action
from alecton.handlers.actions import verify
from alecton.handlers.actions.context import ActionContext, Request
from alecton.handlers.actions.promote import Promoter
from alecton.handlers.actions.release import release
from alecton.handlers.actions.uninstall import uninstall
from alecton.handlers.config import OperatorConfig
from alecton.handlers.health_monitor import HealthMonitor
from alecton.handlers.indexes import DeploymentSnapshot, Indexes
from alecton.handlers.observe import Observer, PassMemo
from alecton.handlers.queue import WorkQueue
from alecton.handlers.slots import Slots
from alecton.handlers.writer import DeploymentWriter
from alecton.helm.actions import HelmActions
from alecton.kube.client import KubeClient
from alecton.kube.releases import ReleaseStorage
from alecton.metrics import Metrics
from alecton.reconcile import status as st
from alecton.reconcile.decide import Do, PromotionSeen, Step, decide
from alecton.reconcile.image_policy import image_reference, pick_image
from alecton.reconcile.news import Fanout
from alecton.reconcile.outcomes import Conflict, Done, Outcome, Promoted, Released, ReleaseFailed, Summary
from alecton.reconcile.retry import backoff_seconds
from alecton.reconcile.summary import summarize, unexpected_error

log = logging.getLogger("alecton.controller")

# Far more than a pass needs (promote, track, verify, drift): a bound, as Flux's loop has.
_MAX_STEPS = 8

Action = Callable[[Request], Awaitable[Outcome]]


class Controller:
    def __init__(
        self, config: OperatorConfig, kube: KubeClient, helm: HelmActions, metrics: Metrics | None = None
    ) -> None:
        self.config = config
        self.kube = kube
        self.indexes = Indexes()
        self.queue: WorkQueue[ObjectRef] = WorkQueue()
        self.writer = DeploymentWriter(kube, self.indexes)
        self._workers: list[asyncio.Task[None]] = []
        self._errors: dict[ObjectRef, int] = {}  # consecutive unexpected errors per Deployment
        self.metrics = metrics or Metrics()
        self.metrics.watch_phases(self._phases)
        # Health after helm: shared watches; a verdict change requeues the Deployment.
        self.monitor = HealthMonitor(self.queue.add)
        self.drift = drift_action.DriftClients()
        self.observer = Observer(self.indexes, kube, config, self.monitor, self.drift)
        self.promoter = Promoter(kube, config, self.indexes, self.observer.plan)
        self.actions = ActionContext(
            config=config,
            kube=kube,
            helm=helm,
            storage=ReleaseStorage(),
            monitor=self.monitor,
            slots=Slots(config.namespace_workers),
            metrics=self.metrics,
            wake=self.queue.add_after,
            cluster_named=self.indexes.cluster,
        )
        # Who hears what happened: notifiers, the audit trail, DORA figures (kopf_app adds them).
        self.news = Fanout()
        self.metrics.health_watches.set_function(lambda: self.monitor.watches)
        self.metrics.health_tracked.set_function(lambda: self.monitor.tracked_count)
        self.metrics.health_assessed.set_function(lambda: self.monitor.assessed_count)

    def _phases(self) -> list[str]:
        snapshots = (next(iter(store), None) for store in list(self.indexes.deployments.values()))
        return [(snap.status.get("phase") or "Pending") for snap in snapshots if snap is not None]

    @property
    def ready(self) -> bool:
        return bool(self._workers)

    @property
    def slots(self) -> Slots:
        return self.actions.slots

    # ----- triggers (called from kopf handlers) --------------------------------------

    def deployment_event(self, ref: ObjectRef, resource_version: int, deleted: bool) -> None:
        self.writer.seen(ref, resource_version, deleted)
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
        await self.actions.storage.close()
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
        snap = self.writer.snapshot(ref)
        if snap is not None:
            generation = int(snap.body["metadata"].get("generation") or 0)
            summary = unexpected_error(snap.status, generation, reason, delay, st.now_rfc3339())
            with contextlib.suppress(Exception):  # the API server may be what failed
                await self.writer.write(snap, summary)

    # ----- one reconcile: observe -> decide -> act -> summarize -> write ------------------

    async def reconcile(self, ref: ObjectRef) -> str:
        """Step until the decision says to stop; the result label of the pass (metrics)."""
        taken: set[Do] = set()
        promotion: PromotionSeen | None = None
        memo = PassMemo()
        result = ""
        for _ in range(_MAX_STEPS):
            snap = self.writer.snapshot(ref)
            if snap is None:
                self.writer.forget(ref)
                return result or "gone"
            observed = await self.observer.observe(snap, promotion, frozenset(taken), memo)
            step = decide(observed)
            request = Request(snap, observed, step)
            outcome = await self._act(request)
            await self._write(ref, request, outcome)
            result = result or _result_of(step, outcome)
            if isinstance(outcome, Promoted):
                promotion = PromotionSeen(outcome.wrote_version, outcome.refused, outcome.waiting)
            taken.add(step.do)
            if step.final:
                break
        return result or "unchanged"

    async def _act(self, request: Request) -> Outcome:
        action = self._action_for(request.step)
        return await action(request) if action is not None else Done()

    def _action_for(self, step: Step) -> Action | None:
        ctx = self.actions
        actions: dict[Do, Action] = {
            Do.PROMOTE: self.promoter.run,
            Do.RELEASE: lambda request: release(
                ctx,
                request,
                self._progress(request),
                self._image_for(request),
                lambda: self.writer.ensure_finalizer(request.snap),
            ),
            Do.UNINSTALL: self._uninstall,
            Do.TRACK: lambda request: verify.track(ctx, request),
            Do.VERIFY: lambda request: verify.verdict(ctx, request),
            Do.KEEP: lambda request: verify.stop_following(ctx, request),
            Do.SETTLE: lambda request: verify.stop_following(ctx, request),
            Do.FAIL_HEALTH: lambda request: verify.stop_following(ctx, request),
            Do.CHECK_DRIFT: lambda request: drift_action.check_drift(ctx, self.drift, request),
            Do.DRIFT_OFF: lambda request: drift_action.drift_off(ctx, self.drift, request),
        }
        return actions.get(step.do)

    async def _uninstall(self, request: Request) -> Outcome:
        self.monitor.untrack(request.deployment.ref)
        return await uninstall(self.actions, request)

    async def _write(self, ref: ObjectRef, request: Request, outcome: Outcome) -> None:
        """Summarize the outcome over the status as last written, and write it."""
        snap = self.writer.snapshot(ref) or request.snap
        observed = request.observed
        if snap.status is not observed.status:
            observed = replace(observed, status=snap.status)
        summary = summarize(observed, request.step, outcome, st.now_rfc3339())
        if request.step.do is Do.CHECK_DRIFT:
            if not await self._write_drift(ref, snap, summary):
                return
        else:
            await self.writer.write(snap, summary)
        self._publish(summary)
        if summary.wait is not None:
            self.queue.add_after(ref, summary.wait)
        if isinstance(outcome, Released | ReleaseFailed) and summary.status is not None:
            level = logging.INFO if isinstance(outcome, Released) else logging.WARNING
            log.log(level, "%s: %s", ref, summary.status.get("message"))

    def _publish(self, summary: Summary) -> None:
        """News goes out once its status is written (never before: a receiver must not hear
        of what the Deployment does not yet say)."""
        try:
            self.news.publish(summary.news)
        except ExceptionGroup as errors:
            for error in errors.exceptions:
                log.error("news sink failed: %r", error)

    async def _write_drift(self, ref: ObjectRef, snap: DeploymentSnapshot, summary: Summary) -> bool:
        """A drift check's result that cannot be written is a failed check (tried again in a
        minute), not an unexpected error of the reconcile."""
        try:
            await self.writer.write(snap, summary)
        except drift_action.CHECK_ERRORS as error:
            log.warning("drift check of %s failed: %s; again in 60 s", ref, error)
            self.metrics.drift_checks.labels("error").inc()
            self.queue.add_after(ref, drift_action.ERROR_RETRY)
            return False
        return True

    def _progress(self, request: Request) -> Callable[[Outcome], Awaitable[None]]:
        async def write_progress(outcome: Outcome) -> None:
            await self._write(request.deployment.ref, request, outcome)

        return write_progress

    def _image_for(self, request: Request) -> Callable[[str], str]:
        deployment = request.deployment

        def image_of(version: str) -> str:
            return _image_ref(self.indexes, deployment, version)

        return image_of


def _result_of(step: Step, outcome: Outcome) -> str:
    """The pass's result label (metrics): what the outcome says, else the step's."""
    if isinstance(outcome, Conflict):
        return "conflict"
    if isinstance(outcome, ReleaseFailed):
        return "failed"
    return getattr(outcome, "result", "") or step.result


def _image_ref(indexes: Indexes, deployment: Deployment, version: str) -> str:
    app = indexes.application(deployment.ref.namespace, deployment.application)
    if not isinstance(app, Application):
        return ""
    image = pick_image(indexes.images_for(deployment.ref.namespace, app.image, version))
    return image_reference(app, image) if image else ""
