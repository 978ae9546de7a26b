"""The registry client against a small TLS server of the test's own (real HTTP, no mocks of
urllib): the login is answered once, and never follows a redirect to blob storage."""

from __future__ import annotations

import http.server
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from alecton.local import pki
from alecton.reconcile.image_ref import parse_reference
from alecton.registry.digest import LoginRequiredError, RegistryLogin, RegistrySession, resolve_digest

from tests.unit.test_redteam_issue27 import _serve

SEEN: list[tuple[str, str]] = []  # (server, Authorization) per request


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[int, int, Path]]:
    """A registry that asks for Basic and redirects blobs to a storage server."""
    ca = pki.CertificateAuthority()
    serving = ca.serving("registry")
    (tmp_path / "ca.crt").write_bytes(ca.cert_pem)
    (tmp_path / "tls.crt").write_bytes(serving.cert_pem)
    (tmp_path / "tls.key").write_bytes(serving.key_pem)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    SEEN.clear()
    storage_port: list[int] = []

    class Storage(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            SEEN.append(("storage", self.headers.get("Authorization", "")))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"blob")

        def log_message(self, *args: object) -> None:
            pass

    class Registry(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            authorization = self.headers.get("Authorization", "")
            SEEN.append(("registry", authorization))
            if not authorization:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="test"')
                self.end_headers()
            elif "/blobs/" in self.path:
                self.send_response(307)
                self.send_header("Location", f"https://127.0.0.1:{storage_port[0]}/signed-url")
                self.end_headers()
            else:
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b'{"manifest": true}')

        def log_message(self, *args: object) -> None:
            pass

    storage = _serve(Storage, tls)
    storage_port.append(next(storage))
    registry = _serve(Registry, tls)
    port = next(registry)
    yield port, storage_port[0], tmp_path / "ca.crt"
    for rest in (registry, storage):
        next(rest, None)


def test_the_login_is_not_sent_on_to_a_redirects_target(servers: tuple[int, int, Path]) -> None:
    port, _storage, ca = servers
    reference = parse_reference(f"127.0.0.1:{port}/team/web:1.0")
    session = RegistrySession(reference, RegistryLogin("robot", "s3cret", ca, timeout=5))
    answer = session.get("blobs/sha256:00", "*/*", 1024)
    assert answer is not None and answer[0] == b"blob"
    assert [who for who, _ in SEEN] == ["registry", "registry", "storage"]
    assert SEEN[1][1].startswith("Basic ") and SEEN[2][1] == "", SEEN


def test_a_registry_that_asks_for_a_login_without_one_says_so(servers: tuple[int, int, Path]) -> None:
    port, _storage, ca = servers
    reference = parse_reference(f"127.0.0.1:{port}/team/web:1.0")
    with pytest.raises(LoginRequiredError, match="asks for a login and none was given"):
        resolve_digest(reference, RegistryLogin(ca_file=ca, timeout=5))
    digest = resolve_digest(reference, RegistryLogin("robot", "s3cret", ca, timeout=5))
    assert digest.startswith("sha256:") and len(digest) == 71
