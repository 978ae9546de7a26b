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
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kubernetes_asyncio import client

from alecton.api.models import ObjectRef
from alecton.api.objects import ObjectKey
from alecton.kube.access import KubeAccess
from alecton.kube.client import load_configuration
from alecton.kube.informers import Informer, Resource, resolve_resource
from alecton.kube.releases import ListingBudget, deployed_manifests, read_manifest
from alecton.reconcile.assess import assess, needs_watch
from alecton.reconcile.health import ObjectHealth, ReleaseHealth, State, release_health
from alecton.reconcile.manifest import manifest_objects
from alecton.reconcile.projection import health_projection

log = logging.getLogger("alecton.verify")

# Workloads whose health includes their pods' own reasons (CrashLoopBackOff, ...).
_WITH_PODS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
# A rollout changes many objects at once: a namespace is assessed at most once per gap, which
# grows with what a pass costs (a namespace of a thousand releases), so assessing takes at
# most about a sixth of the event loop, and a change after a quiet spell is assessed at once.
_MIN_GAP_SECONDS = 0.02
_GAP_PER_PASS = 5.0

# Which credentials reach the cluster: the Cluster object (namespace, name) and its identity.
ClientKey = tuple[str, str, str, str, str]
InformerKey = tuple[ClientKey, str, str, str]  # client, namespace, apiVersion, kind


# The objects of each deployed (release, revision) of a namespace, from one list.
# (release, revision) -> its manifest, parsed only when a tracked release takes it: the
# namespace's storage is its tenant's to write, and lookalikes nobody tracks must cost no parse.
Listing = dict[tuple[str, int], str]
_LISTING_SECONDS = 30.0  # how long a restart's list of a namespace serves its releases
_FIRST_LIST_WAIT = 5.0


PodIndex = dict[str, list[dict]]  # workload name -> its pods


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
        self._last_pass: dict[tuple[ClientKey, str], tuple[float, float]] = {}  # when, how long
        self._listings: dict[tuple[ClientKey, str], asyncio.Task[Listing]] = {}
        self._pod_indexes: dict[tuple[ClientKey, str], tuple[Informer | None, PodIndex]] = {}

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
        listed: bool = False,
    ) -> None:
        """Start following revision `revision` of `release` (replacing what `ref` followed).

        `listed`: a release already in place (a restart): its manifest comes from one list
        of the namespace's deployed releases, shared by every release tracked there within
        `_LISTING_SECONDS`, instead of one read each; and the caller reads the verdict
        right after, so the watches' first lists are awaited (at most `_FIRST_LIST_WAIT`)
        instead of assessing the namespace again: a restart is one pass per release."""
        key = client_key(cluster, access)
        api = await self._client(key, access)
        manifest = (
            (await self._listing(api.api, key, namespace)).pop((release, revision), None) if listed else None
        )
        objects = await self._read_objects(api.api, release, namespace, revision, manifest)
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
        if listed:
            await self._first_lists(tracked)
        else:  # after helm: the objects may not change again, assess them as they are
            self._changed(key, namespace)

    async def _first_lists(self, tracked: Tracked) -> None:
        """Until every watch `tracked` needs has answered its first list (or the wait is over:
        a watch that lists later assesses its releases then)."""
        waits = [
            informer.answered.wait()
            for informer in (self._informers.get(k) for k in tracked.informers)
            if informer is not None and not informer.answered.is_set()
        ]
        if waits:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*waits), _FIRST_LIST_WAIT)

    async def _read_objects(
        self, api: client.ApiClient, release: str, namespace: str, revision: int, manifest: str | None
    ) -> list[ObjectKey]:
        """The objects of a revision: of `manifest` (from the namespace's listing), else read."""
        try:
            if manifest is None:
                manifest = await read_manifest(api, release, namespace, revision)
        except Exception as error:
            raise TrackError(f"cannot read the manifest of {release} revision {revision}: {error}") from None
        try:
            # In a thread: libyaml parses about 2 MB a second, and helm's storage is the tenant's.
            return await asyncio.to_thread(manifest_objects, manifest, namespace)
        except ValueError as error:
            raise TrackError(f"cannot parse the manifest of {release} revision {revision}: {error}") from None

    async def _listing(self, api: client.ApiClient, key: ClientKey, namespace: str) -> Listing:
        """The objects of every deployed release in `namespace` (one list, shared while it is
        fresh; entries are taken by the releases they serve). Empty when the list failed:
        each release then reads its own manifest, which says what is wrong."""
        where = (key, namespace)
        listing = self._listings.get(where)
        if listing is None:
            loop = asyncio.get_running_loop()
            listing = loop.create_task(
                self._list_deployed(api, namespace), name=f"helm storage of {namespace}"
            )
            self._listings[where] = listing
            loop.call_later(_LISTING_SECONDS, self._forget_listing, where, listing)
        try:
            return await asyncio.shield(listing)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.info("cannot list the deployed releases of %s: %s; reading them one by one", namespace, error)
            return {}

    async def _list_deployed(self, api: client.ApiClient, namespace: str) -> Listing:
        found: Listing = {}
        async for page in deployed_manifests(api, namespace, ListingBudget()):
            found.update(((release, revision), manifest) for release, revision, manifest in page)
        return found

    def _forget_listing(self, where: tuple[ClientKey, str], listing: asyncio.Task[Listing]) -> None:
        if self._listings.get(where) is listing:
            del self._listings[where]
        if listing.done() and not listing.cancelled():
            listing.exception()  # retrieved (logged by the waiters), so asyncio does not warn

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

    def seen(self, ref: ObjectRef, health: ReleaseHealth | None) -> None:
        """The controller acted on `health`: only a different verdict notifies again (else a
        restart reconciles every release twice: once tracking, once on the first list)."""
        tracked = self._tracked.get(ref)
        if tracked is not None and health is not None:
            tracked.last = (health.state, health.message)

    @property
    def assessed_count(self) -> int:
        """Tracked releases with a verdict (every watch they need has listed)."""
        return sum(1 for tracked in self._tracked.values() if tracked.last is not None)

    def verdict(self, ref: ObjectRef) -> ReleaseHealth | None:
        """The release's health from the caches; None until every informer has listed."""
        tracked = self._tracked.get(ref)
        if tracked is None:
            return None
        return self._verdict(tracked)

    def _verdict(self, tracked: Tracked) -> ReleaseHealth | None:
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
                pods = self._pod_index(tracked.client_key, obj.namespace).get(obj.name, [])
            assessed.append(assess(informer.objects.get(obj.name), obj, pods))
        return release_health(assessed)

    def _pod_index(self, key: ClientKey, namespace: str) -> PodIndex:
        """The namespace's pods by owner, built once per change of its watches (`_changed`
        drops it): a restart reads a thousand verdicts of one namespace, and building it
        for each was a pass over every pod per release."""
        informer = self._informers.get((key, namespace, "v1", "Pod"))
        cached = self._pod_indexes.get((key, namespace))
        if cached is None or cached[0] is not informer:
            cached = (informer, _pods_by_owner(informer))
            self._pod_indexes[(key, namespace)] = cached
        return cached[1]

    async def close(self) -> None:
        for listing in self._listings.values():
            listing.cancel()
        self._listings.clear()
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
        """Assess the namespace's releases soon: at once (after the changes already read)
        when it was quiet, else once the gap since the last pass is over."""
        where = (key, namespace)
        self._pod_indexes.pop(where, None)  # a pod may have changed
        if where in self._pending:
            return
        self._pending.add(where)
        loop = asyncio.get_running_loop()
        last, took = self._last_pass.get(where, (-math.inf, 0.0))
        due = last + max(_MIN_GAP_SECONDS, _GAP_PER_PASS * took)
        loop.call_later(max(0.0, due - loop.time()), self._assess, key, namespace)

    def _assess(self, key: ClientKey, namespace: str) -> None:
        where = (key, namespace)
        self._pending.discard(where)
        started = time.perf_counter()
        self._assess_releases(key, namespace)
        self._last_pass[where] = (asyncio.get_running_loop().time(), time.perf_counter() - started)

    def _assess_releases(self, key: ClientKey, namespace: str) -> None:
        for ref, tracked in list(self._tracked.items()):
            if tracked.client_key != key or not any(o.namespace == namespace for o in tracked.objects):
                continue
            health = self._verdict(tracked)
            if health is None:
                continue
            signature = (health.state, health.message)
            if signature != tracked.last:
                tracked.last = signature
                self._notify(ref)

    def _close_unused_clients(self) -> None:
        used = {informer_key[0] for informer_key in self._informers}
        used |= {tracked.client_key for tracked in self._tracked.values()}
        self._last_pass = {where: last for where, last in self._last_pass.items() if where[0] in used}
        self._pod_indexes = {where: index for where, index in self._pod_indexes.items() if where[0] in used}
        for key in [k for k in self._clients if k not in used]:
            api = self._clients.pop(key).api
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().create_task(api.close())


def _pods_by_owner(informer: Informer | None) -> PodIndex:
    """Pods by the workload that owns them (a Deployment through its ReplicaSet
    `<name>-<hash>`), so each assessment looks at its own pods, not all of them."""
    index: PodIndex = {}
    for pod in informer.objects.values() if informer else ():
        for owner in (pod.get("metadata") or {}).get("ownerReferences") or []:
            name = str(owner.get("name") or "")
            index.setdefault(name, []).append(pod)
            if owner.get("kind") == "ReplicaSet":
                index.setdefault(name.rpartition("-")[0], []).append(pod)
    return index
