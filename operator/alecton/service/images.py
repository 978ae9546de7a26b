"""CreateImage and ListImages, and which reference each version of an image has."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from alecton.api.models import Image
from alecton.kube.client import ApiException, KubeClient
from alecton.reconcile.image_policy import pick_image
from alecton.service.errors import ConflictError
from alecton.service.resources import field_selector, image_body, spec_of


def image_source(
    repository: str | None = None,
    revision: str | None = None,
    url: str | None = None,
    committed_at: str | None = None,
) -> dict[str, str]:
    """An Image's `spec.source` from what CI knows ({} when nothing): the CRD checks each
    field's form (a hexadecimal revision, an http(s) url, an RFC 3339 time)."""
    fields = {"repository": repository, "revision": revision, "url": url, "committedAt": committed_at}
    return {key: value.strip() for key, value in fields.items() if value and value.strip()}


async def create_image(
    client: KubeClient, namespace: str, name: str, version: str, image_ref: str,
    source: Mapping[str, str] | None = None, digest: str = "",
) -> tuple[str, dict[str, Any]]:  # fmt: skip
    """CreateImage: ("created" or "unchanged", the Image); a ConflictError when the
    version is recorded with another reference, source or digest."""
    body = image_body(name, version, image_ref, source, digest)
    selector = field_selector(**{"spec.name": name, "spec.version": version})
    for existing in await client.list("Image", namespace, field_selector=selector):
        return _same_or_immutable(existing, image_ref, source, digest)
    try:
        return "created", await client.create("Image", namespace, body)
    except ApiException as error:
        if error.status != 409:
            raise
    # Created concurrently (a CI retry): same rules as above.
    existing = await client.get("Image", namespace, body["metadata"]["name"])
    return _same_or_immutable(existing, image_ref, source, digest)


def _same_or_immutable(
    existing: dict[str, Any], image_ref: str, source: Mapping[str, str] | None, digest: str = ""
) -> tuple[str, dict[str, Any]]:
    """The same call again is "unchanged"; a source or digest left out matches any recorded."""
    spec = existing["spec"]
    recorded = dict(spec.get("source") or {})
    same_digest = not digest or digest == spec.get("digest")
    if spec["image"] == image_ref and (not source or dict(source) == recorded) and same_digest:
        return "unchanged", existing
    what = (
        spec["image"]
        if spec["image"] != image_ref
        else f"the digest {spec.get('digest') or 'none'}"
        if not same_digest
        else f"the source {recorded or 'none'}"
    )
    raise ConflictError(
        f"images are immutable: {spec['name']} {spec['version']} already records {what} "
        f"(Image {existing['metadata']['name']}); record the new build as a new version"
    )


async def list_images(
    client: KubeClient, namespace: str, name: str | None = None, version: str | None = None
) -> list[dict[str, Any]]:
    """ListImages: by logical name, then oldest first."""
    selector = field_selector(**{"spec.name": name, "spec.version": version})
    found = await client.list("Image", namespace, field_selector=selector)
    return sorted(
        found, key=lambda i: (i["spec"].get("name", ""), i["metadata"].get("creationTimestamp", ""))
    )


def _chosen(images: Iterable[Mapping[str, Any]], image_name: str) -> dict[str, Image]:
    """version -> the authoritative Image of each version of `image_name` (the oldest, as
    the operator picks)."""
    by_version: dict[str, list[Image]] = {}
    for obj in images:
        spec = spec_of(obj)
        if spec.get("name") == image_name and spec.get("version"):
            try:
                by_version.setdefault(str(spec["version"]), []).append(Image.parse(dict(obj)))
            except ValueError:
                continue
    return {version: chosen for version, found in by_version.items() if (chosen := pick_image(found))}


def image_refs(images: Iterable[Mapping[str, Any]], image_name: str) -> dict[str, str]:
    """version -> reference of the logical image `image_name`."""
    return {version: image.image for version, image in _chosen(images, image_name).items()}


def image_sources(images: Iterable[Mapping[str, Any]], image_name: str) -> dict[str, dict[str, str]]:
    """version -> `spec.source` of the logical image `image_name` (versions without one left out)."""
    return {
        version: image.source.as_dict()
        for version, image in _chosen(images, image_name).items()
        if image.source is not None
    }


async def application_images(client: KubeClient, namespace: str, application: str) -> list[dict[str, Any]]:
    """The Images of the Application's image; [] when they cannot be read (gone, or the
    caller may change a Deployment without reading Images: after a write, its answer must
    not turn into an error). With the image name in each, for `image_refs`/`image_sources`."""
    try:
        app = await client.get("Application", namespace, application)
        image = str((app.get("spec") or {}).get("image") or "")
        return await client.list("Image", namespace, field_selector=field_selector(**{"spec.name": image}))
    except ApiException:
        return []


def application_image_name(images: list[dict[str, Any]]) -> str:
    """The logical name the Images `application_images` found share."""
    return next((str(spec_of(i).get("name") or "") for i in images), "")


async def application_image_refs(client: KubeClient, namespace: str, application: str) -> dict[str, str]:
    """version -> reference of the Application's image ({} when it cannot be read)."""
    images = await application_images(client, namespace, application)
    return image_refs(images, application_image_name(images))
