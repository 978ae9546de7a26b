"""Argo CD's view of alecton (issue 27, point 4): the Lua health checks in deploy/argocd run
against live Deployments and Promotions driven through their states on the real control
plane (kwok nodes play the kubelet, see test_health.py), and the shipped argocd-cm patch and
kustomize Component install exactly those scripts.

With ALECTON_RECORD_ARGOCD_FIXTURES=1 the objects seen are also written (trimmed) to
tests/fixtures/argocd/, which tests/unit/test_argocd_health.py checks offline.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.argocd_lua import ARGOCD, FIXTURES, health, script_path, trimmed
from tests.integration import resources as r
from tests.integration.harness import REPO, Cluster, OperatorProcess, module_operator, wait_for, wait_phase
from tests.integration.test_cli import alecton, ok
from tests.integration.test_readme import example

GOOD = "ghcr.io/stefanprodan/podinfo:6.7.0"
CRASH = "ghcr.io/stefanprodan/podinfo:6.9.0-crash"
UNREADY = "ghcr.io/stefanprodan/podinfo:6.9.0-unready"
RECORD = os.environ.get("ALECTON_RECORD_ARGOCD_FIXTURES") == "1"


@pytest.fixture(scope="module")
def operator(crds: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """One operator (Helm 4): what the scripts read does not depend on helm's major version."""
    with module_operator(crds, "helm", tmp_path_factory.mktemp("operator")) as process:
        yield process


def live(cluster: Cluster, kind: str, name: str, ns: str) -> dict[str, Any]:
    out = cluster.kubectl("get", f"{kind.lower()}s.alecton.dev", name, "-n", ns, "-o", "json")
    return dict(json.loads(out.stdout))


def argo(cluster: Cluster, kind: str, name: str, ns: str, record: str = "") -> tuple[str, str]:
    """The script's verdict on the object as the API server returns it now."""
    obj = live(cluster, kind, name, ns)
    if RECORD and record:
        (FIXTURES / f"{record}.json").write_text(json.dumps(trimmed(obj), indent=1, sort_keys=True) + "\n")
    return health(kind, obj)


def expect(
    cluster: Cluster, kind: str, name: str, ns: str, status: str, words: str, record: str = ""
) -> None:
    found, message = argo(cluster, kind, name, ns, record)
    assert found == status and words in message, (found, message)


def test_deployment_states_as_argo_cd_sees_them(operator: OperatorProcess) -> None:
    cluster = operator.cluster
    ns = cluster.new_namespace("argo")
    images = [r.image("web", "1.0.0", GOOD), r.image("web", "2.0.0", CRASH), r.image("web", "3.0.0", UNREADY)]
    web = r.application("web", f"{ns}-web", onFailure="Rollback", healthTimeout="5m")
    api = r.application("api", f"{ns}-api", healthTimeout="6s")
    cluster.apply(r.cluster(), web, api, *images, namespace=ns)

    # Waiting for an Image CI has not recorded yet: Progressing, saying what is missing.
    cluster.apply(r.deployment("web", "9.9.9"), namespace=ns)
    wait_phase(cluster, ns, "web-staging", "Pending")
    expect(cluster, "Deployment", "web-staging", ns, "Progressing", "9.9.9", "deployment-pending")

    cluster.patch_spec(ns, "web-staging", {"version": "1.0.0"})
    wait_phase(cluster, ns, "web-staging", "Deployed", timeout=90)
    expect(cluster, "Deployment", "web-staging", ns, "Healthy", "is healthy", "deployment-deployed")

    # A spec the operator has not seen yet (it is stopped): the old status says nothing about it.
    operator.stop()
    try:
        cluster.patch_spec(ns, "web-staging", {"suspend": True})
        expect(cluster, "Deployment", "web-staging", ns, "Progressing", "not acted on the latest spec")
    finally:
        operator.start()
    wait_phase(cluster, ns, "web-staging", "Suspended")
    expect(cluster, "Deployment", "web-staging", ns, "Suspended", "spec.suspend", "deployment-suspended")
    cluster.patch_spec(ns, "web-staging", {"suspend": False})
    wait_phase(cluster, ns, "web-staging", "Deployed")

    # A second Deployment for the same application and target.
    cluster.apply(r.deployment("web", "1.0.0", name="web-staging-again"), namespace=ns)
    wait_phase(cluster, ns, "web-staging-again", "Conflict")
    expect(cluster, "Deployment", "web-staging-again", ns, "Degraded", "web-staging", "deployment-conflict")
    cluster.kubectl("delete", "deployments.alecton.dev", "web-staging-again", "-n", ns)

    # A crashing version fails its health check and is rolled back automatically: what Git
    # asks for (2.0.0) is not what runs.
    cluster.patch_spec(ns, "web-staging", {"version": "2.0.0"})
    wait_phase(cluster, ns, "web-staging", "RolledBack", timeout=90)
    expect(
        cluster,
        "Deployment",
        "web-staging",
        ns,
        "Degraded",
        "version 2.0.0 failed",
        "deployment-rolled-back-auto",
    )

    # A rollback a person asked for is the desired state.
    ok(alecton(cluster, ns, "rollback", "web", "staging", "1"))
    wait_phase(cluster, ns, "web-staging", "RolledBack", timeout=90)
    assert live(cluster, "Deployment", "web-staging", ns)["spec"].get("rollback")
    expect(cluster, "Deployment", "web-staging", ns, "Healthy", "rolled back", "deployment-rolled-back")

    # A freeze holds a change: Suspended, naming the freeze.
    ok(alecton(cluster, ns, "freeze", "start", "release-week", "--reason", "quarter close"))
    cluster.patch_spec(ns, "web-staging", {"version": "3.0.0", "rollback": None})

    def frozen() -> bool:
        obj = live(cluster, "Deployment", "web-staging", ns)
        ready = next((c for c in obj["status"].get("conditions", []) if c["type"] == "Ready"), {})
        return obj["status"].get("observedGeneration") == obj["metadata"]["generation"] and (
            ready.get("reason") == "Frozen"
        )

    wait_for(frozen, 60, "the change to be held by the freeze")
    expect(cluster, "Deployment", "web-staging", ns, "Suspended", "release-week", "deployment-frozen")
    ok(alecton(cluster, ns, "freeze", "end", "release-week"))

    # Unready pods: Verifying (Progressing) until the health timeout, then Failed (Degraded).
    cluster.apply(r.deployment("api", "3.0.0"), namespace=ns)
    wait_phase(cluster, ns, "api-staging", "Verifying", timeout=60)
    expect(
        cluster, "Deployment", "api-staging", ns, "Progressing", "verifying health", "deployment-verifying"
    )
    wait_phase(cluster, ns, "api-staging", "Failed", timeout=60)
    expect(cluster, "Deployment", "api-staging", ns, "Degraded", "health timeout", "deployment-failed-health")

    # A release that was healthy and is not any more: Degraded, without helm.
    cluster.patch_spec(ns, "api-staging", {"version": "1.0.0"})
    wait_phase(cluster, ns, "api-staging", "Deployed", timeout=90)
    pod = cluster.kubectl(
        "get", "pods", "-n", f"{ns}-api", "-l", "app.kubernetes.io/instance=api-staging", "-o", "name",
        context="alecton-b",
    ).stdout.split()[0]  # fmt: skip
    cluster.kubectl("annotate", pod, "alecton.dev/simulate=crash", "-n", f"{ns}-api", context="alecton-b")
    wait_phase(cluster, ns, "api-staging", "Degraded", timeout=60)
    expect(cluster, "Deployment", "api-staging", ns, "Degraded", "unhealthy", "deployment-degraded")


def promotions(cluster: Cluster, ns: str, deployment: str) -> dict[str, dict[str, Any]]:
    """toVersion -> the Promotion for it (one each in this test)."""
    items = json.loads(cluster.kubectl("get", "promotions.alecton.dev", "-n", ns, "-o", "json").stdout)[
        "items"
    ]
    return {p["spec"]["toVersion"]: p for p in items if p["spec"]["deployment"] == deployment}


def promotion_in(cluster: Cluster, ns: str, deployment: str, version: str, state: str) -> str:
    """The name of `deployment`'s Promotion of `version`, once it is in `state`."""

    def named() -> str:
        found = promotions(cluster, ns, deployment).get(version) or {}
        return str(found["metadata"]["name"]) if (found.get("status") or {}).get("state") == state else ""

    return str(wait_for(named, 120, f"the promotion of {version} on {deployment} to be {state}"))


def test_promotion_states_as_argo_cd_sees_them(operator: OperatorProcess) -> None:
    cluster = operator.cluster
    cluster.kubectl("apply", "-f", str(REPO / "deploy" / "promotion-approvals.yaml"))
    ns = cluster.new_namespace("argo-promo")
    app = r.application("web", f"{ns}-staging", onFailure="Rollback", healthTimeout="2m")
    app["spec"]["targets"].append({"name": "prod", "cluster": "target-b", "namespace": f"{ns}-prod"})
    cluster.apply(r.cluster(), app, namespace=ns)
    staging = {"versions": {"semver": ">=1.0.0 <2"}}
    prod = {**staging, "from": "staging", "soak": "3s", "approval": "Manual"}
    cluster.apply(r.promoted("web", staging), r.promoted("web", prod, target="prod"), namespace=ns)

    ok(alecton(cluster, ns, "image", "create", "web", "1.0.0", GOOD))
    applied = promotion_in(cluster, ns, "web-staging", "1.0.0", "Applied")
    expect(cluster, "Promotion", applied, ns, "Healthy", "Applied", "promotion-applied")

    pending = promotion_in(cluster, ns, "web-prod", "1.0.0", "Pending")
    expect(cluster, "Promotion", pending, ns, "Suspended", "alecton approve web prod", "promotion-pending")
    ok(alecton(cluster, ns, "approve", "web", "prod"))
    promotion_in(cluster, ns, "web-prod", "1.0.0", "Applied")
    expect(cluster, "Promotion", pending, ns, "Healthy", "Applied")

    # A version that crashes on staging: its applied promotion becomes Failed.
    ok(alecton(cluster, ns, "image", "create", "web", "1.1.0", CRASH))
    failed = promotion_in(cluster, ns, "web-staging", "1.1.0", "Failed")
    expect(cluster, "Promotion", failed, ns, "Degraded", "failed its health check", "promotion-failed")

    # A person says no.
    ok(alecton(cluster, ns, "image", "create", "web", "1.2.0", GOOD))
    promotion_in(cluster, ns, "web-prod", "1.2.0", "Pending")
    ok(alecton(cluster, ns, "reject", "web", "prod", "--reason", "not this week"))
    rejected = promotion_in(cluster, ns, "web-prod", "1.2.0", "Rejected")
    expect(cluster, "Promotion", rejected, ns, "Healthy", "Rejected", "promotion-rejected")

    # An Image (as `alecton image create` records it): Healthy, saying what it is.
    images = json.loads(cluster.kubectl("get", "images.alecton.dev", "-n", ns, "-o", "json").stdout)
    name = next(i["metadata"]["name"] for i in images["items"] if i["spec"]["version"] == "1.0.0")
    expect(cluster, "Image", name, ns, "Healthy", GOOD, "image")


def test_the_shipped_configmap_carries_exactly_the_scripts(crds: Cluster, tmp_path: Path) -> None:
    """Applied to a stand-in argocd-cm on the real API server, both the patch and the
    kustomize Component leave one key per script whose value is that script, and keep the
    keys that were there."""
    scripts = {
        f"resource.customizations.health.{p.stem}": p.read_text() for p in (ARGOCD / "health").glob("*.lua")
    }
    assert len(scripts) == 3
    ns = crds.new_namespace("argocd")
    stand_in = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "argocd-cm"},
        "data": {"url": "x"},
    }
    crds.apply(stand_in, namespace=ns)
    # The README's command as pasted at the root of a checkout, in this test's namespace.
    command = shlex.split(example("argocd-example"), comments=True)
    assert command[:2] == ["kubectl", "patch"] and command[command.index("-n") + 1] == "argocd", command
    command[command.index("-n") + 1] = ns
    crds.kubectl(*[str(REPO / arg) if arg.startswith("deploy/") else arg for arg in command[1:]])
    patched = crds.get("configmap", "argocd-cm", ns) or {}
    assert patched["data"] == {"url": "x", **scripts}

    # The Component, as a user adds it to the kustomization that installs Argo CD.
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "argocd-cm.yaml").write_text(json.dumps(stand_in))
    (tmp_path / "kustomization.yaml").write_text(
        json.dumps({"namespace": ns, "resources": ["base/argocd-cm.yaml"], "components": ["argocd"]})
    )
    subprocess.run(["cp", "-r", str(ARGOCD), str(tmp_path / "argocd")], check=True)
    crds.kubectl("delete", "configmap", "argocd-cm", "-n", ns)
    crds.kubectl("apply", "-k", str(tmp_path))
    built = crds.get("configmap", "argocd-cm", ns) or {}
    assert built["data"] == {"url": "x", **scripts}
    assert all(script_path(kind).exists() for kind in ("Deployment", "Promotion", "Image"))
