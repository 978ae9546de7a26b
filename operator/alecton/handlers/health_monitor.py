"""Following the health of deployed releases with shared watches (the verify action's I/O).

After helm applies a revision the controller asks the monitor to track it: the monitor
reads the revision's manifest from helm's storage Secret (one API read, no helm process),
subscribes to an informer per (cluster credentials, namespace, kind) and, whenever one of
those changes, reassesses the releases that use it. When a release's verdict changes it
calls `notify(ref)`: the controller's queue then reconciles the Deployment and writes the
status (the monitor never writes anything itself). No helm worker waits for health.

Informers are shared by every release that reaches the same cluster with the same
credentials: per Cluster object of a tenant namespace (its kubeconfig Secret or the
ServiceAccount it impersonates), since one tenant's rights are not another's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from kubernetes_asyncio import client

from alecton.api.models import ObjectRef
from alecton.api.objects import ObjectKey
from alecton.kube.access import KubeAccess
from alecton.kube.client import load_configuration
from alecton.kube.informers import Informer, Resource, resolve_resource
from alecton.kube.releases import read_manifest
from alecton.reconcile.assess import assess, needs_watch
from alecton.reconcile.health import ObjectHealth, ReleaseHealth, State, release_health
from alecton.reconcile.manifest import manifest_objects
from alecton.reconcile.projection import health_projection

log = logging.getLogger("alecton.verify")

# Workloads whose health includes their pods' own reasons (CrashLoopBackOff, ...).
_WITH_PODS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
_DEBOUNCE_SECONDS = 0.2  # a rollout changes many objects at once: assess once for all

# Which credentials reach the cluster: the Cluster object (namespace, name) and its identity.
ClientKey = tuple[str, str, str, str, str]
InformerKey = tuple[ClientKey, str, str, str]  # client, namespace, apiVersion, kind


class TrackError(Exception):
    """The release's manifest could not be read (helm storage unreachable or forbidden)."""


@dataclass
class Tracked:
    client_key: ClientKey
    namespace: str
    revision: int
    objects: list[ObjectKey]
    informers: list[InformerKey] = field(default_factory=list)
    last: tuple[State, str] | None = None


@dataclass
class _Client:
    api: client.ApiClient
    resources: dict[tuple[str, str], Resource | None] = field(default_factory=dict)


def client_key(cluster: ObjectRef, access: KubeAccess) -> ClientKey:
    return (cluster.namespace, cluster.name, access.identity, access.impersonate, access.credentials)


class HealthMonitor:
    def __init__(self, notify: Callable[[ObjectRef], None]) -> None:
        self._notify = notify
        self._clients: dict[ClientKey, _Client] = {}
        self._informers: dict[InformerKey, Informer] = {}
        self._users: dict[InformerKey, set[ObjectRef]] = {}
        self._tracked: dict[ObjectRef, Tracked] = {}
        self._pending: set[tuple[ClientKey, str]] = set()  # debounced (client, namespace) changes

    # ----- what the controller calls ---------------------------------------------------

    def tracked(self, ref: ObjectRef, revision: int) -> bool:
        current = self._tracked.get(ref)
        return current is not None and current.revision == revision

    @property
    def watches(self) -> int:
        return len(self._informers)

    @property
    def tracked_count(self) -> int:
        return len(self._tracked)

    async def track(
        self,
        ref: ObjectRef,
        cluster: ObjectRef,
        access: KubeAccess,
        release: str,
        namespace: str,
        revision: int,
    ) -> None:
        """Start following revision `revision` of `release` (replacing what `ref` followed)."""
        key = client_key(cluster, access)
        api = await self._client(key, access)
        try:
            manifest = await read_manifest(api.api, release, namespace, revision)
        except Exception as error:
            raise TrackError(f"cannot read the manifest of {release} revision {revision}: {error}") from None
        try:
            # In a thread: libyaml parses about 2 MB a second, and helm's storage is the tenant's.
            objects = await asyncio.to_thread(manifest_objects, manifest, namespace)
        except ValueError as error:
            raise TrackError(f"cannot parse the manifest of {release} revision {revision}: {error}") from None
        previous = self._tracked.pop(ref, None)
        tracked = Tracked(key, namespace, revision, objects)
        watched = [o for o in objects if needs_watch(o)]
        if any(o.kind in _WITH_PODS for o in watched) and not any(o.kind == "Pod" for o in watched):
            watched.append(ObjectKey("v1", "Pod", namespace, ""))
        for obj in watched:
            informer_key = await self._subscribe(ref, key, api, obj)
            if informer_key is not None and informer_key not in tracked.informers:
                tracked.informers.append(informer_key)
        self._tracked[ref] = tracked
        if previous is not None:  # released only now: the informers both use stay up
            self._release(ref, previous, keep=set(tracked.informers))
        self._changed(key, namespace)  # assess now if everything is already cached

    def untrack(self, ref: ObjectRef) -> None:
        tracked = self._tracked.pop(ref, None)
        if tracked is not None:
            self._release(ref, tracked, keep=set())

    def _release(self, ref: ObjectRef, tracked: Tracked, keep: set[InformerKey]) -> None:
        for informer_key in tracked.informers:
            if informer_key in keep:
                continue
            users = self._users.get(informer_key)
            if users is None:
                continue
            users.discard(ref)
            if not users:
                del self._users[informer_key]
                informer = self._informers.pop(informer_key)
                asyncio.get_running_loop().create_task(informer.stop())
        self._close_unused_clients()

    def verdict(self, ref: ObjectRef) -> ReleaseHealth | None:
        """The release's health from the caches; None until every informer has listed."""
        tracked = self._tracked.get(ref)
        if tracked is None:
            return None
        return self._verdict(tracked, {})

    def _verdict(
        self, tracked: Tracked, pod_indexes: dict[tuple[ClientKey, str], dict[str, list[dict]]]
    ) -> ReleaseHealth | None:
        assessed: list[ObjectHealth] = []
        for obj in tracked.objects:
            if not needs_watch(obj):
                assessed.append(ObjectHealth(obj, State.CURRENT, "exists"))
                continue
            informer = self._informers.get((tracked.client_key, obj.namespace, obj.api_version, obj.kind))
            if informer is None:  # a kind the cluster does not serve as namespaced: nothing to check
                assessed.append(ObjectHealth(obj, State.CURRENT, "not checked"))
                continue
            if not informer.synced.is_set():
                if not informer.error:
                    return None
                message = f"cannot read {informer.resource.plural}: {informer.error}"
                assessed.append(ObjectHealth(obj, State.IN_PROGRESS, message))
                continue
            pods: list[dict] = []
            if obj.kind in _WITH_PODS:
                index_key = (tracked.client_key, obj.namespace)
                if index_key not in pod_indexes:
                    pod_indexes[index_key] = self._pods_by_owner(*index_key)
                pods = pod_indexes[index_key].get(obj.name, [])
            assessed.append(assess(informer.objects.get(obj.name), obj, pods))
        return release_health(assessed)

    def _pods_by_owner(self, key: ClientKey, namespace: str) -> dict[str, list[dict]]:
        """Pods by the workload that owns them (a Deployment through its ReplicaSet
        `<name>-<hash>`), so each assessment looks at its own pods, not all of them."""
        informer = self._informers.get((key, namespace, "v1", "Pod"))
        index: dict[str, list[dict]] = {}
        for pod in informer.objects.values() if informer else ():
            for owner in (pod.get("metadata") or {}).get("ownerReferences") or []:
                name = str(owner.get("name") or "")
                index.setdefault(name, []).append(pod)
                if owner.get("kind") == "ReplicaSet":
                    index.setdefault(name.rpartition("-")[0], []).append(pod)
        return index

    async def close(self) -> None:
        for informer in self._informers.values():
            await informer.stop()
        self._informers.clear()
        self._users.clear()
        self._tracked.clear()
        for entry in self._clients.values():
            await entry.api.close()
        self._clients.clear()

    # ----- plumbing --------------------------------------------------------------------

    async def _client(self, key: ClientKey, access: KubeAccess) -> _Client:
        if key not in self._clients:
            # Loaded while the kubeconfig exists (a tenant's lives only during the access block).
            api = client.ApiClient(
                await load_configuration(access.kubeconfig or None, access.context or None)
            )
            if access.impersonate:
                api.set_default_header("Impersonate-User", access.impersonate)
            self._clients[key] = _Client(api)
        return self._clients[key]

    async def _subscribe(
        self, ref: ObjectRef, key: ClientKey, api: _Client, obj: ObjectKey
    ) -> InformerKey | None:
        kind_key = (obj.api_version, obj.kind)
        if kind_key not in api.resources:
            try:
                api.resources[kind_key] = await resolve_resource(api.api, obj.api_version, obj.kind)
            except Exception as error:  # discovery failed: try again on the next track
                log.info("discovery of %s %s failed: %s", obj.api_version, obj.kind, error)
                return None
        resource = api.resources[kind_key]
        if resource is None:
            return None
        informer_key: InformerKey = (key, obj.namespace, obj.api_version, obj.kind)
        if informer_key not in self._informers:
            group, kind = obj.group, obj.kind
            informer = Informer(
                api.api,
                resource,
                obj.namespace,
                lambda: self._changed(key, obj.namespace),
                keep=lambda live: health_projection(live, group, kind),
            )
            self._informers[informer_key] = informer
            informer.start()
        self._users.setdefault(informer_key, set()).add(ref)
        return informer_key

    def _changed(self, key: ClientKey, namespace: str) -> None:
        if (key, namespace) in self._pending:
            return
        self._pending.add((key, namespace))
        asyncio.get_running_loop().call_later(_DEBOUNCE_SECONDS, self._assess, key, namespace)

    def _assess(self, key: ClientKey, namespace: str) -> None:
        self._pending.discard((key, namespace))
        pod_indexes: dict[tuple[ClientKey, str], dict[str, list[dict]]] = {}
        for ref, tracked in list(self._tracked.items()):
            if tracked.client_key != key or not any(o.namespace == namespace for o in tracked.objects):
                continue
            health = self._verdict(tracked, pod_indexes)
            if health is None:
                continue
            signature = (health.state, health.message)
            if signature != tracked.last:
                tracked.last = signature
                self._notify(ref)

    def _close_unused_clients(self) -> None:
        used = {informer_key[0] for informer_key in self._informers}
        used |= {tracked.client_key for tracked in self._tracked.values()}
        for key in [k for k in self._clients if k not in used]:
            api = self._clients.pop(key).api
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().create_task(api.close())
