"""Who may talk to the web server at all, and the headers and limits every answer gets.

Kubernetes decides what a caller may do (web/identity.py); this module decides whether a
request reaches the routes:

- `alecton dashboard` (local mode) binds 127.0.0.1 and holds a random per-run token. The
  URL it prints carries the token in its fragment (`/#token=...`), which browsers never
  send to any server; the page keeps it in localStorage (scoped to this origin, port
  included) and sends `Authorization: Bearer <token>` with every API call. There is no
  cookie: cookies are shared by every port of a host, so any other local server the
  person visited would receive one. Without the token, 401: other users of the machine
  and other sites cannot use the person's kubeconfig through it. The Host header must name
  the loopback address the server listens on (a DNS-rebinding page cannot reach it by
  another name). The page and its static files hold nothing and need no token.
- `alecton web` (proxy mode, in a cluster) needs a bearer token on every API request:
  the authenticating proxy's, passed on to Kubernetes as the caller.
- In both, a write whose Origin is another site's is refused: an authenticating proxy may
  hold a session cookie, and a cross-site form must not ride on it.

`admit` is the pure decision; `Guard`, `SecurityHeaders` and `BodyLimit` are thin ASGI
wrappers around it.
"""

from __future__ import annotations

import contextlib
import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

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
    def hosts(self) -> frozenset[str]:
        return frozenset({f"127.0.0.1:{self.port}", f"localhost:{self.port}"})

    def matches(self, presented: str) -> bool:
        return bool(presented) and hmac.compare_digest(presented.encode(), self.token.encode())


@dataclass(frozen=True)
class RequestFacts:
    method: str
    path: str
    host: str
    origin: str
    authorization: str


@dataclass(frozen=True)
class Verdict:
    """Let the request through (`status` 0), or answer it here."""

    status: int = 0
    error: str = ""
    reason: str = ""


def bearer(authorization: str) -> str:
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _foreign_origin(facts: RequestFacts) -> bool:
    """A write sent by a page of another origin (browsers always send Origin on those)."""
    if facts.method in SAFE_METHODS or not facts.origin:
        return False
    return urlsplit(facts.origin).netloc != facts.host


def admit(facts: RequestFacts, session: LocalSession | None) -> Verdict:
    """Whether a request reaches the routes. `session` None is proxy mode."""
    if session is not None and facts.host not in session.hosts:
        return Verdict(421, f"this server answers only to {sorted(session.hosts)[0]}", "MisdirectedRequest")
    if not facts.path.startswith(API_PREFIX):
        return Verdict()  # the page, its static files, /healthz: nothing to protect
    presented = bearer(facts.authorization)
    if session is None and not presented:
        return Verdict(
            401,
            "no credentials: send `Authorization: Bearer <token>` (the authenticating proxy does this)",
            "Unauthorized",
        )
    if session is not None and not session.matches(presented):
        return Verdict(
            401,
            "not signed in to this dashboard: open the URL `alecton dashboard` printed, or send "
            "`Authorization: Bearer <its token>`",
            "Unauthorized",
        )
    if _foreign_origin(facts):
        return Verdict(403, "a change must come from the dashboard's own page (Origin check)", "Forbidden")
    return Verdict()


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}


def facts_of(scope: Scope) -> RequestFacts:
    # The first of repeated headers, as Starlette's request.headers.get gives the routes.
    headers: dict[str, str] = {}
    for key, value in scope.get("headers") or []:
        headers.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
    return RequestFacts(
        method=str(scope.get("method", "GET")).upper(),
        path=str(scope.get("path", "/")),
        host=headers.get("host", ""),
        origin=headers.get("origin", ""),
        authorization=headers.get("authorization", ""),
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
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no websocket routes: refuse rather than pass unchecked
            await send({"type": "websocket.close", "code": 1008})
            return
        verdict = admit(facts_of(scope), self.session)
        if verdict.status:
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
        too_large = {"error": f"request body over {self.limit} bytes", "reason": "RequestEntityTooLarge",
                     "code": 413}  # fmt: skip
        declared = _headers(scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            await _answer(send, 413, too_large, [])
            return
        seen, refused = 0, False

        async def counted() -> Message:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit and not refused:
                    # Answer here: the framework would call a failed body read a 400.
                    refused = True
                    await _answer(send, 413, too_large, [])
                    raise BodyTooLargeError
            return message

        async def unless_refused(message: Message) -> None:
            if not refused:
                await send(message)

        with contextlib.suppress(BodyTooLargeError):
            await self.app(scope, counted, unless_refused)


class BodyTooLargeError(Exception):
    pass
