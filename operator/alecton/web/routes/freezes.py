"""Deploy freezes: list them (the dashboard's banner), start one, end one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from alecton.service.freezes import end_freeze, freeze_rows, start_freeze
from alecton.web.dependencies import InNamespace, Kube
from alecton.web.messages import FreezeRequest

router = APIRouter()


@router.get("/v1/freezes", tags=["freezes"])
async def list_freezes(kube: Kube, where: InNamespace) -> dict[str, Any]:
    """The namespace's Freezes and the ClusterFreezes, active first, each with when it ends."""
    return {"freezes": await freeze_rows(kube, where)}


@router.post("/v1/freezes", status_code=201, tags=["freezes"])
async def start(body: FreezeRequest, kube: Kube, where: InNamespace) -> dict[str, Any]:
    obj = await start_freeze(
        kube,
        where,
        body.name,
        body.reason,
        cluster_wide=body.cluster_wide,
        duration=body.duration,
        until=body.until,
        applications=body.applications,
        targets=body.targets,
    )
    return {"kind": obj.get("kind"), "name": obj["metadata"]["name"], "spec": obj.get("spec") or {}}


@router.delete("/v1/freezes/{name}", status_code=204, tags=["freezes"])
async def end(name: str, kube: Kube, where: InNamespace, clusterWide: bool = False) -> Response:
    await end_freeze(kube, where, name, cluster_wide=clusterWide)
    return Response(status_code=204)
