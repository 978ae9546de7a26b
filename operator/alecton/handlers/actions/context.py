"""What actions may use: the helm runner, Kubernetes access, helm's storage, the health
monitor, the shares of the workers, and a way to be woken later. No status writer: actions
report outcomes, and the controller writes their summary."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from alecton.api.models import Cluster, Deployment, ObjectRef
from alecton.handlers.config import OperatorConfig
from alecton.handlers.health_monitor import HealthMonitor
from alecton.handlers.indexes import DeploymentSnapshot
from alecton.handlers.slots import Slots
from alecton.helm.actions import HelmActions
from alecton.kube.client import KubeClient
from alecton.kube.releases import ReleaseStorage
from alecton.metrics import Metrics
from alecton.reconcile.decide import Observed, Step
from alecton.reconcile.outcomes import Outcome

# Written (summarized) while the action still runs: the claim before helm runs.
Progress = Callable[[Outcome], Awaitable[None]]


@dataclass(frozen=True)
class ActionContext:
    config: OperatorConfig
    kube: KubeClient
    helm: HelmActions
    storage: ReleaseStorage
    monitor: HealthMonitor
    slots: Slots
    metrics: Metrics
    wake: Callable[[ObjectRef, float], None]  # reconcile this Deployment again after seconds
    cluster_named: Callable[[str, str], Cluster | None]  # (namespace, name) from the index


@dataclass(frozen=True)
class Request:
    """One step to act on: the Deployment as last written, what was observed, the step."""

    snap: DeploymentSnapshot
    observed: Observed
    step: Step

    @property
    def deployment(self) -> Deployment:
        assert self.observed.deployment is not None
        return self.observed.deployment
