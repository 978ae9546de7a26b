"""Asking an OCI registry which digest a tag names (its manifest, hashed here), with the
distribution spec's two logins: Basic, and a Bearer token from the registry's realm.

Synchronous and bounded: `alecton image create --resolve-digest` runs it once per call.
"""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

from alecton.reconcile.image_ref import ImageReference, parse_challenge

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


class RegistryError(RuntimeError):
    """The registry could not say: unreachable, refused the login, no such tag."""


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


def _open(request: urllib.request.Request, login: RegistryLogin) -> Any:
    return urllib.request.urlopen(request, timeout=login.timeout, context=_context(login))  # noqa: S310


def _token(challenge: dict[str, str], reference: ImageReference, login: RegistryLogin) -> str:
    """A Bearer token from the realm the registry named (with the login, when given)."""
    realm = challenge.get("realm", "")
    if not realm.startswith("https://"):
        raise RegistryError(f"registry {reference.registry} names a token realm that is not https: {realm!r}")
    query = {"scope": challenge.get("scope") or f"repository:{reference.repository}:pull"}
    if service := challenge.get("service"):
        query["service"] = service
    request = urllib.request.Request(f"{realm}?{urllib.parse.urlencode(query)}")  # noqa: S310
    if login.username:
        request.add_unredirected_header("Authorization", _basic(login))
    try:
        with _open(request, login) as answer:
            body = json.loads(answer.read(MAX_TOKEN_BYTES))
    except urllib.error.HTTPError as error:
        raise RegistryError(f"registry {reference.registry} refused a token: HTTP {error.code}") from None
    except (OSError, ValueError) as error:
        raise RegistryError(f"registry {reference.registry}: no token from its realm: {error}") from None
    token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise RegistryError(f"registry {reference.registry}: its realm answered without a token")
    return token


class RegistrySession:
    """GETs in one repository of a registry, logging in once when it asks (Basic with the
    login, or a Bearer token from the realm it names). The Authorization header is never
    sent on to a redirect's target (blob storage behind a registry answers signed URLs)."""

    def __init__(self, reference: ImageReference, login: RegistryLogin) -> None:
        self.reference, self.login, self.authorization = reference, login, ""

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
                with _open(request, self.login) as answer:
                    body: bytes = answer.read(limit + 1)
                    headers: Message = answer.headers
            except urllib.error.HTTPError as error:
                if error.code == 401 and not self.authorization:
                    self.authorization = self._answer(error.headers.get("WWW-Authenticate", ""))
                    continue
                if error.code == 404:
                    return None
                words = "the login was refused" if error.code in (401, 403) else f"HTTP {error.code}"
                raise RegistryError(f"registry {ref.registry}: {words}") from None
            except (OSError, ValueError) as error:
                raise RegistryError(f"registry {ref.registry} could not be asked: {error}") from None
            if len(body) > limit:
                raise RegistryError(f"registry {ref.registry}: {path} is larger than {limit} bytes")
            return body, headers
        raise RegistryError(f"registry {ref.registry} refused the login")

    def _answer(self, header: str) -> str:
        challenge = parse_challenge(header)
        if challenge.scheme == "bearer":
            return "Bearer " + _token(challenge.params, self.reference, self.login)
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
