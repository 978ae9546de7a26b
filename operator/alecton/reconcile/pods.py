"""What the pods of a workload say about it: a container that keeps failing, a pod that is
not Ready or cannot be scheduled. Pods are plain JSON dicts as the API server returns them.
"""

from __future__ import annotations

from typing import Any

from alecton.reconcile.fields import (
    as_int,
    condition_text,
    counted,
    find_condition,
    get_path,
    name_of,
    text_of,
    true_condition,
)

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


def pod_failure(pod: dict[str, Any]) -> str | None:
    """`pod <name> <Reason>, <n> restarts: <message>` if a container keeps failing, else None."""
    failure = container_failure(pod)
    if failure is None:
        return None
    return f"pod {name_of(pod)} {failure}"


def container_failure(pod: dict[str, Any]) -> str | None:
    # Init containers first: while one of them fails, the app containers never start.
    for field_name in ("initContainerStatuses", "containerStatuses"):
        statuses = get_path(pod, "status", field_name)
        for container in statuses if isinstance(statuses, list) else []:
            waiting = get_path(container, "state", "waiting")
            reason = text_of(get_path(waiting, "reason"))
            if reason not in _FAILING_WAITING_REASONS:
                continue
            restarts = as_int(get_path(container, "restartCount"))
            text = f"{reason}, {counted(restarts, 'restart')}" if restarts > 0 else reason
            message = text_of(get_path(waiting, "message"))
            return f"{text}: {message}" if message else text
    return None


def waiting_pod_hint(pods: list[dict[str, Any]]) -> str | None:
    """Why a workload is stuck, from its pods: the first Running-but-not-Ready pod, else the
    first unschedulable one. This is what a health timeout ends up showing."""
    for pod in pods:
        if get_path(pod, "status", "phase") == "Running" and not true_condition(pod, "Ready"):
            return f"pod {name_of(pod)} {not_ready_detail(pod)}"
    for pod in pods:
        if get_path(pod, "status", "phase") == "Pending":
            unscheduled = unschedulable_detail(pod)
            if unscheduled:
                return f"pod {name_of(pod)} {unscheduled}"
    return None


def not_ready_detail(pod: dict[str, Any]) -> str:
    ready = find_condition(pod, "Ready") or {}
    reason, message = text_of(ready.get("reason")), text_of(ready.get("message"))
    if reason:
        return f"{reason}: {message}" if message else reason
    return f"not ready: {message}" if message else "not ready"


def unschedulable_detail(pod: dict[str, Any]) -> str | None:
    scheduled = find_condition(pod, "PodScheduled")
    if scheduled is None or scheduled.get("status") != "False":
        return None
    return condition_text(scheduled, "unschedulable", with_reason=True)
