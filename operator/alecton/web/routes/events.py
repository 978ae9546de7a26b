"""Server-sent events: a change of any object the dashboard shows, seen through the
caller's own watches."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from sse_starlette.sse import EventSourceResponse

from alecton.api.models import API_VERSION, PLURALS
from alecton.kube.informers import Informer, Resource
from alecton.web.dependencies import InNamespace, caller_token, settings_of
from alecton.web.identity import Identity

_WATCHED_KINDS = ("Deployment", "Promotion", "Image", "Application")
_READY_AFTER_SECONDS = 5.0  # `ready` even when a kind may not be watched (RBAC): the rest is live
_STREAM_SECONDS = 600.0  # an event stream ends after this; browsers reconnect (fresh credentials)

router = APIRouter()


@router.get("/v1/events", tags=["dashboard"], summary="Server-sent events: a change of any object shown")
async def events(request: Request, where: InNamespace) -> EventSourceResponse:
    # The client is made here, not by a dependency: it lives as long as the stream.
    identity, token = settings_of(request).identity, caller_token(request)
    return EventSourceResponse(_changes(identity, token, where, request), ping=15, send_timeout=30)


async def _changes(
    identity: Identity, token: str, namespace: str, request: Request
) -> AsyncIterator[dict[str, str]]:
    """`ready` once the watches listed, then a `change` per changed kind (coalesced).

    The stream ends after _STREAM_SECONDS (the page reconnects, with the credentials of
    then) or when the API server stops accepting the caller (401)."""
    kube = await identity.client(token)
    changed: asyncio.Queue[str] = asyncio.Queue()
    informers: dict[str, Informer] = {}

    def notify(kind: str) -> None:
        if not informers[kind].error:  # a failed list or watch is no change (it retries)
            changed.put_nowait(kind)

    for kind in _WATCHED_KINDS:
        resource = Resource(API_VERSION, PLURALS[kind])
        informers[kind] = Informer(kube.api, resource, namespace, lambda k=kind: notify(k))
        informers[kind].start()
    loop = asyncio.get_running_loop()
    ends = loop.time() + _STREAM_SECONDS
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(i.synced.wait() for i in informers.values())), _READY_AFTER_SECONDS
            )
        while not changed.empty():  # the first listings are no news
            changed.get_nowait()
        refused = [f"{kind}: {i.error}" for kind, i in informers.items() if i.error]
        yield {"event": "ready", "data": json.dumps({"namespace": namespace, "errors": refused})}
        while not await request.is_disconnected():
            if any(i.error.startswith("401") for i in informers.values()):
                return  # the caller's credentials ended
            try:
                kinds = {await asyncio.wait_for(changed.get(), max(0.0, min(30.0, ends - loop.time())))}
            except TimeoutError:
                if loop.time() >= ends:
                    return
                continue
            while not changed.empty():
                kinds.add(changed.get_nowait())
            for kind in sorted(kinds):
                yield {"event": "change", "data": json.dumps({"kind": kind})}
    finally:
        for informer in informers.values():
            await informer.stop()
        await kube.close()
