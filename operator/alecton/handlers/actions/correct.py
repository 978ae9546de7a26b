"""Correct: re-apply a release's own drifted or missing objects, as the release has them,
with helm's field manager (a correction keeps helm the owner)."""

from __future__ import annotations

from typing import Any

from kubernetes_asyncio import client

from alecton.kube.client import api_error_message
from alecton.kube.informers import apply_object, locate
from alecton.reconcile import status as st
from alecton.reconcile.diff import Change, DiffResult, key_of
from alecton.reconcile.drift import correction_refusal
from alecton.reconcile.plan import DesiredRelease

# The field manager helm itself applies with.
_FIELD_MANAGER = "helm"
_MAX_DETAIL = 500


async def correct(
    api: client.ApiClient,
    manifest: list[dict[str, Any]],
    result: DiffResult,
    live: dict[Any, dict[str, Any] | None],
    desired: DesiredRelease,
    revision: int,
) -> dict[str, Any]:
    """Server-side apply of every drifted or missing object that is this release's (see
    `correction_refusal`); the record of the correction (status.drift.lastCorrection)."""
    namespace = desired.namespace
    wanted = {key_of(obj, namespace): obj for obj in manifest}
    drifted = [o.key for o in result.objects if o.change in (Change.CHANGED, Change.MISSING)]
    applied, problems = 0, []
    for key in drifted:
        refused = correction_refusal(key, live.get(key), desired.name, namespace)
        if refused:
            problems.append(f"{refused}: not applied")
            continue
        where = await locate(api, key.api_version, key.kind)
        if where is None:
            problems.append(f"{key.describe()}: kind not served")
            continue
        try:
            await apply_object(api, where, wanted[key], _FIELD_MANAGER)
            applied += 1
        except client.ApiException as error:
            problems.append(f"{key.describe()}: {api_error_message(error)}")
    detail = ", ".join(k.describe() for k in drifted)
    if problems:
        detail = f"{detail}; failed: {'; '.join(problems)}"
    return {
        "at": st.now_rfc3339(),
        "revision": revision,
        "objects": applied,
        "result": "Failed" if problems else "Succeeded",
        "detail": detail[:_MAX_DETAIL],
    }
