"""DeployApplication, RollbackApplication and ListReleases (the seed's), and a Deployment's
details (the dashboard's)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from alecton.api.models import API_VERSION, PLURALS
from alecton.kube.client import KubeClient
from alecton.kube.informers import Informer, Resource
from alecton.service.deployments import request_deploy, request_rollback, require_deployment
from alecton.service.images import (
    application_image_name,
    application_image_refs,
    application_images,
    image_refs,
    image_sources,
)
from alecton.service.outcomes import WaitOutcome, deploy_outcome, rollback_outcome
from alecton.service.records import DEFAULT_LIMIT, MAX_LIMIT, release_records
from alecton.service.resources import field_selector, name_of
from alecton.service.session import request_id
from alecton.web import views
from alecton.web.dependencies import InNamespace, Kube, Wait
from alecton.web.errors import JSONLines
from alecton.web.messages import DeployRequest, RollbackRequest

router = APIRouter()

_WAIT_CHECK_SECONDS = 2.0  # ?wait= notices a gone client (or reads again) this often


async def _wait(
    kube: KubeClient, namespace: str, obj: dict[str, Any], outcome: Callable[[dict[str, Any]], WaitOutcome],
    seconds: float, request: Request,
) -> tuple[WaitOutcome, dict[str, Any]]:  # fmt: skip
    """Follow one Deployment with a watch until `outcome` says done, `seconds` pass or the
    client goes away. A caller who may not watch (or a broken watch) is served by reads."""
    name = obj["metadata"]["name"]
    changed = asyncio.Event()
    informer = Informer(
        kube.api,
        Resource(API_VERSION, PLURALS["Deployment"]),
        namespace,
        changed.set,
        f"metadata.name={name}",
    )
    informer.start()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    try:
        while True:
            if informer.error:
                obj = await kube.get("Deployment", namespace, name)
            else:
                obj = informer.objects.get(name, obj)
            result = outcome(obj)
            remaining = deadline - loop.time()
            if result.done or remaining <= 0 or await request.is_disconnected():
                return result, obj
            changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(remaining, _WAIT_CHECK_SECONDS))
    finally:
        await informer.stop()


async def _answer(
    kube: KubeClient, namespace: str, obj: dict[str, Any], wait: float,
    outcome: Callable[[dict[str, Any]], WaitOutcome], request: Request,
) -> JSONResponse:  # fmt: skip
    result = WaitOutcome(False, message="requested; the operator acts on it")
    if wait > 0:
        result, obj = await _wait(kube, namespace, obj, outcome, wait, request)
    refs = await application_image_refs(kube, namespace, str(obj["spec"].get("application", "")))
    return JSONLines(
        views.deploy_response(obj, refs, result), status_code=views.outcome_status(result, wait > 0)
    )


@router.post("/v1/applications/deploy", status_code=202, tags=["seed"], summary="DeployApplication")
async def deploy(
    request: Request, body: DeployRequest, kube: Kube, where: InNamespace, wait: Wait = 0
) -> JSONResponse:
    obj, _ = await request_deploy(
        kube, where, body.application, body.target, body.version, override_freeze=body.override_freeze
    )
    generation = int(obj["metadata"]["generation"])
    return await _answer(kube, where, obj, wait, lambda o: deploy_outcome(o, generation), request)


@router.post("/v1/applications/rollback", status_code=202, tags=["seed"], summary="RollbackApplication")
async def rollback(
    request: Request, body: RollbackRequest, kube: Kube, where: InNamespace, wait: Wait = 0
) -> JSONResponse:
    asked = request_id()
    obj = await request_rollback(kube, where, body.application, body.target, body.version, asked)

    def outcome(deployment: dict[str, Any]) -> WaitOutcome:
        return rollback_outcome(deployment, body.version, asked)

    return await _answer(kube, where, obj, wait, outcome, request)


@router.get("/v1/releases/{application}/{target}", tags=["seed"], summary="ListReleases")
async def list_releases(application: str, target: str, kube: Kube, where: InNamespace) -> dict[str, Any]:
    deployment = await require_deployment(kube, where, application, target, suggest_deploy=False)
    found = await application_images(kube, where, application)
    name = application_image_name(found)
    return {"releases": views.releases(deployment, image_refs(found, name), image_sources(found, name))}


@router.get("/v1/history/{application}/{target}", tags=["audit"], summary="ReleaseRecords")
async def release_history(
    application: str,
    target: str,
    kube: Kube,
    where: InNamespace,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """The audit trail of APPLICATION on TARGET, newest first: one record per release
    transition (who, cause, version, image, source, result), kept after the status history is
    trimmed and after the Deployment is deleted."""
    return {"records": await release_records(kube, where, application, target, limit)}


@router.get("/v1/deployments/{application}/{target}", tags=["dashboard"])
async def deployment_details(application: str, target: str, kube: Kube, where: InNamespace) -> dict[str, Any]:
    deployment = await require_deployment(kube, where, application, target, suggest_deploy=False)
    selector = field_selector(**{"spec.deployment": name_of(deployment)})
    promotions = await kube.list("Promotion", where, field_selector=selector)
    found = await application_images(kube, where, application)
    name = application_image_name(found)
    refs, sources = image_refs(found, name), image_sources(found, name)
    return views.deployment_details(deployment, refs, promotions, sources)
