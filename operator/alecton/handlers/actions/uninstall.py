"""Uninstall: on deletion, where status says the release lives (and at a move's old place
that was never cleaned up); after a move, at the old place. Each place only if helm's storage
names this Deployment as its owner; never at the Application's current target."""

from __future__ import annotations

import logging

from alecton.api.models import Deployment
from alecton.handlers.access import cluster_access
from alecton.handlers.actions.context import ActionContext, Request
from alecton.handlers.actions.errors import ACTION_ERRORS
from alecton.handlers.ownership import check_ownership
from alecton.reconcile.outcomes import Note, Uninstalled, UninstallFailed
from alecton.reconcile.plan import RecordedStatus, ReleaseLocation
from alecton.reconcile.redact import Redactor

log = logging.getLogger("alecton.controller")


async def uninstall(ctx: ActionContext, request: Request) -> Uninstalled | UninstallFailed:
    deployment, status = request.deployment, request.snap.status
    where = RecordedStatus.parse(status).release
    assert where is not None  # the plan finalizes without an uninstall otherwise
    # A move that never succeeded leaves the release at its previous place (movedFrom):
    # it goes too.
    previous = ReleaseLocation.parse(status.get("movedFrom") or {})
    places = [where] + ([previous] if previous is not None and not previous.same_place(where) else [])
    logger = logging.LoggerAdapter(log, {"deployment": str(deployment.ref)})
    try:
        return Uninstalled(
            "; ".join([await uninstall_at(ctx, deployment, place, logger) for place in places])
        )
    except ACTION_ERRORS as error:
        return UninstallFailed(Redactor().redact(str(error)))


async def uninstall_at(
    ctx: ActionContext, deployment: Deployment, where: ReleaseLocation, logger: logging.LoggerAdapter
) -> str:
    """Uninstall the release at `where` only if its owner label names this Deployment.
    What was done, as a message; raises the action errors on failure."""
    cluster = ctx.cluster_named(deployment.ref.namespace, where.cluster)
    if cluster is None:
        return f"left {where.describe()}: the Cluster no longer exists, so it cannot be reached"
    async with cluster_access(cluster, where.namespace, ctx.config, ctx.kube) as access:
        if where.identity and access.identity != where.identity:
            return f"left {where.describe()}: the Cluster now points at another cluster"
        conflict = await check_ownership(ctx.storage, access, where, deployment.ref, {}, False)
        if conflict:
            return f"left {where.describe()}: {conflict}"
        logger.info("helm uninstall %s in %s", where.name, where.namespace)
        removed = await ctx.helm.uninstall(where.name, where.namespace, access)
    if not removed:
        return f"the release in namespace {where.namespace!r} was already gone"
    return f"removed the release from namespace {where.namespace}"


async def remove_moved(
    ctx: ActionContext, deployment: Deployment, old: ReleaseLocation, logger: logging.LoggerAdapter
) -> tuple[str, Note]:
    """After a move succeeded: remove the release at its old place per deletionPolicy."""
    if deployment.orphan_on_delete:
        message = f"left the release in namespace {old.namespace!r} running (deletionPolicy Orphan)"
        return message, Note("ReleaseMoved", message)
    try:
        message = await uninstall_at(ctx, deployment, old, logger)
    except ACTION_ERRORS as error:
        # The release runs at its new place; the old one is reported, not retried (nothing
        # would bring this Deployment back to it).
        message = (
            f"could not remove {old.describe()}: {error}; remove it by hand "
            f"(helm uninstall {old.name} -n {old.namespace})"
        )
        return message, Note("ReleaseMoved", message, warning=True)
    return message, Note("ReleaseMoved", message)
