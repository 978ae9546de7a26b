"""Install/upgrade: `helm upgrade --install` of the desired release, owned by this Deployment."""

from __future__ import annotations

import logging

from alecton.api.models import Deployment
from alecton.handlers.actions.context import ActionContext
from alecton.kube.access import KubeAccess
from alecton.kube.releases import owner_labels
from alecton.reconcile.plan import DesiredRelease
from alecton.reconcile.release import ReleaseInfo, owner_description


async def upgrade(
    ctx: ActionContext,
    deployment: Deployment,
    desired: DesiredRelease,
    access: KubeAccess,
    logger: logging.LoggerAdapter,
) -> ReleaseInfo:
    """What helm reports of the new revision (HelmActionError when it fails)."""
    logger.info("helm upgrade --install %s (version %s)", desired.name, desired.version)
    return await ctx.helm.upgrade(
        desired.name,
        desired.namespace,
        desired.chart,
        desired.values,
        access,
        owner_description(desired.version, str(deployment.ref)),
        owner_labels(deployment.ref.namespace, deployment.ref.name),
    )
