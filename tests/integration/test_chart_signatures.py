"""Signed OCI charts (Application spec.verify.chart): charts pushed by helm to the local test
bed's registry, signed by the real cosign like images, and the operator's own check before
helm runs. The signed chart installs, pinned to the digest that verified (history names
it); an unsigned one, one signed by another key and one pushed over its signed tag are
Failed with ChartVerificationFailed and never installed; and a signed tag pushed over after
the deploy stops the next upgrade, the release staying at what verified."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.integration import resources as r
from tests.integration.harness import REPO, OperatorProcess, wait_for, wait_phase
from tests.integration.tenant import as_tenant
from tests.integration.test_cli import alecton
from tests.integration.test_image_signatures import (
    Cosign,
    ready_condition,
    rollback_to_1_refused,
    signed_image,
    verify_secret,
)
from tests.integration.test_oci_registry import Registry, push_chart, push_image

pytestmark = pytest.mark.local_plane("charts and signatures are pushed to the registry of `alecton local up`")


@pytest.fixture(scope="module")
def cosign(operator: OperatorProcess, tmp_path_factory: pytest.TempPathFactory) -> Cosign:
    binary = operator.cluster.bin / "cosign"
    assert binary.exists(), "cosign is not built: run `make tools` (TOOLS=cosign hack/build-tools.sh)"
    return Cosign(binary, Registry(operator.cluster), tmp_path_factory.mktemp("cosign"))


def altered_chart(work: Path) -> Path:
    """charts/webapp 1.0.0 with another description: the same tag, another manifest."""
    chart = work / "webapp"
    shutil.copytree(REPO / "charts" / "webapp", chart)
    meta = chart / "Chart.yaml"
    meta.write_text(meta.read_text().replace("description: >-", "description: >-\n  Pushed over the tag."))
    return chart


def test_only_oci_charts_signed_by_the_policys_key_are_installed(
    operator: OperatorProcess, cosign: Cosign, tmp_path: Path
) -> None:
    cluster = operator.cluster
    registry = Registry(cluster)
    ns = cluster.new_namespace("chartsig")
    target_ns = f"{ns}-web"
    ours, theirs = cosign.key_pair("ours"), cosign.key_pair("theirs")

    def push(case: str, chart: Path = REPO / "charts" / "webapp") -> str:
        work = tmp_path / f"{case}-{len(list(tmp_path.iterdir()))}"
        work.mkdir()
        return push_chart(cluster, registry, work, chart, to=f"{ns}/{case}")

    def chart_of(case: str) -> str:
        return f"oci://{registry.host}/{ns}/{case}/webapp"

    digests = {case: push(case) for case in ("good", "other-key", "unsigned", "retagged")}
    cosign.sign(ours, f"{registry.host}/{ns}/good/webapp@{digests['good']}")
    cosign.sign(theirs, f"{registry.host}/{ns}/other-key/webapp@{digests['other-key']}")
    cosign.sign(ours, f"{registry.host}/{ns}/retagged/webapp@{digests['retagged']}")
    over = push("retagged", altered_chart(tmp_path / "altered"))  # the signed tag, now another chart
    assert over != digests["retagged"]
    # spec.verify checks the image too: one signed image for all of them.
    image_ref = f"{registry.host}/{ns}/image"
    image_digest = push_image(registry, f"{ns}/image", "1.0.0", "a signed build")
    cosign.sign(ours, f"{image_ref}@{image_digest}")

    policy = {"provider": "cosign", "secretRef": {"name": "cosign"}, "chart": True}
    cases = ("good", "other-key", "unsigned", "retagged")
    cluster.apply(
        registry.secret(),
        verify_secret(registry, ours),
        r.cluster(),
        signed_image("1.0.0", f"{image_ref}:1.0.0", image_digest),
        *(
            r.application(case, target_ns, chart=chart_of(case), chartVersion="1.0.0",
                          repositorySecretRef={"name": "registry"}, verify=policy)
            for case in cases
        ),
        *(r.deployment(case, "1.0.0") for case in cases),
        namespace=ns,
    )  # fmt: skip

    deployed = wait_phase(cluster, ns, "good-staging", "Deployed", timeout=120)
    assert deployed["status"]["release"]["chart"] == "webapp-1.0.0", deployed["status"]
    # The audit trail names the chart digest that was checked and installed.
    history = alecton(cluster, ns, "history", "good", "staging", "-o", "json")
    charts = {record.get("chart") for record in json.loads(history.stdout)}
    assert f"{chart_of('good')}@{digests['good']}" in charts, history.stdout

    expected = {
        "other-key": ("is signed by another key", digests["other-key"]),
        "unsigned": ("has no cosign signature", digests["unsigned"]),
        "retagged": ("has no cosign signature", over),
    }
    for case, (words, digest) in expected.items():
        failed = wait_phase(cluster, ns, f"{case}-staging", "Failed", timeout=60)
        ready = ready_condition(failed)
        assert ready["reason"] == "ChartVerificationFailed", (case, ready)
        assert words in ready["message"] and f"chart {chart_of(case)}@{digest}" in ready["message"], (
            case,
            ready,
        )
    releases = cluster.helm_json(operator.helm, "list", "--namespace", target_ns)
    assert [x["name"] for x in releases] == ["good-staging"], releases

    # A diff checks the chart's signature too (with the caller's rights on the Secrets).
    diff = alecton(cluster, ns, "diff", "unsigned", "staging", "1.0.0")
    assert diff.returncode != 0 and "has no cosign signature" in diff.stderr, diff.stdout + diff.stderr

    # The good tag is pushed over after the deploy: the next upgrade is refused, the release
    # stays at the revision that verified.
    pushed_over = push("good", altered_chart(tmp_path / "altered-good"))
    changed: dict[str, Any] = r.application("good", target_ns, chart=chart_of("good"), chartVersion="1.0.0",
                                            repositorySecretRef={"name": "registry"}, verify=policy,
                                            values={"replicaCount": 2})  # fmt: skip
    cluster.apply(changed, namespace=ns)
    refused = wait_phase(cluster, ns, "good-staging", "Failed", timeout=120)
    ready = ready_condition(refused)
    assert ready["reason"] == "ChartVerificationFailed" and pushed_over in ready["message"], ready
    history_b = cluster.helm_json(operator.helm, "history", "good-staging", "--namespace", target_ns)
    assert [h["revision"] for h in history_b] == [1], history_b


def test_verify_chart_is_for_oci_charts_only(operator: OperatorProcess) -> None:
    cluster = operator.cluster
    ns = cluster.new_namespace("chartsig-cel")
    policy = {"provider": "cosign", "secretRef": {"name": "cosign"}, "chart": True}
    for chart, extra in (("webapp", {}), ("webapp", {"repository": "https://charts.example.com"})):
        app = r.application("web", f"{ns}-web", chart=chart, verify=policy, **extra)
        refused = cluster.kubectl("apply", "-n", ns, "-f", "-", check=False, stdin=json.dumps(app))
        assert refused.returncode != 0, refused.stdout
        assert "verify.chart checks the cosign signature of an oci:// chart" in refused.stderr, refused.stderr
    policy["chart"] = False  # off: any chart
    cluster.apply(r.application("web", f"{ns}-web", verify=policy), namespace=ns)


def chart_with_a_marker(work: Path) -> Path:
    """charts/webapp 1.0.0 plus a ConfigMap `<release>-unsigned-chart`: while it exists in
    the target cluster, this chart's manifest is what runs there."""
    chart = work / "webapp"
    shutil.copytree(REPO / "charts" / "webapp", chart)
    (chart / "templates" / "unsigned-chart.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-unsigned-chart\n"
        "data:\n  chart: never signed\n"
    )
    return chart


def test_a_rollback_under_verify_chart_restores_only_a_revision_whose_chart_digest_passes_now(
    operator: OperatorProcess, cosign: Cosign, tmp_path: Path
) -> None:
    """Red team R27B-1. Revision 1 ran an unsigned chart, pulled by tag before the team
    switched spec.verify.chart on (its image pinned and signed, so only the chart is in
    question); revision 2 runs the signed chart. A deployer (the shipped role, its own token)
    asks `alecton rollback` to 1: refused, naming the revision, the chart and the fix; helm
    makes no revision and the unsigned chart does not run again in cluster b. A rollback to a
    revision whose recorded chart digest verifies still goes ahead, and records that digest."""
    cluster = operator.cluster
    registry = Registry(cluster)
    ns = cluster.new_namespace("chartsig-rollback")
    target_ns = f"{ns}-web"
    keys = cosign.key_pair(f"keys-{ns}")
    unsigned = chart_with_a_marker(tmp_path / "marked")
    before = push_chart(cluster, registry, _work(tmp_path, "before"), unsigned, to=f"{ns}/before")
    signed = push_chart(cluster, registry, _work(tmp_path, "signed"), to=f"{ns}/signed")
    signed_chart = f"oci://{registry.host}/{ns}/signed/webapp"
    cosign.sign(keys, f"{registry.host}/{ns}/signed/webapp@{signed}")
    image_ref = f"{registry.host}/{ns}/image"
    image_digest = push_image(registry, f"{ns}/image", "1.0.0", f"{ns} signed build")
    cosign.sign(keys, f"{image_ref}@{image_digest}")

    def app(chart: str, **spec: Any) -> dict[str, Any]:
        return r.application("web", target_ns, chart=chart, chartVersion="1.0.0", pinImageDigest=True,
                             repositorySecretRef={"name": "registry"}, **spec)  # fmt: skip

    # Revision 1: the chart by its tag, before the policy (the image pinned to its signed digest).
    cluster.apply(registry.secret(), verify_secret(registry, keys), r.cluster(),
                  app(f"oci://{registry.host}/{ns}/before/webapp"), namespace=ns)  # fmt: skip
    deployer = as_tenant(cluster, ns, "alecton-deployer")
    deployer.apply(signed_image("1.0.0", f"{image_ref}:1.0.0", image_digest), r.deployment("web", "1.0.0"))
    wait_phase(cluster, ns, "web-staging", "Deployed", timeout=120)
    marker = (
        "get",
        "configmap",
        "web-staging-unsigned-chart",
        "-n",
        target_ns,
        "-o",
        "name",
        "--ignore-not-found",
    )
    assert cluster.kubectl(*marker, context="alecton-b").stdout.strip(), "revision 1 runs the unsigned chart"
    # Revision 2: the team's admin switches verify.chart on, with the signed chart.
    policy = {"provider": "cosign", "secretRef": {"name": "cosign"}, "chart": True}
    cluster.apply(app(signed_chart, verify=policy), namespace=ns)
    deployed = wait_for(
        lambda: (
            (d := cluster.get("deployments.alecton.dev", "web-staging", ns))
            and (d.get("status") or {}).get("release", {}).get("revision") == 2
            and d["status"].get("phase") == "Deployed"
            and d
        ),
        timeout=120,
    )
    assert not cluster.kubectl(*marker, context="alecton-b").stdout.strip()

    _status, message = rollback_to_1_refused(deployer, cluster, ns)
    assert "revision 1 (version 1.0.0) records no chart digest" in message, message
    # What the attacker wanted, in cluster b: the unsigned chart running again. It is not.
    helm_history = cluster.helm_json(operator.helm, "history", "web-staging", "--namespace", target_ns)
    assert [h["revision"] for h in helm_history] == [1, 2], helm_history
    assert not cluster.kubectl(*marker, context="alecton-b").stdout.strip()
    assert before != signed
    history = deployed["status"]["history"]
    assert [(h["revision"], h.get("chartReference")) for h in history] == [
        (2, f"{signed_chart}@{signed}"),
        (1, None),  # pulled by tag: which manifest ran is not known
    ], history

    # Revision 3 (new values), then a rollback to 2, whose recorded chart digest verifies now:
    # it goes ahead, and revision 4 records the digest it runs again.
    deployer("patch", "deployments.alecton.dev", "web-staging", "--type=json",
             "-p", '[{"op": "remove", "path": "/spec/rollback"}]')  # fmt: skip
    cluster.apply(app(signed_chart, verify=policy, values={"replicaCount": 2}), namespace=ns)
    wait_for(
        lambda: (
            (cluster.get("deployments.alecton.dev", "web-staging", ns).get("status") or {})
            .get("release", {})
            .get("revision")
            == 3
        ),
        timeout=120,
    )
    rolled = deployer.alecton("rollback", "web", "staging", "2", "--wait", "--timeout", "90")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    history = cluster.get("deployments.alecton.dev", "web-staging", ns)["status"]["history"]
    assert [(h["revision"], h.get("chartReference")) for h in history][:2] == [
        (4, f"{signed_chart}@{signed}"),
        (3, f"{signed_chart}@{signed}"),
    ], history


def _work(tmp_path: Path, name: str) -> Path:
    work = tmp_path / name
    work.mkdir()
    return work
