"""CreateImage and ListImages, and which reference each version of an image has."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from alecton.api.models import Image
from alecton.kube.client import ApiException, KubeClient
from alecton.reconcile.plan import pick_image
from alecton.service.errors import ConflictError
from alecton.service.resources import field_selector, image_body, spec_of


async def create_image(
    client: KubeClient, namespace: str, name: str, version: str, image_ref: str
) -> tuple[str, dict[str, Any]]:
    """CreateImage: ("created" or "unchanged", the Image); a ConflictError when the
    version is recorded with another reference."""
    body = image_body(name, version, image_ref)
    selector = field_selector(**{"spec.name": name, "spec.version": version})
    for existing in await client.list("Image", namespace, field_selector=selector):
        return _same_or_immutable(existing, image_ref)
    try:
        return "created", await client.create("Image", namespace, body)
    except ApiException as error:
        if error.status != 409:
            raise
    # Created concurrently (a CI retry): same rules as above.
    return _same_or_immutable(await client.get("Image", namespace, body["metadata"]["name"]), image_ref)


def _same_or_immutable(existing: dict[str, Any], image_ref: str) -> tuple[str, dict[str, Any]]:
    spec = existing["spec"]
    if spec["image"] == image_ref:
        return "unchanged", existing
    raise ConflictError(
        f"images are immutable: {spec['name']} {spec['version']} already records {spec['image']} "
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


def image_refs(images: Iterable[Mapping[str, Any]], image_name: str) -> dict[str, str]:
    """version -> reference of the logical image `image_name` (the authoritative Image of
    each version: the oldest, as the operator picks)."""
    by_version: dict[str, list[Image]] = {}
    for obj in images:
        spec = spec_of(obj)
        if spec.get("name") == image_name and spec.get("version"):
            try:
                by_version.setdefault(str(spec["version"]), []).append(Image.parse(dict(obj)))
            except ValueError:
                continue
    return {version: chosen.image for version, found in by_version.items() if (chosen := pick_image(found))}


async def application_image_refs(client: KubeClient, namespace: str, application: str) -> dict[str, str]:
    """version -> reference of the Application's image; {} when it cannot be read (gone,
    or the caller may change a Deployment without reading Images: after a write, its
    answer must not turn into an error)."""
    try:
        app = await client.get("Application", namespace, application)
        image = str((app.get("spec") or {}).get("image") or "")
        found = await client.list("Image", namespace, field_selector=field_selector(**{"spec.name": image}))
    except ApiException:
        return {}
    return image_refs(found, image)
