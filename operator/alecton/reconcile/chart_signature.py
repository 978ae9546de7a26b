"""An oci:// chart's cosign signature (spec.verify.chart): which registry manifest is checked,
and what helm is then given. Pure.

`helm push` stores a chart as an OCI manifest, and `cosign sign` signs it as it signs an
image: the signature of manifest `sha256:<hex>` sits at tag `sha256-<hex>.sig` of the same
repository. The operator resolves the chart's tag (spec.chartVersion) to its digest, checks
the signature of that digest with reconcile.signatures (as for images), and gives helm
`oci://host/repo/chart@sha256:<hex>` without `--version`: helm 3 and helm 4 then pull
exactly that manifest, whatever the tag names by the time they pull. (With the tag as well,
as `--version` or `chart:tag@digest`, both resolve the tag again and fail when it moved.)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from alecton.api.models import Application
from alecton.reconcile.chart import ChartRefusedError, ChartSource
from alecton.reconcile.image_policy import VerificationSecretMissingError
from alecton.reconcile.image_ref import ImageReference, ImageReferenceError, parse_reference
from alecton.reconcile.signatures import Verdict

CHART_VERIFICATION_FAILED = "ChartVerificationFailed"
OCI_SCHEME = "oci://"
CHART_ADVICE = "sign that digest with `cosign sign --key cosign.key`, or name a chartVersion that is signed"


class ChartVerificationFailedError(ValueError):
    """spec.verify.chart, and the chart's digest carries no signature by the policy's keys."""


@dataclass(frozen=True)
class ChartVerdict:
    """The verdict on the chart's signature, and the manifest digest it is about ("" when
    the tag could not be resolved)."""

    verdict: Verdict
    digest: str = ""


def verifies_chart(app: Application) -> bool:
    return app.verify is not None and app.verify.chart


def chart_reference(chart: str, version: str) -> ImageReference:
    """The registry reference of `oci://host/repo/chart` at `version` (spec.chartVersion):
    the tag helm pulls (`+` becomes `_`, as helm pushes it), or the digest the chart names
    itself. ChartRefusedError, saying what to set, when there is no one tag: the signature
    is checked for one manifest."""
    if not chart.startswith(OCI_SCHEME):
        raise ChartRefusedError(f"spec.verify.chart is for oci:// charts only, not {chart!r}")
    rest = chart.removeprefix(OCI_SCHEME)
    if "/" not in rest:
        raise ChartRefusedError(f"spec.chart {chart!r} names no repository after the registry host")
    try:
        reference = parse_reference(rest, host_first=True)
    except ImageReferenceError as error:
        raise ChartRefusedError(f"spec.chart {chart!r} is not an OCI reference: {error}") from None
    if reference.digest:
        return reference
    tag = version.replace("+", "_")
    if reference.tag and version and reference.tag != tag:
        raise ChartRefusedError(
            f"spec.chart names tag {reference.tag!r} and spec.chartVersion {version!r}: keep one"
        )
    tag = tag or reference.tag
    if not tag:
        raise ChartRefusedError(
            "spec.verify.chart checks the signature of one chart version: set spec.chartVersion "
            "to the exact version (the tag whose digest is checked and deployed)"
        )
    try:
        return parse_reference(f"{reference.registry}/{reference.repository}:{tag}", host_first=True)
    except ImageReferenceError:
        raise ChartRefusedError(
            f"spec.chartVersion {version!r} is not one tag (a range?): spec.verify.chart needs the "
            "exact version, whose digest is checked and deployed"
        ) from None


def pinned_chart(reference: ImageReference, digest: str) -> str:
    """`oci://host/repo/chart@sha256:...`: what helm pulls, by digest only."""
    return f"{OCI_SCHEME}{reference.registry}/{reference.repository}@{digest}"


def checked_chart(app: Application, source: ChartSource, verdict: ChartVerdict | None) -> ChartSource:
    """`source` as helm gets it once the policy allows it: unchanged without
    spec.verify.chart, else pinned to the digest whose signature verified.
    ChartRefusedError for a chart that cannot be checked, VerificationSecretMissingError while
    the policy's Secret is missing, ChartVerificationFailedError when the verdict says no."""
    if not verifies_chart(app):
        return source
    reference = chart_reference(app.chart, app.chart_version)
    where = f"{OCI_SCHEME}{reference.registry}/{reference.repository}:{reference.manifest_reference}"
    if verdict is None:
        raise ChartVerificationFailedError(f"chart {where}: its signature was not checked")
    if verdict.verdict.waiting:
        raise VerificationSecretMissingError(verdict.verdict.message)
    if not verdict.verdict.verified or not verdict.digest:
        raise ChartVerificationFailedError(verdict.verdict.message)
    return replace(source, chart=pinned_chart(reference, verdict.digest), version="")
