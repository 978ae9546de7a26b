"""The local control plane is real: two kube-apiservers v1.37.2 with CEL, status
subresources and RBAC, and both helm binaries install into the target cluster only."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.integration.harness import TEST_CHARTS, Cluster, wait_for

pytestmark = pytest.mark.local_plane(reason="it tests the local control plane itself")

WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.smoke.alecton.dev"},
    "spec": {
        "group": "smoke.alecton.dev",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {"size": {"type": "integer"}},
                                "x-kubernetes-validations": [
                                    {"rule": "self.size <= 10", "message": "size must be at most 10"}
                                ],
                            },
                            "status": {"type": "object", "properties": {"seen": {"type": "boolean"}}},
                        },
                    }
                },
            }
        ],
    },
}


@pytest.mark.parametrize("context", ["alecton-a", "alecton-b"])
def test_apiservers_report_pinned_version(cluster: Cluster, context: str) -> None:
    version = json.loads(cluster.kubectl("version", "-o", "json", context=context).stdout)
    assert version["serverVersion"]["gitVersion"] == "v1.37.2"
    assert version["clientVersion"]["gitVersion"] == "v1.37.2"


def test_clusters_are_independent(cluster: Cluster) -> None:
    ns = cluster.new_namespace("only-in-a", context="alecton-a")
    assert cluster.kubectl("get", "namespace", ns, context="alecton-b", check=False).returncode != 0


def test_rbac_is_enforced(cluster: Cluster) -> None:
    # A user with no bindings is denied: authorization is RBAC, not AlwaysAllow.
    proc = cluster.kubectl("get", "pods", "--as", "nobody", context="alecton-a", check=False)
    assert proc.returncode != 0 and "forbidden" in proc.stderr.lower()


def test_crd_with_cel_rule_and_status_subresource(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(WIDGET_CRD), context="alecton-b")
    cluster.kubectl(
        "wait", "--for=condition=Established", "crd/widgets.smoke.alecton.dev", context="alecton-b"
    )
    bad = {
        "apiVersion": "smoke.alecton.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "big"},
        "spec": {"size": 11},
    }
    proc = cluster.kubectl(
        "apply", "-n", "default", "-f", "-", stdin=yaml.safe_dump(bad), context="alecton-b", check=False
    )
    assert proc.returncode != 0 and "size must be at most 10" in proc.stderr
    good = {**bad, "metadata": {"name": "small"}, "spec": {"size": 3}, "status": {"seen": True}}
    cluster.kubectl("apply", "-n", "default", "-f", "-", stdin=yaml.safe_dump(good), context="alecton-b")
    # Status is a subresource: it is ignored on the main resource and set through /status.
    widget = json.loads(
        cluster.kubectl("get", "widget", "small", "-n", "default", "-o", "json", context="alecton-b").stdout
    )
    assert "status" not in widget
    cluster.kubectl(
        "patch",
        "widget",
        "small",
        "-n",
        "default",
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status":{"seen":true}}',
        context="alecton-b",
    )
    widget = json.loads(
        cluster.kubectl("get", "widget", "small", "-n", "default", "-o", "json", context="alecton-b").stdout
    )
    assert widget["status"] == {"seen": True}


@pytest.mark.parametrize(("helm", "major"), [("helm", "v4.3.1"), ("helm3", "v3.22.0")])
def test_helm_installs_into_target_cluster_only(cluster: Cluster, helm: str, major: str) -> None:
    assert major in cluster.run(helm, "version").stdout
    release = f"smoke-{helm}"
    cluster.run(
        helm,
        "install",
        release,
        str(TEST_CHARTS / "smoke"),
        "--kube-context",
        "alecton-b",
        "--namespace",
        release,
        "--create-namespace",
    )
    history = cluster.helm_json(helm, "history", release, "--namespace", release)
    assert [(h["revision"], h["status"]) for h in history] == [(1, "deployed")]
    configmap = json.loads(
        cluster.kubectl("get", "configmap", release, "-n", release, "-o", "json", context="alecton-b").stdout
    )
    assert configmap["data"]["greeting"] == "hello"
    in_a = cluster.helm_json(helm, "list", "--all-namespaces", context="alecton-a")
    assert release not in [r["name"] for r in in_a]


def test_local_cli_up_status_down_leaves_nothing_running(bin_dir, tmp_path) -> None:
    import os
    import subprocess
    import sys

    from alecton.local.controlplane import State, pid_alive

    state_dir = tmp_path / "plane"
    env = {**os.environ, "ALECTON_LOCAL_DIR": str(state_dir)}
    up = subprocess.run(
        [sys.executable, "-m", "alecton", "local", "up", "--nodes", "3"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert up.returncode == 0, up.stderr
    kubeconfig = str(state_dir / "kubeconfig")
    assert f"export KUBECONFIG={kubeconfig}" in up.stdout
    state = State.load(state_dir)
    pids = [p.pid for p in state.processes]
    # etcd, per cluster: kube-apiserver, kube-controller-manager, kube-scheduler, kwok; the registry.
    assert len(pids) == 10 and all(pid_alive(p) for p in pids)
    assert state.registry and "OCI registry: https://" in up.stdout
    assert state.startup_seconds < 10, "local up must be ready in under 10 s"
    nodes = subprocess.run(
        [str(bin_dir / "kubectl"), "--kubeconfig", kubeconfig, "--context", "alecton-a", "get", "nodes"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert nodes.stdout.count(" Ready ") == 3, nodes.stdout
    namespaces = subprocess.run(
        [str(bin_dir / "kubectl"), "--kubeconfig", kubeconfig, "--context", "alecton-b", "get", "ns"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert namespaces.returncode == 0 and "kube-system" in namespaces.stdout
    status = subprocess.run(
        [sys.executable, "-m", "alecton", "local", "status", "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    info = json.loads(status.stdout)
    assert info["running"] and all(c["ready"] for c in info["clusters"].values())
    assert all(p["log"].startswith(str(state_dir)) for p in info["processes"])
    down = subprocess.run(
        [sys.executable, "-m", "alecton", "local", "down"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert down.returncode == 0, down.stderr
    assert not any(pid_alive(p) for p in pids)
    assert not state_dir.exists()


def _pods(cluster: Cluster, namespace: str) -> dict[str, dict]:
    out = cluster.kubectl("get", "pods", "-n", namespace, "-o", "json", context="alecton-b").stdout
    return {p["metadata"]["labels"].get("app", p["metadata"]["name"]): p for p in json.loads(out)["items"]}


def _waiting_reason(pod: dict) -> str:
    statuses = pod.get("status", {}).get("containerStatuses") or [{}]
    return str((statuses[0].get("state") or {}).get("waiting", {}).get("reason", ""))


def test_workloads_run_on_kwok_nodes_and_fail_on_request(cluster: Cluster) -> None:
    """Deployments become Available, Jobs complete, and image suffixes ask for failures;
    the namespace then finishes deleting (the namespace controller and kwok remove it all)."""
    ns = cluster.new_namespace("workloads", context="alecton-b")

    def run(*args: str) -> None:
        cluster.kubectl(*args, "-n", ns, context="alecton-b")

    run("create", "deployment", "web", "--image=nginx:1", "--replicas=3")
    for name, suffix in (("crash", "-crash"), ("pull", "-pullfail"), ("unready", "-unready")):
        run("create", "deployment", name, f"--image=nginx:1{suffix}")
    run("create", "job", "ok", "--image=busybox:1")
    run("create", "job", "bad", "--image=busybox:1-fail")
    cluster.kubectl(
        "wait", "deployment/web", "--for=condition=Available", "-n", ns, "--timeout=60s", context="alecton-b"
    )
    cluster.kubectl(
        "wait", "job/ok", "--for=condition=Complete", "-n", ns, "--timeout=60s", context="alecton-b"
    )
    wait_for(
        lambda: _waiting_reason(_pods(cluster, ns).get("crash", {})) == "CrashLoopBackOff", 30, "a crash"
    )
    wait_for(
        lambda: _waiting_reason(_pods(cluster, ns).get("pull", {})) == "ImagePullBackOff",
        30,
        "a pull failure",
    )

    def running_unready() -> dict | None:
        pod = _pods(cluster, ns).get("unready", {})
        return pod if pod.get("status", {}).get("phase") == "Running" else None

    unready = wait_for(running_unready, 30, "an unready pod")
    assert not unready["status"]["containerStatuses"][0]["ready"]
    failed = wait_for(
        lambda: [p for p in _pods(cluster, ns).values() if p["status"].get("phase") == "Failed"],
        30,
        "a failed pod",
    )
    assert failed[0]["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 1
    cluster.kubectl("delete", "namespace", ns, "--wait=false", context="alecton-b")
    wait_for(
        lambda: cluster.kubectl("get", "namespace", ns, context="alecton-b", check=False).returncode != 0,
        90,
        f"namespace {ns} to be deleted",
        interval=1.0,
    )
