"""Asking an OCI registry which digest a tag names (its manifest, hashed here), with the
distribution spec's two logins: Basic, and a Bearer token from the registry's realm.

Synchronous and bounded: `alecton image create --resolve-digest` runs it once per call.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import http.client
import json
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

from alecton.reconcile.image_ref import ImageReference, parse_challenge
from alecton.reconcile.token_realm import realm_address_refusal, realm_url_refusal

# Every manifest kind a tag may name: a multi-platform index is pinned as a whole.
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_TOKEN_BYTES = 64 * 1024
SESSION_TIMEOUTS = 3  # a session's requests together: this many times one request's deadline


class RegistryError(RuntimeError):
    """The registry could not say: unreachable, refused the login, no such tag."""


class RegistryUnreachableError(RegistryError):
    """No answer over TLS. The message is the same whatever the cause (refused, timed out, not
    TLS): it lands in a Deployment's status, and a tenant naming host:port after host:port
    must not learn which ports of the cluster network are open. `detail` says which, for
    the operator's log and for the CLI (a person's own call)."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


class LoginRequiredError(RegistryError):
    """The registry answers only with a login, and none was given."""


@dataclass(frozen=True)
class RegistryLogin:
    username: str = ""
    password: str = field(default="", repr=False)
    ca_file: Path | None = None
    timeout: float = 15.0
    ca_pem: str = field(default="", repr=False)  # a CA bundle from a Secret (instead of a file)


def _context(login: RegistryLogin) -> ssl.SSLContext:
    return ssl.create_default_context(
        cafile=str(login.ca_file) if login.ca_file else None, cadata=login.ca_pem or None
    )


def _basic(login: RegistryLogin) -> str:
    return "Basic " + base64.b64encode(f"{login.username}:{login.password}".encode()).decode()


# Why a connection to (host, port) at an IP address is refused; None: connect.
AddressCheck = Callable[[str, int, str], "str | None"]


class RealmRefusedError(RegistryError):
    """A token realm the operator does not ask (token_realm's rule)."""


def _checked_connection(
    host: str, port: int, check: AddressCheck, timeout: float, source: tuple[str, int] | None
) -> socket.socket:
    """A socket to `host`:`port`, connected only to addresses `check` allows, judged all
    before the first connect (a refused one reads the same whether its port is open or not)
    and connected to as judged (a name re-resolving elsewhere, DNS rebinding, changes nothing)."""
    addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    for *_, sockaddr in addresses:
        why = check(host, port, str(sockaddr[0]))
        if why:
            raise RealmRefusedError(why)
    last: OSError = OSError(f"{host} resolved to no address")
    for family, kind, proto, _, sockaddr in addresses:
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            if source:
                sock.bind(source)
            sock.connect(sockaddr)
        except OSError as error:
            sock.close()
            last = error
            continue
        return sock
    raise last


class _DeadlineConnection(http.client.HTTPSConnection):
    """An HTTPS connection whose socket is shut down at a deadline: a socket timeout bounds
    each read only, and a registry that sends a byte at a time would hold a worker forever.
    With `check`, it connects only to the addresses it allows (through a proxy: those the
    target's name resolves to here; the proxy resolves it again)."""

    def __init__(self, host: str, deadline: float, check: AddressCheck | None = None, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self.deadline = deadline
        self._expiry: threading.Timer | None = None
        self.check = check
        if check is not None:
            self._create_connection = self._connect_checked  # type: ignore[method-assign]

    def _connect_checked(
        self, address: tuple[str, int], timeout: float, source: tuple[str, int] | None = None
    ) -> socket.socket:
        assert self.check is not None
        tunnel_host: str | None = self._tunnel_host  # type: ignore[attr-defined]
        if not tunnel_host:
            return _checked_connection(address[0], address[1], self.check, timeout, source)
        tunnel_port: int = self._tunnel_port or 443  # type: ignore[attr-defined]
        for *_, sockaddr in socket.getaddrinfo(tunnel_host, tunnel_port, type=socket.SOCK_STREAM):
            if why := self.check(tunnel_host, tunnel_port, str(sockaddr[0])):
                raise RealmRefusedError(why)
        return socket.create_connection(address, timeout, source)

    def connect(self) -> None:
        super().connect()
        sock = self.sock
        self._expiry = threading.Timer(max(self.deadline - time.monotonic(), 0.0), _shut, (sock,))
        self._expiry.daemon = True
        self._expiry.start()

    def cancel_deadline(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # closed already: the request ended in time
        sock.shutdown(socket.SHUT_RDWR)


class _DeadlineHandler(urllib.request.HTTPSHandler):
    def __init__(self, context: ssl.SSLContext, deadline: float, check: AddressCheck | None) -> None:
        super().__init__(context=context)
        self.deadline = deadline  # one for a request and its redirects
        self.check = check  # for every connection, redirects included
        self.connections: list[_DeadlineConnection] = []

    def https_open(self, req: urllib.request.Request) -> Any:
        def connection(host: str, **kwargs: Any) -> _DeadlineConnection:
            self.connections.append(_DeadlineConnection(host, self.deadline, self.check, **kwargs))
            return self.connections[-1]

        return self.do_open(connection, req, context=self._context)  # type: ignore[attr-defined]


class _HttpsRedirectsOnly(urllib.request.HTTPRedirectHandler):
    """A registry (whoever runs it) may send the operator to blob storage over https, never to
    plain http or ftp: those reach metadata services and cluster-internal endpoints."""

    def redirect_request(  # type: ignore[override]
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Message, newurl: str
    ) -> urllib.request.Request | None:
        if urllib.parse.urlsplit(newurl).scheme.lower() != "https":
            # Not an OSError: a refusal of ours, worded as such (not "could not be reached").
            raise RegistryError("the registry redirected to a URL that is not https: refused")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _read(
    request: urllib.request.Request,
    login: RegistryLogin,
    limit: int,
    seconds: float,
    check: AddressCheck | None = None,
) -> tuple[bytes, Message]:
    """The body (at most `limit` + 1 bytes) and headers of `request`, over https only, in full
    within `seconds` (redirects included); URLError (an OSError) when not; RealmRefusedError
    when `check` refuses an address of it or of a redirect's target."""
    deadline = time.monotonic() + seconds
    https = _DeadlineHandler(_context(login), deadline, check)
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),  # HTTPS_PROXY and NO_PROXY, as urlopen honoured them
        https,
        _HttpsRedirectsOnly(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    try:
        with opener.open(request, timeout=seconds) as answer:
            body: bytes = answer.read(limit + 1)
            headers: Message = answer.headers
    finally:
        for connection in https.connections:
            connection.cancel_deadline()
    # The deadline shuts the socket, which reads as an early end: never take that for a whole answer.
    if time.monotonic() >= deadline:
        raise urllib.error.URLError(f"no full answer within {seconds:.3g} s")
    return body, headers


def _token(challenge: dict[str, str], reference: ImageReference, login: RegistryLogin, seconds: float) -> str:
    """A Bearer token from the realm the registry named (with the login, when given), if
    token_realm's rule allows it: its answer goes back to the registry."""
    realm = challenge.get("realm", "")
    if why := realm_url_refusal(reference.api_host, realm, with_login=bool(login.username)):
        raise RealmRefusedError(why)
    query = {"scope": challenge.get("scope") or f"repository:{reference.repository}:pull"}
    if service := challenge.get("service"):
        query["service"] = service
    request = urllib.request.Request(f"{realm}?{urllib.parse.urlencode(query)}")  # noqa: S310
    if login.username:
        request.add_unredirected_header("Authorization", _basic(login))
    unreachable = f"registry {reference.registry}: its token realm could not be reached over TLS"
    try:
        check = functools.partial(realm_address_refusal, reference.api_host)
        body = json.loads(_read(request, login, MAX_TOKEN_BYTES, seconds, check)[0])
    except RealmRefusedError as error:
        # Worded as a name that does not resolve: realm after realm, a tenant would otherwise
        # read from status which internal names exist (another namespace's Services).
        raise RegistryUnreachableError(unreachable, str(error)) from None
    except urllib.error.HTTPError as error:
        raise RegistryError(f"registry {reference.registry} refused a token: HTTP {error.code}") from None
    except ValueError as error:
        raise RegistryError(f"registry {reference.registry}: no token from its realm: {error}") from None
    except OSError as error:
        raise RegistryUnreachableError(unreachable, str(error)) from None
    token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise RegistryError(f"registry {reference.registry}: its realm answered without a token")
    return token


class RegistrySession:
    """GETs in one repository of a registry, logging in once when it asks (Basic with the
    login, or a Bearer token from the realm it names). The Authorization header is never
    sent on to a redirect's target (blob storage behind a registry answers signed URLs).
    Each request has the login's timeout, and all of them together SESSION_TIMEOUTS times
    that: a registry answering each just in time would otherwise hold a worker for as many
    deadlines as it names blobs."""

    def __init__(self, reference: ImageReference, login: RegistryLogin) -> None:
        self.reference, self.login, self.authorization = reference, login, ""
        self.ends_at = time.monotonic() + SESSION_TIMEOUTS * login.timeout

    def _seconds(self) -> float:
        """What the next request may take: its own deadline, within the session's."""
        remaining = self.ends_at - time.monotonic()
        if remaining <= 0:
            total = SESSION_TIMEOUTS * self.login.timeout
            raise RegistryError(f"registry {self.reference.registry}: no full answer within {total:g} s")
        return min(self.login.timeout, remaining)

    def get(self, path: str, accept: str, limit: int) -> tuple[bytes, Message] | None:
        """The body (at most `limit` bytes) and headers at /v2/<repository>/<path>; None on
        404; RegistryError otherwise."""
        ref = self.reference
        url = f"https://{ref.api_host}/v2/{ref.repository}/{path}"
        for _attempt in range(2):  # as it is first, then with what the challenge asks
            request = urllib.request.Request(url, headers={"Accept": accept})
            if self.authorization:
                request.add_unredirected_header("Authorization", self.authorization)
            try:
                body, headers = _read(request, self.login, limit, self._seconds())
            except urllib.error.HTTPError as error:
                if error.code == 401 and not self.authorization:
                    # Only the registry itself may ask for its login: a redirect's target
                    # (blob storage) naming a realm would receive it there.
                    if urllib.parse.urlsplit(error.url or url).netloc.lower() != ref.api_host.lower():
                        raise RegistryError(
                            f"registry {ref.registry}: the target of its redirect asked for a login: refused"
                        ) from None
                    self.authorization = self._answer(error.headers.get("WWW-Authenticate", ""))
                    continue
                if error.code == 404:
                    return None
                words = "the login was refused" if error.code in (401, 403) else f"HTTP {error.code}"
                raise RegistryError(f"registry {ref.registry}: {words}") from None
            except ValueError as error:
                raise RegistryError(f"registry {ref.registry} could not be asked: {error}") from None
            except OSError as error:
                raise RegistryUnreachableError(
                    f"registry {ref.registry} could not be reached over TLS", str(error)
                ) from None
            if len(body) > limit:
                raise RegistryError(f"registry {ref.registry}: {path} is larger than {limit} bytes")
            return body, headers
        raise RegistryError(f"registry {ref.registry} refused the login")

    def _answer(self, header: str) -> str:
        challenge = parse_challenge(header)
        if challenge.scheme == "bearer":
            return "Bearer " + _token(challenge.params, self.reference, self.login, self._seconds())
        if self.login.username:
            return _basic(self.login)
        raise LoginRequiredError(f"registry {self.reference.registry} asks for a login and none was given")


def resolve_digest(reference: ImageReference, login: RegistryLogin) -> str:
    """The sha256 digest of the manifest `reference`'s tag names now: the bytes received,
    hashed here (a registry's Docker-Content-Digest that disagrees is an error)."""
    if reference.digest:
        return reference.digest
    answer = RegistrySession(reference, login).get(
        f"manifests/{reference.manifest_reference}", MANIFEST_TYPES, MAX_MANIFEST_BYTES
    )
    if answer is None:
        where = f"{reference.registry}/{reference.repository}"
        raise RegistryError(f"{where}:{reference.manifest_reference} does not exist")
    body, headers = answer
    computed = "sha256:" + hashlib.sha256(body).hexdigest()
    named = headers.get("Docker-Content-Digest", "")
    if named and named != computed:
        raise RegistryError(
            f"registry {reference.registry} named digest {named} for a manifest hashing to {computed}"
        )
    return computed
