"""DORA figures of a namespace (the dashboard's Delivery page and any program): read from
the ReleaseRecords with the caller's own identity, as `alecton dora` reads them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from alecton.service.dora import dora_report
from alecton.web.dependencies import InNamespace, Kube

router = APIRouter()

Name = Annotated[str | None, Query(max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")]


@router.get("/v1/dora", tags=["dashboard"], summary="DORA metrics per application and target")
async def dora(
    kube: Kube,
    where: InNamespace,
    application: Name = None,
    target: Annotated[str | None, Query(max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")] = None,
    since: Annotated[str, Query(max_length=16, description="The period up to now: 30d, 2w, 12h.")] = "30d",
) -> dict[str, Any]:
    report = await dora_report(kube, where, application, target, since)
    return report.as_dict()
