"""Observe: gather what the decision reads about one Deployment, from kopf's indexes, the
values its Application reads from ConfigMaps and Secrets, the health monitor and the clock."""

from __future__ import annotations

import time
from typing import Any

from alecton.api.models import Application, Deployment, InvalidResourceError
from alecton.handlers.actions.drift import DriftClients
from alecton.handlers.config import OperatorConfig
from alecton.handlers.health_monitor import HealthMonitor
from alecton.handlers.indexes import DeploymentSnapshot, Indexes
from alecton.kube.client import KubeClient
from alecton.kube.values_sources import fetch_values_sources
from alecton.reconcile.decide import Do, DriftSeen, HealthSeen, Observed, PromotionSeen
from alecton.reconcile.plan import (
    Action,
    Missing,
    Plan,
    RecordedStatus,
    Resolved,
    ValuesRefusedError,
    owner_of,
    plan_release,
    resolve,
)


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

    async def observe(
        self, snap: DeploymentSnapshot, promotion: PromotionSeen | None, taken: frozenset[Do]
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
        )
        if observed.needs_promotion and promotion is None:
            return observed  # the promotion step comes first and may change spec.version
        plan = await self.plan(deployment, snap)
        revision = RecordedStatus.parse(status).release_revision
        health = HealthSeen(
            self.monitor.tracked(deployment.ref, revision), self.monitor.verdict(deployment.ref)
        )
        drift = DriftSeen()
        if plan.action is Action.NOTHING and revision:
            drift = DriftSeen(self.drift.considered_since(deployment.ref, revision, now))
        return Observed(
            deployment,
            status,
            now,
            generation,
            application_found=observed.application_found,
            plan=plan,
            promotion=promotion,
            health=health,
            drift=drift,
            annotations=annotations,
            taken=taken,
        )

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
