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
import logging
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
from alecton.reconcile.promotion_records import APPROVE, REJECT
from alecton.web import views
from alecton.web.identity import Identity, NoCredentialsError
from alecton.web.security import BodyLimit, Guard, LocalSession, SecurityHeaders, bearer

log = logging.getLogger("alecton.web")

MAX_WAIT_SECONDS = 600.0
STATIC = resources.files("alecton.web") / "static"
NAMESPACE_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_WATCHED_KINDS = ("Deployment", "Promotion", "Image", "Application")
_READY_AFTER_SECONDS = 5.0  # `ready` even when a kind may not be watched (RBAC): the rest is live
_WAIT_CHECK_SECONDS = 2.0  # ?wait= notices a gone client (or reads again) this often
_STREAM_SECONDS = 600.0  # an event stream ends after this; browsers reconnect (fresh credentials)
_DIFFS_AT_ONCE = 2  # helm renders for /v1/diff in parallel, per server


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


def _reason_of(error: ApiException) -> str:
    with contextlib.suppress(TypeError, ValueError, AttributeError):
        if reason := str(json.loads(error.body).get("reason") or ""):
            return reason
    return str(error.reason or "")


def _api_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiException)
    return _error(int(error.status or 502), api_error_message(error), _reason_of(error))


_CLI_CODES = {EXIT_NOT_FOUND: (404, "NotFound"), EXIT_CONFLICT: (409, "Conflict")}


def _cli_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, CliError)
    code, reason = _CLI_CODES.get(error.code, (400, "BadRequest"))
    # A refusal the CLI words for people (approving without the approver role) keeps the
    # API server's status: a 403 stays a 403.
    if isinstance(cause := error.__context__, ApiException) and cause.status:
        code, reason = int(cause.status), _reason_of(cause)
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


def _internal(_: Request, error: Exception) -> JSONResponse:
    log.exception("unexpected error", exc_info=error)  # the details stay in the server's log
    return _error(500, "internal error; the server's log has the details", "InternalError")


# ---------------------------------------------------------------------------


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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


async def _image_refs(kube: KubeClient, namespace: str, application: str) -> dict[str, str]:
    """version -> reference of the Application's image; {} when it cannot be read (gone,
    or the caller may change a Deployment without reading Images: after a write, its
    answer must not turn into an error)."""
    try:
        app = await kube.get("Application", namespace, application)
        image = str((app.get("spec") or {}).get("image") or "")
        found = await kube.list("Image", namespace, field_selector=field_selector(**{"spec.name": image}))
    except ApiException:
        return {}
    return views.image_refs(found, image)


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
    app.add_exception_handler(NoCredentialsError, _unauthenticated)
    app.add_exception_handler(Exception, _internal)
    # Outermost last: the limit applies to the guard's own answers too. SecurityHeaders
    # wraps everything in `asgi()`, error pages included.
    app.add_middleware(Guard, session=settings.session)
    app.add_middleware(BodyLimit)

    def ns(namespace: str | None) -> str:
        return namespace or settings.namespace

    diffs = asyncio.Semaphore(_DIFFS_AT_ONCE)

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
        outcome: Callable[[dict[str, Any]], WaitOutcome], request: Request,
    ) -> JSONResponse:  # fmt: skip
        result = WaitOutcome(False, message="requested; the operator acts on it")
        if wait > 0:
            result, obj = await _wait(kube, namespace, obj, outcome, wait, request)
        refs = await _image_refs(kube, namespace, str(obj["spec"].get("application", "")))
        return JSONLines(
            views.deploy_response(obj, refs, result), status_code=views.outcome_status(result, wait > 0)
        )

    @app.post("/v1/applications/deploy", status_code=202, tags=["seed"], summary="DeployApplication")
    async def deploy(
        request: Request, body: DeployRequest, kube: Kube, namespace: Namespace = None, wait: Wait = 0
    ) -> JSONResponse:
        where = ns(namespace)
        obj, _ = await request_deploy(kube, where, body.application, body.target, body.version)
        generation = int(obj["metadata"]["generation"])
        return await answer(kube, where, obj, wait, lambda o: deploy_outcome(o, generation), request)

    @app.post("/v1/applications/rollback", status_code=202, tags=["seed"], summary="RollbackApplication")
    async def rollback(
        request: Request, body: RollbackRequest, kube: Kube, namespace: Namespace = None, wait: Wait = 0
    ) -> JSONResponse:
        where, asked = ns(namespace), request_id()
        obj = await request_rollback(kube, where, body.application, body.target, body.version, asked)

        def outcome(deployment: dict[str, Any]) -> WaitOutcome:
            return rollback_outcome(deployment, body.version, asked)

        return await answer(kube, where, obj, wait, outcome, request)

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
        kinds = ("Application", "Deployment", "Image", "Promotion")
        found = await asyncio.gather(*(kube.list(kind, where) for kind in kinds), return_exceptions=True)
        # A kind the caller may not list (an approver who may not read Images) leaves its part
        # empty and says so; any other failure is the answer's.
        for result in found:
            if isinstance(result, BaseException) and not (
                isinstance(result, ApiException) and result.status == 403
            ):
                raise result
        lists = [[] if isinstance(result, BaseException) else result for result in found]
        answer = views.overview(where, *lists, _now())
        answer["errors"] = [
            f"{kind}: {api_error_message(result)}"
            for kind, result in zip(kinds, found, strict=True)
            if isinstance(result, ApiException)
        ]
        return answer

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
        async with diffs:  # helm renders are CPU-heavy: a few at a time
            with settings.identity.kubeconfig(caller_token(request)) as (kubeconfig, context):
                where = Target(kubeconfig or None, context or None, ns(namespace))
                result, desired = await compute(kube, where, application, target, version, actions, charts)
        return diff_view(result, desired)

    @app.get("/v1/events", tags=["dashboard"], summary="Server-sent events: a change of any object shown")
    async def events(request: Request, namespace: Namespace = None) -> EventSourceResponse:
        # The client is made here, not by a dependency: it lives as long as the stream.
        token, where = caller_token(request), ns(namespace)
        return EventSourceResponse(
            _changes(settings.identity, token, where, request), ping=15, send_timeout=30
        )

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
    """`ready` once the watches listed, then a `change` per changed kind (coalesced).

    The stream ends after _STREAM_SECONDS (the page reconnects, with the credentials of
    then) or when the API server stops accepting the caller (401)."""
    kube = await identity.client(token)
    changed: asyncio.Queue[str] = asyncio.Queue()
    informers: dict[str, Informer] = {}

    def notify(kind: str) -> None:
        if not informers[kind].error:  # a failed list or watch is no change (it retries)
            changed.put_nowait(kind)

    for kind in _WATCHED_KINDS:
        resource = Resource(API_VERSION, PLURALS[kind])
        informers[kind] = Informer(kube.api, resource, namespace, lambda k=kind: notify(k))
        informers[kind].start()
    loop = asyncio.get_running_loop()
    ends = loop.time() + _STREAM_SECONDS
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(i.synced.wait() for i in informers.values())), _READY_AFTER_SECONDS
            )
        while not changed.empty():  # the first listings are no news
            changed.get_nowait()
        refused = [f"{kind}: {i.error}" for kind, i in informers.items() if i.error]
        yield {"event": "ready", "data": json.dumps({"namespace": namespace, "errors": refused})}
        while not await request.is_disconnected():
            if any(i.error.startswith("401") for i in informers.values()):
                return  # the caller's credentials ended
            try:
                kinds = {await asyncio.wait_for(changed.get(), max(0.0, min(30.0, ends - loop.time())))}
            except TimeoutError:
                if loop.time() >= ends:
                    return
                continue
            while not changed.empty():
                kinds.add(changed.get_nowait())
            for kind in sorted(kinds):
                yield {"event": "change", "data": json.dumps({"kind": kind})}
    finally:
        for informer in informers.values():
            await informer.stop()
        await kube.close()


def asgi(settings: WebSettings) -> Any:
    """The app as served: security headers on every answer, error pages included."""
    return SecurityHeaders(create_app(settings))
