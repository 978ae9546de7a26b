"""The audit trail's pure parts: one News as a ReleaseRecord and as an audit log line, which
records the retention removes, how long a failed write waits, and how records read back.

A ReleaseRecord is one News (`News.as_dict()`) plus where the version's code came from (the
Image's `source`) and when its Image was recorded. It has no owner, so it outlives the
Deployment's bounded status history and the Deployment itself. Pure.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from alecton.api.models import API_VERSION, GROUP, Image
from alecton.reconcile.news import News

RECORD_KIND = "ReleaseRecord"
APPLICATION_LABEL = f"{GROUP}/application"
TARGET_LABEL = f"{GROUP}/target"
DEPLOYMENT_LABEL = f"{GROUP}/deployment"
KIND_LABEL = f"{GROUP}/kind"

_NAME_MAX = 253
_KEY_PART = 16  # characters of News.key in the record's name
_MESSAGE_MAX = 4096  # the CRD's bound on spec.message
_EXTRA_MAX = 1024
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def label_value(text: str) -> str:
    """`text` as a label value: itself when it is one, else a readable prefix and a hash
    (distinct texts stay distinct; readers filter on the spec anyway)."""
    if len(text) <= 63 and _LABEL_VALUE.match(text):
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    prefix = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:54].strip("-_.")
    return f"{prefix}-{digest}" if prefix else digest


def record_name(news: News) -> str:
    """`<deployment>-<news.key[:16]>`: the same transition always has the same name, so a
    second write of it is a 409 (deduplication by the API server)."""
    key = news.key[:_KEY_PART]
    head = news.deployment[: _NAME_MAX - len(key) - 1].rstrip("-.")
    return f"{head}-{key}"


def record_labels(application: str, target: str, deployment: str = "", kind: str = "") -> dict[str, str]:
    """The labels records carry; the set ones also select them."""
    labels = {
        APPLICATION_LABEL: application,
        TARGET_LABEL: target,
        DEPLOYMENT_LABEL: deployment,
        KIND_LABEL: kind,
    }
    return {key: label_value(value) for key, value in labels.items() if value}


def record_spec(news: News, image: Image | None) -> dict[str, Any]:
    """News.as_dict() (message and extra within the CRD's bounds), the Image's source and
    when the Image was recorded. The Image must be the one the News's version names."""
    spec = news.as_dict()
    if len(spec.get("message", "")) > _MESSAGE_MAX:
        spec["message"] = spec["message"][: _MESSAGE_MAX - 1] + "…"
    if "extra" in spec:
        spec["extra"] = {k: v[:_EXTRA_MAX] for k, v in list(spec["extra"].items())[:32]}
    if image is not None:
        if image.source is not None:
            spec["source"] = image.source.as_dict()
        if image.created:
            spec["imageCreatedAt"] = image.created
    return spec


def record_body(news: News, image: Image | None) -> dict[str, Any]:
    """The ReleaseRecord of one News. No ownerReferences: it must outlive the Deployment."""
    return {
        "apiVersion": API_VERSION,
        "kind": RECORD_KIND,
        "metadata": {
            "name": record_name(news),
            "namespace": news.namespace,
            "labels": record_labels(news.application, news.target, news.deployment, str(news.kind)),
        },
        "spec": record_spec(news, image),
    }


def audit_line(news: News, image: Image | None) -> str:
    """One News as one JSON line for the log pipeline (no newline inside)."""
    return json.dumps(record_spec(news, image), separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def retry_delay(attempt: int, base: float = 1.0, cap: float = 60.0) -> float:
    """Seconds before write attempt `attempt + 1` (attempt counts from 0): doubling, capped."""
    return min(cap, base * (2 ** min(attempt, 32)))


def _parse_time(text: str) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def expired(
    records: Iterable[Mapping[str, Any]], now: dt.datetime, retention_days: float, limit: int
) -> list[tuple[str, str]]:
    """(namespace, name) of at most `limit` records created more than `retention_days` ago,
    oldest first. The API server's creationTimestamp decides, not the spec."""
    cutoff = now - dt.timedelta(days=retention_days)
    old: list[tuple[dt.datetime, str, str]] = []
    for record in records:
        meta = record.get("metadata") or {}
        created = _parse_time(str(meta.get("creationTimestamp") or ""))
        if created is not None and created < cutoff and meta.get("name"):
            old.append((created, str(meta.get("namespace") or ""), str(meta["name"])))
    return [(namespace, name) for _, namespace, name in sorted(old)[: max(0, limit)]]


def _spec(record: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = record.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def records_of(
    records: Iterable[Mapping[str, Any]], application: str, target: str, limit: int
) -> list[dict[str, Any]]:
    """The records of one application and target (exactly: labels may be hashed), newest
    first (time, then revision), at most `limit`; each the record's spec with its name."""
    found: list[dict[str, Any]] = []
    for record in records:
        spec = _spec(record)
        if spec.get("application") == application and spec.get("target") == target:
            found.append({"name": str((record.get("metadata") or {}).get("name") or ""), **spec})
    found.sort(key=lambda r: (str(r.get("time") or ""), int(r.get("revision") or 0)), reverse=True)
    return found[: max(0, limit)]
