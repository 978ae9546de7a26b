"""Images need no reconcile. A duplicate (name, version) is reported, on the later Image, so
that CI sees why its new reference is not used (on each of two created in the same second
with different builds: the version is ambiguous until one is deleted); and the verdict on an
Image's signature, made when a Deployment checks it (spec.verify), is written into the
Image's status."""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

import aiohttp

from alecton.api.models import Image, InvalidResourceError, VerifyPolicy
from alecton.kube.client import ApiException, KubeClient, api_error_message
from alecton.reconcile.image_policy import image_warning
from alecton.reconcile.image_verification import ImageJudgement, judgement, verification_status
from alecton.reconcile.signatures import Verdict
from alecton.reconcile.status import now_rfc3339

log = logging.getLogger(__name__)

_WRITE_ATTEMPTS = 3  # read, change, write against others writing other Applications' verdicts
_MAX_REMEMBERED = 16384  # (Image, Application) pairs whose written verdict is remembered


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
        warning = image_warning(image, same_version)
        uid = str((body.get("metadata") or {}).get("uid") or "")
        if warning is None or uid in self._warned:
            return
        self._warned.add(uid)
        try:
            await self.kube.post_event(body, "Warning", *warning)
        except ApiException as error:  # best effort, like every Event
            log.warning("could not post an Event for the duplicate Image %s: %s", image.ref, error.reason)


class ImageVerifications:
    """Writes each Application's verdict on an Image into the Image's status, only when it
    changed: every pass of every Deployment with spec.verify reports its verdict here, and
    what was last written (or found already there) is remembered, so an unchanged verdict
    costs no API call. Whichever operator process judged the Image writes (a shard judges
    the Images of its own Deployments); several may write one Image, each its own
    Applications' entries, as read, change, write on the resourceVersion read (a conflict
    reads again). Two processes judging for one Application make the same verdict."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self._written: OrderedDict[tuple[str, str, str, str], ImageJudgement] = OrderedDict()

    async def record(self, image: Image, application: str, policy: VerifyPolicy, verdict: Verdict) -> None:
        judged = judgement(application, policy, verdict)
        if judged is None:
            return
        # Per Image object (its creation time), not per name: an Image deleted and created
        # again has an empty status, which the verdict must be written into again.
        key = (image.ref.namespace, image.ref.name, image.created, application)
        if self._written.get(key) == judged:
            return
        for _ in range(_WRITE_ATTEMPTS):
            try:
                written = await self._write(image, judged)
            except ApiException as error:
                if error.status == 409:
                    continue
                if error.status != 404:  # deleted meanwhile: nothing to say
                    log.warning("Image %s: cannot write its verification status: %s", image.ref,
                                api_error_message(error))  # fmt: skip
                return
            except (OSError, TimeoutError, aiohttp.ClientError) as error:  # the next pass writes it
                log.warning("Image %s: cannot write its verification status: %s", image.ref, error)
                return
            if written:
                self._remember(key, judged)
            return

    async def _write(self, image: Image, judged: ImageJudgement) -> bool:
        """Read the Image, and write its status when `judged` changes it. False when the
        Image is another object than the one judged (deleted and created again)."""
        body = await self.kube.get("Image", image.ref.namespace, image.ref.name)
        meta = body.get("metadata") or {}
        try:
            if Image.parse(body) != image:
                return False
        except InvalidResourceError:
            return False
        status = verification_status(
            body.get("status") or {}, judged, int(meta.get("generation") or 0), now_rfc3339()
        )
        if status is not None:
            await self.kube.patch_status(
                "Image", image.ref.namespace, image.ref.name, status, str(meta.get("resourceVersion") or "")
            )
        return True

    def _remember(self, key: tuple[str, str, str, str], judged: ImageJudgement) -> None:
        self._written[key] = judged
        self._written.move_to_end(key)
        while len(self._written) > _MAX_REMEMBERED:
            self._written.popitem(last=False)
