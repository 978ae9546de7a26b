"""Who reaches the web server's routes (web/security.py), decided without a server."""

from __future__ import annotations

import pytest
from alecton.web.security import LocalSession, RequestFacts, admit, facts_of

SESSION = LocalSession("s3cret-token", 8765)
HOST = "127.0.0.1:8765"
COOKIE = {SESSION.cookie: "s3cret-token"}


def facts(
    method: str = "GET",
    path: str = "/v1/overview",
    query: str = "",
    host: str = HOST,
    origin: str = "",
    authorization: str = "",
    cookies: dict[str, str] | None = None,
) -> RequestFacts:
    return RequestFacts(method, path, query, host, origin, authorization, cookies or {})


def test_the_first_visit_trades_the_token_in_the_url_for_a_cookie_and_a_clean_url() -> None:
    verdict = admit(facts(path="/", query="token=s3cret-token&namespace=team-a"), SESSION)
    assert verdict.status == 303 and verdict.redirect == "/?namespace=team-a"
    assert verdict.set_cookie.startswith(f"{SESSION.cookie}=s3cret-token;")
    assert "HttpOnly" in verdict.set_cookie and "SameSite=Strict" in verdict.set_cookie


@pytest.mark.parametrize(
    "request_facts",
    [
        facts(),  # nothing presented
        facts(path="/", query="token=wrong"),
        facts(cookies={SESSION.cookie: "wrong"}),
        facts(cookies={"alecton_dashboard_9999": "s3cret-token"}),  # another dashboard's cookie
        facts(authorization="Bearer wrong"),
        facts(authorization="Basic s3cret-token"),
        facts(path="/v1/overview", query="token=s3cret-token"),  # the URL token is for the page only
    ],
)
def test_without_the_token_nothing_is_served(request_facts: RequestFacts) -> None:
    assert admit(request_facts, SESSION).status == 401


def test_the_cookie_or_the_bearer_token_lets_requests_through() -> None:
    assert admit(facts(cookies=COOKIE), SESSION).status == 0
    assert admit(facts(method="POST", authorization="Bearer s3cret-token"), SESSION).status == 0
    assert admit(facts(method="POST", cookies=COOKIE, origin=f"http://{HOST}"), SESSION).status == 0
    assert admit(facts(method="POST", cookies=COOKIE, origin="http://localhost:8765"), SESSION).status == 0


@pytest.mark.parametrize("origin", ["", "http://evil.example", "http://127.0.0.1:9999", "null"])
def test_a_write_with_the_cookie_must_come_from_the_dashboard_itself(origin: str) -> None:
    verdict = admit(facts(method="POST", cookies=COOKIE, origin=origin), SESSION)
    assert verdict.status == 403 and "Origin" in verdict.error


@pytest.mark.parametrize("host", ["evil.example:8765", "127.0.0.1:9999", "", "0.0.0.0:8765"])
def test_another_host_name_is_refused_even_with_the_token(host: str) -> None:
    # A DNS-rebinding page reaches 127.0.0.1 under its own name: the Host header gives it away.
    assert admit(facts(host=host, cookies=COOKIE), SESSION).status == 421


def test_the_health_path_needs_no_token_but_the_right_host() -> None:
    assert admit(facts(path="/healthz"), SESSION).status == 0
    assert admit(facts(path="/healthz", host="evil.example:8765"), SESSION).status == 421


def test_proxy_mode_needs_a_bearer_token_for_the_api_but_not_for_the_page() -> None:
    assert admit(facts(host="alecton.example"), None).status == 401
    assert admit(facts(host="alecton.example", authorization="Bearer abc"), None).status == 0
    assert admit(facts(host="alecton.example", path="/"), None).status == 0
    assert admit(facts(host="alecton.example", path="/static/app.js"), None).status == 0


def test_request_facts_are_read_from_the_asgi_scope() -> None:
    scope = {
        "type": "http",
        "method": "post",
        "path": "/v1/applications/deploy",
        "query_string": b"namespace=team-a",
        "headers": [
            (b"Host", HOST.encode()),
            (b"Origin", f"http://{HOST}".encode()),
            (b"Cookie", f"other=1; {SESSION.cookie}=s3cret-token".encode()),
        ],
    }
    read = facts_of(scope)
    assert (read.method, read.host, read.cookies[SESSION.cookie]) == ("POST", HOST, "s3cret-token")
    assert facts_of({**scope, "headers": [(b"cookie", b"\x00bad;;=")]}).cookies == {}
