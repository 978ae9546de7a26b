"""The web server's own behaviour that needs no cluster: limits, error shapes, headers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alecton.kube.client import ApiException, KubeClient
from alecton.service.errors import ForbiddenError, NotFoundError
from alecton.web.identity import Identity
from alecton.web.security import LocalSession
from alecton.web.server import WebSettings, asgi
from fastapi.testclient import TestClient

TOKEN = "t" * 32
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Host": "127.0.0.1:8765"}


class Refusing(Identity):
    """An identity whose API calls fail the way the test needs (no cluster here)."""

    mode = "local"

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def client(self, token: str) -> KubeClient:
        raise self.error


def client(error: Exception) -> TestClient:
    settings = WebSettings(Refusing(error), "team", LocalSession(TOKEN, 8765))
    return TestClient(asgi(settings), base_url="http://127.0.0.1:8765", raise_server_exceptions=False)


def forbidden() -> ApiException:
    error = ApiException(status=403, reason="Forbidden")
    error.body = b'{"reason": "Forbidden", "message": "promotions.alecton.dev is forbidden"}'
    return error


def worded_refusal() -> ForbiddenError:
    """How the service words a refusal for people: a ForbiddenError raised while handling the 403."""
    try:
        raise forbidden()
    except ApiException:
        try:
            raise ForbiddenError("approving a promotion needs the alecton-approver role") from None
        except ForbiddenError as error:
            return error


@pytest.mark.parametrize(
    ("error", "code", "reason"),
    [
        (forbidden(), 403, "Forbidden"),
        (worded_refusal(), 403, "Forbidden"),  # a 403 stays a 403 however it is worded
        (NotFoundError("no such thing"), 404, "NotFound"),
        (RuntimeError("boom"), 500, "InternalError"),
    ],
)
def test_errors_are_json_with_the_kubernetes_reason_and_the_security_headers(
    error: Exception, code: int, reason: str
) -> None:
    answer = client(error).get("/v1/images", headers=HEADERS)
    assert answer.status_code == code and answer.json()["reason"] == reason
    assert "boom" not in answer.text  # an unexpected error's details stay in the log
    assert (
        answer.headers["x-frame-options"] == "DENY"
        and "default-src 'self'" in answer.headers["content-security-policy"]
    )


def test_a_body_over_the_limit_is_413_whether_declared_or_streamed() -> None:
    app = client(forbidden())

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"x" * 65536  # 2.5 MiB without a Content-Length

    streamed = app.post(
        "/v1/images", content=chunks(), headers={**HEADERS, "content-type": "application/json"}
    )
    assert streamed.status_code == 413 and streamed.json()["reason"] == "RequestEntityTooLarge"
    declared = app.post("/v1/images", content=b"x" * (1024 * 1024 + 1), headers=HEADERS)
    assert declared.status_code == 413


def test_the_page_needs_no_token_and_the_api_does() -> None:
    app = client(forbidden())
    page = app.get("/", headers={"Host": "127.0.0.1:8765"})
    assert page.status_code == 200 and 'src="/static/app.js"' in page.text
    assert app.get("/v1/images", headers={"Host": "127.0.0.1:8765"}).status_code == 401
    assert app.get("/nope", headers=HEADERS).json() == {
        "error": "Not Found",
        "reason": "NotFound",
        "code": 404,
    }
