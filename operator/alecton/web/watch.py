"""A list+watch cache of one alecton kind, in one namespace or in all, made with one
caller's client, that reports every object that changes.

The dashboard's cache of what a caller sees (web/caller_views.py) is built from these. The
objects are exactly what the API server gave this caller: a watch made with their
credentials, nothing shared with another caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from kubernetes_asyncio import client

from alecton.api.models import API_VERSION, PLURALS
from alecton.kube.client import ApiException, deadline

log = logging.getLogger("alecton.web")

# Short watches: the API server authenticates and authorizes each new one, so a caller
# whose rights were taken away stops receiving changes within this time, whatever else.
WATCH_SECONDS = 60
_LIST_DEADLINE = deadline(total=30.0)
_WATCH_DEADLINE = deadline(total=WATCH_SECONDS + 30.0)
_RETRY_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)
_PAGE = 500
MAX_RESPONSE_BYTES = 64 << 20

# What `on_event` hears besides the API server's ADDED / MODIFIED / DELETED: every object
# may have changed (a new listing), or the list/watch failed (see `failure`).
RESYNC = "RESYNC"
FAILED = "FAILED"

Event = Callable[[str, str, "dict[str, Any] | None"], None]


def kind_path(kind: str, namespace: str) -> str:
    """The collection of `kind` in `namespace`, or in every namespace for ""."""
    where = f"/namespaces/{namespace}" if namespace else ""
    return f"/apis/{API_VERSION}{where}/{PLURALS[kind]}"


async def get_raw(api: client.ApiClient, path: str, query: list[tuple[str, Any]], timeout: Any) -> Any:
    response = await api.call_api(
        path,
        "GET",
        query_params=query,
        header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"],
        _preload_content=False,
        _request_timeout=timeout,
    )
    return response[0] if isinstance(response, tuple) else response


async def _raise_for_status(raw: Any) -> None:
    if raw.status >= 400:
        error = ApiException(status=raw.status, reason=raw.reason)
        error.body = await raw.content.read(64 << 10)  # the Status, with the API server's words
        raw.release()
        raise error


async def read_json(raw: Any) -> dict[str, Any]:
    try:
        await _raise_for_status(raw)
        chunks, size = [], 0
        async for chunk in raw.content.iter_any():
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise ValueError(f"the API server's response is larger than {MAX_RESPONSE_BYTES >> 20} MiB")
            chunks.append(chunk)
        return dict(json.loads(b"".join(chunks)))
    finally:
        raw.release()


# What the overview reads of a Deployment's status; the rest (conditions, the history
# but for the revision that runs) is most of its size and is read per Deployment instead.
_DEPLOYMENT_STATUS = ("phase", "message", "release", "health", "promotion", "observedGeneration")


def _slim(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The object without what no cached view reads (managed fields; of a Deployment's
    status, all but what the overview shows), so thousands fit in little memory."""
    metadata = obj.get("metadata")
    if isinstance(metadata, dict) and "managedFields" in metadata:
        obj["metadata"] = {k: v for k, v in metadata.items() if k != "managedFields"}
    status = obj.get("status")
    if kind == "Deployment" and isinstance(status, dict):
        slim = {k: status[k] for k in _DEPLOYMENT_STATUS if k in status}
        history = [e for e in status.get("history") or [] if isinstance(e, dict)]
        slim["history"] = [e for e in history if e.get("status") == "deployed"][:1]  # the running one
        obj["status"] = slim
    return obj


def _where(obj: dict[str, Any]) -> tuple[str, str]:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")


class KindWatch:
    """The live objects of one kind, by namespace and name, as one caller may list them."""

    def __init__(self, api: client.ApiClient, kind: str, namespace: str, on_event: Event) -> None:
        self.api, self.kind, self.namespace = api, kind, namespace
        self.objects: dict[str, dict[str, dict[str, Any]]] = {}  # namespace -> name -> object
        self.listed = asyncio.Event()  # set by the first listing or the first failure
        self.failure: Exception | None = None
        self._on_event = on_event
        self._task: asyncio.Task[None] | None = None

    @property
    def status(self) -> int:
        """The HTTP status of the last failure (0: none, or not an HTTP one)."""
        return int(getattr(self.failure, "status", 0) or 0)

    def items(self, namespace: str) -> list[dict[str, Any]]:
        return list((self.objects.get(namespace) or {}).values())

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"web watch {self.kind} in {self.namespace or 'all namespaces'}"
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        failures, version = 0, ""
        while True:
            try:
                if not version:
                    version = await self._list()
                version = await self._watch(version)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.failure, version = error, ""  # list again: changes may have been missed
                if self.status in (401, 403):
                    self.objects = {}  # not theirs (any more): nothing of it is shown
                delay = _RETRY_SECONDS[min(failures, len(_RETRY_SECONDS) - 1)]
                failures += 1
                where = self.namespace or "all namespaces"
                log.info("watching %s in %s: %s", self.kind, where, _words(error))
                self.listed.set()
                self._on_event(self.kind, FAILED, None)
                await asyncio.sleep(delay)

    async def _list(self) -> str:
        objects: dict[str, dict[str, dict[str, Any]]] = {}
        query: list[tuple[str, Any]] = [("limit", _PAGE)]
        while True:
            raw = await get_raw(self.api, kind_path(self.kind, self.namespace), query, _LIST_DEADLINE)
            page = await read_json(raw)
            for item in page.get("items") or []:
                if isinstance(item, dict):
                    namespace, name = _where(item)
                    objects.setdefault(namespace, {})[name] = _slim(self.kind, item)
            meta = page.get("metadata") or {}
            if not meta.get("continue"):
                break
            query = [("limit", _PAGE), ("continue", meta["continue"])]
        self.objects, self.failure = objects, None
        self.listed.set()
        self._on_event(self.kind, RESYNC, None)
        return str(meta.get("resourceVersion") or "")

    async def _watch(self, version: str) -> str:
        """Follow changes until the server ends the watch; the version to go on from, ""
        when the cache must be listed again (the version is too old)."""
        query = [
            ("watch", "true"),
            ("resourceVersion", version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", WATCH_SECONDS),
        ]
        stream = await get_raw(self.api, kind_path(self.kind, self.namespace), query, _WATCH_DEADLINE)
        await _raise_for_status(stream)
        try:
            async for line in stream.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                change, obj = str(event.get("type") or ""), event.get("object") or {}
                if change == "ERROR":
                    return ""  # 410 Gone, mostly
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if change not in ("ADDED", "MODIFIED", "DELETED"):
                    continue  # BOOKMARK
                namespace, name = _where(obj)
                if change == "DELETED":
                    (self.objects.get(namespace) or {}).pop(name, None)
                else:
                    self.objects.setdefault(namespace, {})[name] = _slim(self.kind, obj)
                self._on_event(self.kind, change, obj)
        finally:
            stream.release()
        return version


def _words(error: Exception) -> str:
    if isinstance(error, ApiException):
        return f"{error.status} {error.reason}"
    return f"{type(error).__name__} {str(error)[:200]}".strip()
