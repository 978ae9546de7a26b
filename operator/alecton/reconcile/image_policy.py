"""Which reference of an Image an Application deploys, and whether it may: pinned to the
Image's digest when asked (spec.pinImageDigest) or implied (spec.verify: a signature is for
one digest, and a tag could move after the check), and signed when the policy says so."""

from __future__ import annotations

from collections.abc import Iterable

from alecton.api.models import Application, Image
from alecton.reconcile.image_ref import pinned
from alecton.reconcile.signatures import Verdict

IMAGE_VERIFICATION_FAILED = "ImageVerificationFailed"
VERIFICATION_SECRET_NOT_FOUND = "VerificationSecretNotFound"  # noqa: S105 (a reason, no secret)


class ImageDigestMissingError(ValueError):
    """Digests are pinned, and the Image records no digest."""


class ImageVerificationFailedError(ValueError):
    """spec.verify, and the Image's digest carries no signature by the policy's keys."""


class VerificationSecretMissingError(ValueError):
    """spec.verify names a Secret that is not there (yet): the Deployment waits for it."""


def pins_digest(app: Application) -> bool:
    return app.pin_image_digest or app.verify is not None


def image_reference(app: Application, image: Image) -> str:
    """The reference `app` deploys `image` as: pinned to its digest when the Application
    asks for that (or verifies signatures) and the Image records one."""
    return pinned(image.image, image.digest) if pins_digest(app) and image.digest else image.image


def checked_image(app: Application, image: Image, verdict: Verdict | None = None) -> str:
    """The reference the chart gets, once the policy allows it: ImageDigestMissingError
    without a digest where digests are pinned, ImageVerificationFailedError or
    VerificationSecretMissingError where signatures are checked and `verdict` says no."""
    if pins_digest(app) and not image.digest:
        why = "spec.verify checks signatures by digest" if app.verify else "the Application pins digests"
        raise ImageDigestMissingError(
            f"Image {image.ref.name!r} records no digest and {why} (spec.pinImageDigest): record the "
            "build again as a new version with `alecton image create --resolve-digest` (or --digest)"
            + ("" if app.verify else ", or unset pinImageDigest")
        )
    if app.verify is not None:
        if verdict is None:
            raise ImageVerificationFailedError(f"Image {image.ref.name!r}: its signature was not checked")
        if verdict.waiting:
            raise VerificationSecretMissingError(verdict.message)
        if not verdict.verified:
            raise ImageVerificationFailedError(f"Image {image.ref.name!r}: {verdict.message}")
    return image_reference(app, image)


def pick_image(candidates: Iterable[Image]) -> Image | None:
    """The authoritative Image of a (name, version): the one created first."""
    return min(candidates, key=lambda i: (i.created, i.ref.name), default=None)


def shadowing_image(image: Image, candidates: Iterable[Image]) -> Image | None:
    """The Image that is used instead of `image` (same name and version, created first), or
    None when `image` is the one used."""
    chosen = pick_image([image, *candidates])
    return None if chosen is None or chosen.ref == image.ref else chosen


def duplicate_image_message(image: Image, used: Image) -> str:
    return (
        f"version {image.version} of image {image.name!r} is already recorded by Image {used.ref.name} "
        f"({used.image}); this Image is not used: record a new build as a new version"
    )
