"""The verify action: what a release's health means for its Deployment.

After a helm action `start` subscribes the new revision to the health monitor and
returns the deadline written with `Verifying`; when the inputs match the release
(nothing for helm to do), `settle` reads the monitor's verdict and writes Deployed,
Degraded, progress, or a failed check, which with `onFailure: Rollback` becomes an
automatic rollback through the controller's release action. Status is built in
`reconcile/status.py` and the decision is `reconcile/verdict.health_outcome`.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from alecton.api.durations import parse_duration
from alecton.api.models import DEFAULT_HEALTH_TIMEOUT, Deployment, HealthPolicy
from alecton.handlers.access import ClusterAccessError, cluster_access
from alecton.handlers.health_monitor import TrackError
from alecton.kube.access import KubeAccess
from alecton.reconcile import status as st
from alecton.reconcile.health import ReleaseHealth, release_health
from alecton.reconcile.history import history_from_status, newest_healthy
from alecton.reconcile.plan import Action, Plan, RecordedStatus, epoch
from alecton.reconcile.release import HistoryEntry
from alecton.reconcile.verdict import HEALTH_PHASES, Outcome, health_outcome

if TYPE_CHECKING:
    from alecton.handlers.controller import Controller, DeploymentSnapshot

log = logging.getLogger("alecton.controller")


class Verifier:
    def __init__(self, controller: Controller) -> None:
        self.controller = controller

    async def settle(self, snap: DeploymentSnapshot, deployment: Deployment, plan: Plan) -> str:
        """Inputs match the applied release: follow its health, or (health checks off) make
        sure the status says Deployed (cheaply)."""
        policy = self._health_policy(plan)
        phase = str(snap.status.get("phase") or "")
        recorded = RecordedStatus.parse(snap.status)
        if plan.reason == st.HEALTH_CHECK_FAILED and phase not in HEALTH_PHASES:
            # Failed its health check: stays so until the inputs change or a retry is asked.
            self.controller.monitor.untrack(deployment.ref)
            if snap.status.get("observedGeneration") != deployment.generation:
                await self.controller._write_status(snap, {"observedGeneration": deployment.generation})
            return "unchanged"
        if policy is None or not policy.check or phase not in HEALTH_PHASES or not recorded.release_revision:
            self.controller.monitor.untrack(deployment.ref)
            await self.controller._settle_without_health(snap, deployment)
            return "unchanged"
        return await self._verify(snap, deployment, plan, recorded, phase)

    async def _verify(
        self,
        snap: DeploymentSnapshot,
        deployment: Deployment,
        plan: Plan,
        recorded: RecordedStatus,
        phase: str,
    ) -> str:
        """The verify action: read the monitor's verdict and write what it means."""
        ref, desired = deployment.ref, plan.desired
        assert desired is not None
        revision = recorded.release_revision
        if not self.controller.monitor.tracked(ref, revision):
            # Starting to follow health reads the tenant's cluster (discovery, first lists): the
            # same share as helm, so a slow cluster holds at most its share of the workers.
            slot = (ref.namespace, desired.cluster.ref)
            if self.controller.slots.try_acquire(*slot) is not None:
                self.controller.queue.add_after(ref, 1.0)
                return "throttled"
            try:
                async with cluster_access(
                    desired.cluster, desired.namespace, self.controller.config, self.controller.kube
                ) as access:
                    await self.controller.monitor.track(
                        ref, desired.cluster.ref, access, desired.name, desired.namespace, revision
                    )
            except (TrackError, ClusterAccessError) as error:
                log.warning("cannot follow the health of %s: %s; trying again in 30 s", ref, error)
                self.controller.queue.add_after(ref, 30.0)
                return "verifying"
            finally:
                self.controller.slots.release(*slot)
        health = self.controller.monitor.verdict(ref)
        deadline = epoch((snap.status.get("health") or {}).get("deadline"))
        verdict = health_outcome(phase, health, time.time(), deadline)
        ctx = self.controller._ctx(snap, deployment.generation)
        if verdict.wake_in is not None:
            self.controller.queue.add_after(ref, verdict.wake_in + 0.5)
        if verdict.outcome is Outcome.HEALTHY and health is not None:
            status = st.healthy_status(ctx, health, revision)
            await self.controller._write_status(snap, status)
            await self.controller._event(snap, "Normal", "Healthy", status["message"])
            return "healthy"
        if verdict.outcome is Outcome.FAILED:
            return await self._health_failed(snap, deployment, plan, recorded, health, verdict.timed_out)
        if verdict.outcome is Outcome.PROGRESS and health is not None:
            status = st.verifying_progress(ctx, health, revision, snap.status["health"]["deadline"])
            if status["health"] != snap.status.get("health"):
                await self.controller._write_status(snap, status)
            return "verifying"
        if verdict.outcome is Outcome.DEGRADED and health is not None:
            status = st.degraded_status(ctx, health, revision)
            if status["message"] != snap.status.get("message"):
                await self.controller._write_status(snap, status)
                await self.controller._event(snap, "Warning", "Degraded", status["message"])
            return "degraded"
        if snap.status.get("observedGeneration") != deployment.generation:
            await self.controller._write_status(snap, {"observedGeneration": deployment.generation})
        return "unchanged"

    async def _health_failed(
        self,
        snap: DeploymentSnapshot,
        deployment: Deployment,
        plan: Plan,
        recorded: RecordedStatus,
        health: ReleaseHealth | None,
        timed_out: bool,
    ) -> str:
        """Verifying failed: roll back automatically (onFailure: Rollback) to the newest
        healthy revision, or stay Failed. Never retried on a timer."""
        assert plan.desired is not None
        revision = recorded.release_revision
        version = str((snap.status.get("release") or {}).get("version") or plan.desired.version)
        health = health or release_health([])
        failure = st.health_failure(health, revision, version, timed_out)
        policy = self._health_policy(plan)
        no_rollback = ""
        # A rolled-back revision that fails too is not rolled back again (no loops).
        if (
            policy is not None
            and policy.rollback_on_failure
            and snap.status.get("settledPhase") != st.ROLLED_BACK
        ):
            target = newest_healthy(history_from_status(snap.status.get("history") or []), revision)
            if target is not None:
                rollback = replace(
                    plan,
                    action=Action.ROLLBACK,
                    reason=st.HEALTH_CHECK_FAILED,
                    rollback_to=target.revision,
                    health_failure=failure,
                )
                logger = logging.LoggerAdapter(log, {"deployment": str(deployment.ref)})
                return await self.controller._release(snap, deployment, rollback, logger)
            no_rollback = "no earlier revision became healthy, so there is nothing to roll back to"
        self.controller.monitor.untrack(deployment.ref)
        status = st.health_failed_status(
            self.controller._ctx(snap, deployment.generation),
            failure,
            revision,
            version,
            plan.desired.fingerprint,
            self.retry_hint(deployment),
            health,
            no_rollback,
        )
        await self.controller._write_status(snap, status)
        await self.controller._event(snap, "Warning", st.HEALTH_CHECK_FAILED, status["message"])
        return "failed"

    async def start(
        self,
        deployment: Deployment,
        plan: Plan,
        access: KubeAccess,
        history: list[HistoryEntry],
        logger: logging.LoggerAdapter,
    ) -> str | None:
        """After a helm action: follow the new revision's health (None: checks are off)."""
        policy = self._health_policy(plan)
        desired = plan.desired
        if policy is None or not policy.check or not history or desired is None:
            self.controller.monitor.untrack(deployment.ref)
            return None
        try:
            timeout = parse_duration(policy.timeout_text, field="healthTimeout")
        except ValueError:
            timeout = parse_duration(DEFAULT_HEALTH_TIMEOUT)
        try:
            await self.controller.monitor.track(
                deployment.ref,
                desired.cluster.ref,
                access,
                desired.name,
                desired.namespace,
                history[0].revision,
            )
        except TrackError as error:  # the verify step tries again
            logger.warning("cannot follow the health of revision %s yet: %s", history[0].revision, error)
        until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=timeout)
        return until.strftime("%Y-%m-%dT%H:%M:%SZ")

    @staticmethod
    def _health_policy(plan: Plan) -> HealthPolicy | None:
        resolved = plan.resolved
        return resolved.application.health_policy(resolved.target) if resolved else None

    @staticmethod
    def retry_hint(deployment: Deployment) -> str:
        return f"alecton retry {deployment.application} {deployment.target} -n {deployment.ref.namespace}"
