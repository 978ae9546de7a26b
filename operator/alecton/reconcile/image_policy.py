"""Which reference of an Image an Application deploys, and whether it may: pinned to the
Image's digest when asked (spec.pinImageDigest) or implied (spec.verify: a signature is for
one digest, and a tag could move after the check), and signed when the policy says so."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

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


IMAGE_AMBIGUOUS = "ImageAmbiguous"
DUPLICATE_VERSION = "DuplicateVersion"


@dataclass(frozen=True)
class AmbiguousVersion:
    """Images of one (name, version), all created in the oldest second, that deploy different
    builds: none of them records the version."""

    images: tuple[Image, ...]  # by name

    @property
    def message(self) -> str:
        first = self.images[0]
        recorded = ", ".join(f"{i.ref.name} ({_build(i)})" for i in self.images)
        return (
            f"version {first.version} of image {first.name!r} is ambiguous: Images {recorded} "
            f"were created in the same second with different builds or sources, so nothing is deployed; "
            f"delete the wrong one (kubectl delete image NAME -n {first.ref.namespace}, as someone "
            f"who may delete Images: the alecton-image-publisher role may not)"
        )


def _build(image: Image) -> str:
    built = f"{image.image}@{image.digest}" if image.digest else image.image
    if image.source is not None and image.source.repository:
        return f"{built} from {image.source.repository}@{image.source.revision[:12]}"
    return built


def authoritative_image(candidates: Iterable[Image]) -> Image | AmbiguousVersion | None:
    """The Image that records a (name, version): the oldest. Creation times have one-second
    resolution, and a tie is never settled by the name, which whoever creates an Image chooses
    (R27B-8: a publisher's shadow Image, named to sort first): tied Images that deploy different
    builds (reference or digest) or name other sources (spec.source feeds News, DORA and commit
    statuses) make the version ambiguous; tied copies of one record are one, and the first by
    name stands for them."""
    images = list({image.ref: image for image in candidates}.values())
    if not images:
        return None
    oldest = min(image.created for image in images)
    tied = tuple(sorted((i for i in images if i.created == oldest), key=lambda i: i.ref.name))
    if len({(image.image, image.digest, image.source) for image in tied}) > 1:
        return AmbiguousVersion(tied)
    return tied[0]


def pick_image(candidates: Iterable[Image]) -> Image | None:
    """The authoritative Image of a (name, version); None when there is none or the version is
    ambiguous (what shows or enriches a version then shows nothing rather than a guess)."""
    chosen = authoritative_image(candidates)
    return chosen if isinstance(chosen, Image) else None


def image_warning(image: Image, same_version: Iterable[Image]) -> tuple[str, str] | None:
    """(reason, message) of the Warning an Image gets when it is not the one its version
    deploys: another Image recorded the version first, or one in the same second records
    another build. None when it is the one, or alone (`same_version` not indexed yet)."""
    chosen = authoritative_image([image, *same_version])
    if isinstance(chosen, AmbiguousVersion):
        return (IMAGE_AMBIGUOUS, chosen.message) if any(i.ref == image.ref for i in chosen.images) else None
    if chosen is None or chosen.ref == image.ref:
        return None
    return DUPLICATE_VERSION, (
        f"version {image.version} of image {image.name!r} is already recorded by Image {chosen.ref.name} "
        f"({chosen.image}); this Image is not used: record a new build as a new version"
    )
