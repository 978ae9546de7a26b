"""What every route takes from its request: the server's settings, the caller's API client
and the namespace it asks about."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Query, Request

from alecton.kube.client import KubeClient
from alecton.web.security import bearer
from alecton.web.settings import WebSettings

MAX_WAIT_SECONDS = 600.0
NAMESPACE_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

Namespace = Annotated[
    str | None, Query(pattern=NAMESPACE_PATTERN, max_length=63, description="Default: the server's.")
]
Wait = Annotated[
    float,
    Query(
        ge=0, le=MAX_WAIT_SECONDS, description="Seconds to wait for the operator's result (0: do not wait)."
    ),
]


def settings_of(request: Request) -> WebSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


def caller_token(request: Request) -> str:
    # Local mode: the bearer token is the dashboard's session token, not a Kubernetes one.
    settings = settings_of(request)
    return "" if settings.session is not None else bearer(request.headers.get("authorization", ""))


async def kube_client(request: Request) -> AsyncIterator[KubeClient]:
    """The caller's API client for one request (leased from the caller's pooled ones)."""
    async with settings_of(request).identity.lease(caller_token(request)) as api:
        yield api


def request_namespace(request: Request, namespace: Namespace = None) -> str:
    """The namespace a request is about: ?namespace=, else the server's."""
    return namespace or settings_of(request).namespace


Kube = Annotated[KubeClient, Depends(kube_client)]
InNamespace = Annotated[str, Depends(request_namespace)]
