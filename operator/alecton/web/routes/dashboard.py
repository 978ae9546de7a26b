"""What the dashboard's page needs: who the caller is and may do, the overview, the page."""

from __future__ import annotations

import asyncio
import datetime as dt
from importlib import resources
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from kubernetes_asyncio import client as k8s

from alecton.kube.client import ApiException, api_error_message
from alecton.web import views
from alecton.web.dependencies import InNamespace, Kube, settings_of

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


@router.get("/v1/overview", tags=["dashboard"])
async def overview(kube: Kube, where: InNamespace) -> dict[str, Any]:
    kinds = ("Application", "Deployment", "Image", "Promotion")
    found = await asyncio.gather(*(kube.list(kind, where) for kind in kinds), return_exceptions=True)
    # A kind the caller may not list (an approver who may not read Images) leaves its part
    # empty and says so; any other failure is the answer's.
    for result in found:
        if isinstance(result, BaseException) and not (
            isinstance(result, ApiException) and result.status == 403
        ):
            raise result
    lists = [[] if isinstance(result, BaseException) else result for result in found]
    answer = views.overview(where, *lists, _now())
    answer["errors"] = [
        f"{kind}: {api_error_message(result)}"
        for kind, result in zip(kinds, found, strict=True)
        if isinstance(result, ApiException)
    ]
    return answer


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(str(STATIC / "index.html"), headers={"cache-control": "no-store"})


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
