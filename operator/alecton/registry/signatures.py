"""Fetching an image's cosign signatures from its registry, and the verdict on them, cached.

The signature manifest (tag `sha256-<hex>.sig`) and its payload blobs are read with the
login of the policy's Secret, each request with a deadline and a size bound, in a worker
thread (the registry client is synchronous). The checks are reconcile.signatures'. A digest
verified against a set of keys stays verified (a digest never changes what it names), so
it is not fetched again each pass; a refusal is asked again after a short while (the image
may be signed since).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import replace

from alecton.api.models import Image, VerifyPolicy
from alecton.reconcile.chart import ChartRefusedError
from alecton.reconcile.image_ref import ImageReference, ImageReferenceError, parse_reference
from alecton.reconcile.plan import Resolved, ValuesSources
from alecton.reconcile.registry_auth import secret_credentials
from alecton.reconcile.signatures import (
    MAX_PAYLOAD_BYTES,
    MAX_SIGNATURE_LAYERS,
    Fetched,
    Verdict,
    VerificationPolicyError,
    keys_fingerprint,
    parse_public_keys,
    signature_layers,
    signature_tag,
    verify,
)
from alecton.registry.digest import RegistryError, RegistryLogin, RegistrySession, RegistryUnreachableError

log = logging.getLogger("alecton.signatures")

SIGNATURE_MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
)
MAX_SIGNATURE_MANIFEST_BYTES = 256 * 1024
VERIFIED_TTL = 24 * 3600.0
REFUSED_TTL = 30.0
MAX_CACHED = 4096
REQUEST_TIMEOUT = 10.0


def fetch_signatures(reference: ImageReference, login: RegistryLogin) -> list[Fetched] | None:
    """The simple-signing layers at the digest's signature tag with their payloads; None
    when there is no such tag."""
    session = RegistrySession(reference, login)
    manifest = session.get(
        f"manifests/{signature_tag(reference.digest)}", SIGNATURE_MANIFEST_TYPES, MAX_SIGNATURE_MANIFEST_BYTES
    )
    if manifest is None:
        return None
    fetched: list[Fetched] = []
    for layer in signature_layers(manifest[0])[:MAX_SIGNATURE_LAYERS]:
        payload = session.get(f"blobs/{layer.digest}", "*/*", min(layer.size, MAX_PAYLOAD_BYTES))
        fetched.append((layer, payload[0] if payload else None))
    return fetched


class ImageVerifier:
    """Verdicts per (repository, digest, key fingerprints), kept in memory."""

    def __init__(self, timeout: float = REQUEST_TIMEOUT) -> None:
        self.timeout = timeout
        self._cache: OrderedDict[tuple[str, str, str], tuple[Verdict, float]] = OrderedDict()
        self.fetches = 0  # registry round trips made (the tests and metrics read it)

    async def with_verdict(self, resolved: Resolved, sources: ValuesSources | None) -> ValuesSources | None:
        """`sources` with the verdict on the Image's signature, when the Application asks."""
        policy = resolved.application.verify
        if policy is None:
            return sources
        sources = sources or ValuesSources()
        verdict = await self.verdict(resolved.image, policy, sources.verify_secret)
        return replace(sources, image_verdict=verdict)

    async def verdict(self, image: Image, policy: VerifyPolicy, data: dict[str, bytes] | None) -> Verdict:
        if data is None:
            return Verdict(
                False,
                f"Secret {policy.secret!r} (spec.verify.secretRef) does not exist: create it in this "
                "namespace with the public key as cosign.pub",
                waiting=True,
            )
        if not image.digest:
            return Verdict(False, f"Image {image.ref.name!r} records no digest", cacheable=False)
        try:
            keys = parse_public_keys(policy.secret, data)
            reference = replace(parse_reference(image.image), digest=image.digest)
            credentials = secret_credentials(reference.registry, policy.secret, data, required=False)
        except (VerificationPolicyError, ImageReferenceError, ChartRefusedError) as error:
            return Verdict(False, str(error), cacheable=False)
        key = (f"{reference.registry}/{reference.repository}", image.digest, keys_fingerprint(keys))
        cached = self._cache.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        login = RegistryLogin(timeout=self.timeout)
        if credentials is not None:
            ca = credentials.ca_pem.decode("ascii", "replace")
            login = RegistryLogin(credentials.username, credentials.password, None, self.timeout, ca)
        self.fetches += 1
        try:
            fetched = await asyncio.to_thread(fetch_signatures, reference, login)
        except (RegistryError, ValueError) as error:
            if isinstance(error, RegistryUnreachableError):  # the cause for the operator's log only
                log.info("signatures of %s: %s: %s", image.image, error, error.detail)
            return Verdict(
                False,
                f"the signatures of {image.image} could not be read: {error}",
                cacheable=False,
                judged=False,
            )
        verdict = verify(image.image, image.digest, keys, fetched)
        self._remember(key, verdict)
        return verdict

    def _remember(self, key: tuple[str, str, str], verdict: Verdict) -> None:
        ttl = VERIFIED_TTL if verdict.verified else REFUSED_TTL
        self._cache[key] = (verdict, time.monotonic() + ttl)
        self._cache.move_to_end(key)
        while len(self._cache) > MAX_CACHED:
            self._cache.popitem(last=False)
