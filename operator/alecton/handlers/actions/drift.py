"""Check drift: compare a settled release's objects with the live ones and, with
`mode: Correct`, correct them (`actions.correct`). It reads the revision's manifest from
helm's storage and each object once per check, with the identity helm uses for that
Cluster; it never runs helm. When a check is due is decided in `reconcile.decide`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from kubernetes_asyncio import client

from alecton.api.models import DriftPolicy, ObjectRef
from alecton.handlers.access import ClusterAccessError, cluster_access
from alecton.handlers.actions.context import ActionContext, Request
from alecton.handlers.actions.correct import correct
from alecton.handlers.health_monitor import ClientKey, client_key
from alecton.handlers.ownership import check_ownership
from alecton.kube.access import KubeAccess
from alecton.kube.client import load_configuration
from alecton.kube.informers import Located, read_objects
from alecton.kube.releases import ReleaseLookupError, read_manifest
from alecton.reconcile.decide import drift_policy
from alecton.reconcile.diff import DiffResult, diff_release, key_of, parse_manifest
from alecton.reconcile.drift import drifted_objects
from alecton.reconcile.outcomes import Done, DriftChecked
from alecton.reconcile.plan import DesiredRelease, RecordedStatus, ReleaseLocation

log = logging.getLogger("alecton.drift")

_SLOT_BUSY_RETRY = 1.0
ERROR_RETRY = 60.0
# A client unused this long is closed (its kinds forgotten): a few per cluster identity.
_CLIENT_IDLE_SECONDS = 1800.0
CHECK_ERRORS = (
    ClusterAccessError,
    ReleaseLookupError,
    client.ApiException,
    aiohttp.ClientError,
    OSError,
    ValueError,
    TimeoutError,
)


@dataclass
class _PooledClient:
    """An API client kept between checks: its TLS connections and its discovery of kinds
    are reused, so a check costs the reads of the objects and little else."""

    api: client.ApiClient
    kinds: dict[tuple[str, str], Located] = field(default_factory=dict)
    used: float = 0.0


class DriftClients:
    """The API clients of drift checks, one per cluster identity, and when this process
    first considered each Deployment's revision (spreads overdue checks after a restart or
    when drift is switched on)."""

    def __init__(self) -> None:
        self._clients: dict[ClientKey, _PooledClient] = {}
        self._considered: dict[ObjectRef, tuple[int, float]] = {}

    async def client(self, cluster: ObjectRef, access: KubeAccess) -> _PooledClient:
        now = time.monotonic()
        for key in [k for k, c in self._clients.items() if now - c.used > _CLIENT_IDLE_SECONDS]:
            await self._clients.pop(key).api.close()
        key = client_key(cluster, access)
        if key not in self._clients:
            # Loaded while the kubeconfig exists (a tenant's lives only during the access
            # block); the key holds a digest of a tenant kubeconfig, so a rotated Secret gets a
            # new client.
            api = client.ApiClient(
                await load_configuration(access.kubeconfig or None, access.context or None)
            )
            if access.impersonate:
                api.set_default_header("Impersonate-User", access.impersonate)
            self._clients[key] = _PooledClient(api)
        pooled = self._clients[key]
        pooled.used = now
        return pooled

    async def close(self) -> None:
        for pooled in self._clients.values():
            await pooled.api.close()
        self._clients.clear()

    def considered_since(self, ref: ObjectRef, revision: int, now: float) -> float:
        seen = self._considered.get(ref)
        if seen is None or seen[0] != revision:
            seen = self._considered[ref] = (revision, now)
        return seen[1]

    def forget(self, ref: ObjectRef) -> None:
        self._considered.pop(ref, None)


async def check_drift(ctx: ActionContext, clients: DriftClients, request: Request) -> DriftChecked | Done:
    """A check reads (and may write) the tenant's cluster: it takes the same per-namespace and
    per-cluster share as helm, so one tenant's slow cluster cannot hold every worker."""
    plan, ref = request.step.plan, request.deployment.ref
    assert plan is not None and plan.desired is not None
    policy = drift_policy(plan)
    assert policy is not None
    slot = (ref.namespace, plan.desired.cluster.ref)
    if ctx.slots.try_acquire(*slot) is not None:
        return Done(wait=_SLOT_BUSY_RETRY)
    started = time.monotonic()
    try:
        checked = await _check(ctx, clients, request, plan.desired, policy)
    except CHECK_ERRORS as error:
        log.warning("drift check of %s failed: %s; again in 60 s", ref, error)
        ctx.metrics.drift_checks.labels("error").inc()
        return Done(wait=ERROR_RETRY)
    finally:
        ctx.slots.release(*slot)
        ctx.metrics.drift_duration.observe(time.monotonic() - started)
    ctx.metrics.drift_checks.labels(_metric_outcome(checked)).inc()
    return checked


def _metric_outcome(checked: DriftChecked) -> str:
    if checked.correction is not None:
        return "corrected" if checked.correction["result"] == "Succeeded" else "correction_failed"
    return "drifted" if checked.drifted else "in_sync"


async def _check(
    ctx: ActionContext, clients: DriftClients, request: Request, desired: DesiredRelease, policy: DriftPolicy
) -> DriftChecked:
    """Compare, and correct when the step says so."""
    revision = RecordedStatus.parse(request.snap.status).release_revision
    async with cluster_access(desired.cluster, desired.namespace, ctx.config, ctx.kube) as access:
        pooled = await clients.client(desired.cluster.ref, access)
    # In a thread: libyaml parses about 2 MB a second, and helm's storage is the tenant's.
    text = await read_manifest(pooled.api, desired.name, desired.namespace, revision)
    manifest = await asyncio.to_thread(parse_manifest, text, desired.namespace)
    result, live = await _compare(pooled, manifest, desired.namespace, policy)
    correction = None
    if result.changed and request.step.correct:
        # Helm's storage may have been rewritten since the check: its owner is read again
        # right before anything is applied.
        async with cluster_access(desired.cluster, desired.namespace, ctx.config, ctx.kube) as access:
            where = ReleaseLocation(
                desired.cluster.ref.name, access.identity, desired.namespace, desired.name
            )
            ref = request.deployment.ref
            conflict = await check_ownership(ctx.storage, access, where, ref, {}, False)
        if conflict:
            raise ValueError(f"drift not corrected: {conflict}")
        correction = await correct(pooled.api, manifest, result, live, desired, revision)
        result, live = await _compare(pooled, manifest, desired.namespace, policy)
    objects = drifted_objects(result)
    return DriftChecked(revision, result.changed, result.summary, objects, request.step.requested, correction)


async def _compare(
    pooled: _PooledClient, manifest: list[dict[str, Any]], namespace: str, policy: DriftPolicy
) -> tuple[DiffResult, dict[Any, dict[str, Any] | None]]:
    keys = [key_of(obj, namespace) for obj in manifest]
    live = await read_objects(pooled.api, keys, pooled.kinds)
    return diff_release(manifest, live, ignore=policy.ignore, mode="drift"), live


async def drift_off(ctx: ActionContext, clients: DriftClients, request: Request) -> Done:
    """Drift is not checked: switched on again later, overdue checks spread from then."""
    clients.forget(request.deployment.ref)
    return Done()
