"""The HTTP API (the seed's paths and the dashboard's) and the dashboard's static files.

Every route reads and writes the custom resources with the caller's own Kubernetes
identity (web/identity.py), so RBAC decides: a 403 from the API server is the answer's
403. The answers are made by the pure functions of web/views.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from http import HTTPStatus
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import aiohttp
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from kubernetes_asyncio import client as k8s
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette.sse import EventSourceResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from alecton import __version__
from alecton.api.models import API_VERSION, PLURALS
from alecton.cli.deploy import find_deployment, request_deploy, request_id, request_rollback
from alecton.cli.images import create_image
from alecton.cli.logic import WaitOutcome, deploy_outcome, field_selector, rollback_outcome
from alecton.cli.output import EXIT_CONFLICT, EXIT_NOT_FOUND
from alecton.cli.promote import decide
from alecton.cli.session import CliError
from alecton.kube.client import ApiException, KubeClient, api_error_message
from alecton.kube.informers import Informer, Resource
from alecton.reconcile.promotion import APPROVE, REJECT
from alecton.web import views
from alecton.web.identity import Identity
from alecton.web.security import BodyLimit, Guard, LocalSession, SecurityHeaders, bearer

MAX_WAIT_SECONDS = 600.0
STATIC = resources.files("alecton.web") / "static"
NAMESPACE_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_WATCHED_KINDS = ("Deployment", "Promotion", "Image", "Application")
_READY_AFTER_SECONDS = 5.0  # `ready` even when a kind may not be watched (RBAC): the rest is live


@dataclass(frozen=True)
class WebSettings:
    identity: Identity
    namespace: str
    session: LocalSession | None = None  # local mode (`alecton dashboard`)
    helm: str = ""
    charts_dir: Path | None = None


# ---------------------------------------------------------------------------
# Request and answer shapes (for /openapi.json; views.py builds the answers)


class ImageMessage(BaseModel):
    name: str = Field(min_length=1, examples=["web"])
    version: str = Field(min_length=1, examples=["1.4.2"])
    image: str = Field(min_length=1, examples=["registry.example.com/web:1.4.2"])


class TargetMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    cluster: str
    namespace: str
    values: dict[str, Any] | None = None


class ApplicationMessage(BaseModel):
    """An Application: `name` and every field of its spec (chart, image, targets, ...)."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1, examples=["web"])
    chart: str | None = Field(default=None, examples=["web"])
    image: str | None = Field(default=None, examples=["web"])
    targets: list[TargetMessage] | None = None


class DeployRequest(BaseModel):
    application: str = Field(min_length=1)
    target: str = Field(min_length=1)
    version: str = Field(min_length=1, description="The Image version to deploy.")


class RollbackRequest(BaseModel):
    application: str = Field(min_length=1)
    target: str = Field(min_length=1)
    version: int = Field(ge=1, description="The Helm revision to roll back to (as the seed names it).")


class DecisionRequest(BaseModel):
    application: str = Field(min_length=1)
    target: str = Field(min_length=1)
    version: str | None = Field(default=None, description="The open Promotion to this version.")
    comment: str = Field(default="", max_length=1024)


Namespace = Annotated[
    str | None, Query(pattern=NAMESPACE_PATTERN, max_length=63, description="Default: the server's.")
]
Wait = Annotated[
    float,
    Query(
        ge=0, le=MAX_WAIT_SECONDS, description="Seconds to wait for the operator's result (0: do not wait)."
    ),
]


# ---------------------------------------------------------------------------
# Errors: JSON with the Kubernetes status reason, the API server's words


class JSONLines(JSONResponse):
    """JSON with a final newline, so `curl` answers end their line in a terminal."""

    def render(self, content: Any) -> bytes:
        return super().render(content) + b"\n"


def _error(code: int, message: str, reason: str, **extra: Any) -> JSONResponse:
    return JSONLines({"error": message, "reason": reason, "code": code, **extra}, status_code=code)


def _api_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiException)
    reason = ""
    with contextlib.suppress(TypeError, ValueError, AttributeError):
        reason = str(json.loads(error.body).get("reason") or "")
    code = int(error.status or 502)
    return _error(code, api_error_message(error), reason or str(error.reason or ""))


_CLI_CODES = {EXIT_NOT_FOUND: (404, "NotFound"), EXIT_CONFLICT: (409, "Conflict")}


def _cli_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, CliError)
    code, reason = _CLI_CODES.get(error.code, (400, "BadRequest"))
    return _error(code, str(error), reason)


def _bad_request(_: Request, error: Exception) -> JSONResponse:
    return _error(422, str(error), "Invalid")


def _validation(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = [
        f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'body'}: {e.get('msg')}" for e in error.errors()
    ]
    return _error(422, "; ".join(problems) or "invalid request", "Invalid")


def _http_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    reason = HTTPStatus(error.status_code).phrase.replace(" ", "")
    return _error(error.status_code, str(error.detail), reason)


def _unreachable(_: Request, error: Exception) -> JSONResponse:
    return _error(503, f"cannot reach the Kubernetes API server: {error}", "ServiceUnavailable")


def _unauthenticated(_: Request, error: Exception) -> JSONResponse:
    return _error(401, "no credentials: send `Authorization: Bearer <token>`", "Unauthorized")


# ---------------------------------------------------------------------------


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _wait(
    kube: KubeClient, namespace: str, obj: dict[str, Any], outcome: Callable[[dict[str, Any]], WaitOutcome],
    seconds: float,
) -> tuple[WaitOutcome, dict[str, Any]]:  # fmt: skip
    """Follow one Deployment with a watch until `outcome` says done or `seconds` pass."""
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
            obj = informer.objects.get(name, obj)
            result = outcome(obj)
            remaining = deadline - loop.time()
            if result.done or remaining <= 0:
                return result, obj
            changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)
    finally:
        await informer.stop()


async def _image_refs(kube: KubeClient, namespace: str, application: str) -> dict[str, str]:
    """version -> reference of the Application's image ({} when the Application is gone)."""
    try:
        app = await kube.get("Application", namespace, application)
    except ApiException as error:
        if error.status == 404:
            return {}
        raise
    image = str((app.get("spec") or {}).get("image") or "")
    found = await kube.list("Image", namespace, field_selector=field_selector(**{"spec.name": image}))
    return views.image_refs(found, image)


async def _require_target(kube: KubeClient, namespace: str, application: str, target: str) -> None:
    """DeployApplication fails on an unknown Application or target (and writes nothing)."""
    try:
        app = await kube.get("Application", namespace, application)
    except ApiException as error:
        if error.status == 404:
            raise CliError(
                f"Application {application!r} does not exist in namespace {namespace!r}", EXIT_NOT_FOUND
            ) from None
        raise
    names = [str(t.get("name")) for t in (app.get("spec") or {}).get("targets") or [] if isinstance(t, dict)]
    if target not in names:
        raise CliError(
            f"Application {application!r} has no target {target!r} (targets: {', '.join(names) or 'none'})",
            EXIT_NOT_FOUND,
        )


def _settings(request: Request) -> WebSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


def caller_token(request: Request) -> str:
    # Local mode: the bearer token is the dashboard's session token, not a Kubernetes one.
    settings = _settings(request)
    return "" if settings.session is not None else bearer(request.headers.get("authorization", ""))


async def kube_client(request: Request) -> AsyncIterator[KubeClient]:
    """The caller's API client for one request."""
    api = await _settings(request).identity.client(caller_token(request))
    try:
        yield api
    finally:
        await api.close()


Kube = Annotated[KubeClient, Depends(kube_client)]


def create_app(settings: WebSettings) -> FastAPI:
    app = FastAPI(
        title="alecton",
        version=__version__,
        summary="Deploy CI-recorded container images through Helm charts. Every request acts with the "
        "caller's own Kubernetes identity.",
        docs_url=None,
        redoc_url=None,
        default_response_class=JSONLines,
    )
    app.state.settings = settings
    app.add_exception_handler(ApiException, _api_error)
    app.add_exception_handler(CliError, _cli_error)
    app.add_exception_handler(views.BadRequest, _bad_request)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(aiohttp.ClientError, _unreachable)
    app.add_exception_handler(TimeoutError, _unreachable)
    app.add_exception_handler(PermissionError, _unauthenticated)
    # Outermost last: limits and headers apply to the guard's own answers too.
    app.add_middleware(Guard, session=settings.session)
    app.add_middleware(BodyLimit)
    app.add_middleware(SecurityHeaders)

    def ns(namespace: str | None) -> str:
        return namespace or settings.namespace

    # ----- the seed's operations -------------------------------------------------------

    @app.post("/v1/images", status_code=201, tags=["seed"], summary="CreateImage")
    async def create_image_route(body: ImageMessage, kube: Kube, namespace: Namespace = None) -> JSONResponse:
        result, obj = await create_image(kube, ns(namespace), body.name, body.version, body.image)
        return JSONLines(views.image_message(obj), status_code=201 if result == "created" else 200)

    @app.get("/v1/images", tags=["seed"], summary="ListImages")
    async def list_images(
        kube: Kube, namespace: Namespace = None, name: str | None = None, version: str | None = None
    ) -> dict[str, Any]:
        selector = field_selector(**{"spec.name": name, "spec.version": version})
        found = await kube.list("Image", ns(namespace), field_selector=selector)
        found.sort(key=lambda i: (i["spec"].get("name", ""), i["metadata"].get("creationTimestamp", "")))
        return {"images": [views.image_message(i) for i in found]}

    @app.post("/v1/applications", status_code=201, tags=["seed"], summary="CreateApplication")
    async def create_application(
        body: ApplicationMessage, kube: Kube, namespace: Namespace = None
    ) -> dict[str, Any]:
        obj = views.application_object(body.model_dump(exclude_unset=True))
        return views.application_message(await kube.create("Application", ns(namespace), obj))

    @app.put("/v1/applications", tags=["seed"], summary="UpdateApplication (full replace, no merge)")
    async def update_application(
        body: ApplicationMessage, kube: Kube, namespace: Namespace = None
    ) -> dict[str, Any]:
        existing = await kube.get("Application", ns(namespace), body.name)
        obj = views.application_object(body.model_dump(exclude_unset=True), existing)
        return views.application_message(await kube.replace("Application", ns(namespace), body.name, obj))

    @app.get("/v1/applications", tags=["seed"], summary="ListApplications")
    async def list_applications(
        kube: Kube,
        namespace: Namespace = None,
        name: str | None = None,
        chart: str | None = None,
        image: str | None = None,
    ) -> dict[str, Any]:
        selector = field_selector(**{"metadata.name": name, "spec.chart": chart, "spec.image": image})
        found = await kube.list("Application", ns(namespace), field_selector=selector)
        return {"applications": [views.application_message(a) for a in sorted(found, key=views.object_name)]}

    async def answer(
        kube: KubeClient, namespace: str, obj: dict[str, Any], wait: float,
        outcome: Callable[[dict[str, Any]], WaitOutcome],
    ) -> JSONResponse:  # fmt: skip
        result = WaitOutcome(False, message="requested; the operator acts on it")
        if wait > 0:
            result, obj = await _wait(kube, namespace, obj, outcome, wait)
        refs = await _image_refs(kube, namespace, str(obj["spec"].get("application", "")))
        return JSONLines(
            views.deploy_response(obj, refs, result), status_code=views.outcome_status(result, wait > 0)
        )

    @app.post("/v1/applications/deploy", status_code=202, tags=["seed"], summary="DeployApplication")
    async def deploy(
        body: DeployRequest, kube: Kube, namespace: Namespace = None, wait: Wait = 0
    ) -> JSONResponse:
        where = ns(namespace)
        await _require_target(kube, where, body.application, body.target)
        obj, _ = await request_deploy(kube, where, body.application, body.target, body.version)
        generation = int(obj["metadata"]["generation"])
        return await answer(kube, where, obj, wait, lambda o: deploy_outcome(o, generation))

    @app.post("/v1/applications/rollback", status_code=202, tags=["seed"], summary="RollbackApplication")
    async def rollback(
        body: RollbackRequest, kube: Kube, namespace: Namespace = None, wait: Wait = 0
    ) -> JSONResponse:
        where, request = ns(namespace), request_id()
        obj = await request_rollback(kube, where, body.application, body.target, body.version, request)
        return await answer(kube, where, obj, wait, lambda o: rollback_outcome(o, body.version, request))

    @app.get("/v1/releases/{application}/{target}", tags=["seed"], summary="ListReleases")
    async def list_releases(
        application: str, target: str, kube: Kube, namespace: Namespace = None
    ) -> dict[str, Any]:
        deployment = await _deployment(kube, ns(namespace), application, target)
        refs = await _image_refs(kube, ns(namespace), application)
        return {"releases": views.releases(deployment, refs)}

    # ----- what the dashboard needs ----------------------------------------------------

    @app.get("/v1/whoami", tags=["dashboard"])
    async def whoami(kube: Kube, namespace: Namespace = None) -> dict[str, Any]:
        where = ns(namespace)
        review = await k8s.AuthenticationV1Api(kube.api).create_self_subject_review(
            k8s.V1SelfSubjectReview(), _request_timeout=kube.timeout
        )
        user = review.status.user_info if review.status else None

        async def can(verb: str, plural: str) -> bool:
            attributes = k8s.V1ResourceAttributes(
                group="alecton.dev", resource=plural, verb=verb, namespace=where
            )
            answer = await k8s.AuthorizationV1Api(kube.api).create_self_subject_access_review(
                k8s.V1SelfSubjectAccessReview(
                    spec=k8s.V1SelfSubjectAccessReviewSpec(resource_attributes=attributes)
                ),
                _request_timeout=kube.timeout,
            )
            return bool(answer.status and answer.status.allowed)

        rights = await asyncio.gather(
            can("patch", "deployments"), can("patch", "promotions"), can("create", "images"),
            can("update", "applications"),
        )  # fmt: skip
        return {
            "user": (user.username if user else "") or "",
            "groups": list((user.groups if user else None) or []),
            "namespace": where,
            "mode": settings.identity.mode,
            "can": dict(zip(("deploy", "approve", "createImages", "editApplications"), rights, strict=True)),
        }

    @app.get("/v1/overview", tags=["dashboard"])
    async def overview(kube: Kube, namespace: Namespace = None) -> dict[str, Any]:
        where = ns(namespace)
        apps, deps, images, promotions = await asyncio.gather(
            *(kube.list(kind, where) for kind in ("Application", "Deployment", "Image", "Promotion"))
        )
        return views.overview(where, apps, deps, images, promotions, _now())

    @app.get("/v1/deployments/{application}/{target}", tags=["dashboard"])
    async def deployment_details(
        application: str, target: str, kube: Kube, namespace: Namespace = None
    ) -> dict[str, Any]:
        where = ns(namespace)
        deployment = await _deployment(kube, where, application, target)
        selector = field_selector(**{"spec.deployment": views.object_name(deployment)})
        promotions = await kube.list("Promotion", where, field_selector=selector)
        refs = await _image_refs(kube, where, application)
        return views.deployment_details(deployment, refs, promotions)

    @app.get("/v1/promotions", tags=["dashboard"])
    async def list_promotions(
        kube: Kube, namespace: Namespace = None, application: str = "", all: bool = False
    ) -> dict[str, Any]:
        found = await kube.list("Promotion", ns(namespace))
        return {"promotions": views.promotions(found, application, all)}

    async def decide_route(
        body: DecisionRequest, kube: KubeClient, namespace: str, decision: str
    ) -> dict[str, Any]:
        chosen, _ = await decide(
            kube, namespace, body.application, body.target, body.version, decision, body.comment
        )
        return views.promotions([chosen], include_final=True)[0]

    @app.post("/v1/promotions/approve", tags=["dashboard"])
    async def approve(body: DecisionRequest, kube: Kube, namespace: Namespace = None) -> dict[str, Any]:
        return await decide_route(body, kube, ns(namespace), APPROVE)

    @app.post("/v1/promotions/reject", tags=["dashboard"])
    async def reject(body: DecisionRequest, kube: Kube, namespace: Namespace = None) -> dict[str, Any]:
        return await decide_route(body, kube, ns(namespace), REJECT)

    @app.get("/v1/diff/{application}/{target}", tags=["dashboard"])
    async def diff(
        request: Request, application: str, target: str, kube: Kube, namespace: Namespace = None,
        version: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        from alecton.cli.diff import compute, default_charts_dir, default_helm, diff_view
        from alecton.cli.session import Target
        from alecton.helm.actions import HelmActions
        from alecton.helm.runner import HelmRunner
        from alecton.reconcile.chart import ChartPolicy

        actions = HelmActions(HelmRunner(settings.helm or default_helm(), timeout=120))
        charts = ChartPolicy(settings.charts_dir or default_charts_dir())
        with settings.identity.kubeconfig(caller_token(request)) as (kubeconfig, context):
            where = Target(kubeconfig or None, context or None, ns(namespace))
            result, desired = await compute(kube, where, application, target, version, actions, charts)
        return diff_view(result, desired)

    @app.get("/v1/events", tags=["dashboard"], summary="Server-sent events: a change of any object shown")
    async def events(request: Request, namespace: Namespace = None) -> EventSourceResponse:
        # The client is made here, not by a dependency: it lives as long as the stream.
        token, where = caller_token(request), ns(namespace)
        return EventSourceResponse(_changes(settings.identity, token, where, request), ping=15)

    # ----- the dashboard ---------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), headers={"cache-control": "no-store"})

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    return app


async def _deployment(kube: KubeClient, namespace: str, application: str, target: str) -> dict[str, Any]:
    found = await find_deployment(kube, namespace, application, target)
    if found is None:
        raise CliError(
            f"no Deployment of application {application!r} to target {target!r} in namespace {namespace!r}",
            EXIT_NOT_FOUND,
        )
    return found


async def _changes(
    identity: Identity, token: str, namespace: str, request: Request
) -> AsyncIterator[dict[str, str]]:
    """`ready` once the watches listed, then a `change` per changed kind (coalesced)."""
    kube = await identity.client(token)
    changed: asyncio.Queue[str] = asyncio.Queue()
    informers = [
        Informer(
            kube.api, Resource(API_VERSION, PLURALS[kind]), namespace, lambda k=kind: changed.put_nowait(k)
        )
        for kind in _WATCHED_KINDS
    ]
    for informer in informers:
        informer.start()
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(i.synced.wait() for i in informers)), _READY_AFTER_SECONDS
            )
        while not changed.empty():  # the first listings are no news
            changed.get_nowait()
        refused = [f"{kind}: {i.error}" for kind, i in zip(_WATCHED_KINDS, informers, strict=True) if i.error]
        yield {"event": "ready", "data": json.dumps({"namespace": namespace, "errors": refused})}
        while not await request.is_disconnected():
            kinds = {await changed.get()}
            while not changed.empty():
                kinds.add(changed.get_nowait())
            for kind in sorted(kinds):
                yield {"event": "change", "data": json.dumps({"kind": kind})}
    finally:
        for informer in informers:
            await informer.stop()
        await kube.close()
