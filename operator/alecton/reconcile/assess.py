"""The health of one object of a release (kstatus semantics), and which objects need a watch.

Each kind the operator knows (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, Pod,
PersistentVolumeClaim) has its own rules; any other kind is judged by its Ready, Stalled
and Reconciling conditions. Workloads that are not Current yet also look at their pods
(`pods.py`) for a reason that will not clear by itself. Objects are plain JSON dicts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from alecton.api.objects import ObjectKey
from alecton.reconcile.fields import (
    as_int,
    condition_text,
    counted,
    find_condition,
    get_path,
    is_int,
    name_of,
    spec_replicas,
    status_int,
    text_of,
    true_condition,
)
from alecton.reconcile.health import ObjectHealth, State
from alecton.reconcile.pods import (
    container_failure,
    not_ready_detail,
    pod_failure,
    unschedulable_detail,
    waiting_pod_hint,
)

# ---------------------------------------------------------------------------
# What to watch

# Kinds whose health is "it exists": nothing in their status can say otherwise.
_EXISTS_ONLY: frozenset[tuple[str, str]] = frozenset(
    {
        ("", "ConfigMap"),
        ("", "Secret"),
        ("", "Service"),  # a LoadBalancer without an address is still Current for kstatus
        ("", "ServiceAccount"),
        ("", "Endpoints"),
        ("", "LimitRange"),
        ("", "ResourceQuota"),
        ("rbac.authorization.k8s.io", "Role"),
        ("rbac.authorization.k8s.io", "RoleBinding"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("networking.k8s.io", "NetworkPolicy"),
        ("networking.k8s.io", "IngressClass"),
        ("policy", "PodDisruptionBudget"),
        ("scheduling.k8s.io", "PriorityClass"),
    }
)


def needs_watch(key: ObjectKey) -> bool:
    """Whether the object's health depends on its live status (so it must be watched)."""
    if not key.namespace:
        return False  # cluster-scoped: the operator only watches namespaces it deploys to
    return (key.group, key.kind) not in _EXISTS_ONLY


# ---------------------------------------------------------------------------
# Assessment of one object

_DEPLOYMENT = ("apps", "Deployment")
_STATEFULSET = ("apps", "StatefulSet")
_DAEMONSET = ("apps", "DaemonSet")
_REPLICASET = ("apps", "ReplicaSet")
_JOB = ("batch", "Job")
_POD = ("", "Pod")
_PVC = ("", "PersistentVolumeClaim")

# The apps controllers always write status.observedGeneration: until they do, the status
# describes an older spec (or none at all), whatever its counters say.
_OBSERVING_WORKLOADS = frozenset({_DEPLOYMENT, _STATEFULSET, _DAEMONSET, _REPLICASET})
_POD_OWNERS = _OBSERVING_WORKLOADS | {_JOB}

_JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")

Verdict = tuple[State, str]


def assess(obj: dict[str, Any] | None, key: ObjectKey, pods: Iterable[dict[str, Any]] = ()) -> ObjectHealth:
    """The health of one object; `pods` are the live Pods of its namespace (any owner)."""
    if obj is None:
        return ObjectHealth(key, State.NOT_FOUND, "not found")
    state, message = _assess(obj, key, pods)
    return ObjectHealth(key, state, message)


def _assess(obj: dict[str, Any], key: ObjectKey, pods: Iterable[dict[str, Any]]) -> Verdict:
    kind = (key.group, key.kind)
    if get_path(obj, "metadata", "deletionTimestamp"):
        return State.IN_PROGRESS, "being deleted"
    if not _generation_observed(obj, strict=kind in _OBSERVING_WORKLOADS):
        # Pods and counters still describe the previous spec: judging them now would be premature.
        return State.IN_PROGRESS, "update not yet observed"

    state, message = _ASSESSORS.get(kind, _assess_custom)(obj)
    if state is State.CURRENT:
        # A Current workload stays Current even if a leftover pod crashes (an old ReplicaSet's pod).
        return state, message

    if kind == _POD:
        failure = container_failure(obj)
        return (State.FAILED, failure) if failure else (state, message)
    if kind not in _POD_OWNERS:
        return state, message

    owned = _owned_pods(obj, key, pods)
    failure = next(filter(None, map(pod_failure, owned)), None)
    if failure:
        # An already failed workload keeps its own reason; the pod says why.
        return State.FAILED, f"{message}; {failure}" if state is State.FAILED else failure
    hint = waiting_pod_hint(owned)
    if state is State.IN_PROGRESS and hint:
        return state, f"{message}; {hint}"
    return state, message


def _generation_observed(obj: dict[str, Any], strict: bool) -> bool:
    generation = get_path(obj, "metadata", "generation")
    if not is_int(generation):
        return True
    observed = get_path(obj, "status", "observedGeneration")
    if not is_int(observed):
        # Custom resources often have no observedGeneration at all; only the apps
        # controllers are known to write it.
        return not strict
    return observed >= generation


def _assess_deployment(obj: dict[str, Any]) -> Verdict:
    progressing = find_condition(obj, "Progressing")
    if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
        return State.FAILED, "progress deadline exceeded"
    replica_failure = true_condition(obj, "ReplicaFailure")
    if replica_failure:
        # The ReplicaSet cannot create pods at all (quota, admission): nothing will start.
        return State.FAILED, condition_text(replica_failure, "replica failure")
    replicas = spec_replicas(obj)
    updated = status_int(obj, "updatedReplicas")
    total = status_int(obj, "replicas")
    available = status_int(obj, "availableReplicas")
    ready = status_int(obj, "readyReplicas")
    if updated < replicas:
        return State.IN_PROGRESS, f"{updated}/{replicas} replicas updated"
    if total > updated:
        old = total - updated
        return State.IN_PROGRESS, f"waiting for {counted(old, 'old replica')} to terminate"
    if available < replicas:
        return State.IN_PROGRESS, f"{available}/{replicas} replicas available"
    if ready < replicas:
        return State.IN_PROGRESS, f"{ready}/{replicas} replicas ready"
    return State.CURRENT, f"{counted(replicas, 'replica')} available"


def _assess_statefulset(obj: dict[str, Any]) -> Verdict:
    replicas = spec_replicas(obj)
    ready = status_int(obj, "readyReplicas")
    if ready < replicas:
        return State.IN_PROGRESS, f"{ready}/{replicas} replicas ready"
    # The API server defaults the strategy to RollingUpdate; a missing one means the same.
    strategy = get_path(obj, "spec", "updateStrategy", "type") or "RollingUpdate"
    if strategy == "RollingUpdate":
        # With a partition only the pods at or above it are updated: that is the whole rollout.
        partition = as_int(get_path(obj, "spec", "updateStrategy", "rollingUpdate", "partition"))
        wanted = max(replicas - partition, 0)
        updated = status_int(obj, "updatedReplicas")
        if updated < wanted:
            return State.IN_PROGRESS, f"{updated}/{wanted} replicas updated"
        current_revision = get_path(obj, "status", "currentRevision")
        update_revision = get_path(obj, "status", "updateRevision")
        if partition <= 0 and current_revision and update_revision and current_revision != update_revision:
            return State.IN_PROGRESS, f"rolling update to revision {update_revision} in progress"
    else:
        # OnDelete: pods change only when someone deletes them, so the current ones are the rollout.
        current = status_int(obj, "currentReplicas")
        if current < replicas:
            return State.IN_PROGRESS, f"{current}/{replicas} replicas current"
    available = get_path(obj, "status", "availableReplicas")
    if available is not None and as_int(available) < replicas:
        return State.IN_PROGRESS, f"{as_int(available)}/{replicas} replicas available"
    return State.CURRENT, f"{counted(replicas, 'replica')} ready"


def _assess_daemonset(obj: dict[str, Any]) -> Verdict:
    desired = get_path(obj, "status", "desiredNumberScheduled")
    if not is_int(desired):
        return State.IN_PROGRESS, "waiting for the controller to schedule pods"
    if desired <= 0:
        return State.CURRENT, "no nodes to run on"
    updated = status_int(obj, "updatedNumberScheduled")
    available = status_int(obj, "numberAvailable")
    ready = status_int(obj, "numberReady")
    if updated < desired:
        return State.IN_PROGRESS, f"{updated}/{desired} pods updated"
    if available < desired:
        return State.IN_PROGRESS, f"{available}/{desired} pods available"
    if ready < desired:
        return State.IN_PROGRESS, f"{ready}/{desired} pods ready"
    return State.CURRENT, f"{counted(desired, 'pod')} available"


def _assess_replicaset(obj: dict[str, Any]) -> Verdict:
    replica_failure = true_condition(obj, "ReplicaFailure")
    if replica_failure:
        return State.FAILED, condition_text(replica_failure, "replica failure")
    replicas = spec_replicas(obj)
    available = status_int(obj, "availableReplicas")
    ready = status_int(obj, "readyReplicas")
    if available < replicas:
        return State.IN_PROGRESS, f"{available}/{replicas} replicas available"
    if ready < replicas:
        return State.IN_PROGRESS, f"{ready}/{replicas} replicas ready"
    return State.CURRENT, f"{counted(replicas, 'replica')} available"


def _assess_job(obj: dict[str, Any]) -> Verdict:
    if true_condition(obj, "Complete"):
        return State.CURRENT, "complete"
    # FailureTarget comes before Failed (Kubernetes 1.31+) while the last pods terminate.
    failed = true_condition(obj, "Failed") or true_condition(obj, "FailureTarget")
    if failed:
        details = [part for part in (text_of(failed.get("reason")), text_of(failed.get("message"))) if part]
        return State.FAILED, ": ".join(["job failed", *details])
    if true_condition(obj, "Suspended"):
        return State.CURRENT, "suspended"  # suspended on purpose: nothing is expected to run
    active = status_int(obj, "active")
    succeeded = status_int(obj, "succeeded")
    failed_pods = status_int(obj, "failed")
    message = f"{active} active, {succeeded} succeeded"
    return State.IN_PROGRESS, f"{message}, {failed_pods} failed" if failed_pods else message


def _assess_pod(obj: dict[str, Any]) -> Verdict:
    phase = get_path(obj, "status", "phase")
    if phase == "Succeeded":
        return State.CURRENT, "succeeded"
    if phase == "Failed":
        reason = text_of(get_path(obj, "status", "reason")) or "failed"
        message = text_of(get_path(obj, "status", "message"))
        return State.FAILED, f"{reason}: {message}" if message else reason
    if phase == "Running":
        if true_condition(obj, "Ready"):
            return State.CURRENT, "ready"
        return State.IN_PROGRESS, not_ready_detail(obj)
    unscheduled = unschedulable_detail(obj)
    return State.IN_PROGRESS, f"pending: {unscheduled}" if unscheduled else "pending"


def _assess_pvc(obj: dict[str, Any]) -> Verdict:
    phase = text_of(get_path(obj, "status", "phase"))
    if phase == "Bound":
        return State.CURRENT, "bound"
    if phase == "Lost":
        return State.FAILED, "lost: its volume no longer exists"
    return State.IN_PROGRESS, phase or "Pending"


def _assess_custom(obj: dict[str, Any]) -> Verdict:
    stalled = true_condition(obj, "Stalled")
    ready = find_condition(obj, "Ready")
    if ready is not None:
        generation = get_path(obj, "metadata", "generation")
        observed = ready.get("observedGeneration")
        if is_int(generation) and is_int(observed) and observed < generation:
            # Flux-style resources record the generation per condition: this Ready is stale.
            return State.IN_PROGRESS, "update not yet observed"
        status = ready.get("status")
        if status == "True":
            return State.CURRENT, "ready"
        reason = text_of(ready.get("reason"))
        if status == "False" and (stalled or re.search("fail|error", reason, re.IGNORECASE)):
            return State.FAILED, condition_text(stalled or ready, "not ready")
        return State.IN_PROGRESS, condition_text(ready, "not ready")
    if stalled:
        return State.FAILED, condition_text(stalled, "stalled")
    reconciling = true_condition(obj, "Reconciling")
    if reconciling:
        return State.IN_PROGRESS, condition_text(reconciling, "reconciling")
    # kstatus: an object without a status (or without these conditions) is Current once it exists.
    return State.CURRENT, "exists"


_ASSESSORS: dict[tuple[str, str], Callable[[dict[str, Any]], Verdict]] = {
    _DEPLOYMENT: _assess_deployment,
    _STATEFULSET: _assess_statefulset,
    _DAEMONSET: _assess_daemonset,
    _REPLICASET: _assess_replicaset,
    _JOB: _assess_job,
    _POD: _assess_pod,
    _PVC: _assess_pvc,
}


def _owned_pods(obj: dict[str, Any], key: ObjectKey, pods: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The live pods the workload's selector picks (for a Job also its job-name label), by name."""
    selector = get_path(obj, "spec", "selector")
    is_job = (key.group, key.kind) == _JOB
    owned = []
    for pod in pods:
        if not isinstance(pod, dict) or get_path(pod, "metadata", "deletionTimestamp"):
            continue  # a pod on its way out says nothing about the new spec
        namespace = get_path(pod, "metadata", "namespace")
        if namespace and key.namespace and namespace != key.namespace:
            continue
        labels = get_path(pod, "metadata", "labels")
        labels = labels if isinstance(labels, dict) else {}
        by_job_name = is_job and any(labels.get(label) == key.name for label in _JOB_NAME_LABELS)
        if by_job_name or _selector_matches(selector, labels):
            owned.append(pod)
    return sorted(owned, key=name_of)  # sorted so that "the first failing pod" is deterministic


def _selector_matches(selector: Any, labels: dict[str, Any]) -> bool:
    # Kubernetes semantics: a missing selector selects nothing, an empty one selects everything.
    if not isinstance(selector, dict):
        return False
    match_labels = selector.get("matchLabels")
    if isinstance(match_labels, dict) and any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    expressions = selector.get("matchExpressions")
    expressions = expressions if isinstance(expressions, list) else []
    return all(_expression_matches(expression, labels) for expression in expressions)


def _expression_matches(expression: Any, labels: dict[str, Any]) -> bool:
    if not isinstance(expression, dict):
        return False
    label, operator = expression.get("key"), expression.get("operator")
    values = expression.get("values")
    values = values if isinstance(values, list) else []
    if operator == "In":
        return label in labels and labels[label] in values
    if operator == "NotIn":
        return label not in labels or labels[label] not in values
    if operator == "Exists":
        return label in labels
    if operator == "DoesNotExist":
        return label not in labels
    return False  # an unknown operator cannot be evaluated: select nothing rather than guess
