"""What the dashboard's page needs: who the caller is and may do, the overview, the page."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse
from kubernetes_asyncio import client as k8s

from alecton.web.caller_views import ViewPool
from alecton.web.dependencies import InNamespace, Kube, caller_token, settings_of
from alecton.web.errors import JSONLines

STATIC = resources.files("alecton.web") / "static"

router = APIRouter()


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@router.get("/v1/whoami", tags=["dashboard"])
async def whoami(request: Request, kube: Kube, where: InNamespace) -> dict[str, Any]:
    review = await k8s.AuthenticationV1Api(kube.api).create_self_subject_review(
        k8s.V1SelfSubjectReview(), _request_timeout=kube.timeout
    )
    user = review.status.user_info if review.status else None

    async def can(verb: str, plural: str) -> bool:
        attributes = k8s.V1ResourceAttributes(
            group="alecton.dev", resource=plural, verb=verb, namespace=where
        )
        answer = await k8s.AuthorizationV1Api(kube.api).create_self_subject_access_review(
            k8s.V1SelfSubjectAccessReview(
                spec=k8s.V1SelfSubjectAccessReviewSpec(resource_attributes=attributes)
            ),
            _request_timeout=kube.timeout,
        )
        return bool(answer.status and answer.status.allowed)

    rights = await asyncio.gather(
        can("patch", "deployments"), can("patch", "promotions"), can("create", "images"),
        can("update", "applications"),
    )  # fmt: skip
    return {
        "user": (user.username if user else "") or "",
        "groups": list((user.groups if user else None) or []),
        "namespace": where,
        "mode": settings_of(request).identity.mode,
        "can": dict(zip(("deploy", "approve", "createImages", "editApplications"), rights, strict=True)),
    }


AllNamespaces = Annotated[
    bool,
    Query(
        alias="allNamespaces",
        description="Every namespace the caller may list (then `namespace` is not used).",
    ),
]


@router.get("/v1/overview", tags=["dashboard"])
async def overview(request: Request, where: InNamespace, every: AllNamespaces = False) -> Response:
    """From the caller's own cached view (web/caller_views.py): watches made with their
    credentials, their rights re-checked before answering. A kind the caller may not list
    (an approver who may not read Images) leaves its part empty and is named in `errors`."""
    started = time.perf_counter()
    settings = settings_of(request)
    pool: ViewPool = request.app.state.views
    scope = None if every else where
    async with pool.lease(settings.identity, caller_token(request), scope, settings.namespace) as view:
        await view.authorize()
        answer = view.answer(_now())
    response = JSONLines(answer)
    # How long the server took (the dashboard's latency goal is measured on it).
    response.headers["server-timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
    return response


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(str(STATIC / "index.html"), headers={"cache-control": "no-store"})


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
