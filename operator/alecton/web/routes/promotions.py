"""The Promotions of a namespace, and approving or rejecting one (the dashboard's)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from alecton.kube.client import KubeClient
from alecton.reconcile.promotion_records import APPROVE, REJECT
from alecton.service.promotions import settle_promotion
from alecton.web import views
from alecton.web.dependencies import InNamespace, Kube
from alecton.web.messages import DecisionRequest

router = APIRouter()


@router.get("/v1/promotions", tags=["dashboard"])
async def list_promotions(
    kube: Kube, where: InNamespace, application: str = "", all: bool = False
) -> dict[str, Any]:
    found = await kube.list("Promotion", where)
    return {"promotions": views.promotions(found, application, all)}


async def _settle(body: DecisionRequest, kube: KubeClient, namespace: str, decision: str) -> dict[str, Any]:
    chosen, _ = await settle_promotion(
        kube, namespace, body.application, body.target, body.version, decision, body.comment
    )
    return views.promotions([chosen], include_final=True)[0]


@router.post("/v1/promotions/approve", tags=["dashboard"])
async def approve(body: DecisionRequest, kube: Kube, where: InNamespace) -> dict[str, Any]:
    return await _settle(body, kube, where, APPROVE)


@router.post("/v1/promotions/reject", tags=["dashboard"])
async def reject(body: DecisionRequest, kube: Kube, where: InNamespace) -> dict[str, Any]:
    return await _settle(body, kube, where, REJECT)
