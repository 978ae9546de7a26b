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
from pathlib import Path

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


def _open(request: urllib.request.Request, login: RegistryLogin):  # type: ignore[no-untyped-def]
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
        request.add_header("Authorization", _basic(login))
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


def _manifest_request(reference: ImageReference, method: str, authorization: str) -> urllib.request.Request:
    url = f"https://{reference.api_host}/v2/{reference.repository}/manifests/{reference.manifest_reference}"
    request = urllib.request.Request(url, method=method, headers={"Accept": MANIFEST_TYPES})
    if authorization:
        request.add_header("Authorization", authorization)
    return request


def resolve_digest(reference: ImageReference, login: RegistryLogin) -> str:
    """The sha256 digest of the manifest `reference`'s tag names now."""
    if reference.digest:
        return reference.digest
    authorization = ""
    for _attempt in range(2):  # anonymous (or Basic) first, then with what the challenge asks
        try:
            with _open(_manifest_request(reference, "GET", authorization), login) as answer:
                digest = answer.headers.get("Docker-Content-Digest", "")
                body = answer.read(MAX_MANIFEST_BYTES + 1)
        except urllib.error.HTTPError as error:
            if error.code == 401 and not authorization:
                challenge = parse_challenge(error.headers.get("WWW-Authenticate", ""))
                if challenge.scheme == "bearer":
                    authorization = "Bearer " + _token(challenge.params, reference, login)
                elif login.username:
                    authorization = _basic(login)
                else:
                    asks = f"registry {reference.registry} asks for a login"
                    raise RegistryError(f"{asks}: pass --username and --password-stdin") from None
                continue
            if error.code == 404:
                where = f"{reference.registry}/{reference.repository}"
                raise RegistryError(f"{where}:{reference.manifest_reference} does not exist") from None
            words = "the login was refused" if error.code in (401, 403) else f"HTTP {error.code}"
            raise RegistryError(f"registry {reference.registry}: {words}") from None
        except (OSError, ValueError) as error:
            raise RegistryError(f"registry {reference.registry} could not be asked: {error}") from None
        if len(body) > MAX_MANIFEST_BYTES:
            raise RegistryError(f"registry {reference.registry}: the manifest is larger than 4 MiB")
        computed = "sha256:" + hashlib.sha256(body).hexdigest()
        if digest and digest != computed:
            raise RegistryError(
                f"registry {reference.registry} named digest {digest} for a manifest hashing to {computed}"
            )
        return computed
    raise RegistryError(f"registry {reference.registry} refused the login")
