"""The audit trail as people and programs read it: the ReleaseRecords of one application
and target, newest first (`alecton history`, `GET /v1/history/{application}/{target}`).

Records are read with the caller's identity (tenants hold get/list on releaserecords, never
a write) and need no Deployment: they outlive it."""

from __future__ import annotations

from typing import Any

from alecton.kube.client import KubeClient
from alecton.reconcile.audit import RECORD_KIND, record_labels, records_of

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


async def release_records(
    client: KubeClient, namespace: str, application: str, target: str, limit: int = DEFAULT_LIMIT
) -> list[dict[str, Any]]:
    """The records of APPLICATION on TARGET, newest first, at most `limit` (1..MAX_LIMIT);
    each the record's spec (News.as_dict() with the Image's source) and its `name`."""
    selector = ",".join(f"{key}={value}" for key, value in record_labels(application, target).items())
    found = await client.list(RECORD_KIND, namespace, label_selector=selector)
    return records_of(found, application, target, max(1, min(limit, MAX_LIMIT)))


def record_row(record: dict[str, Any]) -> dict[str, str]:
    """The columns a table shows of one record: time, event, version, revision, commit,
    cause, who, result (the reason and message)."""
    source = record.get("source") or {}
    result = " ".join(
        part for part in (str(record.get("reason") or ""), str(record.get("message") or "")) if part
    )
    return {
        "time": str(record.get("time") or ""),
        "event": str(record.get("kind") or ""),
        "version": str(record.get("version") or ""),
        "revision": str(record.get("revision") or ""),
        "commit": str(source.get("revision") or "")[:7],
        "cause": str(record.get("cause") or ""),
        "by": str(record.get("requestedBy") or ""),
        "result": result,
    }
