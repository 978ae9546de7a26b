"""Small helpers over Kubernetes objects as JSON dicts, for the health assessment."""

from __future__ import annotations

from typing import Any


def get_path(obj: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def as_int(value: Any) -> int:
    # Counters the controller has not written yet are absent: they count as zero.
    return value if is_int(value) else 0


def status_int(obj: dict[str, Any], field_name: str) -> int:
    return as_int(get_path(obj, "status", field_name))


def spec_replicas(obj: dict[str, Any]) -> int:
    replicas = get_path(obj, "spec", "replicas")
    return replicas if is_int(replicas) else 1  # the API server's default


def find_condition(obj: dict[str, Any], condition_type: str) -> dict[str, Any] | None:
    conditions = get_path(obj, "status", "conditions")
    for condition in conditions if isinstance(conditions, list) else []:
        if isinstance(condition, dict) and condition.get("type") == condition_type:
            return condition
    return None


def true_condition(obj: dict[str, Any], condition_type: str) -> dict[str, Any] | None:
    condition = find_condition(obj, condition_type)
    return condition if condition is not None and condition.get("status") == "True" else None


def condition_text(condition: dict[str, Any], default: str, with_reason: bool = False) -> str:
    reason, message = text_of(condition.get("reason")), text_of(condition.get("message"))
    if with_reason and reason and message:
        return f"{reason}: {message}"
    return message or reason or default


def text_of(value: Any) -> str:
    # Messages from controllers may span lines; ours are one line.
    return one_line(value) if isinstance(value, str) else ""


def one_line(text: str) -> str:
    return " ".join(text.split())


def name_of(obj: dict[str, Any]) -> str:
    name = get_path(obj, "metadata", "name")
    return name if isinstance(name, str) else ""


def counted(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
