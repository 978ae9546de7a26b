"""Fetching an image's (or an oci:// chart's) cosign signatures from its registry, and the
verdict on them, cached.

The signature manifest (tag `sha256-<hex>.sig`) and its payload blobs are read with the
login of the policy's Secret, each request with a deadline and a size bound, in a worker
thread (the registry client is synchronous). The checks are reconcile.signatures'. A digest
verified against a set of keys stays verified (a digest never changes what it names), so
it is not fetched again each pass; a refusal is asked again after a short while (the image
may be signed since). A chart's tag is resolved to its digest on every pass (one manifest
request): the digest checked is the one helm is given.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import OrderedDict
from dataclasses import replace

from alecton.api.models import Application, Image, VerifyPolicy
from alecton.reconcile.chart import ChartPolicy, ChartRefusedError, resolve_chart
from alecton.reconcile.chart_signature import CHART_ADVICE, ChartVerdict, chart_reference
from alecton.reconcile.image_ref import ImageReference, ImageReferenceError, parse_reference
from alecton.reconcile.plan import Resolved, ValuesSources
from alecton.reconcile.registry_auth import (
    RegistryCredentials,
    RepositorySecretMissingError,
    repository_credentials,
    secret_credentials,
)
from alecton.reconcile.signatures import (
    IMAGE_ADVICE,
    MAX_PAYLOAD_BYTES,
    MAX_SIGNATURE_LAYERS,
    Fetched,
    Trust,
    Verdict,
    VerificationPolicyError,
    parse_trust,
    signature_layers,
    signature_tag,
    verify,
)
from alecton.registry.digest import (
    RegistryError,
    RegistryLogin,
    RegistrySession,
    RegistryUnreachableError,
    resolve_digest,
)

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


def _missing_secret(policy: VerifyPolicy) -> Verdict:
    holding = (
        "the Fulcio root certificate as fulcio-root.pem"
        if policy.identities
        else "the public key as cosign.pub"
    )
    return Verdict(
        False,
        f"Secret {policy.secret!r} (spec.verify.secretRef) does not exist: create it in this "
        f"namespace with {holding}",
        waiting=True,
    )


class ImageVerifier:
    """Verdicts per (repository, digest, key fingerprints), kept in memory: on Images, and on
    oci:// charts where spec.verify.chart asks."""

    def __init__(self, timeout: float = REQUEST_TIMEOUT) -> None:
        self.timeout = timeout
        self._cache: OrderedDict[tuple[str, str, str], tuple[Verdict, float]] = OrderedDict()
        self.fetches = 0  # registry round trips made (the tests and metrics read it)

    async def with_verdict(
        self, resolved: Resolved, sources: ValuesSources | None, charts: ChartPolicy
    ) -> ValuesSources | None:
        """`sources` with the verdicts on the Image's signature and the chart's, when the
        Application asks (`charts`: where this process may fetch charts from)."""
        policy = resolved.application.verify
        if policy is None:
            return sources
        sources = sources or ValuesSources()
        verdict = await self.verdict(resolved.image, policy, sources.verify_secret)
        chart = await self.chart_verdict(resolved.application, sources, charts) if policy.chart else None
        return replace(sources, image_verdict=verdict, chart_verdict=chart)

    async def verdict(self, image: Image, policy: VerifyPolicy, data: dict[str, bytes] | None) -> Verdict:
        if data is None:
            return _missing_secret(policy)
        if not image.digest:
            return Verdict(False, f"Image {image.ref.name!r} records no digest", cacheable=False)
        return await self.reference_verdict(image.image, image.digest, policy, data)

    async def reference_verdict(
        self, image: str, digest: str, policy: VerifyPolicy, data: dict[str, bytes] | None
    ) -> Verdict:
        """The verdict on `image` (a reference, as an Image or a revision of status.history
        recorded it) at `digest`."""
        if data is None:
            return _missing_secret(policy)
        try:
            trust = parse_trust(policy.secret, data, policy.identities)
            reference = replace(parse_reference(image), digest=digest)
            credentials = secret_credentials(reference.registry, policy.secret, data, required=False)
        except (VerificationPolicyError, ImageReferenceError, ChartRefusedError) as error:
            return Verdict(False, str(error), cacheable=False)
        return await self._checked(image, reference, trust, self._login(credentials))

    async def chart_verdict(
        self, app: Application, sources: ValuesSources, charts: ChartPolicy
    ) -> ChartVerdict:
        """The verdict on the signature of the digest `app`'s oci:// chart tag names now, read
        with the login helm pulls the chart with (spec.repositorySecretRef, else anonymous).
        A registry the chart policy refuses (`--allow-repository-host`) is never asked."""
        assert app.verify is not None
        if sources.verify_secret is None:
            return ChartVerdict(_missing_secret(app.verify))
        try:
            resolve_chart(app, charts)
            reference = chart_reference(app.chart, app.chart_version)
            trust, login = self._chart_trust(app, app.chart, sources)
        except (VerificationPolicyError, ChartRefusedError, RepositorySecretMissingError) as error:
            return ChartVerdict(Verdict(False, str(error), cacheable=False))
        where = f"oci://{reference.registry}/{reference.repository}"
        digest = reference.digest
        if not digest:
            self.fetches += 1
            try:
                digest = await asyncio.to_thread(resolve_digest, reference, login)
            except (RegistryError, ValueError) as error:
                if isinstance(error, RegistryUnreachableError):  # the cause for the operator's log only
                    log.info("chart %s:%s: %s: %s", where, reference.tag, error, error.detail)
                message = f"the digest of chart {where}:{reference.tag} could not be read: {error}"
                return ChartVerdict(Verdict(False, message, cacheable=False))
        checked = replace(reference, digest=digest)
        return ChartVerdict(await self._checked(where, checked, trust, login, "chart", CHART_ADVICE), digest)

    async def pinned_chart_verdict(
        self, app: Application, chart: str, sources: ValuesSources, charts: ChartPolicy
    ) -> Verdict:
        """The verdict on an oci:// chart pinned to a digest (`oci://host/repo@sha256:...`, as
        a revision of status.history recorded it), checked as `chart_verdict` checks `app`'s
        chart now: the policy's keys, the login spec.repositorySecretRef binds to that registry,
        and never a registry the chart policy refuses."""
        assert app.verify is not None
        if sources.verify_secret is None:
            return _missing_secret(app.verify)
        try:
            charts.check_remote(chart)
            reference = chart_reference(chart, "")
            trust, login = self._chart_trust(app, chart, sources)
        except (VerificationPolicyError, ChartRefusedError, RepositorySecretMissingError) as error:
            return Verdict(False, str(error), cacheable=False)
        if not reference.digest:
            return Verdict(False, f"chart {chart} is not pinned to a digest", cacheable=False)
        where = f"oci://{reference.registry}/{reference.repository}"
        return await self._checked(where, reference, trust, login, "chart", CHART_ADVICE)

    def _chart_trust(
        self, app: Application, chart: str, sources: ValuesSources
    ) -> tuple[Trust, RegistryLogin]:
        """The policy's keys, and the login for `chart`'s registry: the one helm pulls charts
        with (spec.repositorySecretRef), else anonymous."""
        assert app.verify is not None and sources.verify_secret is not None
        trust = parse_trust(app.verify.secret, sources.verify_secret, app.verify.identities)
        credentials = repository_credentials(chart, app.repository_secret, sources.repository_secret)
        return trust, self._login(credentials)

    def _login(self, credentials: RegistryCredentials | None) -> RegistryLogin:
        if credentials is None:
            return RegistryLogin(timeout=self.timeout)
        ca = credentials.ca_pem.decode("ascii", "replace")
        return RegistryLogin(credentials.username, credentials.password, None, self.timeout, ca)

    async def _checked(
        self,
        name: str,
        reference: ImageReference,
        trust: Trust,
        login: RegistryLogin,
        subject: str = "image",
        advice: str = IMAGE_ADVICE,
    ) -> Verdict:
        """The (cached) verdict on the signatures of `reference`'s digest; `name` is how
        messages call it (the image as recorded, or the chart)."""
        key = (f"{reference.registry}/{reference.repository}", reference.digest, trust.fingerprint)
        cached = self._cache.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        self.fetches += 1
        try:
            fetched = await asyncio.to_thread(fetch_signatures, reference, login)
        except (RegistryError, ValueError) as error:
            if isinstance(error, RegistryUnreachableError):  # the cause for the operator's log only
                log.info("signatures of %s: %s: %s", name, error, error.detail)
            return Verdict(
                False, f"the signatures of {name} could not be read: {error}", cacheable=False, judged=False
            )
        now = dt.datetime.now(dt.UTC)
        verdict = verify(name, reference.digest, trust.keys, fetched, subject, advice, trust.keyless, now)
        self._remember(key, verdict)
        return verdict

    def _remember(self, key: tuple[str, str, str], verdict: Verdict) -> None:
        ttl = VERIFIED_TTL if verdict.verified else REFUSED_TTL
        if verdict.valid_until is not None:  # keyless: no longer than the certificate is valid
            ttl = max(0.0, min(ttl, (verdict.valid_until - dt.datetime.now(dt.UTC)).total_seconds()))
        self._cache[key] = (verdict, time.monotonic() + ttl)
        self._cache.move_to_end(key)
        while len(self._cache) > MAX_CACHED:
            self._cache.popitem(last=False)
