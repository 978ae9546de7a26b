"""Health after helm, on the real control plane with kwok nodes (Helm 4 and Helm 3).

kwok plays the kubelet: pods of images ending in `-crash`, `-pullfail`, `-unready` or
`-fail` misbehave (see alecton/local/kwok-stages.yaml), all others become Ready.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.integration import resources as r
from tests.integration.harness import Cluster, OperatorProcess, wait_for, wait_phase
from tests.integration.test_cli import alecton, ok

# Every test here needs pods that kwok makes Ready, crash or never Ready on request.
pytestmark = pytest.mark.local_plane(
    reason="health is tested on kwok's simulated pods (Ready, crashing or never Ready on request)"
)

GOOD_1 = "ghcr.io/stefanprodan/podinfo:6.7.0"
GOOD_2 = "ghcr.io/stefanprodan/podinfo:6.8.0"
CRASH = "ghcr.io/stefanprodan/podinfo:6.9.0-crash"
UNREADY = "ghcr.io/stefanprodan/podinfo:6.9.0-unready"


def setup(cluster: Cluster, prefix: str, version_images: dict[str, str], **app: object) -> tuple[str, str]:
    ns = cluster.new_namespace(prefix)
    target_ns = f"{ns}-web"
    images = [r.image("web", version, ref) for version, ref in version_images.items()]
    cluster.apply(r.cluster(), r.application("web", target_ns, **app), *images, namespace=ns)  # type: ignore[arg-type]
    return ns, target_ns


def workload(cluster: Cluster, target_ns: str) -> dict:
    out = cluster.kubectl(
        "get", "deployment", "web-staging", "-n", target_ns, "-o", "json", context="alecton-b"
    )
    return json.loads(out.stdout)


def helm_revisions(cluster: Cluster, helm: str, target_ns: str) -> list[int]:
    history = cluster.helm_json(helm, "history", "web-staging", "--namespace", target_ns)
    return sorted(h["revision"] for h in history)


def conditions(obj: dict) -> dict[str, str]:
    return {c["type"]: c["status"] for c in obj["status"]["conditions"]}


def test_deployed_means_pods_ready_and_kubectl_wait_works(operator: OperatorProcess) -> None:
    cluster = operator.cluster
    ns, target_ns = setup(cluster, "healthy", {"1.0.0": GOOD_1}, values={"replicaCount": 3})
    cluster.apply(r.deployment("web", "1.0.0"), namespace=ns)
    # `kubectl wait` on the Ready condition: True only once the workload is healthy.
    cluster.kubectl(
        "wait", "--for=condition=Ready", "deployments.alecton.dev/web-staging", "-n", ns, "--timeout=90s"
    )
    obj = wait_phase(cluster, ns, "web-staging", "Deployed")
    live = workload(cluster, target_ns)["status"]
    assert live.get("availableReplicas") == 3 and live.get("readyReplicas") == 3
    assert obj["status"]["health"]["state"] == "Healthy"
    assert obj["status"]["history"][0]["healthy"] is True
    assert conditions(obj) == {
        "Ready": "True",
        "Released": "True",
        "Reconciling": "False",
        "Stalled": "False",
    }
    reasons = [
        e["reason"]
        for e in json.loads(cluster.kubectl("get", "events", "-n", ns, "-o", "json").stdout)["items"]
    ]
    assert "Healthy" in reasons


def test_crash_fails_fast_and_rolls_back_then_retry(operator: OperatorProcess) -> None:
    cluster, helm = operator.cluster, operator.helm
    ns, target_ns = setup(
        cluster, "crash", {"1.0.0": GOOD_1, "2.0.0": CRASH}, onFailure="Rollback", healthTimeout="5m"
    )
    cluster.apply(r.deployment("web", "1.0.0"), namespace=ns)
    wait_phase(cluster, ns, "web-staging", "Deployed", timeout=90)

    started = time.monotonic()
    cluster.patch_spec(ns, "web-staging", {"version": "2.0.0"})
    # Verifying fails on the pod's CrashLoopBackOff (not the 5 min timeout), rolls back
    # to revision 1 and verifies that revision too.
    obj = wait_phase(cluster, ns, "web-staging", "RolledBack", timeout=60)
    assert time.monotonic() - started < 30, "a crashing pod must fail the check early"
    status = obj["status"]
    assert (
        "CrashLoopBackOff" in status["message"]
        and "rolled back web-staging automatically to revision 1" in status["message"]
    )
    assert status["release"]["revision"] == 3 and status["release"]["version"] == "1.0.0"
    assert status["failedVersions"][0]["version"] == "2.0.0"
    assert "CrashLoopBackOff" in status["failedVersions"][0]["reason"]
    healthy = {h["revision"]: h.get("healthy") for h in status["history"]}
    assert healthy == {3: True, 2: False, 1: True}
    assert workload(cluster, target_ns)["spec"]["template"]["spec"]["containers"][0]["image"] == GOOD_1
    assert conditions(obj)["Ready"] == "True"
    events = json.loads(cluster.kubectl("get", "events", "-n", ns, "-o", "json").stdout)["items"]
    assert any(e["reason"] == "AutomaticRollback" for e in events)
    # Not retried on a timer: the same inputs stay rolled back...
    assert helm_revisions(cluster, helm, target_ns) == [1, 2, 3]
    # ...until someone asks: `alecton retry` runs helm again (and it fails and rolls back again).
    ok(alecton(cluster, ns, "retry", "web", "staging"))
    wait_for(lambda: helm_revisions(cluster, helm, target_ns) == [1, 2, 3, 4, 5], 60, "a retried rollout")
    obj = wait_phase(cluster, ns, "web-staging", "RolledBack", timeout=60)
    assert obj["status"]["release"]["revision"] == 5


def test_unready_fails_at_its_timeout_and_stays_failed(operator: OperatorProcess) -> None:
    cluster, helm = operator.cluster, operator.helm
    ns, target_ns = setup(cluster, "unready", {"1.0.0": UNREADY}, healthTimeout="6s")
    started = time.monotonic()
    cluster.apply(r.deployment("web", "1.0.0"), namespace=ns)
    wait_phase(cluster, ns, "web-staging", "Verifying", timeout=60)
    obj = wait_phase(cluster, ns, "web-staging", "Failed", timeout=60)
    assert time.monotonic() - started >= 6
    status = obj["status"]
    assert "not healthy within the health timeout" in status["message"]
    # The pod's own words: Running, but its readiness probe never passes.
    assert "readiness probe failed" in status["message"] and "alecton retry web staging" in status["message"]
    assert conditions(obj)["Stalled"] == "True" and conditions(obj)["Ready"] == "False"
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "HealthCheckFailed"
    assert helm_revisions(cluster, helm, target_ns) == [1]  # no automatic retry


def test_hook_job_runs_to_completion(operator: OperatorProcess) -> None:
    cluster = operator.cluster
    ns, target_ns = setup(cluster, "hook", {"1.0.0": GOOD_1}, values={"migration": {"enabled": True}})
    cluster.apply(r.deployment("web", "1.0.0"), namespace=ns)
    obj = wait_phase(cluster, ns, "web-staging", "Deployed", timeout=90)
    assert obj["status"]["release"]["status"] == "deployed"
    job = cluster.get("job", "web-staging-migrate", target_ns, context="alecton-b")
    assert job is not None and (job["status"].get("succeeded") or 0) == 1


def test_later_crash_degrades_and_recovers_without_helm(operator: OperatorProcess) -> None:
    cluster, helm = operator.cluster, operator.helm
    ns, target_ns = setup(cluster, "degrade", {"1.0.0": GOOD_1})
    cluster.apply(r.deployment("web", "1.0.0"), namespace=ns)
    wait_phase(cluster, ns, "web-staging", "Deployed", timeout=90)
    pod = cluster.kubectl(
        "get", "pods", "-n", target_ns, "-l", "app.kubernetes.io/instance=web-staging", "-o", "name",
        context="alecton-b",
    ).stdout.split()[0]  # fmt: skip
    cluster.kubectl("annotate", pod, "alecton.dev/simulate=crash", "-n", target_ns, context="alecton-b")
    obj = wait_phase(cluster, ns, "web-staging", "Degraded", timeout=30)
    assert "CrashLoopBackOff" in obj["status"]["message"]
    assert conditions(obj)["Ready"] == "False"
    # The ReplicaSet replaces a deleted pod; the new one is healthy.
    cluster.kubectl("delete", pod, "-n", target_ns, "--wait=false", context="alecton-b")
    obj = wait_phase(cluster, ns, "web-staging", "Deployed", timeout=60)
    assert conditions(obj)["Ready"] == "True" and "healthy again" in obj["status"]["message"]
    assert helm_revisions(cluster, helm, target_ns) == [1]


def test_restart_during_verifying_resumes_without_helm(operator: OperatorProcess) -> None:
    cluster, helm = operator.cluster, operator.helm
    ns, target_ns = setup(cluster, "resume", {"1.0.0": UNREADY}, healthTimeout="5m")
    cluster.apply(r.deployment("web", "1.0.0"), namespace=ns)
    wait_phase(cluster, ns, "web-staging", "Verifying", timeout=60)
    operator.stop()
    # While the operator is down the workload is fixed by hand (a new pod that gets Ready).
    cluster.kubectl(
        "set", "image", "deployment/web-staging", f"web={GOOD_1}", "-n", target_ns, context="alecton-b"
    )
    operator.start()
    try:
        obj = wait_phase(cluster, ns, "web-staging", "Deployed", timeout=60)
    finally:
        runs = operator.metric("alecton_helm_invocations_total")
    assert obj["status"]["release"]["revision"] == 1
    assert helm_revisions(cluster, helm, target_ns) == [1]
    assert runs == 0, "resuming a health check runs no helm"


def test_broken_while_the_operator_was_down_is_degraded_after_restart(operator: OperatorProcess) -> None:
    """A restart follows releases already in place from one list of helm's storage: the
    verdict still comes from the live objects, so what broke meanwhile is reported."""
    cluster, helm = operator.cluster, operator.helm
    ns, target_ns = setup(cluster, "downtime", {"1.0.0": GOOD_1})
    cluster.apply(r.application("api", target_ns), namespace=ns)
    cluster.apply(r.deployment("web", "1.0.0"), r.deployment("api", "1.0.0"), namespace=ns)
    for name in ("web-staging", "api-staging"):
        wait_phase(cluster, ns, name, "Deployed", timeout=90)
    operator.stop()
    pod = cluster.kubectl(
        "get", "pods", "-n", target_ns, "-l", "app.kubernetes.io/instance=web-staging", "-o", "name",
        context="alecton-b",
    ).stdout.split()[0]  # fmt: skip
    cluster.kubectl("annotate", pod, "alecton.dev/simulate=crash", "-n", target_ns, context="alecton-b")

    def crashing() -> bool:
        found = cluster.get("pod", pod.split("/")[1], target_ns, context="alecton-b") or {}
        statuses = (found.get("status") or {}).get("containerStatuses") or []
        return any(
            (s.get("state") or {}).get("waiting", {}).get("reason") == "CrashLoopBackOff" for s in statuses
        )

    wait_for(crashing, 60, "the pod to crash while the operator is down")
    operator.start()
    try:
        obj = wait_phase(cluster, ns, "web-staging", "Degraded", timeout=30)
        assert "CrashLoopBackOff" in obj["status"]["message"]
        wait_for(lambda: operator.metric("alecton_health_assessed_releases") >= 2, 30, "both verdicts")
        assert cluster.get("deployments.alecton.dev", "api-staging", ns)["status"]["phase"] == "Deployed"
    finally:
        runs = operator.metric("alecton_helm_invocations_total")
    assert runs == 0, "a restart on releases in place runs no helm"
    assert helm_revisions(cluster, helm, target_ns) == [1]


def test_health_none_reports_deployed_at_once(operator: OperatorProcess) -> None:
    cluster = operator.cluster
    ns, _ = setup(cluster, "nohealth", {"1.0.0": CRASH}, health="None")
    cluster.apply(r.deployment("web", "1.0.0"), namespace=ns)
    obj = wait_phase(cluster, ns, "web-staging", "Deployed", timeout=60)
    assert obj["status"]["health"]["state"] == "Unknown"
