"""Observe: gather what the decision reads about one Deployment, from kopf's indexes, the
values its Application reads from ConfigMaps and Secrets, the verdict on the Image's
signature (spec.verify), the health monitor and the clock."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from alecton.api.models import Application, Deployment, InvalidResourceError
from alecton.handlers.actions.drift import DriftClients
from alecton.handlers.config import OperatorConfig
from alecton.handlers.health_monitor import HealthMonitor
from alecton.handlers.images import ImageVerifications
from alecton.handlers.indexes import DeploymentSnapshot, Indexes
from alecton.kube.client import KubeClient
from alecton.kube.values_sources import fetch_values_sources
from alecton.reconcile.chart_signature import verifies_chart
from alecton.reconcile.decide import (
    SETTLED_PHASES,
    Do,
    DriftSeen,
    HealthSeen,
    Observed,
    PromotionSeen,
    drift_policy,
    rollback_candidates,
)
from alecton.reconcile.drift import correction_failed
from alecton.reconcile.image_ref import pinned_digest
from alecton.reconcile.plan import (
    Action,
    Missing,
    Plan,
    RecordedStatus,
    Resolved,
    ValuesRefusedError,
    ValuesSources,
    owner_of,
    plan_release,
    resolve,
)
from alecton.registry.signatures import ImageVerifier


class PassMemo:
    """What one pass of the loop reads once: the release plan (its values sources cost API
    calls). Within a pass only the promotion step can change the inputs, and it runs before
    anything is planned; a version it writes ends the pass."""

    def __init__(self) -> None:
        self.plan: Plan | None = None


class Observer:
    def __init__(
        self,
        indexes: Indexes,
        kube: KubeClient,
        config: OperatorConfig,
        monitor: HealthMonitor,
        drift: DriftClients,
    ) -> None:
        self.indexes = indexes
        self.kube = kube
        self.config = config
        self.monitor = monitor
        self.drift = drift
        self.verifier = ImageVerifier()
        self.image_verifications = ImageVerifications(kube)

    async def observe(
        self,
        snap: DeploymentSnapshot,
        promotion: PromotionSeen | None = None,
        taken: frozenset[Do] = frozenset(),
        memo: PassMemo | None = None,
    ) -> Observed:
        status, now = snap.status, time.time()
        meta = snap.body["metadata"]
        generation = int(meta.get("generation") or 0)
        annotations: dict[str, Any] = meta.get("annotations") or {}
        try:
            deployment = Deployment.parse(snap.body)
        except InvalidResourceError as error:
            return Observed(None, status, now, generation, invalid=str(error), taken=taken)
        observed = Observed(
            deployment,
            status,
            now,
            generation,
            application_found=isinstance(
                self.indexes.application(deployment.ref.namespace, deployment.application), Application
            ),
            promotion=promotion,
            annotations=annotations,
            taken=taken,
            freezes=tuple(self.indexes.active_freezes(deployment, now)[0]),
        )
        if observed.needs_promotion and not _promotion_goes_on(observed, deployment):
            return observed  # the promotion step comes (or came) first and ends this pass
        plan = memo.plan if memo is not None and memo.plan is not None else await self.plan(deployment, snap)
        if memo is not None:
            memo.plan = plan
        revision = RecordedStatus.parse(status).release_revision
        tracked = self.monitor.tracked(deployment.ref, revision)
        health = HealthSeen(tracked, self.monitor.verdict(deployment.ref) if tracked else None)
        drift = DriftSeen()
        if plan.action is Action.NOTHING and revision and _drift_considered(plan, status):
            drift = DriftSeen(self.drift.considered_since(deployment.ref, revision, now))
        return replace(observed, plan=plan, health=health, drift=drift)

    async def plan(self, deployment: Deployment, snap: DeploymentSnapshot) -> Plan:
        """The release plan of `deployment`'s inputs, as the indexes and its values sources
        have them now."""
        ns = deployment.ref.namespace
        app = self.indexes.application(ns, deployment.application)
        resolution: Resolved | Missing
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
                sources = await self.verifier.with_verdict(resolution, sources, self.config.charts)
                await self._record_verdict(resolution, sources)
                sources = await self._rollback_verdicts(deployment, snap.status, resolution, sources)
            except ValuesRefusedError as error:
                return Plan(Action.REFUSED, "ValuesRefused", str(error), resolved=resolution)
        owner = owner_of(self.indexes.deployments_for_pair(ns, deployment.application, deployment.target))
        return plan_release(
            deployment,
            RecordedStatus.parse(snap.status),
            resolution,
            owner.ref if owner else deployment.ref,
            self.config.charts,
            sources,
        )

    async def _rollback_verdicts(
        self,
        deployment: Deployment,
        status: dict[str, Any],
        resolution: Resolved,
        sources: ValuesSources | None,
    ) -> ValuesSources | None:
        """spec.verify: the verdicts on the pinned images (and, under spec.verify.chart, the
        pinned charts) status.history recorded for the revisions a rollback may restore in
        this pass (reconcile.rollback_policy decides)."""
        policy = resolution.application.verify
        if policy is None or sources is None:
            return sources
        candidates = rollback_candidates(deployment, status, resolution)
        verdicts = {
            entry.revision: await self.verifier.reference_verdict(
                entry.image, digest, policy, sources.verify_secret
            )
            for entry in candidates
            if (digest := pinned_digest(entry.image))
        }
        chart_verdicts = (
            {
                entry.revision: await self.verifier.pinned_chart_verdict(
                    resolution.application, entry.chart_reference, sources, self.config.charts
                )
                for entry in candidates
                if pinned_digest(entry.chart_reference)
            }
            if verifies_chart(resolution.application)
            else {}
        )
        if not verdicts and not chart_verdicts:
            return sources
        return replace(sources, rollback_verdicts=verdicts, rollback_chart_verdicts=chart_verdicts)

    async def _record_verdict(self, resolution: Resolved, sources: ValuesSources | None) -> None:
        """The Image's status says the verdict its Application's policy made (for a deploy,
        or for a version promotion considers)."""
        policy, verdict = resolution.application.verify, sources.image_verdict if sources else None
        if policy is not None and verdict is not None:
            app = resolution.application.ref.name
            await self.image_verifications.record(resolution.image, app, policy, verdict)


def _promotion_goes_on(observed: Observed, deployment: Deployment) -> bool:
    """After the promotion step, is the release planned in this pass? Not when it wrote or
    refused a version, nor while no version qualifies (the decision reports those)."""
    seen = observed.promotion
    if seen is None or seen.wrote_version or seen.refused:
        return False
    return bool(deployment.version) or not observed.application_found


def _drift_considered(plan: Plan, status: dict[str, Any]) -> bool:
    """Is the release considered for drift checks now (policy on, release settled)? From
    then on, overdue checks are spread."""
    policy = drift_policy(plan)
    settled = status.get("phase") in SETTLED_PHASES or correction_failed(status)
    return policy is not None and policy.mode != "Off" and settled
