"""Who may talk to the web server at all, and the headers and limits every answer gets.

Kubernetes decides what a caller may do (web/identity.py); this module decides whether a
request reaches the routes:

- `alecton dashboard` (local mode) binds 127.0.0.1 and holds a random per-run token. The
  first visit carries it in the URL (`/?token=...`): it is moved into a cookie and the URL
  is cleaned by a redirect. Later requests present the cookie or `Authorization: Bearer
  <token>` (curl). Without it, 401: other users of the machine and other sites cannot use
  the person's kubeconfig through it. The Host header must name the loopback address the
  server listens on (a DNS-rebinding page cannot reach it by another name), and writes
  authenticated by the cookie must come from the page's own Origin (no cross-site forms).
- `alecton web` (proxy mode, in a cluster) needs a bearer token on every API request:
  the authenticating proxy's, passed on to Kubernetes as the caller.

`admit` is the pure decision; `Guard`, `SecurityHeaders` and `BodyLimit` are thin ASGI
wrappers around it.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES = 1024 * 1024
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Pages and static files need no token in proxy mode: they hold nothing, and the proxy in
# front decides who sees them. Every /v1 call needs the caller's identity.
API_PREFIX = "/v1/"
HEALTH_PATH = "/healthz"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    # The first URL carries the session token: never send it to another site.
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


@dataclass(frozen=True)
class LocalSession:
    """The per-run token of `alecton dashboard` and where it may be used from."""

    token: str
    port: int

    @property
    def cookie(self) -> str:
        # Cookies are shared by every port of a host: the port keeps two dashboards apart.
        return f"alecton_dashboard_{self.port}"

    @property
    def hosts(self) -> frozenset[str]:
        return frozenset({f"127.0.0.1:{self.port}", f"localhost:{self.port}"})

    def origins(self) -> frozenset[str]:
        return frozenset(f"http://{host}" for host in self.hosts)

    def matches(self, presented: str) -> bool:
        return bool(presented) and hmac.compare_digest(presented.encode(), self.token.encode())


@dataclass(frozen=True)
class RequestFacts:
    method: str
    path: str
    query: str
    host: str
    origin: str
    authorization: str
    cookies: dict[str, str]


@dataclass(frozen=True)
class Verdict:
    """Let the request through (`status` 0), or answer it here."""

    status: int = 0
    error: str = ""
    reason: str = ""
    redirect: str = ""  # a Location, with the session cookie set
    set_cookie: str = ""


def bearer(authorization: str) -> str:
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def admit(facts: RequestFacts, session: LocalSession | None) -> Verdict:
    """Whether a request reaches the routes. `session` None is proxy mode."""
    if session is None:
        if facts.path.startswith(API_PREFIX) and not bearer(facts.authorization):
            return Verdict(
                401,
                "no credentials: send `Authorization: Bearer <token>` (the authenticating proxy does this)",
                "Unauthorized",
            )
        return Verdict()
    if facts.host not in session.hosts:
        return Verdict(421, f"this server answers only to {sorted(session.hosts)[0]}", "MisdirectedRequest")
    if facts.path == HEALTH_PATH:
        return Verdict()  # says only that the server runs
    query = dict(parse_qsl(facts.query, keep_blank_values=True))
    if facts.method == "GET" and "token" in query and not facts.path.startswith(API_PREFIX):
        if not session.matches(query["token"]):
            return Verdict(
                401, "this link's token is not the dashboard's; use the URL it printed", "Unauthorized"
            )
        rest = urlencode([(k, v) for k, v in parse_qsl(facts.query, keep_blank_values=True) if k != "token"])
        return Verdict(
            303,
            redirect=facts.path + (f"?{rest}" if rest else ""),
            set_cookie=f"{session.cookie}={session.token}; Path=/; HttpOnly; SameSite=Strict",
        )
    if session.matches(bearer(facts.authorization)):
        return Verdict()  # a header no other site can make a browser send
    if not session.matches(facts.cookies.get(session.cookie, "")):
        return Verdict(
            401, "not signed in to this dashboard: open the URL `alecton dashboard` printed", "Unauthorized"
        )
    if facts.method not in SAFE_METHODS and facts.origin not in session.origins():
        return Verdict(403, "a change must come from the dashboard's own page (Origin check)", "Forbidden")
    return Verdict()


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}


def facts_of(scope: Scope) -> RequestFacts:
    headers = _headers(scope)
    cookies: dict[str, str] = {}
    if raw := headers.get("cookie"):
        parsed: SimpleCookie = SimpleCookie()
        try:
            parsed.load(raw)
        except Exception:  # a malformed cookie header is no cookie
            parsed = SimpleCookie()
        cookies = {key: morsel.value for key, morsel in parsed.items()}
    return RequestFacts(
        method=str(scope.get("method", "GET")).upper(),
        path=str(scope.get("path", "/")),
        query=(scope.get("query_string") or b"").decode("latin-1"),
        host=headers.get("host", ""),
        origin=headers.get("origin", ""),
        authorization=headers.get("authorization", ""),
        cookies=cookies,
    )


async def _answer(send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> None:
    payload = json.dumps(body, separators=(",", ":")).encode() + b"\n"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class Guard:
    def __init__(self, app: ASGIApp, session: LocalSession | None) -> None:
        self.app, self.session = app, session

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        verdict = admit(facts_of(scope), self.session)
        if verdict.redirect:
            headers = [(b"location", verdict.redirect.encode()), (b"set-cookie", verdict.set_cookie.encode())]
            await _answer(send, verdict.status, {}, headers)
        elif verdict.status:
            body = {"error": verdict.error, "reason": verdict.reason, "code": verdict.status}
            await _answer(send, verdict.status, body, [])
        else:
            await self.app(scope, receive, send)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
                if str(scope.get("path", "")).startswith(API_PREFIX):
                    message["headers"].append((b"cache-control", b"no-store"))
            await send(message)

        await self.app(scope, receive, with_headers if scope["type"] == "http" else send)


class BodyLimit:
    """413 for request bodies over `limit` bytes, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _headers(scope).get("content-length", "")
        too_large = {"error": f"request body over {self.limit} bytes", "reason": "RequestEntityTooLarge",
                     "code": 413}  # fmt: skip
        if declared.isdigit() and int(declared) > self.limit:
            await _answer(send, 413, too_large, [])
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLargeError
            return message

        try:
            await self.app(scope, counted, send)
        except BodyTooLargeError:
            await _answer(send, 413, too_large, [])


class BodyTooLargeError(Exception):
    pass
