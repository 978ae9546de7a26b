"""Health of a release's objects after helm installs or upgrades it (kstatus semantics).

The handlers read the release manifest, watch the objects it names and pass the cached
copies (plus the live Pods of each namespace) here; this module decides whether each
object is Current, still InProgress, already Failed or not yet seen, and sums that up for
the release. Nothing here touches the network or helm: objects are plain JSON dicts as the
API server returns them.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import yaml

from alecton.api.objects import ObjectKey


class State(enum.Enum):
    CURRENT = "Current"  # healthy / reconciled
    IN_PROGRESS = "InProgress"  # still converging
    FAILED = "Failed"  # will not converge without a change (early failure)
    NOT_FOUND = "NotFound"  # object from the manifest is not (yet) in the cache


@dataclass(frozen=True)
class ObjectHealth:
    key: ObjectKey
    state: State
    message: str


@dataclass(frozen=True)
class ReleaseHealth:
    state: State
    objects: tuple[ObjectHealth, ...]

    @property
    def message(self) -> str:
        pending = self._not_current()
        if self.state is State.CURRENT or not pending:
            count = len(self.objects)
            if count == 0:
                return "no objects to assess"
            return "1 object healthy" if count == 1 else f"all {count} objects healthy"
        first = pending[0]
        line = f"{first.key.describe()}: {first.message}"
        if self.state is State.FAILED:
            return line
        more = f", and {len(pending) - 1} more" if len(pending) > 1 else ""
        return f"waiting for {line}{more}"

    @property
    def progressing(self) -> list[str]:
        return [f"{health.key.describe()}: {health.message}" for health in self._not_current()]

    def _not_current(self) -> list[ObjectHealth]:
        # Failed objects first: they are what a person has to fix; the rest keep manifest order.
        failed = [health for health in self.objects if health.state is State.FAILED]
        waiting = [health for health in self.objects if health.state not in (State.FAILED, State.CURRENT)]
        return failed + waiting


def release_health(objects: Iterable[ObjectHealth]) -> ReleaseHealth:
    assessed = tuple(objects)
    states = {health.state for health in assessed}
    if State.FAILED in states:
        state = State.FAILED
    elif states <= {State.CURRENT}:
        state = State.CURRENT
    else:
        # NOT_FOUND counts as in progress: the watch may simply not have delivered it yet.
        state = State.IN_PROGRESS
    return ReleaseHealth(state, assessed)


# ---------------------------------------------------------------------------
# Manifest parsing

# Built-in cluster-scoped kinds by (group, kind). Custom cluster-scoped kinds cannot be
# known without discovery; they get the default namespace like any namespaced object.
_CLUSTER_SCOPED: frozenset[tuple[str, str]] = frozenset(
    {
        ("", "Namespace"),
        ("", "Node"),
        ("", "PersistentVolume"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("storage.k8s.io", "StorageClass"),
        ("storage.k8s.io", "CSIDriver"),
        ("storage.k8s.io", "CSINode"),
        ("storage.k8s.io", "VolumeAttachment"),
        ("storage.k8s.io", "VolumeAttributesClass"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding"),
        ("apiregistration.k8s.io", "APIService"),
        ("networking.k8s.io", "IngressClass"),
        ("node.k8s.io", "RuntimeClass"),
        ("certificates.k8s.io", "CertificateSigningRequest"),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    }
)

# A `List` nested in a `List` is legal but never deep; the limit only stops YAML aliases
# that make a list contain itself.
_MAX_LIST_DEPTH = 8


# libyaml when PyYAML has it: ten times faster on a release manifest (0.7 vs 7.4 ms for the
# bundled chart's), which every health check start and drift check parses.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# A release manifest is read from helm's storage, which on a tenant's cluster the tenant can
# write. libyaml parses about 2 MB a second and alecton walks every node of what it parsed, so
# both the text and what its YAML aliases make of it are bounded: an honest manifest is a few
# MB and uses aliases (if at all) for a shared list or two; 990 bytes of nested `List` aliases
# held the event loop for 116 s, 651 bytes of nested mapping aliases held a drift diff for 77 s.
MAX_MANIFEST_CHARS = 8 << 20
# How many nodes (mappings, sequences, values) aliases may add to the documents as written.
MAX_ALIAS_NODES = 100_000
_COUNT_CAP = 1 << 62  # counts saturate here: nested aliases would otherwise make huge integers


def manifest_documents(manifest: str) -> list[Any]:
    """The YAML documents of a helm release manifest; ValueError (one line) if it is not YAML,
    is longer than `MAX_MANIFEST_CHARS` or its aliases expand it by more than `MAX_ALIAS_NODES`
    nodes."""
    if len(manifest or "") > MAX_MANIFEST_CHARS:
        raise ValueError(
            f"release manifest has {len(manifest)} characters, more than the {MAX_MANIFEST_CHARS} "
            "alecton reads"
        )
    try:
        documents = list(yaml.load_all(manifest or "", Loader=_SAFE_LOADER))
    except yaml.YAMLError as exc:
        raise ValueError(f"release manifest is not valid YAML: {_one_line(str(exc))}") from exc
    if "*" in (manifest or ""):  # no alias, no expansion
        written, expanded = _node_counts(documents, MAX_ALIAS_NODES)
        if expanded - written > MAX_ALIAS_NODES:
            raise ValueError(
                f"release manifest uses YAML aliases that expand it by more than {MAX_ALIAS_NODES} nodes"
            )
    return documents


def _node_counts(documents: list[Any], limit: int) -> tuple[int, int]:
    """Nodes as written (one per document and per entry of each distinct mapping or sequence)
    and once aliases are expanded (a shared mapping or sequence counted wherever it appears),
    counted without expanding anything. An alias back to an enclosing node (a loop) counts as
    one node: the code that walks the documents stops at a depth. Stops counting once aliases
    add more than `limit` nodes."""
    sizes: dict[int, int] = {}  # id -> expanded size of a finished mapping or sequence
    open_: set[int] = set()  # ids on the current path
    written = expanded = 0
    for document in documents:
        written += 1
        if not isinstance(document, dict | list):
            expanded += 1
            continue
        stack: list[tuple[Any, bool]] = [(document, False)]
        while stack:
            node, done = stack.pop()
            key = id(node)
            children = list(node.values()) if isinstance(node, dict) else node
            if done:
                open_.discard(key)
                # A child not finished yet is an enclosing node: a loop.
                size = 1 + sum(sizes.get(id(c), 1) if isinstance(c, dict | list) else 1 for c in children)
                sizes[key] = min(size, _COUNT_CAP)
                written += len(children)
                continue
            if key in sizes or key in open_:
                continue
            open_.add(key)
            stack.append((node, True))
            stack.extend(
                (child, False)
                for child in children
                if isinstance(child, dict | list) and id(child) not in sizes and id(child) not in open_
            )
        expanded += sizes[id(document)]
        if expanded - written > limit:
            break
    return written, expanded


def manifest_objects(manifest: str, default_namespace: str) -> list[ObjectKey]:
    """Keys of every object in a helm release manifest, in manifest order, without duplicates."""
    documents = manifest_documents(manifest)
    keys: dict[ObjectKey, None] = {}  # a dict keeps insertion order, a set would not
    for document in documents:
        for key in _document_keys(document, default_namespace, 0):
            keys.setdefault(key, None)
    return list(keys)


def _document_keys(document: Any, default_namespace: str, depth: int) -> list[ObjectKey]:
    if not isinstance(document, dict):
        return []  # empty documents (comments only, "---" twice) load as None
    kind = document.get("kind")
    items = document.get("items")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
        if depth >= _MAX_LIST_DEPTH:
            return []
        return [key for item in items for key in _document_keys(item, default_namespace, depth + 1)]
    metadata = document.get("metadata")
    if not isinstance(kind, str) or not kind or not isinstance(metadata, dict):
        return []
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        return []
    api_version = document.get("apiVersion")
    api_version = api_version if isinstance(api_version, str) else ""
    key = ObjectKey(api_version, kind, "", name)
    if (key.group, kind) in _CLUSTER_SCOPED:
        return [key]  # a namespace written on a cluster-scoped object is ignored by the API too
    namespace = metadata.get("namespace")
    namespace = namespace if isinstance(namespace, str) and namespace else default_namespace
    return [ObjectKey(api_version, kind, namespace, name)]


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

# Waiting reasons that do not clear by themselves: the pod is retrying something that keeps failing.
_FAILING_WAITING_REASONS: frozenset[str] = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "CreateContainerConfigError",
        "CreateContainerError",
        "InvalidImageName",
        "RunContainerError",
    }
)

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
    if _get(obj, "metadata", "deletionTimestamp"):
        return State.IN_PROGRESS, "being deleted"
    if not _generation_observed(obj, strict=kind in _OBSERVING_WORKLOADS):
        # Pods and counters still describe the previous spec: judging them now would be premature.
        return State.IN_PROGRESS, "update not yet observed"

    state, message = _ASSESSORS.get(kind, _assess_custom)(obj)
    if state is State.CURRENT:
        # A Current workload stays Current even if a leftover pod crashes (an old ReplicaSet's pod).
        return state, message

    if kind == _POD:
        failure = _container_failure(obj)
        return (State.FAILED, failure) if failure else (state, message)
    if kind not in _POD_OWNERS:
        return state, message

    owned = _owned_pods(obj, key, pods)
    failure = next(filter(None, map(pod_failure, owned)), None)
    if failure:
        # An already failed workload keeps its own reason; the pod says why.
        return State.FAILED, f"{message}; {failure}" if state is State.FAILED else failure
    hint = _waiting_pod_hint(owned)
    if state is State.IN_PROGRESS and hint:
        return state, f"{message}; {hint}"
    return state, message


def _generation_observed(obj: dict[str, Any], strict: bool) -> bool:
    generation = _get(obj, "metadata", "generation")
    if not _is_int(generation):
        return True
    observed = _get(obj, "status", "observedGeneration")
    if not _is_int(observed):
        # Custom resources often have no observedGeneration at all; only the apps
        # controllers are known to write it.
        return not strict
    return observed >= generation


def _assess_deployment(obj: dict[str, Any]) -> Verdict:
    progressing = _condition(obj, "Progressing")
    if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
        return State.FAILED, "progress deadline exceeded"
    replica_failure = _true_condition(obj, "ReplicaFailure")
    if replica_failure:
        # The ReplicaSet cannot create pods at all (quota, admission): nothing will start.
        return State.FAILED, _condition_text(replica_failure, "replica failure")
    replicas = _spec_replicas(obj)
    updated = _status_int(obj, "updatedReplicas")
    total = _status_int(obj, "replicas")
    available = _status_int(obj, "availableReplicas")
    ready = _status_int(obj, "readyReplicas")
    if updated < replicas:
        return State.IN_PROGRESS, f"{updated}/{replicas} replicas updated"
    if total > updated:
        old = total - updated
        return State.IN_PROGRESS, f"waiting for {_count(old, 'old replica')} to terminate"
    if available < replicas:
        return State.IN_PROGRESS, f"{available}/{replicas} replicas available"
    if ready < replicas:
        return State.IN_PROGRESS, f"{ready}/{replicas} replicas ready"
    return State.CURRENT, f"{_count(replicas, 'replica')} available"


def _assess_statefulset(obj: dict[str, Any]) -> Verdict:
    replicas = _spec_replicas(obj)
    ready = _status_int(obj, "readyReplicas")
    if ready < replicas:
        return State.IN_PROGRESS, f"{ready}/{replicas} replicas ready"
    # The API server defaults the strategy to RollingUpdate; a missing one means the same.
    strategy = _get(obj, "spec", "updateStrategy", "type") or "RollingUpdate"
    if strategy == "RollingUpdate":
        # With a partition only the pods at or above it are updated: that is the whole rollout.
        partition = _as_int(_get(obj, "spec", "updateStrategy", "rollingUpdate", "partition"))
        wanted = max(replicas - partition, 0)
        updated = _status_int(obj, "updatedReplicas")
        if updated < wanted:
            return State.IN_PROGRESS, f"{updated}/{wanted} replicas updated"
        current_revision = _get(obj, "status", "currentRevision")
        update_revision = _get(obj, "status", "updateRevision")
        if partition <= 0 and current_revision and update_revision and current_revision != update_revision:
            return State.IN_PROGRESS, f"rolling update to revision {update_revision} in progress"
    else:
        # OnDelete: pods change only when someone deletes them, so the current ones are the rollout.
        current = _status_int(obj, "currentReplicas")
        if current < replicas:
            return State.IN_PROGRESS, f"{current}/{replicas} replicas current"
    available = _get(obj, "status", "availableReplicas")
    if available is not None and _as_int(available) < replicas:
        return State.IN_PROGRESS, f"{_as_int(available)}/{replicas} replicas available"
    return State.CURRENT, f"{_count(replicas, 'replica')} ready"


def _assess_daemonset(obj: dict[str, Any]) -> Verdict:
    desired = _get(obj, "status", "desiredNumberScheduled")
    if not _is_int(desired):
        return State.IN_PROGRESS, "waiting for the controller to schedule pods"
    if desired <= 0:
        return State.CURRENT, "no nodes to run on"
    updated = _status_int(obj, "updatedNumberScheduled")
    available = _status_int(obj, "numberAvailable")
    ready = _status_int(obj, "numberReady")
    if updated < desired:
        return State.IN_PROGRESS, f"{updated}/{desired} pods updated"
    if available < desired:
        return State.IN_PROGRESS, f"{available}/{desired} pods available"
    if ready < desired:
        return State.IN_PROGRESS, f"{ready}/{desired} pods ready"
    return State.CURRENT, f"{_count(desired, 'pod')} available"


def _assess_replicaset(obj: dict[str, Any]) -> Verdict:
    replica_failure = _true_condition(obj, "ReplicaFailure")
    if replica_failure:
        return State.FAILED, _condition_text(replica_failure, "replica failure")
    replicas = _spec_replicas(obj)
    available = _status_int(obj, "availableReplicas")
    ready = _status_int(obj, "readyReplicas")
    if available < replicas:
        return State.IN_PROGRESS, f"{available}/{replicas} replicas available"
    if ready < replicas:
        return State.IN_PROGRESS, f"{ready}/{replicas} replicas ready"
    return State.CURRENT, f"{_count(replicas, 'replica')} available"


def _assess_job(obj: dict[str, Any]) -> Verdict:
    if _true_condition(obj, "Complete"):
        return State.CURRENT, "complete"
    # FailureTarget comes before Failed (Kubernetes 1.31+) while the last pods terminate.
    failed = _true_condition(obj, "Failed") or _true_condition(obj, "FailureTarget")
    if failed:
        details = [part for part in (_text(failed.get("reason")), _text(failed.get("message"))) if part]
        return State.FAILED, ": ".join(["job failed", *details])
    if _true_condition(obj, "Suspended"):
        return State.CURRENT, "suspended"  # suspended on purpose: nothing is expected to run
    active = _status_int(obj, "active")
    succeeded = _status_int(obj, "succeeded")
    failed_pods = _status_int(obj, "failed")
    message = f"{active} active, {succeeded} succeeded"
    return State.IN_PROGRESS, f"{message}, {failed_pods} failed" if failed_pods else message


def _assess_pod(obj: dict[str, Any]) -> Verdict:
    phase = _get(obj, "status", "phase")
    if phase == "Succeeded":
        return State.CURRENT, "succeeded"
    if phase == "Failed":
        reason = _text(_get(obj, "status", "reason")) or "failed"
        message = _text(_get(obj, "status", "message"))
        return State.FAILED, f"{reason}: {message}" if message else reason
    if phase == "Running":
        if _true_condition(obj, "Ready"):
            return State.CURRENT, "ready"
        return State.IN_PROGRESS, _not_ready_detail(obj)
    unscheduled = _unschedulable_detail(obj)
    return State.IN_PROGRESS, f"pending: {unscheduled}" if unscheduled else "pending"


def _assess_pvc(obj: dict[str, Any]) -> Verdict:
    phase = _text(_get(obj, "status", "phase"))
    if phase == "Bound":
        return State.CURRENT, "bound"
    if phase == "Lost":
        return State.FAILED, "lost: its volume no longer exists"
    return State.IN_PROGRESS, phase or "Pending"


def _assess_custom(obj: dict[str, Any]) -> Verdict:
    stalled = _true_condition(obj, "Stalled")
    ready = _condition(obj, "Ready")
    if ready is not None:
        generation = _get(obj, "metadata", "generation")
        observed = ready.get("observedGeneration")
        if _is_int(generation) and _is_int(observed) and observed < generation:
            # Flux-style resources record the generation per condition: this Ready is stale.
            return State.IN_PROGRESS, "update not yet observed"
        status = ready.get("status")
        if status == "True":
            return State.CURRENT, "ready"
        reason = _text(ready.get("reason"))
        if status == "False" and (stalled or re.search("fail|error", reason, re.IGNORECASE)):
            return State.FAILED, _condition_text(stalled or ready, "not ready")
        return State.IN_PROGRESS, _condition_text(ready, "not ready")
    if stalled:
        return State.FAILED, _condition_text(stalled, "stalled")
    reconciling = _true_condition(obj, "Reconciling")
    if reconciling:
        return State.IN_PROGRESS, _condition_text(reconciling, "reconciling")
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


# ---------------------------------------------------------------------------
# Pods


def pod_failure(pod: dict[str, Any]) -> str | None:
    """`pod <name> <Reason>, <n> restarts: <message>` if a container keeps failing, else None."""
    failure = _container_failure(pod)
    if failure is None:
        return None
    return f"pod {_name(pod)} {failure}"


def _container_failure(pod: dict[str, Any]) -> str | None:
    # Init containers first: while one of them fails, the app containers never start.
    for field_name in ("initContainerStatuses", "containerStatuses"):
        statuses = _get(pod, "status", field_name)
        for container in statuses if isinstance(statuses, list) else []:
            waiting = _get(container, "state", "waiting")
            reason = _text(_get(waiting, "reason"))
            if reason not in _FAILING_WAITING_REASONS:
                continue
            restarts = _as_int(_get(container, "restartCount"))
            text = f"{reason}, {_count(restarts, 'restart')}" if restarts > 0 else reason
            message = _text(_get(waiting, "message"))
            return f"{text}: {message}" if message else text
    return None


def _owned_pods(obj: dict[str, Any], key: ObjectKey, pods: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The live pods the workload's selector picks (for a Job also its job-name label), by name."""
    selector = _get(obj, "spec", "selector")
    is_job = (key.group, key.kind) == _JOB
    owned = []
    for pod in pods:
        if not isinstance(pod, dict) or _get(pod, "metadata", "deletionTimestamp"):
            continue  # a pod on its way out says nothing about the new spec
        namespace = _get(pod, "metadata", "namespace")
        if namespace and key.namespace and namespace != key.namespace:
            continue
        labels = _get(pod, "metadata", "labels")
        labels = labels if isinstance(labels, dict) else {}
        by_job_name = is_job and any(labels.get(label) == key.name for label in _JOB_NAME_LABELS)
        if by_job_name or _selector_matches(selector, labels):
            owned.append(pod)
    return sorted(owned, key=_name)  # sorted so that "the first failing pod" is deterministic


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


def _waiting_pod_hint(pods: list[dict[str, Any]]) -> str | None:
    """Why a workload is stuck, from its pods: the first Running-but-not-Ready pod, else the
    first unschedulable one. This is what a health timeout ends up showing."""
    for pod in pods:
        if _get(pod, "status", "phase") == "Running" and not _true_condition(pod, "Ready"):
            return f"pod {_name(pod)} {_not_ready_detail(pod)}"
    for pod in pods:
        if _get(pod, "status", "phase") == "Pending":
            unscheduled = _unschedulable_detail(pod)
            if unscheduled:
                return f"pod {_name(pod)} {unscheduled}"
    return None


def _not_ready_detail(pod: dict[str, Any]) -> str:
    ready = _condition(pod, "Ready") or {}
    reason, message = _text(ready.get("reason")), _text(ready.get("message"))
    if reason:
        return f"{reason}: {message}" if message else reason
    return f"not ready: {message}" if message else "not ready"


def _unschedulable_detail(pod: dict[str, Any]) -> str | None:
    scheduled = _condition(pod, "PodScheduled")
    if scheduled is None or scheduled.get("status") != "False":
        return None
    return _condition_text(scheduled, "unschedulable", with_reason=True)


# ---------------------------------------------------------------------------
# Small helpers over JSON dicts


def _get(obj: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_int(value: Any) -> int:
    # Counters the controller has not written yet are absent: they count as zero.
    return value if _is_int(value) else 0


def _status_int(obj: dict[str, Any], field_name: str) -> int:
    return _as_int(_get(obj, "status", field_name))


def _spec_replicas(obj: dict[str, Any]) -> int:
    replicas = _get(obj, "spec", "replicas")
    return replicas if _is_int(replicas) else 1  # the API server's default


def _condition(obj: dict[str, Any], condition_type: str) -> dict[str, Any] | None:
    conditions = _get(obj, "status", "conditions")
    for condition in conditions if isinstance(conditions, list) else []:
        if isinstance(condition, dict) and condition.get("type") == condition_type:
            return condition
    return None


def _true_condition(obj: dict[str, Any], condition_type: str) -> dict[str, Any] | None:
    condition = _condition(obj, condition_type)
    return condition if condition is not None and condition.get("status") == "True" else None


def _condition_text(condition: dict[str, Any], default: str, with_reason: bool = False) -> str:
    reason, message = _text(condition.get("reason")), _text(condition.get("message"))
    if with_reason and reason and message:
        return f"{reason}: {message}"
    return message or reason or default


def _text(value: Any) -> str:
    # Messages from controllers may span lines; ours are one line.
    return _one_line(value) if isinstance(value, str) else ""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _name(obj: dict[str, Any]) -> str:
    name = _get(obj, "metadata", "name")
    return name if isinstance(name, str) else ""


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
