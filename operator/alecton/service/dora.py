"""DORA figures from the audit trail: the ReleaseRecords of a namespace, read with the
caller's own credentials (RBAC decides who sees which namespace's records), through the
pure `reconcile.dora`. Shared by `alecton dora` and the HTTP API's /v1/dora."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio import client as k8s

from alecton.api.models import GROUP, VERSION
from alecton.kube.client import ApiException, KubeClient
from alecton.reconcile.dora import Figures, Record, dora_figures, period_seconds, rfc3339
from alecton.service.errors import InvalidRequestError, NotFoundError
from alecton.service.resources import label_value

RELEASE_RECORDS = "releaserecords"  # kind ReleaseRecord (the audit trail)
APPLICATION_LABEL = f"{GROUP}/application"
TARGET_LABEL = f"{GROUP}/target"
PAGE = 500  # records per list request: a namespace with years of history is read in pages


@dataclass(frozen=True)
class DoraReport:
    namespace: str
    since: float
    until: float
    records: int  # ReleaseRecords read
    figures: list[Figures]

    def as_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "since": rfc3339(self.since),
            "until": rfc3339(self.until),
            "records": self.records,
            "figures": [figure.as_dict() for figure in self.figures],
        }


def selector(application: str | None, target: str | None) -> str:
    parts = []
    if application:
        parts.append(f"{APPLICATION_LABEL}={label_value(application)}")
    if target:
        parts.append(f"{TARGET_LABEL}={label_value(target)}")
    return ",".join(parts)


async def release_record_specs(
    client: KubeClient, namespace: str, label_selector: str
) -> list[dict[str, Any]]:
    """Every ReleaseRecord spec of the namespace that the selector picks, page by page."""
    api = k8s.CustomObjectsApi(client.api)
    specs: list[dict[str, Any]] = []
    token = ""
    while True:
        kwargs: dict[str, Any] = {"limit": PAGE, "_request_timeout": client.timeout}
        if label_selector:
            kwargs["label_selector"] = label_selector
        if token:
            kwargs["_continue"] = token
        try:
            page = await api.list_namespaced_custom_object(
                GROUP, VERSION, namespace, RELEASE_RECORDS, **kwargs
            )
        except ApiException as error:
            if error.status == 404:
                raise NotFoundError(
                    "no ReleaseRecords to read: the ReleaseRecord CRD (the audit trail) is not installed"
                ) from None
            raise
        specs += [dict(item.get("spec") or {}) for item in page.get("items") or []]
        token = str((page.get("metadata") or {}).get("continue") or "")
        if not token:
            return specs


async def dora_report(
    client: KubeClient,
    namespace: str,
    application: str | None = None,
    target: str | None = None,
    since: str = "30d",
    now: float | None = None,
) -> DoraReport:
    """The figures of each (application, target) of `namespace` over the last `since`."""
    try:
        period = period_seconds(since)
    except ValueError as error:
        raise InvalidRequestError(str(error)) from None
    until = time.time() if now is None else now
    specs = await release_record_specs(client, namespace, selector(application, target))
    records = [record for spec in specs if (record := Record.from_spec(spec)) is not None]
    # The label selects; the spec decides (a record whose labels and spec disagree counts by its spec).
    records = [
        r for r in records
        if r.news.namespace == namespace
        and (not application or r.news.application == application)
        and (not target or r.news.target == target)
    ]  # fmt: skip
    return DoraReport(
        namespace, until - period, until, len(records), dora_figures(records, until - period, until)
    )
