"""Server-sent events: what changed of the objects the dashboard shows, seen through the
caller's own watches (the cached view of web/caller_views.py the overview answers from).

A changed Deployment is sent as its row(s), which the page puts in place of the old ones:
with thousands of rows, a status change costs one row, not a fresh overview. Any other
change (an Application, Image or Promotion, a Deployment deleted, the watches listed
again) is sent as `change` with its kind, and the page reads the overview again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from sse_starlette.sse import EventSourceResponse

from alecton.kube.client import ApiException
from alecton.web.caller_views import RECHECK_SECONDS, CallerView, Subscription, ViewPool
from alecton.web.clients import PoolFullError
from alecton.web.dependencies import InNamespace, caller_token, settings_of
from alecton.web.identity import Identity
from alecton.web.routes.dashboard import AllNamespaces

_STREAM_SECONDS = 600.0  # an event stream ends after this; browsers reconnect (fresh credentials)

router = APIRouter()


@dataclass(frozen=True)
class _Stream:
    pool: ViewPool
    identity: Identity
    token: str
    scope: str | None  # None: all namespaces
    default_namespace: str


@router.get("/v1/events", tags=["dashboard"], summary="Server-sent events: a change of any object shown")
async def events(request: Request, where: InNamespace, every: AllNamespaces = False) -> EventSourceResponse:
    settings = settings_of(request)
    stream = _Stream(
        request.app.state.views, settings.identity, caller_token(request), None if every else where,
        settings.namespace,
    )  # fmt: skip
    return EventSourceResponse(_changes(stream, request), ping=15, send_timeout=30)


async def _changes(stream: _Stream, request: Request) -> AsyncIterator[dict[str, Any]]:
    """`ready` once the caller's watches listed, then `row` and `change` events.

    The stream ends after _STREAM_SECONDS (the page reconnects, with the credentials of
    then), when the API server stops accepting the caller (401) or the view is closed."""
    lease = stream.pool.lease(stream.identity, stream.token, stream.scope, stream.default_namespace)
    try:
        async with lease as view:
            subscription = Subscription()
            view.subscribers.add(subscription)
            try:
                ready = {"namespace": view.namespace, "errors": view.errors(worded=False)}
                yield {
                    "event": "ready",
                    "data": json.dumps({**ready, **({"allNamespaces": True} if view.all else {})}),
                }
                async for event in _follow(view, subscription, request):
                    yield event
            finally:
                view.subscribers.discard(subscription)
    except PoolFullError:
        # Every view is held by an open stream: say so, and have the page come back later
        # (the response has begun, so this is an event rather than a 503).
        yield {"event": "busy", "data": json.dumps({"retryAfterSeconds": 10}), "retry": 10_000}


async def _follow(
    view: CallerView, subscription: Subscription, request: Request
) -> AsyncIterator[dict[str, str]]:
    loop = asyncio.get_running_loop()
    ends = loop.time() + _STREAM_SECONDS
    while not await request.is_disconnected() and loop.time() < ends:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                subscription.wake.wait(), min(RECHECK_SECONDS, max(0.0, ends - loop.time()))
            )
        try:
            await view.authorize()  # rights taken away: their part is no longer shown
        except ApiException as error:
            if error.status == 401:
                return  # the caller's credentials ended
            raise
        if any(w.status == 401 for w in view.watches.values()) or "" in subscription.kinds:
            return  # credentials ended, or the view was closed
        subscription.wake.clear()
        deployments, subscription.deployments = subscription.deployments, set()
        kinds, subscription.kinds = subscription.kinds, set()
        for namespace, name in sorted(deployments):
            for row in view.rows_of(namespace, name):
                yield {"event": "row", "data": json.dumps(row)}
        for kind in sorted(kinds):
            yield {"event": "change", "data": json.dumps({"kind": kind})}
