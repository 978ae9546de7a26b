"""Claim: before every mutating helm action, read the owner of the place from helm's storage.

Also at a place this Deployment already holds: status is writable by whoever may write
Deployment status, and a claim written before a failed first install proves nothing (issue
23: a place claimed by a failed install was later taken by another tenant's release, which
was then upgraded and uninstalled as this Deployment's). A claim of a new place clears the
recorded revision (see the summary), so only helm's storage can confirm it; the previous
place is kept in movedFrom until it is cleaned up.
"""

from __future__ import annotations

from alecton.handlers.actions.context import ActionContext, Request
from alecton.handlers.ownership import check_ownership
from alecton.kube.access import KubeAccess
from alecton.reconcile.outcomes import Claimed, Conflict
from alecton.reconcile.plan import RecordedStatus, ReleaseLocation


async def claim(
    ctx: ActionContext,
    request: Request,
    location: ReleaseLocation,
    moved_from: ReleaseLocation | None,
    access: KubeAccess,
) -> Claimed | Conflict:
    """ReleaseLookupError when helm's storage cannot be read."""
    deployment = request.deployment
    conflict = await check_ownership(
        ctx.storage, access, location, deployment.ref, request.observed.annotations, ctx.config.allow_adopt
    )
    if conflict:
        return Conflict(conflict)
    recorded = RecordedStatus.parse(request.snap.status).release
    same_place = recorded is not None and recorded.same_place(location)
    return Claimed(location, new_place=not same_place, moved_from=moved_from)
