"""Images by digest without a cluster: reference parsing, pinning, the plan's refusal, the
registry's challenge, and `alecton image create`'s digest options."""

from __future__ import annotations

import pytest
from alecton.api.models import Application, Image, ObjectRef
from alecton.cli.images import image_digest
from alecton.cli.session import CliError
from alecton.reconcile.image_policy import ImageDigestMissingError, image_reference
from alecton.reconcile.image_ref import ImageReferenceError, parse_challenge, parse_reference, pinned
from alecton.reconcile.plan import deployed_image

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("nginx", "docker.io", "library/nginx", "", ""),
        ("nginx:1.27", "docker.io", "library/nginx", "1.27", ""),
        ("team/web:1.0", "docker.io", "team/web", "1.0", ""),
        ("ghcr.io/org/web:1.0", "ghcr.io", "org/web", "1.0", ""),
        ("127.0.0.1:5000/team/web:1.0", "127.0.0.1:5000", "team/web", "1.0", ""),
        ("localhost/web", "localhost", "web", "", ""),
        (f"ghcr.io/org/web:1.0@{DIGEST}", "ghcr.io", "org/web", "1.0", DIGEST),
        (f"ghcr.io/org/web@{DIGEST}", "ghcr.io", "org/web", "", DIGEST),
    ],
)
def test_references_split_as_docker_splits_them(
    text: str, registry: str, repository: str, tag: str, digest: str
) -> None:
    reference = parse_reference(text)
    assert (reference.registry, reference.repository, reference.tag, reference.digest) == (
        registry,
        repository,
        tag,
        digest,
    )
    assert reference.api_host == ("registry-1.docker.io" if registry == "docker.io" else registry)


@pytest.mark.parametrize("text", ["", " web", "Web/UPPER:1", "web@sha256:short", "web:bad tag", "a/b:-x"])
def test_bad_references_are_refused(text: str) -> None:
    with pytest.raises(ImageReferenceError):
        parse_reference(text)


def test_pinning_keeps_the_tag_and_replaces_a_digest() -> None:
    assert pinned("r.io/web:1.0", DIGEST) == f"r.io/web:1.0@{DIGEST}"
    assert pinned(f"r.io/web:1.0@sha256:{'cd' * 32}", DIGEST) == f"r.io/web:1.0@{DIGEST}"


def test_the_registry_challenge_is_read() -> None:
    challenge = parse_challenge(
        'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:o/w:pull"'
    )
    assert challenge.scheme == "bearer"
    assert challenge.params == {
        "realm": "https://ghcr.io/token",
        "service": "ghcr.io",
        "scope": "repository:o/w:pull",
    }
    assert parse_challenge('Basic realm="local"').scheme == "basic"


def app(pin: bool) -> Application:
    return Application.parse(
        {
            "metadata": {"name": "web", "namespace": "team"},
            "spec": {"chart": "webapp", "image": "web", "pinImageDigest": pin},
        }
    )


def image(digest: str = "") -> Image:
    return Image(ObjectRef("team", "web-1"), "web", "1", "r.io/web:1", "t", digest=digest)


def test_an_application_pins_digests_only_when_it_asks() -> None:
    from alecton.reconcile.plan import Resolved

    assert image_reference(app(False), image(DIGEST)) == "r.io/web:1"
    assert image_reference(app(True), image(DIGEST)) == f"r.io/web:1@{DIGEST}"
    resolved = Resolved(app(True), None, None, image())  # type: ignore[arg-type]
    with pytest.raises(ImageDigestMissingError, match="--resolve-digest"):
        deployed_image(resolved)


def test_image_create_digest_options() -> None:
    assert image_digest("r.io/web:1", DIGEST, False, None, None, False) == DIGEST
    assert image_digest(f"r.io/web:1@{DIGEST}", None, False, None, None, False) == DIGEST
    assert image_digest("r.io/web:1", None, False, None, None, False) == ""
    for args, words in [
        (("r.io/web:1", DIGEST, True, None, None, False), "exclude each other"),
        (("r.io/web:1", "sha256:xyz", False, None, None, False), "is not sha256"),
        ((f"r.io/web:1@{DIGEST}", "sha256:" + "cd" * 32, False, None, None, False), "differs"),
        (("r.io/web:1", None, False, None, "robot", True), "go with --resolve-digest"),
        (("r.io/web:1", None, True, None, "robot", False), "go together"),
        (("UPPER/web", None, True, None, None, False), "not a valid repository"),
    ]:
        with pytest.raises(CliError, match=words):
            image_digest(*args)  # type: ignore[arg-type]
