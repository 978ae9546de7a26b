"""spec.verify.chart without a registry: which manifest of an oci:// chart is checked, the
plan's refusal (ChartVerificationFailed) and its pin (helm gets chart@digest, no --version),
and the verifier resolving the tag with the chart's own login (its registry calls faked)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from alecton.api.models import Application, Cluster, Deployment, InvalidResourceError
from alecton.helm.actions import HelmActions
from alecton.helm.runner import HelmRunner
from alecton.kube.access import KubeAccess
from alecton.reconcile.chart import ChartPolicy, ChartRefusedError, ChartSource
from alecton.reconcile.chart_signature import (
    ChartVerdict,
    ChartVerificationFailedError,
    chart_reference,
    checked_chart,
)
from alecton.reconcile.image_policy import VerificationSecretMissingError
from alecton.reconcile.plan import Action, RecordedStatus, Resolved, ValuesSources, plan_release
from alecton.reconcile.signatures import Fetched, Verdict, verify
from alecton.registry.signatures import ImageVerifier
from cryptography.hazmat.primitives.asymmetric import ec

from tests.unit.test_image_signatures import DIGEST, OTHER, fetched, image, keys, payload, pem, sign

CHART = "oci://registry.example:5000/charts/webapp"
POLICY = {"provider": "cosign", "secretRef": {"name": "cosign"}, "chart": True}
ANY_HOST = ChartPolicy()


def application(ref: str = CHART, version: str = "1.0.0", **verify: Any) -> Application:
    spec: dict[str, Any] = {
        "chart": ref,
        "image": "web",
        "verify": {**POLICY, **verify},
        "repositorySecretRef": {"name": "registry"},
        "targets": [{"name": "staging", "cluster": "local", "namespace": "web"}],
    }
    if version:
        spec["chartVersion"] = version
    return Application.parse({"metadata": {"name": "web", "namespace": "team"}, "spec": spec})


def test_verify_chart_is_a_boolean_off_by_default() -> None:
    assert application().verify is not None and application().verify.chart  # type: ignore[union-attr]
    assert not application(chart=False).verify.chart  # type: ignore[union-attr]
    with pytest.raises(InvalidResourceError, match=r"spec\.verify\.chart must be true or false"):
        application(chart="yes")


def test_the_checked_manifest_is_the_tag_helm_pulls_or_the_digest_the_chart_names() -> None:
    reference = chart_reference(CHART, "1.0.0")
    assert (reference.registry, reference.repository, reference.tag) == (
        "registry.example:5000",
        "charts/webapp",
        "1.0.0",
    )
    # The first component is the registry host in oci://, dotted or not (helm's rule).
    assert chart_reference("oci://registry/charts/webapp", "1.0.0").registry == "registry"
    assert chart_reference(CHART, "1.0.0+build.7").tag == "1.0.0_build.7"  # as helm push tags it
    assert chart_reference(f"{CHART}:1.0.0", "").tag == "1.0.0"
    assert chart_reference(f"{CHART}@{DIGEST}", "").digest == DIGEST
    for chart, version, words in [
        (CHART, "", "set spec.chartVersion to the exact version"),
        (CHART, "^1.0.0", r"is not one tag \(a range\?\)"),
        (CHART, ">=1.0.0 <2", r"is not one tag \(a range\?\)"),
        (f"{CHART}:1.0.0", "2.0.0", "keep one"),
        ("https://charts.example.com/webapp", "1.0.0", "for oci:// charts only"),
        ("oci://registry.example", "1.0.0", "names no repository"),
        ("oci://registry.example/Charts/WEB", "1.0.0", "is not an OCI reference"),
    ]:
        with pytest.raises(ChartRefusedError, match=words):
            chart_reference(chart, version)


def test_a_verified_chart_is_pinned_to_its_digest_and_anything_else_refused() -> None:
    app = application()
    source = ChartSource(CHART, "", "1.0.0")
    pinned = checked_chart(app, source, ChartVerdict(Verdict(True, "signed"), DIGEST))
    assert (pinned.chart, pinned.version) == (f"{CHART}@{DIGEST}", "")
    unverified = application(chart=False)
    assert checked_chart(unverified, source, None) is source  # no policy: no verdict needed
    with pytest.raises(ChartVerificationFailedError, match="has no cosign signature"):
        checked_chart(app, source, ChartVerdict(Verdict(False, "chart x has no cosign signature"), DIGEST))
    with pytest.raises(ChartVerificationFailedError, match="was not checked"):
        checked_chart(app, source, None)
    with pytest.raises(VerificationSecretMissingError, match="does not exist"):
        checked_chart(
            app, source, ChartVerdict(Verdict(False, "Secret 'cosign' does not exist", waiting=True))
        )
    with pytest.raises(ChartRefusedError, match="exact version"):  # before any verdict
        checked_chart(application(version=""), source, ChartVerdict(Verdict(True, "signed"), DIGEST))


def test_the_verdicts_words_name_the_chart() -> None:
    ours, theirs = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    body = payload()
    name = CHART
    signed = verify(name, DIGEST, keys(ours), fetched((body, sign(ours, body))), "chart", "advice")
    assert signed.verified and signed.message.startswith(f"chart {CHART}@{DIGEST} is signed by key")
    other = verify(name, DIGEST, keys(ours), fetched((body, sign(theirs, body))), "chart", "advice")
    assert f"chart {CHART}@{DIGEST} is signed by another key" in other.message
    none = verify(name, DIGEST, keys(ours), None, "chart", "sign it")
    assert none.message.endswith(": sign it") and "chart " in none.message
    moved = verify(name, OTHER, keys(ours), fetched((body, sign(ours, body))), "chart", "advice")
    assert "not this chart's" in moved.message


def deployment() -> Deployment:
    return Deployment.parse(
        {
            "metadata": {
                "name": "web-staging",
                "namespace": "team",
                "finalizers": ["alecton.dev/helm-release"],
            },
            "spec": {"application": "web", "target": "staging", "version": "1.0.0"},
        }
    )


def test_the_plan_refuses_with_chart_verification_failed_and_installs_the_digest() -> None:
    app = application()
    cluster = Cluster.parse({"metadata": {"name": "local", "namespace": "team"}, "spec": {"inCluster": True}})
    resolved = Resolved(app, app.targets[0], cluster, image())
    login = {"username": b"robot", "password": b"pw", "registry": b"registry.example:5000"}
    signed_image = Verdict(True, "image signed")

    def plan(chart: ChartVerdict | None) -> Any:
        sources = ValuesSources(
            repository_secret=login, verify_secret={}, image_verdict=signed_image, chart_verdict=chart
        )
        return plan_release(
            deployment(), RecordedStatus(), resolved, deployment().ref, ChartPolicy(), sources
        )

    refused = plan(ChartVerdict(Verdict(False, f"chart {CHART}@{OTHER} is signed by another key"), OTHER))
    assert (refused.action, refused.reason) == (Action.REFUSED, "ChartVerificationFailed")
    assert "signed by another key" in refused.message and OTHER in refused.message
    waiting = plan(ChartVerdict(Verdict(False, "Secret 'cosign' does not exist", waiting=True)))
    assert (waiting.action, waiting.reason) == (Action.WAIT, "VerificationSecretNotFound")
    upgrade = plan(ChartVerdict(Verdict(True, "signed"), DIGEST))
    assert upgrade.action is Action.UPGRADE and upgrade.desired is not None
    chart = upgrade.desired.chart
    assert (chart.chart, chart.version) == (f"{CHART}@{DIGEST}", "")
    assert chart.credentials is not None and chart.credentials.username == "robot"
    # Another digest of the same tag is another release (the fingerprint names the digest).
    again = plan(ChartVerdict(Verdict(True, "signed"), OTHER))
    assert again.desired is not None and again.desired.fingerprint != upgrade.desired.fingerprint
    # helm is given the digest alone: no --version, which would make it resolve the tag again.
    args = HelmActions(HelmRunner("helm"))._upgrade_args(
        "web-staging", "web", chart, Path("values.yaml"), KubeAccess("kubeconfig"), "d", {}
    )
    assert "--version" not in args and args[-1] == f"{CHART}@{DIGEST}"


def sources(data: dict[str, bytes] | None, login: bool = True) -> ValuesSources:
    secret = {"username": b"robot", "password": b"pw", "registry": b"registry.example:5000"}
    return ValuesSources(repository_secret=secret if login else None, verify_secret=data)


def test_the_verifier_resolves_the_tag_with_the_charts_login_then_checks_that_digest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from alecton.registry import signatures as fetching

    ours = ec.generate_private_key(ec.SECP256R1())
    body = payload()
    tags = {"1.0.0": DIGEST, "2.0.0": OTHER}
    signatures: dict[str, list[Fetched] | None] = {DIGEST: fetched((body, sign(ours, body))), OTHER: None}
    asked: list[tuple[str, str]] = []

    def fake_resolve(reference: Any, login: Any) -> str:
        asked.append(("tag", reference.tag))
        assert (login.username, login.password) == ("robot", "pw")  # the chart's own login
        return tags[reference.tag]

    def fake_fetch(reference: Any, login: Any) -> list[Fetched] | None:
        asked.append(("signatures", reference.digest))
        assert reference.repository == "charts/webapp" and login.username == "robot"
        return signatures[reference.digest]

    monkeypatch.setattr(fetching, "resolve_digest", fake_resolve)
    monkeypatch.setattr(fetching, "fetch_signatures", fake_fetch)
    verifier = ImageVerifier()
    data = {"cosign.pub": pem(ours)}
    good = asyncio.run(verifier.chart_verdict(application(), sources(data), ANY_HOST))
    assert good.verdict.verified and good.digest == DIGEST, good
    unsigned = asyncio.run(verifier.chart_verdict(application(version="2.0.0"), sources(data), ANY_HOST))
    assert not unsigned.verdict.verified and unsigned.digest == OTHER
    assert f"chart {CHART}@{OTHER} has no cosign signature" in unsigned.verdict.message
    # The tag is asked every time (it may move); a verified digest's signatures only once.
    asyncio.run(verifier.chart_verdict(application(), sources(data), ANY_HOST))
    assert asked == [("tag", "1.0.0"), ("signatures", DIGEST), ("tag", "2.0.0"), ("signatures", OTHER),
                     ("tag", "1.0.0")]  # fmt: skip

    # Nothing is asked of the registry for a policy that cannot be used.
    asked.clear()
    missing = asyncio.run(verifier.chart_verdict(application(), sources(None), ANY_HOST))
    assert missing.verdict.waiting and "spec.verify.secretRef" in missing.verdict.message
    for app, data_, words in [
        (application(version="^1"), data, "a range?"),
        (application(), {"cosign.pub": b"nope"}, "not a PEM public key"),
    ]:
        refused = asyncio.run(verifier.chart_verdict(app, sources(data_), ANY_HOST))
        assert not refused.verdict.verified and words in refused.verdict.message
        assert not refused.verdict.cacheable
    no_login = asyncio.run(verifier.chart_verdict(application(), sources(data, login=False), ANY_HOST))
    assert "Secret 'registry' (spec.repositorySecretRef) does not exist" in no_login.verdict.message
    # A registry host the chart policy does not allow is never asked (not even for a digest).
    elsewhere = ChartPolicy(repository_hosts=frozenset({"charts.example.com"}))
    disallowed = asyncio.run(verifier.chart_verdict(application(), sources(data), elsewhere))
    assert "is not in the repository hosts the operator allows" in disallowed.verdict.message
    assert asked == []


def test_the_chart_a_revision_recorded_is_checked_by_its_digest_with_the_keys_and_login_of_now(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rollback under verify.chart (R27B-1): the pinned chart status.history recorded is
    checked as the deploy's is, its digest as recorded (no tag is resolved), with the
    current keys and the chart's login; a host the chart policy refuses is never asked."""
    from alecton.registry import signatures as fetching

    ours, removed = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    body = payload()
    signatures = {DIGEST: fetched((body, sign(ours, body))), OTHER: fetched((body, sign(removed, body)))}
    asked: list[str] = []

    def fake_fetch(reference: Any, login: Any) -> list[Fetched] | None:
        asked.append(reference.digest)
        assert reference.repository == "charts/webapp" and login.username == "robot"
        return signatures[reference.digest]

    monkeypatch.setattr(fetching, "resolve_digest", lambda *_: pytest.fail("no tag is resolved"))
    monkeypatch.setattr(fetching, "fetch_signatures", fake_fetch)
    verifier = ImageVerifier()
    data = {"cosign.pub": pem(ours)}

    def verdict(chart: str, policy: ChartPolicy = ANY_HOST) -> Verdict:
        return asyncio.run(verifier.pinned_chart_verdict(application(), chart, sources(data), policy))

    assert verdict(f"{CHART}@{DIGEST}").verified
    refused = verdict(f"{CHART}@{OTHER}")  # signed by a key since removed from the Secret
    assert not refused.verified and f"chart {CHART}@{OTHER} is signed by another key" in refused.message
    assert asked == [DIGEST, OTHER]
    asked.clear()
    assert "not pinned to a digest" in verdict(f"{CHART}:1.0.0").message
    elsewhere = ChartPolicy(repository_hosts=frozenset({"charts.example.com"}))
    assert (
        "is not in the repository hosts the operator allows"
        in verdict(f"{CHART}@{DIGEST}", elsewhere).message
    )
    missing = asyncio.run(
        verifier.pinned_chart_verdict(application(), f"{CHART}@{DIGEST}", sources(None), ANY_HOST)
    )
    assert missing.waiting and not missing.verified
    assert asked == []


def test_a_registry_that_cannot_say_the_digest_is_a_refusal_not_cached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from alecton.registry import signatures as fetching
    from alecton.registry.digest import RegistryError

    def fake_resolve(reference: Any, login: Any) -> str:
        raise RegistryError("registry.example:5000/charts/webapp:1.0.0 does not exist")

    monkeypatch.setattr(fetching, "resolve_digest", fake_resolve)
    verdict = asyncio.run(
        ImageVerifier().chart_verdict(
            application(), sources({"cosign.pub": pem(ec.generate_private_key(ec.SECP256R1()))}), ANY_HOST
        )
    )
    assert not verdict.verdict.verified and not verdict.verdict.cacheable and verdict.digest == ""
    assert "the digest of chart oci://registry.example:5000/charts/webapp:1.0.0 could not be read" in (
        verdict.verdict.message
    )
