"""Deploy freezes for people: start, end and list them, and refuse a manual deploy that a
freeze holds (unless the caller gives an override reason) before anything is written.

The operator holds a frozen change anyway (reconcile.decide); refusing up front is what
tells the person at once, with the freeze's name and reason. What is frozen is decided by
`reconcile.freeze`, the same code the operator runs.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from alecton.api.durations import parse_duration
from alecton.api.models import API_VERSION
from alecton.kube.client import ApiException, KubeClient
from alecton.reconcile.freeze import (
    CLUSTER_FREEZE,
    FREEZE,
    ActiveFreeze,
    DeploymentFacts,
    Freeze,
    active_freezes,
    cluster_context,
    freeze_status,
    frozen_message,
    parse_instant,
    reaches_namespace,
    rfc3339,
)
from alecton.service.errors import ConflictError, InvalidRequestError, NotFoundError

_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
MAX_OVERRIDE_REASON = 256


class FrozenError(ConflictError):
    """A freeze refuses the change; the message names it, its reason and how to override
    (CLI exit 6, HTTP 423)."""


def override_text(reason: str | None) -> str:
    """A given override reason, checked: "" when none was given; an empty one is refused
    (an override must say why, for the audit trail)."""
    if reason is None:
        return ""
    text = " ".join(reason.split())
    if not text:
        raise InvalidRequestError("--override-freeze: give a reason (who asked, which incident)")
    if len(text) > MAX_OVERRIDE_REASON:
        raise InvalidRequestError(f"--override-freeze: at most {MAX_OVERRIDE_REASON} characters")
    return text


async def freeze_objects(client: KubeClient, namespace: str) -> list[dict[str, Any]]:
    """The namespace's Freezes and the ClusterFreezes the caller may read."""
    found = await client.list(FREEZE, namespace)
    try:
        found += await client.list(CLUSTER_FREEZE, None)
    except ApiException as error:
        # Reading platform freezes is granted to everyone signed in by the shipped roles; a
        # platform that removed it still has the operator hold the change.
        if error.status not in (403, 404):
            raise
    return found


def parsed(objects: list[dict[str, Any]]) -> list[Freeze]:
    freezes = []
    for obj in objects:
        try:
            freezes.append(Freeze.parse(obj))
        except ValueError:
            continue  # its status says why; it freezes nothing
    return freezes


async def freezes_of(
    client: KubeClient, namespace: str, application: str, target: str, now: float | None = None
) -> list[ActiveFreeze]:
    """The freezes that apply to deploying `application` to `target` now."""
    cluster, context = "", ""
    try:
        app = await client.get("Application", namespace, application)
        for entry in (app.get("spec") or {}).get("targets") or []:
            if isinstance(entry, dict) and entry.get("name") == target:
                cluster = str(entry.get("cluster") or "")
        if cluster:
            spec = (await client.get("Cluster", namespace, cluster)).get("spec") or {}
            context = cluster_context(str(spec.get("context") or ""), bool(spec.get("kubeconfigSecretRef")))
    except ApiException as error:
        if error.status != 404:
            raise
    facts = DeploymentFacts(namespace, application, target, cluster, context)
    moment = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return active_freezes(parsed(await freeze_objects(client, namespace)), facts, moment)


async def refuse_if_frozen(
    client: KubeClient, namespace: str, application: str, target: str, version: str
) -> None:
    active = await freezes_of(client, namespace, application, target)
    if active:
        raise FrozenError(frozen_message(active, f"deploying {application} {version} to {target}"))


async def start_freeze(
    client: KubeClient,
    namespace: str,
    name: str,
    reason: str,
    *,
    cluster_wide: bool = False,
    duration: str | None = None,
    until: str | None = None,
    applications: list[str] | None = None,
    targets: list[str] | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Create a Freeze in `namespace` (or a ClusterFreeze), active at once, until `until`,
    for `duration` or until it is ended."""
    if not _NAME.fullmatch(name) or len(name) > 253:
        raise InvalidRequestError(f"freeze name {name!r}: lowercase letters, digits and '-'")
    if duration and until:
        raise InvalidRequestError("give --for or --until, not both")
    spec: dict[str, Any] = {"reason": " ".join(reason.split())}
    if not spec["reason"]:
        raise InvalidRequestError("--reason: say why deploys are frozen")
    start = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    try:
        if duration:
            spec["until"] = rfc3339(start + timedelta(seconds=parse_duration(duration, field="--for")))
        elif until:
            spec["until"] = rfc3339(parse_instant(until, "--until"))
    except ValueError as error:
        raise InvalidRequestError(str(error)) from None
    if applications:
        spec["applications"] = list(applications)
    if targets:
        spec["targets"] = list(targets)
    kind = CLUSTER_FREEZE if cluster_wide else FREEZE
    body = {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": spec}
    try:
        Freeze.parse({**body, "metadata": {"name": name, "namespace": namespace}})
    except ValueError as error:
        raise InvalidRequestError(str(error)) from None
    try:
        return await client.create(kind, "" if cluster_wide else namespace, body)
    except ApiException as error:
        if error.status == 409:
            where = "cluster-wide" if cluster_wide else f"in namespace {namespace!r}"
            raise ConflictError(f"{kind} {name!r} already exists {where}; end it first") from None
        raise


async def end_freeze(client: KubeClient, namespace: str, name: str, *, cluster_wide: bool = False) -> None:
    """End a freeze by deleting it: held changes are released at once."""
    kind = CLUSTER_FREEZE if cluster_wide else FREEZE
    try:
        await client.delete(kind, "" if cluster_wide else namespace, name)
    except ApiException as error:
        if error.status == 404:
            where = "" if cluster_wide else f" in namespace {namespace!r}"
            raise NotFoundError(f"no {kind} {name!r}{where}") from None
        raise


async def freeze_rows(client: KubeClient, namespace: str, now: float | None = None) -> list[dict[str, Any]]:
    """The freezes that may apply in `namespace`, active first: what, why, until when, what it
    selects (a ClusterFreeze scoped to other namespaces is left out)."""
    moment = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    objects = [obj for obj in await freeze_objects(client, namespace) if reaches_namespace(obj, namespace)]
    rows = [row_of(obj, moment) for obj in objects]
    return sorted(rows, key=lambda r: (not r["active"], r["kind"] != CLUSTER_FREEZE, r["name"]))


def row_of(obj: dict[str, Any], moment: datetime) -> dict[str, Any]:
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    row: dict[str, Any] = {
        "kind": str(obj.get("kind") or FREEZE),
        "name": str(meta.get("name") or ""),
        "namespace": str(meta.get("namespace") or ""),
        "reason": str(spec.get("reason") or ""),
        "applications": list(spec.get("applications") or []),
        "targets": list(spec.get("targets") or []),
        "clusters": list(spec.get("clusters") or []),
    }
    if row["kind"] == CLUSTER_FREEZE:
        row["namespaces"] = list(spec.get("namespaces") or [])
    try:
        status = freeze_status(Freeze.parse(obj), moment)
    except ValueError as error:
        status = {"active": False, "activeUntil": None, "nextStart": None, "message": f"invalid: {error}"}
    return {**row, **status}
