"""The audit trail (issue 25) on the real control plane: a tenant deploys twice, a third
version fails its health check, the tenant rolls back. Every transition is a ReleaseRecord
saying who (the API server's word), why, which image and version; the operator's
`--audit-log` has one JSON line per transition; once the Deployment is gone the records are
still there for a viewer (`alecton history`, the HTTP API); a deployer cannot forge one."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.integration import resources as r
from tests.integration.harness import REPO, Cluster, OperatorProcess, wait_for
from tests.integration.tenant import Tenant, as_tenant
from tests.integration.test_web_api import proxy_web

GOOD = "ghcr.io/stefanprodan/podinfo:6.7.0"
CRASH = "ghcr.io/stefanprodan/podinfo:6.9.0-crash"
SHA = "4f2c1e9a0b7d3c5e8f1a2b3c4d5e6f7a8b9c0d1e"


@pytest.fixture(scope="module")
def audited(
    crds: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[OperatorProcess, Path]]:
    """An operator (Helm 4) writing its audit log to a file; the who-asked policy applied."""
    crds.kubectl("apply", "-f", str(REPO / "deploy" / "deployment-changed-by.yaml"))
    logs = tmp_path_factory.mktemp("audit")
    audit_log = logs / "audit.jsonl"
    process = OperatorProcess(crds, "helm", logs, extra_args=("--audit-log", str(audit_log)))
    process.start()
    before = crds.namespaces()
    try:
        yield process, audit_log
        crds.delete_namespaces_since(before)
    finally:
        process.stop()


def run_as(tenant: Tenant, *args: str) -> subprocess.CompletedProcess[str]:
    """`alecton` with the tenant's own kubeconfig (its token) in its namespace."""
    return subprocess.run(
        [sys.executable, "-m", "alecton", *args, "-n", tenant.namespace],
        capture_output=True, text=True, env=tenant.env, timeout=180,
    )  # fmt: skip


def as_tenant_alecton(tenant: Tenant, *args: str) -> str:
    proc = run_as(tenant, *args)
    assert proc.returncode == 0, f"alecton {' '.join(args)} as {tenant.user}: {proc.stderr}"
    return proc.stdout


def records(cluster: Cluster, ns: str) -> list[dict[str, Any]]:
    body = json.loads(cluster.kubectl("get", "releaserecords.alecton.dev", "-n", ns, "-o", "json").stdout)
    return list(body["items"])


def seen(cluster: Cluster, ns: str) -> set[tuple[str, str]]:
    return {(rec["spec"]["kind"], rec["spec"].get("version", "")) for rec in records(cluster, ns)}


def token_of(tenant: Tenant) -> str:
    return str(yaml.safe_load(tenant.kubeconfig.read_text())["users"][0]["user"]["token"])


@pytest.mark.local_plane(reason="a crashing release (kwok's `-crash` image stage)")
def test_every_transition_is_recorded_and_outlives_the_deployment(
    audited: tuple[OperatorProcess, Path], tmp_path: Path
) -> None:
    operator, audit_log = audited
    cluster = operator.cluster
    ns = cluster.new_namespace("audit")
    cluster.apply(r.cluster(), r.application("web", f"{ns}-web", healthTimeout="2m"), namespace=ns)
    deployer = as_tenant(cluster, ns, "alecton-deployer")
    viewer = as_tenant(cluster, ns, "alecton-viewer")

    as_tenant_alecton(deployer, "image", "create", "web", "1.0.0", GOOD)
    as_tenant_alecton(deployer, "image", "create", "web", "1.1.0", GOOD, "--source-repository",
                      "github.com/org/web", "--source-revision", SHA)  # fmt: skip
    as_tenant_alecton(deployer, "image", "create", "web", "1.2.0", CRASH)
    for version in ("1.0.0", "1.1.0"):
        as_tenant_alecton(deployer, "deploy", "web", "staging", version, "--wait", "--timeout", "120")
    # The third fails its health check (a crashing pod); the tenant then rolls back to 2.
    proc = run_as(deployer, "deploy", "web", "staging", "1.2.0", "--wait", "--timeout", "120")
    assert proc.returncode != 0, proc.stdout
    wait_for(lambda: ("Failed", "1.2.0") in seen(cluster, ns), 120, "a Failed record of 1.2.0")
    as_tenant_alecton(deployer, "rollback", "web", "staging", "2", "--wait", "--timeout", "120")

    wanted = {("DeployStarted", "1.0.0"), ("Deployed", "1.0.0"), ("Healthy", "1.0.0"),
              ("DeployStarted", "1.1.0"), ("Deployed", "1.1.0"), ("Healthy", "1.1.0"),
              ("DeployStarted", "1.2.0"), ("Deployed", "1.2.0"), ("Failed", "1.2.0"),
              ("RolledBack", "1.1.0")}  # fmt: skip
    wait_for(lambda: wanted <= seen(cluster, ns), 120, f"records of {sorted(wanted)}")
    found = records(cluster, ns)
    for rec in found:
        spec, meta = rec["spec"], rec["metadata"]
        what = f"{spec['kind']} {spec.get('version')}: {spec}"
        assert spec["requestedBy"] == deployer.user, what  # stamped by the API server, copied by the operator
        assert spec["cause"] and spec["image"] and spec["version"], what
        assert (
            spec["application"] == "web"
            and spec["target"] == "staging"
            and spec["deployment"] == "web-staging"
        )
        assert "ownerReferences" not in meta and meta["labels"]["alecton.dev/application"] == "web"
        assert meta["name"] == f"web-staging-{spec['key'][:16]}"
    by_kind = {(rec["spec"]["kind"], rec["spec"].get("version")): rec["spec"] for rec in found}
    assert by_kind[("Failed", "1.2.0")]["reason"] == "HealthCheckFailed"
    assert by_kind[("Failed", "1.2.0")]["severity"] == "error"
    assert by_kind[("RolledBack", "1.1.0")]["cause"] == "rollback"
    assert by_kind[("Deployed", "1.1.0")]["cause"] == "deploy"
    assert by_kind[("Deployed", "1.1.0")]["source"] == {"repository": "github.com/org/web", "revision": SHA}
    assert by_kind[("Deployed", "1.1.0")]["imageCreatedAt"]
    assert by_kind[("Deployed", "1.1.0")]["image"] == GOOD

    # The operator's log stream: one JSON line per transition, in a file only it may read.
    def logged() -> dict[str, dict[str, Any]]:
        lines = [json.loads(line) for line in audit_log.read_text().splitlines() if line.strip()]
        return {line["key"]: line for line in lines if line["namespace"] == ns}

    wait_for(lambda: set(logged()) == {rec["spec"]["key"] for rec in records(cluster, ns)}, 60,
             "the audit log and the records to name the same transitions")  # fmt: skip
    assert logged()[by_kind[("Deployed", "1.1.0")]["key"]]["source"]["revision"] == SHA
    assert stat.S_IMODE(os.stat(audit_log).st_mode) == 0o600

    # Tenants read the trail and cannot write it, not even the deployer.
    name = found[0]["metadata"]["name"]
    forged = {"apiVersion": "alecton.dev/v1alpha1", "kind": "ReleaseRecord", "metadata": {"name": "forged"},
              "spec": {**found[0]["spec"], "requestedBy": "someone-else"}}  # fmt: skip
    deployer.forbidden("create", "-f", "-", stdin=json.dumps(forged))
    deployer.forbidden("patch", "releaserecords.alecton.dev", name, "--type=merge", "-p",
                       json.dumps({"spec": {"requestedBy": "someone-else"}}))  # fmt: skip
    deployer.forbidden("delete", "releaserecords.alecton.dev", name)
    viewer.forbidden("delete", "releaserecords.alecton.dev", name)
    assert records(cluster, ns)[0]["spec"]["requestedBy"] == deployer.user

    # The Deployment goes (its status history with it): the trail stays.
    deployer("delete", "deployments.alecton.dev", "web-staging", "--wait=false")
    wait_for(
        lambda: cluster.get("deployments.alecton.dev", "web-staging", ns) is None, 120, "the Deployment gone"
    )
    wait_for(lambda: "Uninstalled" in {kind for kind, _ in seen(cluster, ns)}, 60, "an Uninstalled record")

    shown = json.loads(as_tenant_alecton(viewer, "history", "web", "staging", "-o", "json"))
    assert {(s["kind"], s.get("version")) for s in shown} >= wanted
    assert shown[0]["kind"] == "Uninstalled"  # newest first
    assert [s["time"] for s in shown] == sorted((s["time"] for s in shown), reverse=True)
    assert (
        len(json.loads(as_tenant_alecton(viewer, "history", "web", "staging", "--limit", "2", "-o", "json")))
        == 2
    )
    table = as_tenant_alecton(viewer, "history", "web", "staging")
    assert "HealthCheckFailed" in table and deployer.user in table and SHA[:7] in table

    web = proxy_web(cluster, tmp_path)
    try:
        answer = httpx.get(f"{web.url}/v1/history/web/staging", params={"namespace": ns},
                           headers={"Authorization": f"Bearer {token_of(viewer)}"}, timeout=60)  # fmt: skip
        assert answer.status_code == 200, answer.text
        assert [s["name"] for s in answer.json()["records"]] == [s["name"] for s in shown]
    finally:
        web.stop()
