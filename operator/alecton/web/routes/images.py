"""CreateImage and ListImages."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from alecton.service import images
from alecton.web import views
from alecton.web.dependencies import InNamespace, Kube
from alecton.web.errors import JSONLines
from alecton.web.messages import ImageMessage

router = APIRouter()


@router.post("/v1/images", status_code=201, tags=["seed"], summary="CreateImage")
async def create_image_route(body: ImageMessage, kube: Kube, where: InNamespace) -> JSONResponse:
    given = body.source
    source = (
        images.image_source(given.repository, given.revision, given.url, given.committedAt) if given else None
    )
    result, obj = await images.create_image(
        kube, where, body.name, body.version, body.image, source, body.digest or ""
    )
    return JSONLines(views.image_message(obj), status_code=201 if result == "created" else 200)


@router.get("/v1/images", tags=["seed"], summary="ListImages")
async def list_images(
    kube: Kube, where: InNamespace, name: str | None = None, version: str | None = None
) -> dict[str, Any]:
    return {"images": [views.image_message(i) for i in await images.list_images(kube, where, name, version)]}
