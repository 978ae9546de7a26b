"""Rollback: `helm rollback` to the revision spec.rollback asks for, or to the newest healthy
one when a health check failed (the automatic rollback)."""

from __future__ import annotations

import logging

from alecton.api.models import Deployment
from alecton.handlers.actions.context import ActionContext
from alecton.kube.access import KubeAccess
from alecton.reconcile.plan import DesiredRelease, Plan


def rollback_revision(plan: Plan, deployment: Deployment) -> int:
    if plan.rollback_to:
        return plan.rollback_to
    assert deployment.rollback is not None, "a rollback is planned for spec.rollback or a failed check"
    return deployment.rollback.revision


async def rollback(
    ctx: ActionContext,
    plan: Plan,
    deployment: Deployment,
    desired: DesiredRelease,
    access: KubeAccess,
    logger: logging.LoggerAdapter,
) -> None:
    revision = rollback_revision(plan, deployment)
    logger.info("helm rollback %s to revision %s", desired.name, revision)
    await ctx.helm.rollback(desired.name, desired.namespace, revision, access)
