"""Shared list+watch caches of one kind in one namespace of a target cluster.

Health checks read the objects of many releases; one informer per (client, namespace,
kind) serves all of them, so 500 releases waiting for health cost a handful of watches,
not 500 pollers. An informer lists once, then watches from that resourceVersion, and
lists again when the server says the version is too old (410) or the stream breaks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio import client

from alecton.kube import json_codec
from alecton.kube.client import deadline

log = logging.getLogger("alecton.informers")

# A watch the server holds open for this long, then we resume from the last version.
_WATCH_SECONDS = 240
_LIST_DEADLINE = deadline(total=30.0)
_RETRY_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)
# Objects per list request: a page of whole Pods is held (as Python objects, about ten times
# their JSON) only until what is kept of them is taken, and the process keeps its peak size.
_LIST_PAGE = 100

# Kinds the operator knows without asking discovery.
_KNOWN_PLURALS = {
    ("", "Pod"): "pods",
    ("", "PersistentVolumeClaim"): "persistentvolumeclaims",
    ("apps", "Deployment"): "deployments",
    ("apps", "StatefulSet"): "statefulsets",
    ("apps", "DaemonSet"): "daemonsets",
    ("apps", "ReplicaSet"): "replicasets",
    ("batch", "Job"): "jobs",
}


@dataclass(frozen=True)
class Resource:
    """Where a kind lives in the API: its group/version and plural."""

    api_version: str
    plural: str

    def path(self, namespace: str) -> str:
        """The collection in `namespace`, or in every namespace for ""."""
        prefix = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        where = f"/namespaces/{namespace}" if namespace else ""
        return f"{prefix}{where}/{self.plural}"


async def get_json(
    api: client.ApiClient, path: str, query: list[tuple[str, Any]], timeout: Any
) -> dict[str, Any]:
    response = await api.call_api(
        path,
        "GET",
        query_params=query,
        header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"],
        _preload_content=False,
        _request_timeout=timeout,
    )
    return await json_body(response[0] if isinstance(response, tuple) else response)


# The largest response body read from a target cluster's API server: a list of every Pod of
# a namespace is a few MB per thousand Pods. A tenant's kubeconfig may name any server, and
# one that answers with gigabytes must not take the operator's memory (json.loads of a
# small-object list holds the event loop about 1 s per 30 MB).
MAX_RESPONSE_BYTES = 64 << 20


async def _read_bounded(data: Any, limit: int) -> bytes:
    """The (decompressed) body of a raw response; ValueError past `limit` bytes."""
    too_big = f"the API server's response is larger than {limit >> 20} MiB"
    if (data.content_length or 0) > limit:
        raise ValueError(too_big)
    chunks: list[bytes] = []
    size = 0
    async for chunk in data.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise ValueError(too_big)
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(data: Any) -> dict[str, Any]:
    """The JSON of a raw response; an error status raises ApiException (a raw response
    does not: a 404 would otherwise read as an object of kind Status)."""
    try:
        body = await _read_bounded(data, MAX_RESPONSE_BYTES)
        if data.status >= 400:
            error = client.ApiException(status=data.status, reason=data.reason)
            error.body = body  # the Status, with the API server's message
            raise error
        return dict(json_codec.loads(body))
    finally:
        data.release()


async def list_pages(
    api: client.ApiClient, path: str, query: list[tuple[str, Any]], page: int = _LIST_PAGE
) -> AsyncIterator[tuple[list[dict[str, Any]], str]]:
    """The named items of a list, one page (`limit`) at a time, with the list's resourceVersion."""
    token = ""
    while True:
        paging = [("limit", page), *([("continue", token)] if token else [])]
        listing = await get_json(api, path, [*query, *paging], _LIST_DEADLINE)
        items = [
            item
            for item in listing.get("items") or []
            if isinstance(item, dict) and (item.get("metadata") or {}).get("name")
        ]
        meta = listing.get("metadata") or {}
        yield items, str(meta.get("resourceVersion") or "")
        token = str(meta.get("continue") or "")
        if not token:
            return


async def resolve_resource(api: client.ApiClient, api_version: str, kind: str) -> Resource | None:
    """The plural of `kind`; None when the API server does not serve it as namespaced."""
    group = api_version.split("/")[0] if "/" in api_version else ""
    if (group, kind) in _KNOWN_PLURALS:
        return Resource(api_version, _KNOWN_PLURALS[(group, kind)])
    located = await locate(api, api_version, kind)
    return located.resource if located is not None and located.namespaced else None


class Informer:
    """The live objects of one kind in one namespace, by name. A subclass may keep them
    otherwise (`_replace`, `_apply`) or hear more (`_failed`): web/watch.py does both."""

    def __init__(
        self,
        api: client.ApiClient,
        resource: Resource,
        namespace: str,
        on_change: Callable[[], None],
        field_selector: str = "",
        keep: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        watch_seconds: int = _WATCH_SECONDS,
        page: int = _LIST_PAGE,
    ) -> None:
        self.api = api
        self._watch_seconds, self._page = watch_seconds, page
        # What is kept of each object (the health caches keep only what assessment reads).
        self._keep = keep or (lambda obj: obj)
        self._selector = [("fieldSelector", field_selector)] if field_selector else []
        self.resource = resource
        self.namespace = namespace
        self.objects: dict[str, dict[str, Any]] = {}
        self.synced = asyncio.Event()
        self.answered = asyncio.Event()  # the first list succeeded or failed (`error` says why)
        self.error = ""  # the last list/watch failure (forbidden, unreachable), for messages
        self._on_change = on_change
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"informer {self.resource.plural} in {self.namespace}"
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        failures = 0
        version = ""
        while True:
            try:
                if not version:
                    version = await self._list()
                version = await self._watch(version)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.error = _describe(error)
                version = ""  # relist after any failure: events may have been missed
                delay = _RETRY_SECONDS[min(failures, len(_RETRY_SECONDS) - 1)]
                failures += 1
                where = self.namespace or "all namespaces"
                log.info("%s in %s: %s; again in %.0f s", self.resource.plural, where, self.error, delay)
                self.answered.set()
                self._failed(error)  # waiters learn about the failure
                await asyncio.sleep(delay)

    async def _list(self) -> str:
        """List in pages: only one page of whole objects is held at a time (what is kept of
        them is much smaller), so a namespace of thousands of Pods does not leave the
        process at the size of their full list."""
        kept: list[dict[str, Any]] = []
        version = ""
        async for items, page_version in list_pages(
            self.api, self.resource.path(self.namespace), self._selector, self._page
        ):
            kept.extend(self._keep(item) for item in items)
            version = page_version  # every page of one list has the list's version
        self._replace(kept)
        self.error = ""
        self.synced.set()
        self.answered.set()
        self._on_change()
        return version

    def _replace(self, listed: list[dict[str, Any]]) -> None:
        """A new listing replaces every object (what was kept of each)."""
        self.objects = {str(obj["metadata"]["name"]): obj for obj in listed}

    def _apply(self, change: str, obj: dict[str, Any]) -> None:
        """One watch event: ADDED, MODIFIED or DELETED `obj` (kept, but for DELETED)."""
        name = str((obj.get("metadata") or {}).get("name") or "")
        if change == "DELETED":
            self.objects.pop(name, None)
        else:
            self.objects[name] = obj

    def _failed(self, error: Exception) -> None:
        self._on_change()

    async def _watch(self, version: str) -> str:
        """Follow changes until the server ends the watch; the version to resume from
        ("" when it must list again)."""
        response = await self.api.call_api(
            self.resource.path(self.namespace),
            "GET",
            query_params=[
                *self._selector,
                ("watch", "true"),
                ("resourceVersion", version),
                ("allowWatchBookmarks", "true"),
                ("timeoutSeconds", self._watch_seconds),
            ],
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=deadline(total=self._watch_seconds + 30.0),
        )
        stream = response[0] if isinstance(response, tuple) else response
        if stream.status >= 400:
            await json_body(stream)  # raises with the status
        try:
            async for line in stream.content:
                if not line.strip():
                    continue
                event = json_codec.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    return ""  # usually 410 Gone: our version is too old
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if kind not in ("ADDED", "MODIFIED", "DELETED"):
                    continue  # BOOKMARK
                self._apply(kind, obj if kind == "DELETED" else self._keep(obj))
                self._on_change()
        finally:
            stream.release()
        return version


def _describe(error: Exception) -> str:
    if isinstance(error, client.ApiException):
        return f"{error.status} {error.reason}"
    return f"{type(error).__name__} {str(error)[:200]}".strip()


@dataclass(frozen=True)
class Located:
    """A kind's plural and scope, from discovery."""

    resource: Resource
    namespaced: bool

    def path(self, namespace: str, name: str) -> str:
        if self.namespaced:
            return f"{self.resource.path(namespace)}/{name}"
        prefix = "/api/v1" if self.resource.api_version == "v1" else f"/apis/{self.resource.api_version}"
        return f"{prefix}/{self.resource.plural}/{name}"


async def locate(api: client.ApiClient, api_version: str, kind: str) -> Located | None:
    """Where `kind` lives, namespaced or not; None when the server does not serve it."""
    path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    try:
        listing = await get_json(api, path, [], _LIST_DEADLINE)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise
    for item in listing.get("resources") or []:
        if item.get("kind") == kind and "/" not in str(item.get("name")):
            return Located(Resource(api_version, str(item["name"])), bool(item.get("namespaced")))
    return None


async def read_object(
    api: client.ApiClient, where: Located, namespace: str, name: str
) -> dict[str, Any] | None:
    """One live object; None when it does not exist."""
    try:
        return await get_json(api, where.path(namespace, name), [], _LIST_DEADLINE)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise


async def read_objects(
    api: client.ApiClient, keys: list[Any], known: dict[tuple[str, str], Located] | None = None
) -> dict[Any, dict[str, Any] | None]:
    """The live object of every key (ObjectKey: api_version, kind, namespace, name), one GET
    each; None for objects that do not exist or kinds the server does not serve. `known`:
    kinds already located (a caller's cache; kinds found are added, kinds not served are
    not, so a CRD installed later is found)."""
    found: dict[Any, dict[str, Any] | None] = {}
    kinds: dict[tuple[str, str], Located | None] = dict(known or {})
    for key in keys:
        kind = (key.api_version, key.kind)
        if kind not in kinds:
            kinds[kind] = await locate(api, *kind)
            if known is not None and kinds[kind] is not None:
                known[kind] = kinds[kind]  # type: ignore[assignment]
        located = kinds[kind]
        found[key] = await read_object(api, located, key.namespace, key.name) if located else None
    return found


async def apply_object(
    api: client.ApiClient, where: Located, obj: dict[str, Any], field_manager: str
) -> dict[str, Any]:
    """Server-side apply of one object, taking over conflicting fields (a drift correction:
    the release's own object wins over whatever changed it)."""
    meta = obj.get("metadata") or {}
    response = await api.call_api(
        where.path(str(meta.get("namespace") or ""), str(meta["name"])),
        "PATCH",
        query_params=[("fieldManager", field_manager), ("force", "true")],
        header_params={"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"},
        body=obj,
        auth_settings=["BearerToken"],
        _preload_content=False,
        _request_timeout=_LIST_DEADLINE,
    )
    return await json_body(response[0] if isinstance(response, tuple) else response)
