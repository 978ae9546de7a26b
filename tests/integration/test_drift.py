"""Drift detection and correction on the real control plane (Helm 4 and Helm 3)."""

from __future__ import annotations

import json

from tests.integration import resources as r
from tests.integration.harness import Cluster, OperatorProcess, wait_for, wait_phase
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


def _freeze_policy(name: str, namespace: str) -> list[dict]:
    """An admission policy in the target cluster that keeps a ConfigMap whose message is
    "frozen" frozen: the stand-in for a policy engine refusing the operator's correction."""
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["UPDATE"],
                        "resources": ["configmaps"],
                    }
                ],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            },
            "validations": [
                {
                    "expression": "!has(oldObject.data) || !('message' in oldObject.data) || "
                    "oldObject.data.message != 'frozen' || "
                    "(has(object.data) && 'message' in object.data && object.data.message == 'frozen')",
                    "message": "this ConfigMap is frozen by policy",
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": name, "validationActions": ["Deny"]},
    }
    return [policy, binding]


def test_a_failed_correction_is_reported_like_a_failed_upgrade_and_tried_again(
    operator: OperatorProcess,
) -> None:
    cluster, helm = operator.cluster, operator.helm
    ns = cluster.new_namespace("driftfail")
    target_ns = f"{ns}-web"
    app = r.application("web", target_ns)
    app["spec"]["drift"] = {"mode": "Correct", "interval": "1h"}
    cluster.apply(r.cluster(), app, r.image("web", "1.0.0", GOOD), r.deployment("web", "1.0.0"), namespace=ns)
    wait_phase(cluster, ns, "web-staging", "Deployed", timeout=90)

    policy = _freeze_policy(ns, target_ns)
    cluster.apply(*policy, namespace=target_ns, context="alecton-b")
    try:
        # The API server enforces a new policy once its informer has it: wait until it does.
        def enforced() -> bool:
            def message(text: str) -> list[str]:
                patch = json.dumps({"data": {"message": text}})
                return ["patch", "configmap/web-staging", "-n", target_ns, "-p", patch]

            in_b(cluster, *message("frozen"))
            return (
                "frozen by policy"
                in cluster.kubectl(*message("thaw"), context="alecton-b", check=False).stderr
            )

        wait_for(enforced, 30, "the admission policy to be enforced")
        failed = alecton(cluster, ns, "drift", "web", "staging")
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert "Failed" in failed.stdout and "frozen by policy" in failed.stdout
        obj = wait_phase(cluster, ns, "web-staging", "Failed", timeout=30)
        status = obj["status"]
        ready = next(c for c in status["conditions"] if c["type"] == "Ready")
        assert (ready["status"], ready["reason"]) == ("False", "DriftCorrectionFailed")
        assert "drift correction of revision 1 failed" in status["message"]
        assert "frozen by policy" in status["message"] and "retrying in" in status["message"]
        assert status["history"][0]["corrections"][0]["result"] == "Failed"
        events = json.loads(cluster.kubectl("get", "events", "-n", ns, "-o", "json").stdout)["items"]
        assert any(e["reason"] == "DriftCorrectionFailed" and e["type"] == "Warning" for e in events)
    finally:
        in_b(cluster, "delete", f"validatingadmissionpolicybinding/{ns}", f"validatingadmissionpolicy/{ns}")

    # Without the policy the next attempt (on its backoff, not the 10 min interval) works.
    obj = wait_phase(cluster, ns, "web-staging", "Deployed", timeout=90)
    ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "DriftCorrected")
    assert obj["status"]["history"][0]["corrections"][0]["result"] == "Succeeded"
    config = json.loads(in_b(cluster, "get", "configmap/web-staging", "-n", target_ns, "-o", "json"))
    assert config["data"]["message"] == json.dumps("hello from alecton")
    history = cluster.helm_json(helm, "history", "web-staging", "--namespace", target_ns)
    assert [h["revision"] for h in history] == [1]
    shown = alecton(cluster, ns, "releases", "web", "staging")
    assert "last succeeded" in shown.stdout, shown.stdout


def test_a_planted_object_in_helms_storage_is_never_applied_by_a_correction(
    operator: OperatorProcess,
) -> None:
    """Issue 23: drift correction re-applies the manifest in helm's storage Secret; whoever
    can write Secrets in the release namespace could plant an object elsewhere (kube-system)
    and have the operator create it. This operator runs with the grant `@operator` (its own
    credentials on cluster b), so only the correction's own check stands in the way."""
    import base64
    import gzip
    import uuid

    cluster = operator.cluster
    ns = cluster.new_namespace("plant")
    target_ns = f"{ns}-web"
    app = r.application("web", target_ns)
    app["spec"]["drift"] = {"mode": "Correct", "interval": "10m"}
    cluster.apply(r.cluster(), app, r.image("web", "1.0.0", GOOD), r.deployment("web", "1.0.0"), namespace=ns)
    wait_phase(cluster, ns, "web-staging", "Deployed", timeout=90)

    planted = f"planted-{uuid.uuid4().hex[:6]}"
    name = "sh.helm.release.v1.web-staging.v1"
    stored = json.loads(in_b(cluster, "get", "secret", name, "-n", target_ns, "-o", "json"))
    release = json.loads(gzip.decompress(base64.b64decode(base64.b64decode(stored["data"]["release"]))))
    release["manifest"] += (
        f"\n---\n# Source: webapp/templates/planted.yaml\napiVersion: v1\nkind: ConfigMap\n"
        f"metadata:\n  name: {planted}\n  namespace: kube-system\ndata:\n  owned: 'yes'\n"
    )
    encoded = base64.b64encode(gzip.compress(json.dumps(release).encode())).decode()
    patch = {"data": {"release": base64.b64encode(encoded.encode()).decode()}}
    in_b(cluster, "patch", "secret", name, "-n", target_ns, "--type=merge", "-p", json.dumps(patch))

    alecton(cluster, ns, "drift", "web", "staging")  # asks for a check now and waits for it
    obj = wait_for(
        lambda: (
            (got := cluster.get("deployments.alecton.dev", "web-staging", ns))
            and (got["status"].get("drift") or {}).get("lastCorrection")
            and got
        ),
        60,
        "a correction",
    )
    correction = obj["status"]["drift"]["lastCorrection"]
    assert correction["result"] == "Failed" and "outside the release namespace" in correction["detail"], (
        correction
    )
    proc = cluster.kubectl("get", "configmap", planted, "-n", "kube-system", context="alecton-b", check=False)
    assert proc.returncode != 0 and "NotFound" in proc.stderr, f"the planted ConfigMap {planted} was created"
