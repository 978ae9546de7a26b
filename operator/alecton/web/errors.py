"""Errors as JSON with the Kubernetes status reason, in the API server's words.

A failed operation (`service.errors`) is mapped to its HTTP status here; one raised while
handling the API server's refusal keeps that refusal's status and reason.
"""

from __future__ import annotations

import contextlib
import json
import logging
from http import HTTPStatus
from typing import Any

import aiohttp
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from alecton.kube import json_codec
from alecton.kube.client import ApiException, api_error_message
from alecton.service.errors import ConflictError, ForbiddenError, NotFoundError, ServiceError
from alecton.service.freezes import FrozenError
from alecton.web.clients import PoolFullError
from alecton.web.identity import NoCredentialsError
from alecton.web.views import BadRequest

log = logging.getLogger("alecton.web")


class JSONLines(JSONResponse):
    """JSON with a final newline, so `curl` answers end their line in a terminal."""

    def render(self, content: Any) -> bytes:
        return json_codec.dumps(content) + b"\n"


def error_response(code: int, message: str, reason: str, **extra: Any) -> JSONResponse:
    return JSONLines({"error": message, "reason": reason, "code": code, **extra}, status_code=code)


def _reason_of(error: ApiException) -> str:
    with contextlib.suppress(TypeError, ValueError, AttributeError):
        if reason := str(json.loads(error.body).get("reason") or ""):
            return reason
    return str(error.reason or "")


def _api_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiException)
    return error_response(int(error.status or 502), api_error_message(error), _reason_of(error))


_SERVICE_STATUS: list[tuple[type[ServiceError], int, str]] = [
    (NotFoundError, 404, "NotFound"),
    (FrozenError, 423, "Frozen"),  # before ConflictError, which it is a kind of
    (ConflictError, 409, "Conflict"),
    (ForbiddenError, 403, "Forbidden"),
]


def _service_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ServiceError)
    code, reason = next(
        ((c, r) for kind, c, r in _SERVICE_STATUS if isinstance(error, kind)), (400, "BadRequest")
    )
    # A refusal the service words for people (approving without the approver role) keeps the
    # API server's status: a 403 stays a 403.
    if isinstance(cause := error.__context__, ApiException) and cause.status:
        code, reason = int(cause.status), _reason_of(cause)
    return error_response(code, str(error), reason)


def _bad_request(_: Request, error: Exception) -> JSONResponse:
    return error_response(422, str(error), "Invalid")


def _validation(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = [
        f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'body'}: {e.get('msg')}" for e in error.errors()
    ]
    return error_response(422, "; ".join(problems) or "invalid request", "Invalid")


def _http_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    reason = HTTPStatus(error.status_code).phrase.replace(" ", "")
    return error_response(error.status_code, str(error.detail), reason)


def _unreachable(_: Request, error: Exception) -> JSONResponse:
    return error_response(503, f"cannot reach the Kubernetes API server: {error}", "ServiceUnavailable")


def _busy(_: Request, error: Exception) -> JSONResponse:
    response = error_response(
        503,
        "the server follows as many callers' views (or holds as many clients) as it may, all in "
        "use by open pages; close a page or try again shortly",
        "ServiceUnavailable",
    )
    response.headers["Retry-After"] = "10"
    return response


def _unauthenticated(_: Request, error: Exception) -> JSONResponse:
    return error_response(401, "no credentials: send `Authorization: Bearer <token>`", "Unauthorized")


def _internal(_: Request, error: Exception) -> JSONResponse:
    log.exception("unexpected error", exc_info=error)  # the details stay in the server's log
    return error_response(500, "internal error; the server's log has the details", "InternalError")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiException, _api_error)
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(BadRequest, _bad_request)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(aiohttp.ClientError, _unreachable)
    app.add_exception_handler(TimeoutError, _unreachable)
    app.add_exception_handler(NoCredentialsError, _unauthenticated)
    app.add_exception_handler(PoolFullError, _busy)
    app.add_exception_handler(Exception, _internal)
