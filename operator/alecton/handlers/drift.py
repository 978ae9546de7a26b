"""The drift action: compare a settled release's objects with the live ones, on its
interval (spread across releases) or when asked, and with `mode: Correct` re-apply the
release's own objects. It reads the revision's manifest from helm's storage and each
object once per check, with the identity helm uses for that Cluster; it never runs helm.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
from kubernetes_asyncio import client

from alecton.api.models import Deployment, DriftPolicy, ObjectRef
from alecton.handlers.access import ClusterAccessError, cluster_access
from alecton.handlers.health_monitor import ClientKey, client_key
from alecton.handlers.ownership import check_ownership
from alecton.kube.access import KubeAccess
from alecton.kube.client import api_error_message, load_configuration
from alecton.kube.informers import Located, apply_object, locate, read_objects
from alecton.kube.releases import ReleaseLookupError, read_manifest
from alecton.reconcile import status as st
from alecton.reconcile.diff import Change, DiffResult, diff_release, key_of, parse_manifest
from alecton.reconcile.drift import (
    CORRECTION_FAILED,
    DRIFT_CHECK_ANNOTATION,
    correction_failed,
    correction_refusal,
    drift_due,
    drift_event,
    drift_patch,
    recovered,
)
from alecton.reconcile.plan import DesiredRelease, Plan, RecordedStatus, ReleaseLocation, epoch

if TYPE_CHECKING:
    from alecton.handlers.controller import Controller, DeploymentSnapshot

log = logging.getLogger("alecton.drift")

# Phases of a release that is in place and meant to stay as it is.
_SETTLED = frozenset({st.DEPLOYED, st.DEGRADED, st.ROLLED_BACK})
# The field manager helm itself applies with: a correction keeps helm the owner.
_FIELD_MANAGER = "helm"
_SLOT_BUSY_RETRY = 1.0


# A client unused this long is closed (its kinds forgotten): a few per cluster identity.
_CLIENT_IDLE_SECONDS = 1800.0


@dataclass
class _PooledClient:
    """An API client kept between checks: its TLS connections and its discovery of kinds
    are reused, so a check costs the reads of the objects and little else."""

    api: client.ApiClient
    kinds: dict[tuple[str, str], Located] = field(default_factory=dict)
    used: float = 0.0


class DriftChecker:
    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        # (Deployment, revision) -> when this process first considered it: spreads overdue
        # checks after a restart or when drift is switched on.
        self._considered: dict[ObjectRef, tuple[int, float]] = {}
        self._clients: dict[ClientKey, _PooledClient] = {}

    async def _client(self, cluster: ObjectRef, access: KubeAccess) -> _PooledClient:
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

    def forget(self, ref: ObjectRef) -> None:
        self._considered.pop(ref, None)

    def _considered_since(self, ref: ObjectRef, revision: int, now: float) -> float:
        seen = self._considered.get(ref)
        if seen is None or seen[0] != revision:
            seen = self._considered[ref] = (revision, now)
        return seen[1]

    @staticmethod
    def policy(plan: Plan) -> DriftPolicy | None:
        resolved = plan.resolved
        return resolved.application.drift_policy(resolved.target) if resolved else None

    async def check_if_due(self, snap: DeploymentSnapshot, deployment: Deployment, plan: Plan) -> None:
        policy = self.policy(plan)
        status = snap.status
        recorded = RecordedStatus.parse(status)
        failed = correction_failed(status)
        if policy is None or policy.mode == "Off":
            self.forget(deployment.ref)  # switched on again later: spread from then
            if failed:
                message = "drift is no longer checked (mode Off): the failed correction is not tried again"
                patch = recovered(status, message, deployment.generation, st.now_rfc3339())
                await self.controller._write_status(snap, patch)
            return
        settled = status.get("phase") in _SETTLED or failed
        if not settled or plan.desired is None or not recorded.release_revision:
            return
        annotations = (snap.body.get("metadata") or {}).get("annotations") or {}
        now = time.time()
        due = drift_due(
            status.get("drift") or {},
            recorded.release_revision,
            epoch((status.get("release") or {}).get("lastDeployed")),
            policy.interval,
            str(deployment.ref),
            now,
            str(annotations.get(DRIFT_CHECK_ANNOTATION) or ""),
            self._considered_since(deployment.ref, recorded.release_revision, now),
        )
        if not due.now:
            self.controller.queue.add_after(deployment.ref, due.wait + 0.5)
            return
        # A check reads (and may write) the tenant's cluster: it takes the same per-namespace and
        # per-cluster share as helm, so one tenant's slow cluster cannot hold every worker.
        slot = (deployment.ref.namespace, plan.desired.cluster.ref)
        if self.controller.slots.try_acquire(*slot) is not None:
            self.controller.queue.add_after(deployment.ref, _SLOT_BUSY_RETRY)
            return
        metrics = self.controller.metrics
        started = time.monotonic()
        try:
            revision = recorded.release_revision
            drift = await self._check(snap, deployment, plan, policy, revision, due.requested)
        except (
            ClusterAccessError,
            ReleaseLookupError,
            client.ApiException,
            aiohttp.ClientError,
            OSError,
            ValueError,
            TimeoutError,
        ) as error:
            log.warning("drift check of %s failed: %s; again in 60 s", deployment.ref, error)
            metrics.drift_checks.labels("error").inc()
            self.controller.queue.add_after(deployment.ref, 60.0)
            return
        finally:
            self.controller.slots.release(*slot)
            metrics.drift_duration.observe(time.monotonic() - started)
        if drift.get("retryAt"):
            outcome = "correction_failed"
        elif "lastCorrection" in drift:  # only in what this check wrote when it corrected
            outcome = "corrected"
        else:
            outcome = "drifted" if drift.get("drifted") else "in_sync"
        metrics.drift_checks.labels(outcome).inc()
        retry_at = epoch(drift.get("retryAt"))
        wait = retry_at - time.time() if retry_at else policy.interval
        self.controller.queue.add_after(deployment.ref, max(0.0, wait) + 0.5)

    async def _check(
        self,
        snap: DeploymentSnapshot,
        deployment: Deployment,
        plan: Plan,
        policy: DriftPolicy,
        revision: int,
        requested: str,
    ) -> dict[str, Any]:
        """Compare (and correct); returns the status.drift written."""
        desired = plan.desired
        assert desired is not None
        controller = self.controller
        async with cluster_access(
            desired.cluster, desired.namespace, controller.config, controller.kube
        ) as access:
            pooled = await self._client(desired.cluster.ref, access)
        api = pooled.api
        # In a thread: libyaml parses about 2 MB a second, and helm's storage is the tenant's.
        text = await read_manifest(api, desired.name, desired.namespace, revision)
        manifest = await asyncio.to_thread(parse_manifest, text, desired.namespace)
        result, live = await self._compare(pooled, manifest, desired.namespace, policy)
        correction = None
        if result.changed and policy.mode == "Correct":
            # Helm's storage may have been rewritten since the check: its owner is read again
            # right before anything is applied.
            async with cluster_access(
                desired.cluster, desired.namespace, controller.config, controller.kube
            ) as access:
                cluster_name = desired.cluster.ref.name
                where = ReleaseLocation(cluster_name, access.identity, desired.namespace, desired.name)
                conflict = await check_ownership(controller.storage, access, where, deployment.ref, {}, False)
            if conflict:
                raise ValueError(f"drift not corrected: {conflict}")
            correction = await self._correct(api, manifest, result, live, desired, revision)
            result, live = await self._compare(pooled, manifest, desired.namespace, policy)
        ctx = controller._ctx(snap, deployment.generation)
        was = (snap.status.get("drift") or {}).get("drifted")
        patch = drift_patch(
            snap.status, result, revision, ctx.now, deployment.generation, requested, correction
        )
        snap = await controller._write_status(snap, patch)
        if correction is not None and correction["result"] == "Succeeded":
            message = (
                f"re-applied {correction['objects']} objects of revision {revision}: {correction['detail']}"
            )
            await controller._event(snap, "Normal", "DriftCorrected", message)
        elif correction is not None:
            await controller._event(snap, "Warning", CORRECTION_FAILED, str(patch["message"]))
        elif (event := drift_event(was, result.changed)) is not None:
            drifted = next(c for c in patch["conditions"] if c["type"] == "Drifted")
            await controller._event(snap, event[0], event[1], drifted["message"])
        return dict(patch["drift"])

    async def _compare(
        self, pooled: _PooledClient, manifest: list[dict[str, Any]], namespace: str, policy: DriftPolicy
    ) -> tuple[DiffResult, dict[Any, dict[str, Any] | None]]:
        keys = [key_of(obj, namespace) for obj in manifest]
        live = await read_objects(pooled.api, keys, pooled.kinds)
        return diff_release(manifest, live, ignore=policy.ignore, mode="drift"), live

    async def _correct(
        self,
        api: client.ApiClient,
        manifest: list[dict[str, Any]],
        result: DiffResult,
        live: dict[Any, dict[str, Any] | None],
        desired: DesiredRelease,
        revision: int,
    ) -> dict[str, Any]:
        """Server-side apply of every drifted or missing object, as the release has it, that
        is this release's (see `correction_refusal`)."""
        namespace = desired.namespace
        wanted = {key_of(obj, namespace): obj for obj in manifest}
        drifted = [o.key for o in result.objects if o.change in (Change.CHANGED, Change.MISSING)]
        applied, problems = 0, []
        for key in drifted:
            refused = correction_refusal(key, live.get(key), desired.name, namespace)
            if refused:
                problems.append(f"{refused}: not applied")
                continue
            where = await locate(api, key.api_version, key.kind)
            if where is None:
                problems.append(f"{key.describe()}: kind not served")
                continue
            try:
                await apply_object(api, where, wanted[key], _FIELD_MANAGER)
                applied += 1
            except client.ApiException as error:
                problems.append(f"{key.describe()}: {api_error_message(error)}")
        detail = ", ".join(k.describe() for k in drifted)
        if problems:
            detail = f"{detail}; failed: {'; '.join(problems)}"
        return {
            "at": st.now_rfc3339(),
            "revision": revision,
            "objects": applied,
            "result": "Failed" if problems else "Succeeded",
            "detail": detail[:500],
        }
