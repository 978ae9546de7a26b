"""Who reaches the web server's routes (web/security.py), decided without a server."""

from __future__ import annotations

import pytest
from alecton.web.security import LocalSession, RequestFacts, admit, facts_of

SESSION = LocalSession("s3cret-token", 8765)
HOST = "127.0.0.1:8765"
TOKEN = "Bearer s3cret-token"


def facts(
    method: str = "GET",
    path: str = "/v1/overview",
    host: str = HOST,
    origin: str = "",
    authorization: str = "",
) -> RequestFacts:
    return RequestFacts(method, path, host, origin, authorization)


@pytest.mark.parametrize(
    "request_facts",
    [
        facts(),  # nothing presented
        facts(authorization="Bearer wrong"),
        facts(authorization="Bearer s3cret-toke"),
        facts(authorization="Basic s3cret-token"),
        facts(authorization="s3cret-token"),
        facts(method="POST", path="/v1/applications/deploy"),
    ],
)
def test_without_the_token_no_api_call_is_served(request_facts: RequestFacts) -> None:
    verdict = admit(request_facts, SESSION)
    assert verdict.status == 401 and "alecton dashboard" in verdict.error


def test_the_token_in_the_header_lets_api_calls_through() -> None:
    assert admit(facts(authorization=TOKEN), SESSION).status == 0
    assert admit(facts(authorization="bearer  s3cret-token "), SESSION).status == 0
    assert admit(facts(method="POST", authorization=TOKEN), SESSION).status == 0  # curl: no Origin
    assert admit(facts(method="POST", authorization=TOKEN, origin=f"http://{HOST}"), SESSION).status == 0


def test_the_page_and_its_files_need_no_token_they_hold_nothing() -> None:
    for path in ("/", "/static/app.js", "/healthz", "/openapi.json"):
        assert admit(facts(path=path), SESSION).status == 0


@pytest.mark.parametrize("origin", ["http://evil.example", "http://127.0.0.1:9999", "null"])
def test_a_write_from_another_origin_is_refused_even_with_credentials(origin: str) -> None:
    verdict = admit(facts(method="POST", authorization=TOKEN, origin=origin), SESSION)
    assert verdict.status == 403 and "Origin" in verdict.error
    # Proxy mode too: the proxy in front may authenticate by a cookie of its own.
    proxied = facts(method="PUT", host="alecton.example", authorization="Bearer oidc", origin=origin)
    assert admit(proxied, None).status == 403
    # Reads are harmless: another origin cannot read the answer (no CORS headers, ever).
    assert admit(facts(authorization=TOKEN, origin=origin), SESSION).status == 0


@pytest.mark.parametrize("host", ["evil.example:8765", "127.0.0.1:9999", "", "0.0.0.0:8765"])
def test_another_host_name_is_refused_even_with_the_token(host: str) -> None:
    # A DNS-rebinding page reaches 127.0.0.1 under its own name: the Host header gives it away.
    assert admit(facts(host=host, authorization=TOKEN), SESSION).status == 421
    assert admit(facts(host=host, path="/"), SESSION).status == 421


def test_proxy_mode_needs_a_bearer_token_for_the_api_but_not_for_the_page() -> None:
    assert admit(facts(host="alecton.example"), None).status == 401
    assert admit(facts(host="alecton.example", authorization="Bearer abc"), None).status == 0
    assert admit(facts(host="alecton.example", path="/"), None).status == 0
    assert admit(facts(host="alecton.example", path="/static/app.js"), None).status == 0
    same_site = facts(
        method="POST", host="alecton.example", authorization="Bearer a", origin="https://alecton.example"
    )
    assert admit(same_site, None).status == 0


def test_request_facts_are_read_from_the_asgi_scope_first_header_wins() -> None:
    scope = {
        "type": "http",
        "method": "post",
        "path": "/v1/applications/deploy",
        "headers": [
            (b"Host", HOST.encode()),
            (b"Origin", f"http://{HOST}".encode()),
            (b"Authorization", TOKEN.encode()),
            (b"authorization", b"Bearer other"),
        ],
    }
    read = facts_of(scope)
    assert (read.method, read.host, read.origin, read.authorization) == (
        "POST",
        HOST,
        f"http://{HOST}",
        TOKEN,
    )
