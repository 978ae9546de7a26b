"""The release step: claim the place, run helm (upgrade or rollback; a release locked by a
killed helm is unlocked and the action tried once more), read the new history, start
following its health, and remove the release's old place after a move.

The helm work takes the namespace's and the cluster's share of the workers; a busy share
means "look again in a second", not a wait that holds a worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from alecton.handlers.access import ClusterAccessError, cluster_access
from alecton.handlers.actions.claim import claim
from alecton.handlers.actions.context import ActionContext, Progress, Request
from alecton.handlers.actions.errors import ACTION_ERRORS
from alecton.handlers.actions.rollback import rollback
from alecton.handlers.actions.uninstall import remove_moved
from alecton.handlers.actions.unlock import unlock
from alecton.handlers.actions.upgrade import upgrade
from alecton.handlers.actions.verify import start_verifying
from alecton.helm.actions import HelmActionError
from alecton.kube.access import KubeAccess
from alecton.reconcile.cause import cause_of
from alecton.reconcile.decide import moved_from, rollback_record
from alecton.reconcile.helm_failure import FailureClass, FailureKind, classify_helm_failure
from alecton.reconcile.history import (
    carry_recorded,
    history_after_upgrade,
    mark_cause,
    mark_given,
    mark_health,
    pinned_chart_reference,
)
from alecton.reconcile.outcomes import Claimed, Conflict, Done, Note, Outcome, Released, ReleaseFailed
from alecton.reconcile.plan import Action, DesiredRelease, Plan, RecordedStatus
from alecton.reconcile.release import HistoryEntry, ReleaseInfo
from alecton.reconcile.retry import is_unreachable

log = logging.getLogger("alecton.controller")

SLOT_BUSY_RETRY = 1.0


def stalls(error: Exception) -> FailureClass | None:
    """The class of a helm failure that only a change of the inputs can fix, else None. Only
    helm's own words are read (its whole stderr); the operator's other errors are transient."""
    if not isinstance(error, HelmActionError):
        return None
    found = classify_helm_failure(error.result.stderr or str(error))
    return found if found.kind is FailureKind.INPUT else None


async def release(
    ctx: ActionContext,
    request: Request,
    progress: Progress,
    image_for: Callable[[str], str],
    prepare: Callable[[], Awaitable[object]],
) -> Outcome:
    """`progress` writes the claim; `image_for` names the image of a version; `prepare` runs
    once the worker share is taken (the finalizer, before any helm)."""
    plan, deployment = request.step.plan, request.deployment
    assert plan is not None and plan.desired is not None
    desired = plan.desired
    cluster, namespace = desired.cluster.ref, deployment.ref.namespace
    if ctx.slots.try_acquire(namespace, cluster) is not None:
        return Done(result="throttled", wait=SLOT_BUSY_RETRY)
    record = rollback_record(plan, deployment)
    before = RecordedStatus.parse(request.snap.status)
    logger = logging.LoggerAdapter(log, {"deployment": str(deployment.ref)})
    notes: list[Note] = []
    try:
        await prepare()
        async with cluster_access(desired.cluster, desired.namespace, ctx.config, ctx.kube) as access:
            location = desired.location(access.identity)
            previous_place = moved_from(request.snap.status, location)
            claimed = await claim(ctx, request, location, previous_place, access)
            if isinstance(claimed, Conflict):
                return claimed
            history, repaired = await _run_helm(ctx, request, claimed, progress, access, logger, notes)
            verify_until = await start_verifying(ctx, deployment, plan, access, history, logger)
        after = ""
        if previous_place is not None:
            after, moved_note = await remove_moved(ctx, deployment, previous_place, logger)
            notes.append(moved_note)
    except ACTION_ERRORS as error:
        if is_unreachable(str(error)):
            ctx.slots.unreachable.add(cluster)
        reason = "ClusterRefused" if isinstance(error, ClusterAccessError) else ""
        text = desired.redactor.redact_helm_error(str(error))
        return ReleaseFailed(text, reason, stalls(error), record, tuple(notes), before)
    finally:
        ctx.slots.release(namespace, cluster)
    ctx.slots.unreachable.discard(cluster)
    latest = history[0] if history else None
    image = image_for(latest.version) if latest is not None and latest.version else ""
    return Released(location, history, image, verify_until, repaired, after, record, tuple(notes), before)


async def _run_helm(
    ctx: ActionContext,
    request: Request,
    claimed: Claimed,
    progress: Progress,
    access: KubeAccess,
    logger: logging.LoggerAdapter,
    notes: list[Note],
) -> tuple[list[HistoryEntry], str]:
    """The claim is written before helm runs at a new place (a crash mid-helm then leaves a
    claim to repair from); at a place already held it is written while helm runs."""
    plan, deployment = request.step.plan, request.deployment
    assert plan is not None and plan.desired is not None
    if claimed.new_place:
        await progress(claimed)
        pending = None
    else:
        pending = asyncio.create_task(progress(claimed))
    try:
        released, repaired = await _helm_unlocking(ctx, plan, request, access, logger, notes)
    finally:
        if pending is not None:  # written before any later status
            await pending
    recorded = RecordedStatus.parse(request.snap.status)
    history = await _history(
        ctx, plan.desired, recorded.history_at(claimed.location), released, repaired, access
    )
    if released is not None:  # a rollback's revision has its source's (carry_recorded)
        chart = pinned_chart_reference(plan.desired.chart)
        history = mark_given(history, released.revision, plan.desired.image, chart)
    # The revision that failed its check is the recorded one of this place (after a move, its
    # number here is another release's revision).
    if plan.health_failure and (failed := recorded.revision_at(claimed.location)):
        history = mark_health(history, failed, False)
    if released is not None or plan.action is Action.ROLLBACK:
        history = mark_cause(history, history[0].revision, cause_of(plan, deployment, recorded))
    return history, repaired


async def _helm_unlocking(
    ctx: ActionContext,
    plan: Plan,
    request: Request,
    access: KubeAccess,
    logger: logging.LoggerAdapter,
    notes: list[Note],
) -> tuple[ReleaseInfo | None, str]:
    """The helm action; a release locked by a killed helm is unlocked (rollback to the last
    good revision, or uninstall) and the action retried once. Returns what an upgrade
    reported and what was repaired; the repair is a note at once, so it is told even when
    the retry fails."""
    try:
        return await _helm(ctx, plan, request, access, logger), ""
    except HelmActionError as error:
        if not error.release_locked:
            raise
        assert plan.desired is not None
        desired = plan.desired
        stale_after = ctx.config.stale_lock_after
        repaired = await unlock(ctx.helm, desired.name, desired.namespace, access, stale_after, logger)
        if not repaired:
            raise
        notes.append(Note("ReleaseRepaired", repaired, warning=True))
    return await _helm(ctx, plan, request, access, logger), repaired


async def _helm(
    ctx: ActionContext, plan: Plan, request: Request, access: KubeAccess, logger: logging.LoggerAdapter
) -> ReleaseInfo | None:
    deployment = request.deployment
    assert plan.desired is not None
    if plan.action is Action.ROLLBACK and (plan.rollback_to or deployment.rollback):
        await rollback(ctx, plan, deployment, plan.desired, access, logger)
        return None
    return await upgrade(ctx, deployment, plan.desired, access, logger)


async def _history(
    ctx: ActionContext,
    desired: DesiredRelease,
    recorded: tuple[HistoryEntry, ...],
    released: ReleaseInfo | None,
    repaired: str,
    access: KubeAccess,
) -> list[HistoryEntry]:
    """An upgrade's JSON output extends the recorded history; a rollback or a repair (or a
    gap in what was recorded) costs one `helm history`. `recorded` is what status recorded of
    this place's release (RecordedStatus.history_at: nothing after a move)."""
    if released is not None and not repaired:
        history = history_after_upgrade(list(recorded), released, desired.version, ctx.helm.history_max)
        if history is not None:
            return history
    return carry_recorded(await ctx.helm.history(desired.name, desired.namespace, access), list(recorded))
