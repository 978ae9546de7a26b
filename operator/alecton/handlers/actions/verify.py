"""Verify: follow the health of the release in place. After a helm action, subscribe the new
revision to the health monitor and return the deadline written with `Verifying`; for a
release already in place, start following it (once per process); stop following when
health no longer matters. What the verdict means is decided in `reconcile.decide` and
written by the summary."""

from __future__ import annotations

import datetime as dt
import logging

from alecton.api.models import Deployment
from alecton.handlers.access import ClusterAccessError, cluster_access
from alecton.handlers.actions.context import ActionContext, Request
from alecton.handlers.health_monitor import TrackError
from alecton.kube.access import KubeAccess
from alecton.reconcile.decide import health_policy
from alecton.reconcile.outcomes import Done, Tracked
from alecton.reconcile.plan import Plan, RecordedStatus
from alecton.reconcile.release import HistoryEntry

log = logging.getLogger("alecton.controller")

_SLOT_BUSY_RETRY = 1.0
_TRACK_RETRY = 30.0


async def start_verifying(
    ctx: ActionContext,
    deployment: Deployment,
    plan: Plan,
    access: KubeAccess,
    history: list[HistoryEntry],
    logger: logging.LoggerAdapter,
) -> str | None:
    """After a helm action: follow the new revision's health; the deadline of Verifying
    (None: checks are off)."""
    policy = health_policy(plan)
    desired = plan.desired
    if policy is None or not policy.check or not history or desired is None:
        ctx.monitor.untrack(deployment.ref)
        return None
    revision = history[0].revision
    try:
        await ctx.monitor.track(
            deployment.ref, desired.cluster.ref, access, desired.name, desired.namespace, revision
        )
    except TrackError as error:  # the verify step tries again
        logger.warning("cannot follow the health of revision %s yet: %s", revision, error)
    return health_deadline(dt.datetime.now(dt.UTC), policy.timeout)


def health_deadline(now: dt.datetime, timeout: float) -> str:
    """`now + timeout` in status's whole seconds, rounded up: a cut fraction would give the
    release less than its healthTimeout (up to a second less; a 6 s timeout then failed a
    release after 5.1 s)."""
    until = now + dt.timedelta(seconds=timeout)
    if until.microsecond:
        until = until.replace(microsecond=0) + dt.timedelta(seconds=1)
    return until.strftime("%Y-%m-%dT%H:%M:%SZ")


async def track(ctx: ActionContext, request: Request) -> Tracked:
    """Start following the recorded revision. Starting reads the tenant's cluster (discovery,
    first lists): the same share as helm, so a slow cluster holds at most its share."""
    plan, ref = request.step.plan, request.deployment.ref
    assert plan is not None and plan.desired is not None
    desired = plan.desired
    revision = RecordedStatus.parse(request.snap.status).release_revision
    slot = (ref.namespace, desired.cluster.ref)
    if ctx.slots.try_acquire(*slot) is not None:
        return Tracked(result="throttled", wait=_SLOT_BUSY_RETRY)
    try:
        async with cluster_access(desired.cluster, desired.namespace, ctx.config, ctx.kube) as access:
            await ctx.monitor.track(
                ref, desired.cluster.ref, access, desired.name, desired.namespace, revision, listed=True
            )
    except (TrackError, ClusterAccessError) as error:
        log.warning("cannot follow the health of %s: %s; trying again in 30 s", ref, error)
        return Tracked(result="verifying", wait=_TRACK_RETRY)
    finally:
        ctx.slots.release(*slot)
    return Tracked()


async def stop_following(ctx: ActionContext, request: Request) -> Done:
    """Health no longer matters (checks off, or a failure that stands)."""
    ctx.monitor.untrack(request.deployment.ref)
    return Done()


async def verdict(ctx: ActionContext, request: Request) -> Done:
    """The verdict was read when observing: nothing to run, the summary writes it."""
    ctx.monitor.seen(request.deployment.ref, request.observed.health.verdict)
    return Done()
