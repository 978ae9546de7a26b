"""Drift detection and correction on the real control plane (Helm 4 and Helm 3)."""

from __future__ import annotations

import json

from tests.integration import resources as r
from tests.integration.harness import Cluster, OperatorProcess, wait_phase
from tests.integration.test_cli import alecton

GOOD = "ghcr.io/stefanprodan/podinfo:6.7.0"


def in_b(cluster: Cluster, *args: str) -> str:
    return cluster.kubectl(*args, context="alecton-b").stdout


def test_drift_is_reported_ignored_and_corrected_without_helm(operator: OperatorProcess) -> None:
    cluster, helm = operator.cluster, operator.helm
    ns = cluster.new_namespace("drift")
    target_ns = f"{ns}-web"
    app = r.application("web", target_ns)
    # An HPA would own the replica count: not drift.
    ignore = [{"kind": "Deployment", "jsonPointers": ["/spec/replicas"]}]
    app["spec"]["drift"] = {"mode": "Warn", "interval": "10m", "ignore": ignore}
    cluster.apply(r.cluster(), app, r.image("web", "1.0.0", GOOD), r.deployment("web", "1.0.0"), namespace=ns)
    wait_phase(cluster, ns, "web-staging", "Deployed", timeout=90)

    in_sync = alecton(cluster, ns, "drift", "web", "staging")
    assert in_sync.returncode == 0, in_sync.stdout + in_sync.stderr

    # kubectl scale: ignored by the rule. kubectl edit of the ConfigMap and kubectl delete
    # of the Service: drift.
    in_b(cluster, "scale", "deployment/web-staging", "--replicas=3", "-n", target_ns)
    in_b(cluster, "patch", "configmap/web-staging", "-n", target_ns, "-p", '{"data":{"message":"edited"}}')
    in_b(cluster, "delete", "service/web-staging", "-n", target_ns)
    drifted = alecton(cluster, ns, "drift", "web", "staging")
    assert drifted.returncode == 1, drifted.stdout + drifted.stderr
    assert "ConfigMap web-staging (changed): /data/message" in drifted.stdout
    assert "Service web-staging (missing)" in drifted.stdout
    assert "Deployment" not in drifted.stdout  # the replica change is ignored
    obj = cluster.get("deployments.alecton.dev", "web-staging", ns)
    assert obj is not None
    conditions = {c["type"]: c["status"] for c in obj["status"]["conditions"]}
    assert conditions["Drifted"] == "True" and obj["status"]["phase"] == "Deployed"
    events = json.loads(cluster.kubectl("get", "events", "-n", ns, "-o", "json").stdout)["items"]
    assert any(e["reason"] == "DriftDetected" for e in events)

    # Correct: the release's own objects are applied again; still revision 1, no helm run.
    cluster.kubectl(
        "patch", "applications.alecton.dev", "web", "-n", ns, "--type=merge",
        "-p", json.dumps({"spec": {"drift": {"mode": "Correct", "ignore": ignore}}}),
    )  # fmt: skip
    corrected = alecton(cluster, ns, "drift", "web", "staging")
    assert corrected.returncode == 0, corrected.stdout + corrected.stderr
    assert "last correction" in corrected.stdout and "Succeeded" in corrected.stdout
    config = json.loads(in_b(cluster, "get", "configmap/web-staging", "-n", target_ns, "-o", "json"))
    assert config["data"]["message"] == json.dumps("hello from alecton")
    assert in_b(cluster, "get", "service/web-staging", "-n", target_ns, "-o", "name").strip()
    obj = cluster.get("deployments.alecton.dev", "web-staging", ns)
    assert obj is not None and obj["status"]["drift"]["lastCorrection"]["result"] == "Succeeded"
    assert {c["type"]: c["status"] for c in obj["status"]["conditions"]}["Drifted"] == "False"
    history = cluster.helm_json(helm, "history", "web-staging", "--namespace", target_ns)
    assert [h["revision"] for h in history] == [1]
    events = json.loads(cluster.kubectl("get", "events", "-n", ns, "-o", "json").stdout)["items"]
    assert any(e["reason"] == "DriftCorrected" for e in events)
