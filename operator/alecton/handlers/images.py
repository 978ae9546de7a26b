"""Images need no reconcile; only a duplicate (name, version) is reported, on the later Image,
so that CI sees why its new reference is not used."""

from __future__ import annotations

import logging
from typing import Any

from alecton.api.models import Image, InvalidResourceError
from alecton.kube.client import ApiException, KubeClient
from alecton.reconcile.image_policy import duplicate_image_message, shadowing_image

log = logging.getLogger(__name__)

DUPLICATE_VERSION = "DuplicateVersion"


class DuplicateImages:
    """One Warning Event per duplicate Image and operator process (an Image is immutable, so
    once said it stays true until the Image it duplicates is deleted)."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self._warned: set[str] = set()  # uids

    async def check(self, body: dict[str, Any], same_version: list[Image]) -> None:
        """`same_version`: the indexed Images of its name and version (itself included)."""
        try:
            image = Image.parse(body)
        except InvalidResourceError:
            return
        used = shadowing_image(image, same_version)
        uid = str((body.get("metadata") or {}).get("uid") or "")
        if used is None or uid in self._warned:
            return
        self._warned.add(uid)
        try:
            message = duplicate_image_message(image, used)
            await self.kube.post_event(body, "Warning", DUPLICATE_VERSION, message)
        except ApiException as error:  # best effort, like every Event
            log.warning("could not post an Event for the duplicate Image %s: %s", image.ref, error.reason)
