"""A person's part in promotion, against the API server: approve or reject a Promotion,
propose a version by hand, lift a hold. Which Promotion and which patch is decided by
the pure functions of `service.promotion_rules`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from alecton.api.models import release_name
from alecton.kube.client import ApiException, KubeClient, api_error_message
from alecton.reconcile.promotion_records import APPROVE
from alecton.service.deployments import find_deployment, require_deployment
from alecton.service.errors import ConflictError, ForbiddenError, NotFoundError
from alecton.service.promotion_rules import (
    already_proposed,
    awaiting_decision,
    awaiting_operator,
    change_text,
    decision_patch,
    decision_text,
    has_decision,
    nothing_to_decide,
    pick_open,
    promote_patch,
    promotion_outcome,
    resume_patch,
)
from alecton.service.resources import field_selector, name_of, spec_of, status_of
from alecton.service.status import running_version

APPROVER_ROLE = "alecton-approver"
_PATCH_ATTEMPTS = 3
_PATCH_DEPLOYMENTS = "the `patch` right on deployments.alecton.dev"


def forbidden(action: str, right: str, error: ApiException, namespace: str) -> ForbiddenError:
    return ForbiddenError(f"{action} needs {right} in namespace {namespace!r}: {api_error_message(error)}")


async def settle_promotion(
    client: KubeClient,
    namespace: str,
    application: str,
    target: str,
    version: str | None,
    decision: str,
    comment: str = "",
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Approve or reject (`decision`) the open Promotion of `<application>-<target>`: (it,
    the other open ones)."""
    verb = "approve" if decision == APPROVE else "reject"
    try:
        deployment = await find_deployment(client, namespace, application, target)
        name = name_of(deployment) if deployment else release_name(application, target)
        promotions = await client.list(
            "Promotion", namespace, field_selector=field_selector(**{"spec.deployment": name})
        )
        chosen, others = pick_open(promotions, name, version)
        if chosen is None and (decided := awaiting_operator(promotions, name, version)) is not None:
            raise ConflictError(
                f"nothing to {verb} for {application} {target}: {name_of(decided)} ({change_text(decided)}) "
                f"is already decided: {decision_text(decided)}"
            )
        if chosen is None:
            raise NotFoundError(
                nothing_to_decide(application, target, deployment, name, others, version, verb)
            )
        return await _patch_decision(client, namespace, chosen, decision, comment), others
    except ApiException as error:
        if error.status == 403:
            raise forbidden(
                f"{'approving' if decision == APPROVE else 'rejecting'} a promotion",
                f"the `patch` right (and get, list) on promotions.alecton.dev, i.e. the "
                f"{APPROVER_ROLE} ClusterRole bound to you there",
                error,
                namespace,
            ) from None
        raise


async def _patch_decision(
    client: KubeClient, namespace: str, chosen: dict[str, Any], decision: str, comment: str
) -> dict[str, Any]:
    """Patch spec.approval of `chosen`, reading it again when it changed in between."""
    for _ in range(_PATCH_ATTEMPTS):
        try:
            patch = decision_patch(chosen, decision, comment)
            return await client.patch("Promotion", namespace, name_of(chosen), patch)
        except ApiException as error:
            # 409: changed since read (resourceVersion); 422: the CRD refused, which for an
            # approval set by someone else in between is its immutability rule.
            if error.status not in (409, 422):
                raise
            current = await client.get("Promotion", namespace, name_of(chosen))
            if has_decision(current):
                raise ConflictError(
                    f"{name_of(current)} ({change_text(current)}) is already decided: "
                    f"{decision_text(current)}"
                ) from None
            if error.status == 422:
                raise
            if not awaiting_decision(current):
                outcome = promotion_outcome(current)
                raise ConflictError(
                    f"{name_of(current)} changed while deciding and is final now: {outcome.message}"
                ) from None
            chosen = current
    raise ConflictError(f"{name_of(chosen)} kept changing while deciding; try again")


@dataclass(frozen=True)
class Proposal:
    """A version proposed by hand: the Deployment as patched, the version, and where it
    came from (`given`, or `running on <target>`)."""

    deployment: dict[str, Any]
    version: str
    origin: str


async def propose_version(
    client: KubeClient,
    namespace: str,
    application: str,
    target: str,
    version: str | None,
    source: str | None,
) -> Proposal:
    """Propose `version` (default: the one running on target `source`) for `target`, whose
    Deployment has a promotion policy; an Image of the application with that version must
    exist, and a version proposed by hand is never proposed twice."""
    deployment = await require_deployment(client, namespace, application, target)
    name = name_of(deployment)
    if not isinstance(spec_of(deployment).get("promotion"), dict):
        raise NotFoundError(
            f"{name} has no promotion policy (spec.promotion); "
            f"use alecton deploy {application} {target} VERSION"
        )
    chosen, origin = version or "", "given"
    if not chosen:
        assert source is not None
        from_deployment = await require_deployment(client, namespace, application, source)
        chosen = running_version(status_of(from_deployment))
        if not chosen:
            raise NotFoundError(
                f"no known version runs on {application} {source} (nothing deployed there, or a "
                "release alecton did not make); name the VERSION"
            )
        origin = f"running on {source}"
    await _require_image(client, namespace, application, chosen)
    if already_proposed(deployment, chosen):
        raise ConflictError(
            f"version {chosen} was proposed by hand for {name} before and the operator has "
            f"handled it; it is not proposed twice (see `alecton promotions {application} --all`)"
        )
    try:
        patched = await client.patch("Deployment", namespace, name, promote_patch(chosen))
    except ApiException as error:
        if error.status == 403:
            raise forbidden("proposing a version", _PATCH_DEPLOYMENTS, error, namespace) from None
        raise
    return Proposal(patched, chosen, origin)


async def _require_image(client: KubeClient, namespace: str, application: str, version: str) -> None:
    app = await client.get("Application", namespace, application)
    image_name = str(spec_of(app).get("image") or "")
    selector = field_selector(**{"spec.name": image_name, "spec.version": version})
    images = [
        i
        for i in await client.list("Image", namespace, field_selector=selector)
        if spec_of(i).get("name") == image_name and spec_of(i).get("version") == version
    ]
    if not images:
        raise NotFoundError(f"no Image {image_name!r} with version {version!r} in namespace {namespace!r}")


async def resume_automation(
    client: KubeClient, namespace: str, application: str, target: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Lift a hold of `<application>-<target>`: (the Deployment before, after)."""
    before = await require_deployment(client, namespace, application, target)
    try:
        after = await client.patch(
            "Deployment", namespace, name_of(before), resume_patch(uuid.uuid4().hex, before)
        )
    except ApiException as error:
        if error.status == 403:
            raise forbidden("resuming", _PATCH_DEPLOYMENTS, error, namespace) from None
        raise
    return before, after
