"""Leader election for operator replicas: hold a `Lease`, or wait for it.

The decisions are in reconcile/lease.py; this module reads and writes the Lease (with its
resourceVersion, so only one of two racing replicas wins) and keeps renewing it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable

from kubernetes_asyncio import client

from alecton.kube.client import ApiException, KubeClient
from alecton.reconcile.lease import ACQUIRE, RENEW, LeaseRecord, lease_step, lost, released

log = logging.getLogger("alecton.leader")


def _record(lease: client.V1Lease) -> LeaseRecord:
    spec = lease.spec or client.V1LeaseSpec()
    return LeaseRecord.parse(
        {
            "holderIdentity": spec.holder_identity,
            "renewTime": spec.renew_time,
            "acquireTime": spec.acquire_time,
            "leaseDurationSeconds": spec.lease_duration_seconds,
            "leaseTransitions": spec.lease_transitions,
        }
    )


def identity() -> str:
    """This replica: the Pod's name (HOSTNAME) and a per-process suffix."""
    return f"{os.environ.get('HOSTNAME') or socket.gethostname()}_{uuid.uuid4().hex[:8]}"


class LeaderElector:
    def __init__(
        self,
        kube: KubeClient,
        namespace: str,
        name: str,
        me: str,
        duration: float = 10.0,
        renew_deadline: float = 7.0,
        retry: float = 2.0,
    ) -> None:
        self.kube, self.namespace, self.name, self.me = kube, namespace, name, me
        self.duration, self.renew_deadline, self.retry = duration, renew_deadline, retry
        self.renewed = 0.0  # monotonic time of the last successful write

    @property
    def _api(self) -> client.CoordinationV1Api:
        return client.CoordinationV1Api(self.kube.api)

    async def _try(self) -> tuple[bool, str, float]:
        """One attempt to take or renew the Lease: (holding it, holder, seconds to wait),
        bounded well inside the renew deadline: a request left waiting on a slow API server
        for the client's usual 30 s would let the Lease expire while this replica still
        believes it leads (TimeoutError past the bound)."""
        async with asyncio.timeout(self.renew_deadline / 2):
            return await self._attempt()

    async def _attempt(self) -> tuple[bool, str, float]:
        try:
            lease = await self._api.read_namespaced_lease(
                self.name, self.namespace, _request_timeout=self.kube.timeout
            )
        except ApiException as error:
            if error.status != 404:
                raise
            lease = None
        step = lease_step(_record(lease) if lease else None, self.me, time.time(), self.duration)
        if step.action not in (ACQUIRE, RENEW):
            return False, step.holder, step.wait
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": step.spec,
        }
        try:
            if lease is None:
                await self._api.create_namespaced_lease(
                    self.namespace, body, _request_timeout=self.kube.timeout
                )
            else:
                body["metadata"]["resourceVersion"] = lease.metadata.resource_version
                await self._api.replace_namespaced_lease(
                    self.name, self.namespace, body, _request_timeout=self.kube.timeout
                )
        except ApiException as error:
            if error.status in (409, 422):  # another replica wrote first
                return False, "", self.retry
            raise
        self.renewed = time.monotonic()
        return True, self.me, 0.0

    async def acquire(self, waiting: Callable[[str], None]) -> None:
        """Return once this replica holds the Lease."""
        last_holder = None
        while True:
            try:
                holding, holder, wait = await self._try()
            except (ApiException, OSError, TimeoutError) as error:
                log.warning("leader election: %s; again in %.0f s", error, self.retry)
                holding, holder, wait = False, "", self.retry
            if holding:
                log.info("leader election: %s holds lease %s/%s", self.me, self.namespace, self.name)
                return
            if holder and holder != last_holder:
                waiting(holder)
                last_holder = holder
            await asyncio.sleep(min(max(wait, 0.2), self.retry))

    async def hold(self, on_lost: Callable[[], None]) -> None:
        """Renew every `retry` seconds; call `on_lost` (once) when renewing failed for
        `renew_deadline` seconds or someone else took the Lease."""
        while True:
            await asyncio.sleep(self.retry)
            try:
                holding, holder, _ = await self._try()
            except (ApiException, OSError, TimeoutError) as error:
                log.warning("leader election: cannot renew: %s", error)
                holding, holder = False, ""
            if holding:
                continue
            if holder or lost(self.renewed, time.monotonic(), self.renew_deadline):
                log.error(
                    "leader election: lost lease %s/%s (holder now: %s)",
                    self.namespace,
                    self.name,
                    holder or "unknown",
                )
                on_lost()
                return

    async def release(self) -> None:
        """Hand the Lease over at once (a clean shutdown)."""
        try:
            lease = await self._api.read_namespaced_lease(
                self.name, self.namespace, _request_timeout=self.kube.timeout
            )
            free = released(_record(lease), self.me, time.time())
            if free is None:
                return
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {
                    "name": self.name,
                    "namespace": self.namespace,
                    "resourceVersion": lease.metadata.resource_version,
                },
                "spec": free,
            }
            await self._api.replace_namespaced_lease(
                self.name, self.namespace, body, _request_timeout=self.kube.timeout
            )
            log.info("leader election: released lease %s/%s", self.namespace, self.name)
        except (ApiException, OSError, TimeoutError) as error:
            log.warning("leader election: could not release the lease: %s", error)
