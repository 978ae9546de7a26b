"""Red team of issue 27 (registry logins, signatures, the registry client): a tenant who may
write Images and Applications in their namespace and runs a registry of their own, against
the operator's registry client. Real TLS servers of the test's own, no mocks of urllib."""

from __future__ import annotations

import http.server
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from alecton.local import pki
from alecton.reconcile.image_ref import parse_reference
from alecton.registry.digest import RegistryError, RegistryLogin, RegistrySession
from alecton.registry.signatures import fetch_signatures

DIGEST = "sha256:" + "a" * 64


@dataclass
class Tls:
    server: ssl.SSLContext
    ca_pem: str


@pytest.fixture
def tls(tmp_path: Path) -> Tls:
    ca = pki.CertificateAuthority()
    serving = ca.serving("registry")
    (tmp_path / "tls.crt").write_bytes(serving.cert_pem)
    (tmp_path / "tls.key").write_bytes(serving.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    return Tls(context, ca.cert_pem.decode())


def _serve(handler: type[http.server.BaseHTTPRequestHandler], tls: ssl.SSLContext | None) -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


class _Quiet(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def _in_thread(work: Callable[[], object], seconds: float) -> tuple[bool, BaseException | None]:
    """Run `work` in a daemon thread; (finished within `seconds`, what it raised)."""
    raised: list[BaseException | None] = [None]

    def run() -> None:
        try:
            work()
        except BaseException as error:
            raised[0] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive(), raised[0]


# --- Hole 1: a registry that answers one byte at a time holds the operator forever --------


@pytest.fixture
def dripping_registry(tls: Tls) -> Iterator[int]:
    """Answers a status line, then one byte of a header every 0.2 s for 30 s: each read
    gets a byte well within any socket timeout, so only a deadline on the whole request
    ends it."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip(conn: socket.socket) -> None:
        try:
            with tls.server.wrap_socket(conn, server_side=True) as wrapped:
                wrapped.recv(65536)
                wrapped.sendall(b"HTTP/1.1 200 OK\r\nX-Drip: ")
                until = time.monotonic() + 30
                while not stop.is_set() and time.monotonic() < until:
                    wrapped.sendall(b"a")
                    stop.wait(0.2)
        except OSError:
            pass

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()[1]
    stop.set()
    listener.close()


def test_a_registry_that_drips_its_answer_cannot_hold_the_operator_past_its_deadline(
    tls: Tls, dripping_registry: int
) -> None:
    """The tenant's Image names their own registry and their Application has spec.verify:
    the signature fetch (a worker thread of the operator, awaited by the reconcile) must
    end near its deadline, not when the registry lets it go."""
    reference = parse_reference(f"127.0.0.1:{dripping_registry}/team/web@{DIGEST}")
    login = RegistryLogin(timeout=1.0, ca_pem=tls.ca_pem)
    finished, raised = _in_thread(lambda: fetch_signatures(reference, login), 6.0)
    assert finished, "the fetch was still reading the registry's drip after 6 s (timeout 1 s)"
    assert isinstance(raised, RegistryError), raised


# --- Hole 2: a registry redirects the operator to plain http inside the cluster ----------------


@pytest.fixture
def redirecting_registry(tls: Tls) -> Iterator[tuple[int, list[str]]]:
    """A tenant's registry that answers every GET with a redirect to a plain-http service
    (standing in for 169.254.169.254 or a cluster-internal http endpoint)."""
    internal_hits: list[str] = []
    internal_port: list[int] = []

    class Internal(_Quiet):
        def do_GET(self) -> None:
            internal_hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ami-id\ninstance-id\n")

    class Registry(_Quiet):
        def do_GET(self) -> None:
            self.send_response(307)
            self.send_header("Location", f"http://127.0.0.1:{internal_port[0]}/latest/meta-data/")
            self.end_headers()

    internal = _serve(Internal, None)
    internal_port.append(next(internal))
    registry = _serve(Registry, tls.server)
    yield next(registry), internal_hits
    for rest in (registry, internal):
        next(rest, None)


def test_a_registry_cannot_redirect_the_operator_to_plain_http(
    tls: Tls, redirecting_registry: tuple[int, list[str]]
) -> None:
    port, internal_hits = redirecting_registry
    reference = parse_reference(f"127.0.0.1:{port}/team/web@{DIGEST}")
    with pytest.raises(RegistryError, match="not https"):
        fetch_signatures(reference, RegistryLogin(timeout=5, ca_pem=tls.ca_pem))
    assert internal_hits == [], "the operator followed an https registry's redirect to plain http"


# --- Hole 3: the token realm reads an internal https endpoint for the tenant -------


class _InternalTokenService(_Quiet):
    """An https service inside the network that answers JSON with a `token` (what the
    tenant wants read through the operator)."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(json.dumps({"token": "internal-only-value"}).encode())


def _challenge(handler: http.server.BaseHTTPRequestHandler, received: list[str], realm: str) -> None:
    """Record what the client sent, and answer 401 naming `realm` as the token realm."""
    received.append(handler.headers.get("Authorization", ""))
    handler.send_response(401)
    handler.send_header("WWW-Authenticate", f'Bearer realm="{realm}",service="x"')
    handler.end_headers()


RegistryFor = Callable[[int, list[str]], type[http.server.BaseHTTPRequestHandler]]


def _beside_an_internal_service(tls: Tls, registry_for: RegistryFor) -> Iterator[tuple[int, list[str]]]:
    """A tenant's registry (made knowing the internal service's port, and recording the
    Authorization it receives) served beside an internal token service."""
    received: list[str] = []
    internal = _serve(_InternalTokenService, tls.server)
    registry = _serve(registry_for(next(internal), received), tls.server)
    yield next(registry), received
    for rest in (registry, internal):
        next(rest, None)


def _read_through_the_registry(tls: Tls, port: int, received: list[str], match: str | None = None) -> None:
    """Ask the tenant's registry for a manifest: refused, and the internal answer never sent back."""
    reference = parse_reference(f"127.0.0.1:{port}/team/web@{DIGEST}")
    session = RegistrySession(reference, RegistryLogin(timeout=5, ca_pem=tls.ca_pem))
    with pytest.raises(RegistryError, match=match):
        session.get(f"manifests/{DIGEST}", "*/*", 1024)
    assert "Bearer internal-only-value" not in received, "the internal answer reached the tenant"


@pytest.fixture
def realm_reading_registry(tls: Tls) -> Iterator[tuple[int, list[str]]]:
    """A tenant's registry whose challenge names the internal service as its token realm."""

    def registry_for(internal_port: int, received: list[str]) -> type[http.server.BaseHTTPRequestHandler]:
        class Registry(_Quiet):
            def do_GET(self) -> None:
                _challenge(self, received, f"https://127.0.0.1:{internal_port}/internal/token")

        return Registry

    yield from _beside_an_internal_service(tls, registry_for)


def test_a_registrys_token_realm_is_not_a_read_back_channel_into_the_network(
    tls: Tls, realm_reading_registry: tuple[int, list[str]]
) -> None:
    _read_through_the_registry(tls, *realm_reading_registry)


@pytest.fixture
def realm_redirecting_registry(tls: Tls) -> Iterator[tuple[int, list[str]]]:
    """A tenant's registry whose realm is on its own host:port (allowed) and redirects the
    token request to the internal service named `localhost` (a name, not a literal)."""

    def registry_for(internal_port: int, received: list[str]) -> type[http.server.BaseHTTPRequestHandler]:
        class Registry(_Quiet):
            def do_GET(self) -> None:
                if self.path.startswith("/token"):
                    self.send_response(307)
                    self.send_header("Location", f"https://localhost:{internal_port}/internal/token")
                    self.end_headers()
                    return
                _challenge(self, received, f"https://127.0.0.1:{self.server.server_address[1]}/token")

        return Registry

    yield from _beside_an_internal_service(tls, registry_for)


def test_a_realm_on_the_registrys_own_host_cannot_redirect_into_the_network(
    tls: Tls, realm_redirecting_registry: tuple[int, list[str]]
) -> None:
    _read_through_the_registry(tls, *realm_redirecting_registry, match="token realm")


def _realm_naming_registry(tls: Tls, realm_host: str) -> Iterator[int]:
    """A tenant's registry whose challenge names `https://<realm_host>/token` as its realm."""

    class Registry(_Quiet):
        def do_GET(self) -> None:
            _challenge(self, [], f"https://{realm_host}/token")

    return _serve(Registry, tls.server)


def test_a_tenant_cannot_tell_which_internal_names_resolve_from_the_realm_refusal(tls: Tls) -> None:
    """Realm after realm, a tenant would map the cluster's DNS (another namespace's Services)
    if a realm resolving inside the network read differently in status from one that does
    not resolve: both are "could not be reached", the cause in the operator's log only."""
    messages = []
    for realm_host in ("localhost", "no-such-service.invalid"):
        registry = _realm_naming_registry(tls, realm_host)
        port = next(registry)
        try:
            reference = parse_reference(f"127.0.0.1:{port}/team/web@{DIGEST}")
            with pytest.raises(RegistryError) as raised:
                fetch_signatures(reference, RegistryLogin(timeout=2, ca_pem=tls.ca_pem))
        finally:
            next(registry, None)
        messages.append(str(raised.value).replace(str(port), "PORT"))
    assert messages[0] == messages[1], messages


# --- Hole 4: blob storage behind a redirect asks for a login, and gets the team's ---------------


@pytest.fixture
def challenging_storage(tls: Tls) -> Iterator[tuple[int, list[str]]]:
    """A registry that redirects anonymous blob requests to storage; the storage (row 73's
    attacker) answers 401 with a Bearer challenge naming a realm of its own."""
    realm_saw: list[str] = []
    ports: dict[str, int] = {}

    class Storage(_Quiet):
        def do_GET(self) -> None:
            if self.path.startswith("/token"):
                realm_saw.append(self.headers.get("Authorization", ""))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b'{"token": "t"}')
                return
            self.send_response(401)
            realm = f"https://127.0.0.1:{ports['storage']}/token"
            self.send_header("WWW-Authenticate", f'Bearer realm="{realm}",service="s"')
            self.end_headers()

    class Registry(_Quiet):
        def do_GET(self) -> None:
            self.send_response(307)
            self.send_header("Location", f"https://127.0.0.1:{ports['storage']}/signed-url")
            self.end_headers()

    storage = _serve(Storage, tls.server)
    ports["storage"] = next(storage)
    registry = _serve(Registry, tls.server)
    yield next(registry), realm_saw
    for rest in (registry, storage):
        next(rest, None)


def test_a_redirects_target_cannot_ask_for_the_registrys_login(
    tls: Tls, challenging_storage: tuple[int, list[str]]
) -> None:
    port, realm_saw = challenging_storage
    reference = parse_reference(f"127.0.0.1:{port}/team/web@{DIGEST}")
    session = RegistrySession(reference, RegistryLogin("robot", "s3cret", None, 5, tls.ca_pem))
    with pytest.raises(RegistryError):
        session.get(f"blobs/{DIGEST}", "*/*", 1024)
    assert not any(seen.startswith("Basic ") for seen in realm_saw), "the storage's realm got the login"


# --- Hole 5: every request in time, the whole fetch not: 16 slow blobs hold a worker ----------


@pytest.fixture
def slow_blob_registry(tls: Tls) -> Iterator[int]:
    """A signature manifest with the most layers read (16); each blob answered whole after
    0.8 s, just inside a 1 s per-request deadline."""
    layers = [
        {
            "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
            "digest": "sha256:" + f"{i:064x}",
            "size": 10,
            "annotations": {"dev.cosignproject.cosign/signature": "c2ln"},
        }
        for i in range(16)
    ]
    manifest = json.dumps({"schemaVersion": 2, "layers": layers}).encode()

    class Registry(_Quiet):
        def do_GET(self) -> None:
            if "/blobs/" in self.path:
                time.sleep(0.8)
                body = b"0123456789"
            else:
                body = manifest
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    registry = _serve(Registry, tls.server)
    yield next(registry)
    next(registry, None)


def test_a_registry_cannot_hold_the_signature_fetch_much_past_its_deadline(
    tls: Tls, slow_blob_registry: int
) -> None:
    reference = parse_reference(f"127.0.0.1:{slow_blob_registry}/team/web@{DIGEST}")
    login = RegistryLogin(timeout=1.0, ca_pem=tls.ca_pem)
    finished, raised = _in_thread(lambda: fetch_signatures(reference, login), 5.0)
    assert finished, "16 blobs of 0.8 s each held the fetch past 5 s (1 s per request)"
    assert isinstance(raised, RegistryError), raised


# --- Hole 7 (not fixed): the status tells a tenant which internal ports are open ---------------


def test_a_tenant_cannot_tell_an_open_internal_port_from_a_closed_one(tls: Tls) -> None:
    """An Image may name any host:port as its registry; with spec.verify the operator connects
    from inside the cluster and the Deployment's status carries the error: refused, timed out
    and a non-TLS answer read differently, a port scanner of the cluster network."""
    closed = socket.create_server(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    threading.Thread(target=plain.serve_forever, daemon=True).start()
    messages = []
    try:
        for port in (closed_port, plain.server_address[1]):
            reference = parse_reference(f"127.0.0.1:{port}/team/web@{DIGEST}")
            with pytest.raises(RegistryError) as raised:
                fetch_signatures(reference, RegistryLogin(timeout=2, ca_pem=tls.ca_pem))
            messages.append(str(raised.value).replace(str(port), "PORT"))
    finally:
        plain.shutdown()
        plain.server_close()
    assert messages[0] == messages[1], messages
