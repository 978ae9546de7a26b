"""Deploy freezes (issue 25, point 6) on the real control plane, acting as a tenant with the
shipped roles: a Freeze holds an automatic promotion and a manual deploy (the CLI refuses it
with the freeze's name; a change written with kubectl stays unreleased, Frozen), an override
with a reason deploys, a rollback goes through, ending the freeze (or its end time) releases
what it held. A tenant cannot freeze another tenant's namespace nor the whole platform."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from tests.integration import resources as r
from tests.integration.harness import Cluster, OperatorProcess, wait_for, wait_phase
from tests.integration.tenant import Tenant, as_tenant

GOOD = "ghcr.io/stefanprodan/podinfo:6.7.0"
STAGING = {"versions": {"semver": ">=1.0.0 <2"}}
EXIT_FROZEN = 6


def alecton_as(tenant: Tenant, *args: str) -> subprocess.CompletedProcess[str]:
    """The `alecton` CLI with the tenant's own kubeconfig (its token, its namespace)."""
    return subprocess.run(
        [sys.executable, "-m", "alecton", *args, "-n", tenant.namespace],
        capture_output=True,
        text=True,
        env=tenant.env,
        timeout=180,
    )


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr}"
    return proc.stdout


def deployment(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    return cluster.get("deployments.alecton.dev", name, ns) or {}


def ready(obj: dict[str, Any]) -> dict[str, Any]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == "Ready"), {})


def frozen(cluster: Cluster, ns: str, name: str, freeze: str) -> dict[str, Any] | None:
    """The Deployment, once its current generation is reported Frozen by `freeze`."""
    obj = deployment(cluster, ns, name)
    status = obj.get("status") or {}
    if status.get("observedGeneration") != obj.get("metadata", {}).get("generation"):
        return None
    condition = ready(obj)
    if condition.get("reason") == "Frozen" and freeze in str(status.get("message")):
        return obj
    return None


def test_a_freeze_holds_changes_until_it_ends(operator: OperatorProcess) -> None:
    cluster = operator.cluster
    ns = cluster.new_namespace("freeze")
    other = cluster.new_namespace("freeze-other")
    app = r.application("web", f"{ns}-staging")
    app["spec"]["targets"].append({"name": "prod", "cluster": "target-b", "namespace": f"{ns}-prod"})
    cluster.apply(r.cluster(), app, namespace=ns)
    deployer = as_tenant(cluster, ns, "alecton-deployer")
    neighbour = as_tenant(cluster, other, "alecton-deployer")

    # A tenant stops only its own line: not another namespace's, not the platform's.
    stop_all = {
        "apiVersion": r.API,
        "kind": "Freeze",
        "metadata": {"name": "theirs"},
        "spec": {"reason": "x"},
    }
    deployer.forbidden("apply", "-n", other, "-f", "-", stdin=json.dumps(stop_all))
    platform = {**stop_all, "kind": "ClusterFreeze", "metadata": {"name": "stop-everything"}}
    deployer.forbidden("apply", "-f", "-", stdin=json.dumps(platform))
    # Bad freezes are refused by the API server, naming what is wrong.
    both = {**stop_all, "spec": {"reason": "x", "until": "2030-01-01T00:00:00Z", "windows": []}}
    both["spec"]["windows"] = [{"schedule": "0 18 * * 5", "duration": "62h"}]
    refused = deployer("apply", "-f", "-", stdin=json.dumps(both), check=False)
    assert refused.returncode != 0 and "give either windows or from/until" in refused.stderr, refused.stderr
    backwards = {
        **stop_all,
        "spec": {"reason": "x", "from": "2030-01-02T00:00:00Z", "until": "2030-01-01T00:00:00Z"},
    }
    refused = deployer("apply", "-f", "-", stdin=json.dumps(backwards), check=False)
    assert refused.returncode != 0 and "until must be later than from" in refused.stderr, refused.stderr
    no_reason = {**stop_all, "spec": {"until": "2030-01-01T00:00:00Z"}}
    refused = deployer("apply", "-f", "-", stdin=json.dumps(no_reason), check=False)
    assert refused.returncode != 0 and "spec.reason: Required value" in refused.stderr, refused.stderr
    # The neighbour's own freeze of everything does not reach this namespace.
    neighbour.apply(stop_all)

    deployer.apply(r.promoted("web", STAGING), r.image("web", "1.0.0", GOOD), r.image("web", "1.0.1", GOOD))
    ok(alecton_as(deployer, "deploy", "web", "prod", "1.0.0", "--wait", "--timeout", "120"))
    ok(alecton_as(deployer, "deploy", "web", "prod", "1.0.1", "--wait", "--timeout", "120"))
    wait_phase(cluster, ns, "web-staging", "Deployed", timeout=120, appliedVersion="1.0.1")

    # Stop the line.
    ok(alecton_as(deployer, "freeze", "start", "release-week", "--reason", "quarter close"))
    wait_for(
        lambda: ((cluster.get("freezes.alecton.dev", "release-week", ns) or {}).get("status") or {}).get(
            "active"
        ),
        30,
        "the operator to report the freeze active",
    )
    listed = json.loads(ok(alecton_as(deployer, "freeze", "list", "-o", "json")))
    assert [(f["name"], f["active"]) for f in listed] == [("release-week", True)]
    # A viewer reads freezes and cannot end one.
    viewer = as_tenant(cluster, ns, "alecton-viewer")
    assert "release-week" in viewer("get", "freezes.alecton.dev").stdout
    viewer.forbidden("delete", "freezes.alecton.dev", "release-week")

    # (a) An automatic promotion waits, saying which freeze holds it.
    deployer.apply(r.image("web", "1.1.0", GOOD))
    wait_for(
        lambda: (
            "Freeze release-week"
            in str(
                ((deployment(cluster, ns, "web-staging").get("status") or {}).get("promotion") or {}).get(
                    "message"
                )
            )
        ),
        60,
        "staging's promotion to wait for the freeze",
    )
    assert deployment(cluster, ns, "web-staging")["spec"]["version"] == "1.0.1"

    # (b) A manual deploy is refused up front, with the freeze's name and reason.
    refused = alecton_as(deployer, "deploy", "web", "prod", "1.1.0")
    assert refused.returncode == EXIT_FROZEN, refused.stderr
    assert "Freeze release-week" in refused.stderr and "quarter close" in refused.stderr
    assert deployment(cluster, ns, "web-prod")["spec"]["version"] == "1.0.1"

    # (d) A rollback goes through during the freeze.
    ok(alecton_as(deployer, "rollback", "web", "prod", "1", "--wait", "--timeout", "120"))
    assert deployment(cluster, ns, "web-prod")["status"]["lastRollback"]["result"] == "Succeeded"

    # (c) An override with a reason deploys, and is recorded on the Deployment.
    ok(
        alecton_as(
            deployer,
            "deploy",
            "web",
            "prod",
            "1.1.0",
            "--override-freeze",
            "hotfix INC-7",
            "--wait",
            "--timeout",
            "120",
        )
    )
    prod = wait_phase(cluster, ns, "web-prod", "Deployed", timeout=60, appliedVersion="1.1.0")
    generation = prod["metadata"]["generation"]
    assert prod["metadata"]["annotations"]["alecton.dev/freeze-override"] == f"{generation}:hotfix INC-7"

    # (b) A change written with kubectl (the override was for the change before) is not
    # released: the Deployment says Frozen and keeps running 1.1.0.
    deployer(
        "patch", "deployments.alecton.dev", "web-prod", "--type=merge", "-p", '{"spec":{"version":"1.0.0"}}'
    )
    held = wait_for(lambda: frozen(cluster, ns, "web-prod", "release-week"), 60, "prod to report Frozen")
    assert held["status"]["phase"] == "Pending"
    assert "quarter close" in held["status"]["message"] and "until it is ended" in held["status"]["message"]
    assert held["status"]["appliedVersion"] == "1.1.0"
    events = json.loads(deployer("get", "events", "-o", "json").stdout)["items"]
    assert any(e.get("reason") == "Frozen" for e in events), [e.get("reason") for e in events]

    # Ending the freeze releases what it held: prod's change and staging's promotion.
    ok(alecton_as(deployer, "freeze", "end", "release-week"))
    wait_phase(cluster, ns, "web-prod", "Deployed", timeout=120, appliedVersion="1.0.0")
    wait_phase(cluster, ns, "web-staging", "Deployed", timeout=120, appliedVersion="1.1.0")

    # A freeze with an end time releases by itself when it ends (no event: the operator
    # looks again at the end).
    ok(alecton_as(deployer, "freeze", "start", "short", "--reason", "deploy window closed", "--for", "15s"))
    deployer(
        "patch", "deployments.alecton.dev", "web-prod", "--type=merge", "-p", '{"spec":{"version":"1.1.0"}}'
    )
    wait_for(
        lambda: frozen(cluster, ns, "web-prod", "short"), 30, "prod to report Frozen by the short freeze"
    )
    wait_phase(cluster, ns, "web-prod", "Deployed", timeout=120, appliedVersion="1.1.0")
