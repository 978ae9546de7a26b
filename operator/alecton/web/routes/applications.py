"""CreateApplication, UpdateApplication (full replace, no merge) and ListApplications."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from alecton.service import applications
from alecton.web import views
from alecton.web.dependencies import InNamespace, Kube
from alecton.web.messages import ApplicationMessage

router = APIRouter()


@router.post("/v1/applications", status_code=201, tags=["seed"], summary="CreateApplication")
async def create_application(body: ApplicationMessage, kube: Kube, where: InNamespace) -> dict[str, Any]:
    obj = views.application_object(body.model_dump(exclude_unset=True))
    return views.application_message(await applications.create_application(kube, where, obj))


@router.put("/v1/applications", tags=["seed"], summary="UpdateApplication (full replace, no merge)")
async def update_application(body: ApplicationMessage, kube: Kube, where: InNamespace) -> dict[str, Any]:
    fields = body.model_dump(exclude_unset=True)
    replaced = await applications.replace_application(
        kube, where, body.name, lambda existing: views.application_object(fields, existing)
    )
    return views.application_message(replaced)


@router.get("/v1/applications", tags=["seed"], summary="ListApplications")
async def list_applications(
    kube: Kube,
    where: InNamespace,
    name: str | None = None,
    chart: str | None = None,
    image: str | None = None,
) -> dict[str, Any]:
    found = await applications.list_applications(kube, where, name, chart, image)
    return {"applications": [views.application_message(a) for a in found]}
