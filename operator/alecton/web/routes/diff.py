"""What deploying a version would change (the dashboard's; `alecton diff`'s engine)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request

from alecton.service.diff import DiffTools, diff_view, render_diff
from alecton.service.session import Target
from alecton.web.dependencies import InNamespace, Kube, caller_token, settings_of

DIFFS_AT_ONCE = 2  # helm renders for /v1/diff in parallel, per server

router = APIRouter()


def diff_slots() -> asyncio.Semaphore:
    """The app's limit of diffs rendering at once (`app.state.diff_slots`)."""
    return asyncio.Semaphore(DIFFS_AT_ONCE)


@router.get("/v1/diff/{application}/{target}", tags=["dashboard"])
async def diff(
    request: Request,
    application: str,
    target: str,
    kube: Kube,
    where: InNamespace,
    version: str | None = None,
) -> dict[str, Any]:
    settings = settings_of(request)
    tools = DiffTools.of(settings.helm, settings.charts)
    async with request.app.state.diff_slots:  # helm renders are CPU-heavy: a few at a time
        with settings.identity.kubeconfig(caller_token(request)) as (kubeconfig, context):
            caller = Target(kubeconfig or None, context or None, where)
            result, desired = await render_diff(kube, caller, application, target, version, tools)
    return diff_view(result, desired)
