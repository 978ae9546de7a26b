"""DeployApplication, RollbackApplication, retry, drift checks, ListReleases and the status
rows: what a face asks of a Deployment, written for the operator to act on."""

from __future__ import annotations

from typing import Any

from alecton.kube.client import ApiException, KubeClient
from alecton.reconcile.drift import DRIFT_CHECK_ANNOTATION
from alecton.reconcile.freeze import FREEZE_OVERRIDE_ANNOTATION, override_value
from alecton.service.errors import ConflictError, NotFoundError
from alecton.service.freezes import override_text, refuse_if_frozen
from alecton.service.resources import deployment_body, field_selector
from alecton.service.status import status_rows


async def find_deployment(
    client: KubeClient, namespace: str, application: str, target: str
) -> dict[str, Any] | None:
    """The Deployment for an application/target: the canonical `<app>-<target>` if it
    exists, else any Deployment with that pair."""
    selector = field_selector(**{"spec.application": application, "spec.target": target})
    found = await client.list("Deployment", namespace, field_selector=selector)
    found.sort(
        key=lambda d: (
            d["metadata"]["name"] != f"{application}-{target}",
            d["metadata"].get("creationTimestamp", ""),
        )
    )
    return found[0] if found else None


async def require_deployment(
    client: KubeClient, namespace: str, application: str, target: str, suggest_deploy: bool = True
) -> dict[str, Any]:
    """The Deployment for an application/target, else NotFoundError (which, with
    `suggest_deploy`, says how to make one)."""
    dep = await find_deployment(client, namespace, application, target)
    if dep is None:
        missing = (
            f"no Deployment of application {application!r} to target {target!r} in namespace {namespace!r}"
        )
        if suggest_deploy:
            missing += f"; deploy it first: alecton deploy {application} {target} VERSION"
        raise NotFoundError(missing)
    return dep


async def require_target(client: KubeClient, namespace: str, application: str, target: str) -> None:
    """DeployApplication fails on an unknown Application or target (and writes nothing)."""
    try:
        app = await client.get("Application", namespace, application)
    except ApiException as error:
        if error.status == 404:
            raise NotFoundError(
                f"Application {application!r} does not exist in namespace {namespace!r}"
            ) from None
        raise
    names = [str(t.get("name")) for t in (app.get("spec") or {}).get("targets") or [] if isinstance(t, dict)]
    if target not in names:
        raise NotFoundError(
            f"Application {application!r} has no target {target!r} (targets: {', '.join(names) or 'none'})"
        )


async def request_deploy(
    client: KubeClient,
    namespace: str,
    application: str,
    target: str,
    version: str,
    allow_missing_application: bool = False,
    override_freeze: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """DeployApplication: create or update the Deployment; (it, whether it has a promotion
    policy, which a version set by hand now holds). An unknown Application or target is an
    error unless `allow_missing_application` (GitOps-style ordering: the Deployment first).

    A freeze that applies refuses the deploy (FrozenError, nothing written) unless
    `override_freeze` gives a reason: that is written with the change, for exactly the
    generation the change makes, so it does not carry over to a later change."""
    override = override_text(override_freeze)
    if not allow_missing_application:
        await require_target(client, namespace, application, target)
    if not override:
        await refuse_if_frozen(client, namespace, application, target, version)
    existing = await find_deployment(client, namespace, application, target)
    if existing is None:
        body = deployment_body(application, target, version)
        if override:  # a new object is generation 1
            body["metadata"]["annotations"] = {FREEZE_OVERRIDE_ANNOTATION: override_value(1, override)}
        return await client.create("Deployment", namespace, body), False
    # Deploying ends a held rollback: spec.rollback goes with the new version.
    patch: dict[str, Any] = {"spec": {"version": version, "rollback": None}}
    if override:
        meta, spec = existing["metadata"], existing.get("spec") or {}
        generation = int(meta.get("generation") or 0)
        # The spec changes (a new generation) unless it already asks for exactly this; then
        # the override is for the current generation (to release changed inputs). The
        # precondition keeps that count right: a change in between is a conflict.
        changes = spec.get("version") != version or spec.get("rollback") is not None
        patch["metadata"] = {
            "resourceVersion": meta.get("resourceVersion"),
            "annotations": {FREEZE_OVERRIDE_ANNOTATION: override_value(generation + changes, override)},
        }
    try:
        obj = await client.patch("Deployment", namespace, existing["metadata"]["name"], patch)
    except ApiException as error:
        if error.status == 409:
            raise ConflictError("the Deployment changed meanwhile; deploy again") from None
        raise
    return obj, isinstance((existing.get("spec") or {}).get("promotion"), dict)


async def request_rollback(
    client: KubeClient, namespace: str, application: str, target: str, revision: int, request: str
) -> dict[str, Any]:
    """RollbackApplication: ask the operator to roll the Deployment back to `revision`."""
    dep = await require_deployment(client, namespace, application, target)
    patch = {"spec": {"rollback": {"revision": revision, "requestId": request}}}
    return await client.patch("Deployment", namespace, dep["metadata"]["name"], patch)


async def request_retry(
    client: KubeClient, namespace: str, application: str, target: str, request: str
) -> dict[str, Any]:
    """Ask the operator to run helm again with the same inputs (a new spec.retryRequestId)."""
    dep = await require_deployment(client, namespace, application, target)
    patch = {"spec": {"retryRequestId": request}}
    return await client.patch("Deployment", namespace, dep["metadata"]["name"], patch)


async def request_drift_check(
    client: KubeClient, namespace: str, application: str, target: str, request: str
) -> dict[str, Any]:
    """Ask the operator to compare the deployed release with the live objects now."""
    dep = await require_deployment(client, namespace, application, target)
    patch = {"metadata": {"annotations": {DRIFT_CHECK_ANNOTATION: request}}}
    return await client.patch("Deployment", namespace, dep["metadata"]["name"], patch)


async def release_history(
    client: KubeClient, namespace: str, application: str, target: str
) -> list[dict[str, Any]]:
    """ListReleases: the Deployment's status.history, newest first."""
    dep = await require_deployment(client, namespace, application, target)
    return list((dep.get("status") or {}).get("history") or [])


async def deployment_status_rows(
    client: KubeClient, namespace: str, application: str | None = None, target: str | None = None
) -> list[dict[str, Any]]:
    """The status rows of every target of every Application (or only of `application`,
    `target`), with Deployments whose Application or target does not exist."""
    apps = await client.list(
        "Application", namespace, field_selector=field_selector(**{"metadata.name": application})
    )
    deps = await client.list(
        "Deployment",
        namespace,
        field_selector=field_selector(**{"spec.application": application, "spec.target": target}),
    )
    return [
        r
        for r in status_rows(apps, deps)
        if (not application or r["application"] == application) and (not target or r["target"] == target)
    ]
