"""What one caller sees of the overview's kinds, kept by watches made with the caller's
own client: one namespace, or every namespace the caller may list.

Why a cache per caller and not one shared: a shared cache would hold what the server's
own rights see and would have to filter every answer by what each caller may read,
re-implementing RBAC. Here every object came from a list or watch the API server answered
for this caller's credentials, and a view is only ever handed to the credentials it was
made for (web/clients.py's pool, keyed by a digest of the token). Rights that change
later are re-checked: before answering from the cache, at most every RECHECK_SECONDS, a
SelfSubjectAccessReview of `list` for every part of the view (kind and namespace, or
cluster-wide); a part no longer allowed is dropped and watched afresh (which the API
server then refuses), and credentials the API server no longer accepts end the view (401).
Watches themselves last at most WATCH_SECONDS (web/watch.py), each one authorized anew.

All namespaces: a kind the caller may list cluster-wide is watched cluster-wide (the API
server returns exactly what they may list). Otherwise (a tenant bound in its own
namespaces) the candidate namespaces are those the caller may list as namespaces, the
server's default one and a ServiceAccount's own; each is kept only where a review says
the caller may list the kind there. Deny by default: nothing is shown that the API server
did not give these credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from alecton.api.models import GROUP, PLURALS
from alecton.kube.client import ApiException, KubeClient, api_error_message
from alecton.kube.informers import get_json, json_body
from alecton.web import views
from alecton.web.clients import KeyedPool
from alecton.web.identity import Identity
from alecton.web.watch import FAILED, RESYNC, KindWatch

KINDS = ("Application", "Deployment", "Image", "Promotion")
RECHECK_SECONDS = 5.0
LIST_WAIT_SECONDS = 30.0
MAX_NAMESPACES = 200
VIEWS = 32  # cached views at most (each a few watches and the objects they list)
VIEW_IDLE_SECONDS = 120.0
VIEWS_PER_CALLER = 8  # one caller's scopes: past it, its own idle views go (red team, issue 26)
_SA_PREFIX = "system:serviceaccount:"
_REFUSED = (401, 403)


@dataclass(frozen=True)
class Part:
    """One watched collection: a kind in a namespace, or in all ("")."""

    kind: str
    namespace: str


@dataclass(eq=False)
class Subscription:
    """What changed since a live stream last sent: Deployments by (namespace, name), and
    kinds whose change needs a full refresh."""

    deployments: set[tuple[str, str]] = field(default_factory=set)
    kinds: set[str] = field(default_factory=set)
    wake: asyncio.Event = field(default_factory=asyncio.Event)


async def _post(kube: KubeClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    raw = await kube.api.call_api(
        path,
        "POST",
        body=body,
        header_params={"Content-Type": "application/json", "Accept": "application/json"},
        auth_settings=["BearerToken"],
        _preload_content=False,
        _request_timeout=kube.timeout,
    )
    return await json_body(raw[0] if isinstance(raw, tuple) else raw)


async def may_list(kube: KubeClient, kind: str, namespace: str) -> bool:
    """Whether the API server lets this caller list `kind` in `namespace` ("" all)."""
    attributes = {"group": GROUP, "resource": PLURALS[kind], "verb": "list", "namespace": namespace}
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes},
    }
    answer = await _post(kube, "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review)
    return bool((answer.get("status") or {}).get("allowed"))


def candidate_namespaces(listed: list[str], default: str, user: str) -> list[str]:
    """Where to look for a caller who may not list a kind cluster-wide (pure): the
    namespaces they may list, the server's default one and a ServiceAccount's own."""
    names = {*listed, default}
    if user.startswith(_SA_PREFIX):
        names.add(user.removeprefix(_SA_PREFIX).split(":")[0])
    return sorted(n for n in names if n)[:MAX_NAMESPACES]


class CallerView:
    """The overview's objects as one caller may see them, kept current by watches."""

    def __init__(self, kube: KubeClient, namespace: str | None, default_namespace: str) -> None:
        self.kube = kube
        self.all = namespace is None
        self.namespace = namespace or ""
        self.default_namespace = default_namespace
        self.watches: dict[Part, KindWatch] = {}
        self.subscribers: set[Subscription] = set()
        self._computed: dict[str, dict[str, Any]] = {}  # namespace -> its overview
        self._checked_at = -math.inf
        self._check = asyncio.Lock()

    # ----- building ---------------------------------------------------------------------

    async def start(self) -> None:
        if not self.all:
            await self._watch([Part(kind, self.namespace) for kind in KINDS])
            return
        await self._watch([Part(kind, "") for kind in KINDS])
        refused = [p.kind for p, w in self.watches.items() if w.status == 403]
        for kind in refused:
            await self.watches.pop(Part(kind, "")).stop()
        if refused:
            namespaces = candidate_namespaces(*await self._where_to_look())
            parts = [Part(kind, ns) for ns in namespaces for kind in refused]
            allowed = await asyncio.gather(*(may_list(self.kube, p.kind, p.namespace) for p in parts))
            await self._watch([p for p, ok in zip(parts, allowed, strict=True) if ok])

    async def _where_to_look(self) -> tuple[list[str], str, str]:
        listed: list[str] = []
        with contextlib.suppress(ApiException):  # may not list namespaces: look elsewhere
            answer = await get_json(
                self.kube.api, "/api/v1/namespaces", [("limit", MAX_NAMESPACES)], self.kube.timeout
            )
            listed = [str((i.get("metadata") or {}).get("name") or "") for i in answer.get("items") or []]
        review = await _post(
            self.kube,
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
        user = str(((review.get("status") or {}).get("userInfo") or {}).get("username") or "")
        return listed, self.default_namespace, user

    async def _watch(self, parts: list[Part]) -> None:
        """Start watching `parts`; return once each listed or failed. A failure other than
        a refusal (403) is the answer's: credentials not accepted, API server unreachable."""
        for part in parts:
            watch = KindWatch(self.kube.api, part.kind, part.namespace, self._changed)
            self.watches[part] = watch
            watch.start()
        await asyncio.wait_for(
            asyncio.gather(*(self.watches[p].listed.wait() for p in parts)), LIST_WAIT_SECONDS
        )
        for part in parts:
            failure = self.watches[part].failure
            if failure is not None and self.watches[part].status != 403:
                raise failure

    async def close(self) -> None:
        for watch in self.watches.values():
            await watch.stop()
        for subscription in self.subscribers:
            subscription.kinds.add("")  # the stream ends; the page reconnects
            subscription.wake.set()

    # ----- rights -----------------------------------------------------------------------

    async def authorize(self) -> None:
        """Re-check the caller's rights on every part (at most every RECHECK_SECONDS); a
        part no longer allowed is dropped from answers. 401 raises."""
        async with self._check:
            if time.monotonic() - self._checked_at < RECHECK_SECONDS:
                return
            # Every part still shown, also one whose watch is failing (429, 5xx, a timeout):
            # it shows what it last listed, and that too needs the right.
            parts = [p for p, w in self.watches.items() if w.status not in _REFUSED]
            allowed = await asyncio.gather(*(may_list(self.kube, p.kind, p.namespace) for p in parts))
            for part, ok in zip(parts, allowed, strict=True):
                if not ok:
                    await self._restart(part)
            self._checked_at = time.monotonic()

    async def _restart(self, part: Part) -> None:
        """Forget what `part` held and watch it afresh (the API server refuses it now, and
        lists it again should the right come back)."""
        await self.watches[part].stop()
        watch = KindWatch(self.kube.api, part.kind, part.namespace, self._changed)
        watch.failure = ApiException(status=403, reason="Forbidden")
        self.watches[part] = watch
        watch.start()
        self._changed(part.kind, RESYNC, None)

    # ----- changes ----------------------------------------------------------------------

    def _changed(self, kind: str, change: str, obj: dict[str, Any] | None) -> None:
        namespace = str(((obj or {}).get("metadata") or {}).get("namespace") or "")
        if obj is None or change in (RESYNC, FAILED):
            self._computed.clear()
        else:
            self._computed.pop(namespace, None)
        for subscription in self.subscribers:
            if kind == "Deployment" and change in ("ADDED", "MODIFIED") and obj is not None:
                subscription.deployments.add((namespace, str(obj["metadata"].get("name") or "")))
            else:
                subscription.kinds.add(kind)
            subscription.wake.set()

    # ----- answers ----------------------------------------------------------------------

    def namespaces(self) -> list[str]:
        shown = {p.namespace for p, w in self.watches.items() if p.namespace and w.status not in _REFUSED}
        for part, watch in self.watches.items():
            if not part.namespace:
                shown.update(ns for ns, objects in watch.by_namespace.items() if objects)
        return sorted(shown)

    def _objects(self, kind: str, namespace: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for part in (Part(kind, ""), Part(kind, namespace)):
            watch = self.watches.get(part)
            # A watch that broke keeps what it listed until it lists again; a refused one
            # (401, 403) holds nothing (web/watch.py empties it).
            if watch is not None and watch.status not in _REFUSED:
                found.extend(watch.items(namespace))
        return found

    def namespace_overview(self, namespace: str) -> dict[str, Any]:
        """The overview of one namespace, computed again only after something in it changed."""
        if namespace not in self._computed:
            lists = [self._objects(kind, namespace) for kind in KINDS]
            self._computed[namespace] = views.with_namespace(views.overview(namespace, *lists, ""), namespace)
        return self._computed[namespace]

    def errors(self, worded: bool = True) -> list[str]:
        """The parts the caller may not list (one namespace), or that failed otherwise: in
        the API server's words, or (`worded` False) as `<status> <reason>`."""
        found = []
        for part, watch in sorted(self.watches.items(), key=lambda item: (item[0].namespace, item[0].kind)):
            if watch.failure is None or (self.all and watch.status == 403):
                continue
            failure = watch.failure
            if not isinstance(failure, ApiException):
                words = str(failure)
            else:
                words = api_error_message(failure) if worded else f"{failure.status} {failure.reason}"
            found.append(f"{part.namespace}/{part.kind}: {words}" if self.all else f"{part.kind}: {words}")
        return found

    def answer(self, generated_at: str) -> dict[str, Any]:
        if not self.all:
            one = self.namespace_overview(self.namespace)
            return {**one, "generatedAt": generated_at, "errors": self.errors()}
        namespaces = self.namespaces()
        parts = {ns: self.namespace_overview(ns) for ns in namespaces}
        return {**views.all_namespaces(parts, generated_at), "errors": self.errors()}

    def rows_of(self, namespace: str, deployment: str) -> list[dict[str, Any]]:
        return [row for row in self.namespace_overview(namespace)["rows"] if row["deployment"] == deployment]


class ViewPool:
    """The callers' views, filed under (whom the credentials stand for, scope)."""

    def __init__(self, size: int = VIEWS, idle_seconds: float = VIEW_IDLE_SECONDS) -> None:
        self.pool: KeyedPool[tuple[CallerView, contextlib.AsyncExitStack]] = KeyedPool(
            _close_view, size, idle_seconds, per_group=VIEWS_PER_CALLER
        )

    async def close(self) -> None:
        await self.pool.close()

    @contextlib.asynccontextmanager
    async def lease(
        self, identity: Identity, token: str, namespace: str | None, default_namespace: str
    ) -> AsyncIterator[CallerView]:
        """The caller's view of `namespace` (None: all namespaces), made on first use."""
        key = f"{identity.key(token)}|{'*' if namespace is None else namespace}"

        async def make() -> tuple[CallerView, contextlib.AsyncExitStack]:
            stack = contextlib.AsyncExitStack()
            try:
                kube = await stack.enter_async_context(identity.lease(token))
                view = CallerView(kube, namespace, default_namespace)
                stack.push_async_callback(view.close)
                await view.start()
            except BaseException:
                await stack.aclose()
                raise
            return view, stack

        async with self.pool.lease(key, make) as (view, _):
            try:
                yield view
            except ApiException as error:
                if error.status == 401:  # credentials no longer accepted: forget the view
                    await self.pool.discard(key)
                raise


async def _close_view(made: tuple[CallerView, contextlib.AsyncExitStack]) -> None:
    await made[1].aclose()
