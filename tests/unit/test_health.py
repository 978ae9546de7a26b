from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from alecton.api.durations import parse_duration
from alecton.api.objects import ObjectKey
from alecton.reconcile.assess import assess, needs_watch
from alecton.reconcile.health import ObjectHealth, State, release_health
from alecton.reconcile.manifest import manifest_objects
from alecton.reconcile.pods import pod_failure
from alecton.reconcile.projection import health_projection

NS = "team"
APP = {"app": "web"}
SELECTOR = {"matchLabels": APP}

API_VERSIONS = {
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "DaemonSet": "apps/v1",
    "ReplicaSet": "apps/v1",
    "Job": "batch/v1",
    "Pod": "v1",
    "PersistentVolumeClaim": "v1",
    "Service": "v1",
    "Widget": "example.com/v1",
}

CURRENT, IN_PROGRESS, FAILED, NOT_FOUND = State.CURRENT, State.IN_PROGRESS, State.FAILED, State.NOT_FOUND


# ---------------------------------------------------------------------------
# Builders


def key_of(kind: str, name: str = "web", namespace: str = NS) -> ObjectKey:
    return ObjectKey(API_VERSIONS.get(kind, "example.com/v1"), kind, namespace, name)


def condition(type_: str, status: str = "True", reason: str = "", message: str = "", **extra: Any) -> dict:
    found = {"type": type_, "status": status, **extra}
    return found | ({"reason": reason} if reason else {}) | ({"message": message} if message else {})


def resource(
    kind: str,
    name: str = "web",
    *,
    spec: dict | None = None,
    status: dict | None = None,
    generation: int | None = 1,
    deleting: bool = False,
) -> dict:
    """An object as the API returns it; `status` gets observedGeneration = generation unless given."""
    metadata: dict[str, Any] = {"name": name, "namespace": NS}
    if generation is not None:
        metadata["generation"] = generation
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    obj: dict[str, Any] = {"apiVersion": API_VERSIONS.get(kind, "example.com/v1"), "kind": kind}
    obj["metadata"] = metadata
    if spec is not None:
        obj["spec"] = spec
    if status is not None:
        obj["status"] = status if generation is None else {"observedGeneration": generation, **status}
    return obj


def workload(kind: str, replicas: int | None = 3, /, **status: Any) -> dict:
    spec: dict[str, Any] = {"selector": SELECTOR}
    if replicas is not None:
        spec["replicas"] = replicas
    return resource(kind, spec=spec, status=status)


def deployment(replicas: int | None = 3, /, **status: Any) -> dict:
    return workload("Deployment", replicas, **status)


def healthy_deployment(replicas: int = 3) -> dict:
    counts = dict.fromkeys(("replicas", "updatedReplicas", "availableReplicas", "readyReplicas"), replicas)
    return deployment(replicas, **counts)


def container(waiting: str | None = None, restarts: int = 0, message: str = "") -> dict:
    found: dict[str, Any] = {"name": "app", "restartCount": restarts}
    if waiting:
        found["state"] = {"waiting": {"reason": waiting} | ({"message": message} if message else {})}
    else:
        found["state"] = {"running": {"startedAt": "2026-01-01T00:00:00Z"}}
    return found


def pod(
    name: str = "web-7d9",
    *,
    labels: dict | None = None,
    phase: str = "Running",
    ready: bool = True,
    containers: list[dict] | None = None,
    init: list[dict] | None = None,
    conditions: list[dict] | None = None,
    deleting: bool = False,
) -> dict:
    obj = resource("Pod", name, generation=None, deleting=deleting)
    obj["metadata"]["labels"] = APP if labels is None else labels
    status: dict[str, Any] = {"phase": phase, "containerStatuses": containers or [container()]}
    status["conditions"] = [condition("Ready", "True" if ready else "False"), *(conditions or [])]
    if init is not None:
        status["initContainerStatuses"] = init
    obj["status"] = status
    return obj


def crashing_pod(
    name: str = "web-7d9", reason: str = "CrashLoopBackOff", restarts: int = 4, **kw: Any
) -> dict:
    message = kw.pop("message", "back-off restarting failed container")
    return pod(name, ready=False, containers=[container(reason, restarts, message)], **kw)


def not_ready_pod(name: str = "web-abc", reason: str = "", message: str = "") -> dict:
    found = pod(name, ready=False)
    found["status"]["conditions"] = [condition("Ready", "False", reason, message)]
    return found


def check(obj: dict | None, kind: str | None = None, pods: Iterable[dict] = ()) -> ObjectHealth:
    """Assess `obj` under the key its manifest would give it (`kind` names a missing object)."""
    kind = kind or (obj or {}).get("kind", "Widget")
    name = (obj or {}).get("metadata", {}).get("name", "web")
    key = key_of(kind, name)
    pods = list(pods)
    whole = assess(obj, key, pods)
    # What the health informers keep must give the same verdict as the whole object.
    slim_pods = [health_projection(p, "", "Pod") if isinstance(p, dict) else p for p in pods]
    slim = health_projection(obj, key.group, kind) if obj is not None else None
    assert assess(slim, key, slim_pods) == whole
    return whole


def expect(health: ObjectHealth, state: State, message: str | None = None) -> None:
    assert health.state is state, health
    if message is not None:
        assert health.message == message


# ---------------------------------------------------------------------------
# Common rules


def test_missing_object_is_not_found() -> None:
    expect(check(None, "Deployment"), NOT_FOUND, "not found")


def test_object_being_deleted_is_in_progress() -> None:
    obj = resource("Deployment", spec={"replicas": 1}, status={}, deleting=True)
    expect(check(obj), IN_PROGRESS, "being deleted")


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Widget"])
def test_unobserved_generation_is_in_progress(kind: str) -> None:
    obj = resource(kind, generation=3, spec={"replicas": 0, "selector": SELECTOR})
    obj["status"] = {"observedGeneration": 2, "conditions": [condition("Ready")]}
    expect(check(obj), IN_PROGRESS, "update not yet observed")


def test_workload_without_observed_generation_is_in_progress() -> None:
    obj = resource("Deployment", spec={"replicas": 0}, status=None)
    expect(check(obj), IN_PROGRESS, "update not yet observed")


def test_unobserved_generation_wins_over_crashing_pods() -> None:
    obj = deployment(1)
    obj["metadata"]["generation"] = 2
    expect(check(obj, pods=[crashing_pod()]), IN_PROGRESS, "update not yet observed")


# ---------------------------------------------------------------------------
# Deployment


def test_deployment_current() -> None:
    expect(check(healthy_deployment()), CURRENT, "3 replicas available")


def test_deployment_scaled_to_zero_is_current() -> None:
    expect(check(deployment(0)), CURRENT)


def test_deployment_replicas_default_to_one() -> None:
    expect(check(deployment(None)), IN_PROGRESS, "0/1 replicas updated")


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ({"replicas": 3, "updatedReplicas": 1, "availableReplicas": 3}, "1/3 replicas updated"),
        (
            {"replicas": 4, "updatedReplicas": 3, "availableReplicas": 3},
            "waiting for 1 old replica to terminate",
        ),
        (
            {"replicas": 5, "updatedReplicas": 3, "availableReplicas": 3},
            "waiting for 2 old replicas to terminate",
        ),
        ({"replicas": 3, "updatedReplicas": 3, "availableReplicas": 1}, "1/3 replicas available"),
        (
            {"replicas": 3, "updatedReplicas": 3, "availableReplicas": 3, "readyReplicas": 2},
            "2/3 replicas ready",
        ),
    ],
)
def test_deployment_in_progress(status: dict, message: str) -> None:
    expect(check(deployment(3, **status)), IN_PROGRESS, message)


def test_deployment_progress_deadline_exceeded_fails() -> None:
    stuck = condition(
        "Progressing", "False", "ProgressDeadlineExceeded", 'ReplicaSet "web-7d9" has timed out'
    )
    expect(check(deployment(3, conditions=[stuck])), FAILED, "progress deadline exceeded")


def test_deployment_replica_failure_fails() -> None:
    quota = condition("ReplicaFailure", "True", "FailedCreate", 'pods "web-7d9" is forbidden: exceeded quota')
    expect(check(deployment(3, conditions=[quota])), FAILED, 'pods "web-7d9" is forbidden: exceeded quota')


def test_failed_deployment_adds_the_failing_pod() -> None:
    stuck = condition("Progressing", "False", "ProgressDeadlineExceeded")
    health = check(deployment(1, conditions=[stuck]), pods=[crashing_pod(restarts=0, message="")])
    expect(health, FAILED, "progress deadline exceeded; pod web-7d9 CrashLoopBackOff")


# ---------------------------------------------------------------------------
# Early failure from pods


@pytest.mark.parametrize(
    ("reason", "restarts", "message", "expected"),
    [
        (
            "CrashLoopBackOff",
            4,
            "back-off restarting failed container",
            "pod web-7d9 CrashLoopBackOff, 4 restarts: back-off restarting failed container",
        ),
        ("CrashLoopBackOff", 1, "", "pod web-7d9 CrashLoopBackOff, 1 restart"),
        (
            "ImagePullBackOff",
            0,
            'Back-off pulling image "web:nope"',
            'pod web-7d9 ImagePullBackOff: Back-off pulling image "web:nope"',
        ),
        ("ErrImagePull", 0, "manifest unknown", "pod web-7d9 ErrImagePull: manifest unknown"),
        (
            "CreateContainerConfigError",
            0,
            'secret "db" not found',
            'pod web-7d9 CreateContainerConfigError: secret "db" not found',
        ),
        ("InvalidImageName", 0, "", "pod web-7d9 InvalidImageName"),
    ],
)
def test_pod_failure_messages(reason: str, restarts: int, message: str, expected: str) -> None:
    failing = crashing_pod(reason=reason, restarts=restarts, message=message)
    assert pod_failure(failing) == expected
    expect(check(deployment(1), pods=[failing]), FAILED, expected)


def test_pod_failure_ignores_transient_waiting_reasons() -> None:
    assert pod_failure(pod(containers=[container("ContainerCreating")])) is None
    assert pod_failure(pod()) is None


def test_pod_failure_reports_init_containers_first() -> None:
    failing = pod(init=[container("CrashLoopBackOff", 2, "exit 1")], containers=[container("ErrImagePull")])
    assert pod_failure(failing) == "pod web-7d9 CrashLoopBackOff, 2 restarts: exit 1"


def test_pod_failure_flattens_multiline_messages() -> None:
    failing = crashing_pod(reason="ErrImagePull", restarts=0, message="rpc error:\n  not found\n")
    assert pod_failure(failing) == "pod web-7d9 ErrImagePull: rpc error: not found"


def test_early_failure_even_when_other_pods_are_fine() -> None:
    pods = [pod("web-aaa"), crashing_pod("web-bbb")]
    health = check(deployment(2, replicas=2, updatedReplicas=2, availableReplicas=1), pods=pods)
    assert health.state is FAILED
    assert health.message.startswith("pod web-bbb CrashLoopBackOff")


def test_first_failing_pod_by_name() -> None:
    pods = [crashing_pod("web-zzz", "ImagePullBackOff"), crashing_pod("web-aaa", "ErrImagePull")]
    assert check(deployment(2), pods=pods).message.startswith("pod web-aaa ErrImagePull")


def test_current_deployment_with_crashing_leftover_pod_stays_current() -> None:
    expect(check(healthy_deployment(), pods=[crashing_pod("web-old")]), CURRENT)


def test_deleting_pods_are_ignored() -> None:
    expect(check(deployment(1), pods=[crashing_pod(deleting=True)]), IN_PROGRESS, "0/1 replicas updated")


def test_pods_of_another_workload_are_ignored() -> None:
    other = crashing_pod(labels={"app": "db"})
    expect(check(deployment(1), pods=[other]), IN_PROGRESS, "0/1 replicas updated")


def test_pods_of_another_namespace_are_ignored() -> None:
    other = crashing_pod()
    other["metadata"]["namespace"] = "elsewhere"
    expect(check(deployment(1), pods=[other]), IN_PROGRESS)


# ---------------------------------------------------------------------------
# Why an in-progress workload waits


def test_running_but_not_ready_pod_is_named() -> None:
    obj = deployment(1, replicas=1, updatedReplicas=1)
    expect(check(obj, pods=[not_ready_pod()]), IN_PROGRESS, "0/1 replicas available; pod web-abc not ready")


def test_not_ready_pod_uses_the_ready_condition() -> None:
    obj = deployment(1, replicas=1, updatedReplicas=1)
    waiting = not_ready_pod(reason="ContainersNotReady", message="containers with unready status: [app]")
    expected = "0/1 replicas available; pod web-abc ContainersNotReady: containers with unready status: [app]"
    expect(check(obj, pods=[pod("web-aaa"), waiting]), IN_PROGRESS, expected)


def test_unschedulable_pod_is_named() -> None:
    obj = deployment(1, replicas=1, updatedReplicas=1)
    unschedulable = condition("PodScheduled", "False", "Unschedulable", "0/3 nodes are available")
    pending = pod(phase="Pending", ready=False, conditions=[unschedulable])
    expected = "0/1 replicas available; pod web-7d9 Unschedulable: 0/3 nodes are available"
    expect(check(obj, pods=[pending]), IN_PROGRESS, expected)


# ---------------------------------------------------------------------------
# Selectors


@pytest.mark.parametrize(
    ("selector", "selected"),
    [
        ({"matchLabels": {"app": "web"}}, True),
        ({"matchLabels": {"app": "web", "tier": "db"}}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "back"]}]}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["db"]}]}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]}, False),
        ({"matchExpressions": [{"key": "track", "operator": "NotIn", "values": ["canary"]}]}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, True),
        ({"matchExpressions": [{"key": "track", "operator": "Exists"}]}, False),
        ({"matchExpressions": [{"key": "track", "operator": "DoesNotExist"}]}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, False),
        (
            {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}],
            },
            True,
        ),
        ({"matchExpressions": [{"key": "tier", "operator": "Near", "values": ["front"]}]}, False),
        (None, False),
    ],
)
def test_selector_picks_pods(selector: dict | None, selected: bool) -> None:
    obj = deployment(1)
    obj["spec"]["selector"] = selector
    health = check(obj, pods=[crashing_pod(labels={"app": "web", "tier": "front"})])
    assert (health.state is FAILED) is selected


# ---------------------------------------------------------------------------
# StatefulSet


def statefulset(replicas: int = 3, strategy: dict | None = None, /, **status: Any) -> dict:
    obj = workload("StatefulSet", replicas, **status)
    if strategy is not None:
        obj["spec"]["updateStrategy"] = strategy
    return obj


def test_statefulset_current() -> None:
    obj = statefulset(3, readyReplicas=3, updatedReplicas=3, availableReplicas=3)
    obj["status"] |= {"currentRevision": "web-1", "updateRevision": "web-1"}
    expect(check(obj), CURRENT, "3 replicas ready")


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ({"readyReplicas": 1, "updatedReplicas": 3}, "1/3 replicas ready"),
        ({"readyReplicas": 3, "updatedReplicas": 2}, "2/3 replicas updated"),
        (
            {"readyReplicas": 3, "updatedReplicas": 3, "currentRevision": "web-1", "updateRevision": "web-2"},
            "rolling update to revision web-2 in progress",
        ),
        ({"readyReplicas": 3, "updatedReplicas": 3, "availableReplicas": 2}, "2/3 replicas available"),
    ],
)
def test_statefulset_in_progress(status: dict, message: str) -> None:
    expect(check(statefulset(3, **status)), IN_PROGRESS, message)


def test_statefulset_partitioned_rollout_is_current() -> None:
    partitioned = {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}
    obj = statefulset(3, partitioned, readyReplicas=3, updatedReplicas=1)
    obj["status"] |= {"currentRevision": "web-1", "updateRevision": "web-2"}
    expect(check(obj), CURRENT)


def test_statefulset_on_delete_counts_current_replicas() -> None:
    on_delete = {"type": "OnDelete"}
    expect(check(statefulset(3, on_delete, readyReplicas=3, currentReplicas=3)), CURRENT)
    expect(check(statefulset(3, on_delete, readyReplicas=3, currentReplicas=2)), IN_PROGRESS)


def test_statefulset_fails_early_from_pods() -> None:
    expect(check(statefulset(3, readyReplicas=2), pods=[crashing_pod("web-2")]), FAILED)


# ---------------------------------------------------------------------------
# DaemonSet


def daemonset(**status: Any) -> dict:
    return workload("DaemonSet", None, **status)


def test_daemonset_current() -> None:
    counts = dict.fromkeys(
        ("desiredNumberScheduled", "updatedNumberScheduled", "numberAvailable", "numberReady"), 2
    )
    expect(check(daemonset(**counts)), CURRENT, "2 pods available")


def test_daemonset_with_no_nodes_is_current() -> None:
    expect(check(daemonset(desiredNumberScheduled=0)), CURRENT)


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ({}, "waiting for the controller to schedule pods"),
        ({"desiredNumberScheduled": 3, "updatedNumberScheduled": 1}, "1/3 pods updated"),
        (
            {"desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 2},
            "2/3 pods available",
        ),
    ],
)
def test_daemonset_in_progress(status: dict, message: str) -> None:
    expect(check(daemonset(**status)), IN_PROGRESS, message)


def test_daemonset_fails_early_from_pods() -> None:
    failing = crashing_pod(reason="ImagePullBackOff", restarts=0, message="")
    expect(check(daemonset(desiredNumberScheduled=1), pods=[failing]), FAILED, "pod web-7d9 ImagePullBackOff")


# ---------------------------------------------------------------------------
# ReplicaSet


def test_replicaset_current() -> None:
    expect(check(workload("ReplicaSet", 2, availableReplicas=2, readyReplicas=2)), CURRENT)


def test_replicaset_in_progress() -> None:
    expect(check(workload("ReplicaSet", 2, availableReplicas=1)), IN_PROGRESS, "1/2 replicas available")


def test_replicaset_replica_failure_fails() -> None:
    failure = condition("ReplicaFailure", "True", "FailedCreate", "exceeded quota")
    expect(check(workload("ReplicaSet", 2, conditions=[failure])), FAILED, "exceeded quota")


# ---------------------------------------------------------------------------
# Job


def job(*conditions: dict, **status: Any) -> dict:
    selector = {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}}
    obj = resource("Job", "migrate", spec={"selector": selector, "backoffLimit": 6}, generation=None)
    obj["status"] = {"conditions": list(conditions), **status}
    return obj


def test_job_complete_is_current() -> None:
    expect(check(job(condition("Complete"), succeeded=1)), CURRENT, "complete")


def test_suspended_job_is_current() -> None:
    expect(check(job(condition("Suspended"))), CURRENT, "suspended")


def test_job_failed() -> None:
    failed = condition(
        "Failed", "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit"
    )
    expected = "job failed: BackoffLimitExceeded: Job has reached the specified backoff limit"
    expect(check(job(failed)), FAILED, expected)


def test_job_running_is_in_progress() -> None:
    expect(check(job(active=1)), IN_PROGRESS, "1 active, 0 succeeded")
    expect(check(job(active=1, failed=2)), IN_PROGRESS, "1 active, 0 succeeded, 2 failed")


@pytest.mark.parametrize(
    "labels",
    [
        {"batch.kubernetes.io/job-name": "migrate"},
        {"job-name": "migrate"},
        {"batch.kubernetes.io/controller-uid": "u1"},
    ],
)
def test_job_fails_early_from_its_pods(labels: dict) -> None:
    failing = crashing_pod(
        "migrate-x2", "CreateContainerConfigError", 0, message="secret missing", labels=labels
    )
    expected = "pod migrate-x2 CreateContainerConfigError: secret missing"
    expect(check(job(active=1), pods=[failing]), FAILED, expected)


def test_job_ignores_pods_of_other_jobs() -> None:
    other = crashing_pod("seed-x2", labels={"job-name": "seed"})
    expect(check(job(active=1), pods=[other]), IN_PROGRESS)


# ---------------------------------------------------------------------------
# Pod


def test_pod_running_and_ready_is_current() -> None:
    expect(check(pod()), CURRENT, "ready")


def test_pod_succeeded_is_current() -> None:
    expect(check(pod(phase="Succeeded", ready=False)), CURRENT, "succeeded")


def test_pod_failed() -> None:
    evicted = pod(phase="Failed", ready=False)
    evicted["status"] |= {"reason": "Evicted", "message": "low on memory"}
    expect(check(evicted), FAILED, "Evicted: low on memory")
    expect(check(pod(phase="Failed", ready=False)), FAILED, "failed")


def test_pod_not_ready_or_pending_is_in_progress() -> None:
    expect(check(not_ready_pod()), IN_PROGRESS, "not ready")
    expect(check(pod(phase="Pending", ready=False)), IN_PROGRESS, "pending")


def test_pod_crashing_fails_in_its_own_words() -> None:
    expected = "CrashLoopBackOff, 4 restarts: back-off restarting failed container"
    expect(check(crashing_pod()), FAILED, expected)


# ---------------------------------------------------------------------------
# PersistentVolumeClaim


@pytest.mark.parametrize(
    ("phase", "state", "message"),
    [("Bound", CURRENT, "bound"), ("Pending", IN_PROGRESS, "Pending"), ("Lost", FAILED, None)],
)
def test_pvc(phase: str, state: State, message: str | None) -> None:
    claim = resource("PersistentVolumeClaim", generation=None, status={"phase": phase})
    expect(check(claim), state, message)


def test_pvc_without_status_is_pending() -> None:
    expect(check(resource("PersistentVolumeClaim", generation=None)), IN_PROGRESS, "Pending")


# ---------------------------------------------------------------------------
# Custom resources and anything else


def widget(*conditions: dict, generation: int | None = None) -> dict:
    return resource("Widget", generation=generation, status={"conditions": list(conditions)})


def test_object_without_status_is_current() -> None:
    expect(check(resource("Widget", spec={"size": 1})), CURRENT)


def test_loadbalancer_service_without_address_is_current() -> None:
    service = resource("Service", spec={"type": "LoadBalancer"}, status={"loadBalancer": {}}, generation=None)
    expect(check(service), CURRENT)


@pytest.mark.parametrize(
    ("conditions", "state", "message"),
    [
        ([condition("Ready")], CURRENT, "ready"),
        ([condition("Ready", "False", "InstallFailed", "chart not found")], FAILED, "chart not found"),
        ([condition("Ready", "False", "BuildError")], FAILED, "BuildError"),
        ([condition("Ready", "False", "Progressing", "waiting for pods")], IN_PROGRESS, "waiting for pods"),
        (
            [condition("Ready", "False", "Progressing"), condition("Stalled", "True", "Broken", "bad spec")],
            FAILED,
            "bad spec",
        ),
        ([condition("Ready", "Unknown", "Reconciling", "working")], IN_PROGRESS, "working"),
        (
            [condition("Stalled", "True", "InvalidSpec", "size must be positive")],
            FAILED,
            "size must be positive",
        ),
        ([condition("Reconciling", "True", "Progressing", "scaling")], IN_PROGRESS, "scaling"),
        ([condition("Reconciling", "False"), condition("Stalled", "False")], CURRENT, None),
        ([], CURRENT, None),
    ],
)
def test_custom_resource_conditions(conditions: list[dict], state: State, message: str | None) -> None:
    expect(check(widget(*conditions)), state, message)


def test_custom_resource_stale_ready_condition_is_in_progress() -> None:
    obj = widget(condition("Ready", observedGeneration=1), generation=None)
    obj["metadata"]["generation"] = 2
    expect(check(obj), IN_PROGRESS, "update not yet observed")


def test_custom_resource_with_observed_generation_current() -> None:
    expect(check(widget(condition("Ready"), generation=4)), CURRENT)


# ---------------------------------------------------------------------------
# needs_watch


@pytest.mark.parametrize(
    ("api_version", "kind", "namespace", "watch"),
    [
        ("v1", "ConfigMap", NS, False),
        ("v1", "Secret", NS, False),
        ("v1", "Service", NS, False),
        ("v1", "ServiceAccount", NS, False),
        ("rbac.authorization.k8s.io/v1", "RoleBinding", NS, False),
        ("networking.k8s.io/v1", "NetworkPolicy", NS, False),
        ("policy/v1", "PodDisruptionBudget", NS, False),
        ("v1", "Namespace", "", False),
        ("example.com/v1", "ClusterWidget", "", False),
        ("apps/v1", "Deployment", NS, True),
        ("batch/v1", "Job", NS, True),
        ("v1", "PersistentVolumeClaim", NS, True),
        ("v1", "Pod", NS, True),
        ("networking.k8s.io/v1", "Ingress", NS, True),
        ("example.com/v1", "Widget", NS, True),
        ("example.com/v1", "ConfigMap", NS, True),  # not the core ConfigMap
    ],
)
def test_needs_watch(api_version: str, kind: str, namespace: str, watch: bool) -> None:
    assert needs_watch(ObjectKey(api_version, kind, namespace, "x")) is watch


# ---------------------------------------------------------------------------
# ObjectKey


def test_object_key_group_and_description() -> None:
    assert key_of("Deployment").group == "apps"
    assert key_of("Pod").group == ""
    assert key_of("Widget").group == "example.com"
    assert key_of("Deployment").describe() == "Deployment web"


# ---------------------------------------------------------------------------
# Manifest parsing

MANIFEST = """\
---
# Source: web/templates/namespace.yaml
apiVersion: v1
kind: Namespace
metadata:
  name: web-ns
---
# Source: web/templates/empty.yaml
---
---
# Source: web/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: other
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: web-reader
  namespace: ignored
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
"""


def test_manifest_objects_multi_document() -> None:
    assert manifest_objects(MANIFEST, NS) == [
        ObjectKey("v1", "Namespace", "", "web-ns"),
        ObjectKey("apps/v1", "Deployment", NS, "web"),
        ObjectKey("v1", "ConfigMap", "other", "settings"),
        ObjectKey("rbac.authorization.k8s.io/v1", "ClusterRole", "", "web-reader"),
    ]


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [
        ("v1", "PersistentVolume"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        ("storage.k8s.io/v1", "StorageClass"),
        ("scheduling.k8s.io/v1", "PriorityClass"),
        ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"),
        ("admissionregistration.k8s.io/v1", "MutatingAdmissionPolicyBinding"),
        ("apiregistration.k8s.io/v1", "APIService"),
        ("networking.k8s.io/v1", "IngressClass"),
        ("node.k8s.io/v1", "RuntimeClass"),
    ],
)
def test_manifest_cluster_scoped_kinds_have_no_namespace(api_version: str, kind: str) -> None:
    manifest = f"apiVersion: {api_version}\nkind: {kind}\nmetadata:\n  name: x\n"
    assert manifest_objects(manifest, NS) == [ObjectKey(api_version, kind, "", "x")]


def test_manifest_list_kind() -> None:
    manifest = """\
apiVersion: v1
kind: List
items:
  - {apiVersion: v1, kind: Service, metadata: {name: web}}
  - {apiVersion: v1, kind: ConfigMapList, items: [{apiVersion: v1, kind: ConfigMap, metadata: {name: c}}]}
"""
    assert manifest_objects(manifest, NS) == [
        ObjectKey("v1", "Service", NS, "web"),
        ObjectKey("v1", "ConfigMap", NS, "c"),
    ]


@pytest.mark.parametrize(
    "document",
    [
        "just a string",
        "- a\n- list",
        "apiVersion: v1\nmetadata: {name: nokind}",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {namespace: x}",
        "apiVersion: v1\nkind: ConfigMap",
        "# only a comment",
        "",
    ],
)
def test_manifest_skips_documents_that_are_not_objects(document: str) -> None:
    assert manifest_objects(document, NS) == []


def test_manifest_bad_yaml_raises_value_error() -> None:
    with pytest.raises(ValueError, match="not valid YAML"):
        manifest_objects("kind: Deployment\nmetadata: {name: [unclosed\n", NS)


# ---------------------------------------------------------------------------
# Release health


def health(name: str, state: State, message: str = "") -> ObjectHealth:
    return ObjectHealth(key_of("Deployment", name), state, message)


def test_release_current() -> None:
    release = release_health([health("a", CURRENT), health("b", CURRENT)])
    assert release.state is CURRENT
    assert release.message == "all 2 objects healthy"
    assert release.progressing == []


def test_release_in_progress_counts_the_rest() -> None:
    release = release_health(
        [
            health("a", CURRENT),
            health("b", IN_PROGRESS, "1/3 replicas available"),
            health("c", NOT_FOUND, "not found"),
        ]
    )
    assert release.state is IN_PROGRESS
    assert release.message == "waiting for Deployment b: 1/3 replicas available, and 1 more"
    assert release.progressing == ["Deployment b: 1/3 replicas available", "Deployment c: not found"]


def test_release_in_progress_single() -> None:
    release = release_health([health("c", NOT_FOUND, "not found")])
    assert release.state is IN_PROGRESS
    assert release.message == "waiting for Deployment c: not found"


def test_release_failed_lists_failures_first() -> None:
    release = release_health(
        [
            health("a", IN_PROGRESS, "1/3 replicas available"),
            health("b", FAILED, "pod b-1 CrashLoopBackOff"),
            health("c", FAILED, "progress deadline exceeded"),
        ]
    )
    assert release.state is FAILED
    assert release.message == "Deployment b: pod b-1 CrashLoopBackOff"
    assert release.progressing == [
        "Deployment b: pod b-1 CrashLoopBackOff",
        "Deployment c: progress deadline exceeded",
        "Deployment a: 1/3 replicas available",
    ]


def test_release_of_assessed_objects() -> None:
    keys = manifest_objects(MANIFEST, NS)
    cache = {key_of("Deployment"): healthy_deployment()}
    release = release_health(assess(cache.get(key), key) for key in keys if needs_watch(key))
    assert release.state is CURRENT
    assert len(release.objects) == 1


# ---------------------------------------------------------------------------
# Durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5m", 300.0),
        ("30s", 30.0),
        ("1m30s", 90.0),
        ("1h", 3600.0),
        ("90s", 90.0),
        ("0.5s", 0.5),
        ("1.5h", 5400.0),
        ("500ms", 0.5),
        ("90", 90.0),
        (" 2m ", 120.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "x", "5 m", "m", "5d", "1.5", "-", "5m-", "1e3s", "s5", "+-5m"])
def test_parse_duration_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match=r"^healthTimeout must be a duration like 5m or 90s, not "):
        parse_duration(text, field="healthTimeout")


@pytest.mark.parametrize("text", ["0", "0s", "-5m", "0m0s"])
def test_parse_duration_rejects_non_positive(text: str) -> None:
    with pytest.raises(ValueError, match=r"^healthTimeout must be a positive duration"):
        parse_duration(text, field="healthTimeout")


def test_parse_duration_message_quotes_the_input() -> None:
    with pytest.raises(ValueError, match=r"not 'x'$"):
        parse_duration("x")
