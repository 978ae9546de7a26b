"""Container image references and digests, as the distribution spec and Docker name them.

Pure: split a reference into registry, repository, tag and digest; pin a reference to a
digest; read a registry's `WWW-Authenticate` challenge. The HTTP lives in alecton.registry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
# The distribution spec's repository path components and tag.
_PATH_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class ImageReferenceError(ValueError):
    """A reference that is not `[registry/]repository[:tag][@sha256:...]`."""


@dataclass(frozen=True)
class ImageReference:
    registry: str  # host[:port]; docker.io for Docker Hub
    repository: str  # library/nginx for Docker Hub's official images
    tag: str = ""
    digest: str = ""

    @property
    def api_host(self) -> str:
        """Where the registry's /v2/ API answers."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def manifest_reference(self) -> str:
        """What /v2/<repository>/manifests/<reference> asks for: the digest, else the tag."""
        return self.digest or self.tag or "latest"


def parse_reference(text: str, host_first: bool = False) -> ImageReference:
    """Docker's rules: the first component is a registry when it has a '.' or ':' or is
    `localhost`; otherwise the image is on Docker Hub (`library/` for one component).
    `host_first`: the first component is the registry whatever it looks like, as in an
    `oci://` reference (helm's rule)."""
    if not text or text != text.strip() or len(text) > 512:
        raise ImageReferenceError(f"image reference {text!r} is empty, too long or has spaces")
    rest, _, digest = text.partition("@")
    if digest and not DIGEST_RE.match(digest):
        raise ImageReferenceError(f"image reference {text!r}: the digest must be sha256: and 64 hex digits")
    first, slash, remainder = rest.partition("/")
    if slash and (host_first or "." in first or ":" in first or first == "localhost"):
        registry, path = first.lower(), remainder
    else:
        registry, path = DOCKER_HUB, rest
    path, colon, tag = path.rpartition(":") if ":" in path.rsplit("/", 1)[-1] else (path, "", "")
    if colon and not _TAG_RE.match(tag):
        raise ImageReferenceError(f"image reference {text!r}: {tag!r} is not a valid tag")
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if not _PATH_RE.match(path):
        raise ImageReferenceError(f"image reference {text!r}: {path!r} is not a valid repository name")
    return ImageReference(registry, path, tag, digest)


def pinned(image: str, digest: str) -> str:
    """`repo:tag@sha256:...`: the tag stays for people, the runtime pulls by the digest."""
    base = image.partition("@")[0]
    return f"{base}@{digest}"


def pinned_digest(reference: str) -> str:
    """The digest a recorded reference (an image, or an oci:// chart) is pinned to ("" for a tag)."""
    _, at, digest = reference.partition("@")
    return digest if at else ""


@dataclass(frozen=True)
class Challenge:
    """A registry's `WWW-Authenticate` answer to an anonymous request."""

    scheme: str  # "basic" or "bearer" (lower case)
    params: dict[str, str]


_PARAM_RE = re.compile(r'([A-Za-z_]+)=(?:"([^"]*)"|([^,\s]*))')


def parse_challenge(header: str) -> Challenge:
    scheme, _, rest = header.strip().partition(" ")
    params = {key.lower(): quoted or bare for key, quoted, bare in _PARAM_RE.findall(rest)}
    return Challenge(scheme.lower(), params)
