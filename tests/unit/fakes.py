"""Fakes of the I/O the actions (`alecton.handlers.actions`) do, and builders of what they act on.

Each fake has the same method signatures as the real one (tests/unit/test_fakes.py checks
it), keeps what it was asked in plain lists and dicts, and can be told to fail the way the
real one fails: `FakeHelm` with a `HelmActionError` around a real `HelmResult` (a release
locked by a killed helm included), `FakeKube` with an `ApiException`, `FakeStorage` with a
`ReleaseLookupError`, `FakeMonitor` with a `TrackError`. Everything else an action uses is
real: `Slots`, `Metrics`, `OperatorConfig` (whose grants let `cluster_access` yield without
any I/O), the plan, the history, the redactor.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from alecton.api.models import Application, Cluster, Deployment, Image, ObjectRef
from alecton.handlers.actions.context import ActionContext, Request
from alecton.handlers.config import OperatorConfig
from alecton.handlers.health_monitor import TrackError
from alecton.handlers.indexes import DeploymentSnapshot
from alecton.handlers.slots import Slots
from alecton.helm.actions import HelmActionError
from alecton.helm.runner import HelmResult
from alecton.kube.access import KubeAccess
from alecton.kube.client import ApiException
from alecton.kube.releases import ReleaseLookupError, StoredRelease
from alecton.metrics import Metrics
from alecton.reconcile.access import ContextPolicy
from alecton.reconcile.chart import ChartPolicy, ChartSource
from alecton.reconcile.decide import DriftSeen, HealthSeen, Observed, PromotionSeen, Step
from alecton.reconcile.health import ReleaseHealth
from alecton.reconcile.plan import (
    Plan,
    RecordedStatus,
    ReleaseLocation,
    Resolved,
    ValuesSources,
    plan_release,
)
from alecton.reconcile.release import HistoryEntry, ReleaseInfo

T = TypeVar("T")

NS = "team"  # the tenant namespace
CONTEXT = "alecton-b"  # the context Cluster "b" names
OLD_CONTEXT = "alecton-old"  # the context Cluster "old" names (where a moved release was)
RELEASE_NAMESPACE = "apps"  # the target's namespace
RELEASE = "web-staging"  # release name of application web, target staging
REF = ObjectRef(NS, RELEASE)
CHARTS = ChartPolicy(Path(__file__).resolve().parents[2] / "charts")
LONG_AGO = "2020-01-01T00:00:00Z"

# What helm prints for a release whose last revision is pending-* (HelmActionError.release_locked).
LOCKED_STDERR = "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress\n"


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """The unit tests run coroutines with asyncio.run (no pytest plugin)."""
    return asyncio.run(coroutine)


# ----- helm ---------------------------------------------------------------------------------------


def helm_error(action: str, stderr: str, returncode: int = 1) -> HelmActionError:
    """The error HelmActions raises when helm exits non-zero with `stderr`."""
    return HelmActionError(action, HelmResult((action.split()[0],), returncode, "", stderr, 0.1))


class FakeHelm:
    """HelmActions' release actions, without a helm process. `calls` records each as
    (action, release, namespace, kube context[, revision]); `upgrades` the rest of each
    upgrade's arguments."""

    def __init__(self, history_max: int = 10) -> None:
        self.history_max = history_max
        self.calls: list[tuple[Any, ...]] = []
        self.upgrades: list[dict[str, Any]] = []
        self.errors: dict[str, list[HelmActionError]] = {}
        # What `history` answers, in order; the last answer repeats.
        self.histories: list[list[HistoryEntry]] = []
        self.revision = 1  # the revision the next successful upgrade makes
        self.removed = True  # what a successful uninstall answers (False: there was no release)
        self.deployed_at = "2026-03-01T12:00:00.123456789Z"

    def fail(self, action: str, stderr: str, times: int = 1, returncode: int = 1) -> None:
        """The next `times` calls of `action` fail with helm's `stderr`."""
        self.errors.setdefault(action, []).extend(
            helm_error(action, stderr, returncode) for _ in range(times)
        )

    def actions(self) -> list[str]:
        return [call[0] for call in self.calls]

    def _maybe_fail(self, action: str) -> None:
        pending = self.errors.get(action)
        if pending:
            raise pending.pop(0)

    async def upgrade(
        self,
        release: str,
        namespace: str,
        chart: ChartSource,
        values: dict[str, Any],
        kube: KubeAccess,
        description: str,
        labels: dict[str, str],
    ) -> ReleaseInfo:
        self.calls.append(("upgrade", release, namespace, kube.context))
        self.upgrades.append(
            {"chart": chart, "values": values, "description": description, "labels": labels, "kube": kube}
        )
        self._maybe_fail("upgrade")
        revision, self.revision = self.revision, self.revision + 1
        return ReleaseInfo(
            release, namespace, revision, "deployed", "webapp-0.1.0", "1.16.0", self.deployed_at, description
        )

    async def rollback(self, release: str, namespace: str, revision: int, kube: KubeAccess) -> None:
        self.calls.append(("rollback", release, namespace, kube.context, revision))
        self._maybe_fail("rollback")

    async def history(self, release: str, namespace: str, kube: KubeAccess) -> list[HistoryEntry]:
        self.calls.append(("history", release, namespace, kube.context))
        self._maybe_fail("history")
        if not self.histories:
            return []
        return list(self.histories.pop(0) if len(self.histories) > 1 else self.histories[0])

    async def uninstall(self, release: str, namespace: str, kube: KubeAccess) -> bool:
        self.calls.append(("uninstall", release, namespace, kube.context))
        self._maybe_fail("uninstall")
        return self.removed


# ----- the Kubernetes API -------------------------------------------------------------------------


def api_error(status: int, reason: str = "", message: str = "") -> ApiException:
    """An ApiException as kubernetes_asyncio raises it, with the API server's Status body."""
    error = ApiException(status=status, reason=reason)
    if message:
        error.body = json.dumps({"kind": "Status", "message": message, "code": status})
    return error


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """A JSON merge patch (RFC 7386): None removes a key."""
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


class FakeKube:
    """The KubeClient methods actions call, over objects kept in dicts. A merge patch that
    names metadata.resourceVersion applies only to that version (409 otherwise), as the API
    server does; a change of spec raises metadata.generation."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}  # (kind, namespace, name)
        self.secrets: dict[tuple[str, str], dict[str, bytes]] = {}  # (namespace, name) -> data
        self.events: list[tuple[str, str, str, str]] = []  # (object name, type, reason, message)
        self.calls: list[tuple[Any, ...]] = []
        self.errors: dict[str, list[ApiException]] = {}
        self._version = 100

    def add(self, kind: str, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        self.objects[(kind, meta["namespace"], meta["name"])] = copy.deepcopy(body)

    def object(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((kind, namespace, name))

    def fail(self, method: str, status: int, reason: str = "", message: str = "", times: int = 1) -> None:
        """The next `times` calls of `method` raise ApiException(status)."""
        self.errors.setdefault(method, []).extend(api_error(status, reason, message) for _ in range(times))

    def _maybe_fail(self, method: str) -> None:
        pending = self.errors.get(method)
        if pending:
            raise pending.pop(0)

    def _next_version(self) -> str:
        self._version += 1
        return str(self._version)

    async def patch(
        self, kind: str, namespace: str, name: str, patch: dict[str, Any], field_manager: str = ""
    ) -> dict[str, Any]:
        self.calls.append(("patch", kind, namespace, name, copy.deepcopy(patch), field_manager))
        self._maybe_fail("patch")
        current = self.objects.get((kind, namespace, name))
        if current is None:
            raise api_error(404, "Not Found", f'{kind.lower()}s "{name}" not found')
        wanted = (patch.get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != current["metadata"].get("resourceVersion"):
            raise api_error(409, "Conflict", "the object has been modified")
        changes = copy.deepcopy(patch)
        changes.get("metadata", {}).pop("resourceVersion", None)
        merged = _merge(current, changes)
        merged["metadata"]["resourceVersion"] = self._next_version()
        if merged.get("spec") != current.get("spec"):
            merged["metadata"]["generation"] = int(current["metadata"].get("generation") or 0) + 1
        self.objects[(kind, namespace, name)] = merged
        return copy.deepcopy(merged)

    async def create(self, kind: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("create", kind, namespace, copy.deepcopy(body)))
        self._maybe_fail("create")
        name = body["metadata"]["name"]
        if (kind, namespace, name) in self.objects:
            raise api_error(409, "Conflict", f'{kind.lower()}s "{name}" already exists')
        stored = copy.deepcopy(body)
        stored["metadata"].update(namespace=namespace, resourceVersion=self._next_version(), generation=1)
        self.objects[(kind, namespace, name)] = stored
        return copy.deepcopy(stored)

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        self.calls.append(("get", kind, namespace, name))
        self._maybe_fail("get")
        current = self.objects.get((kind, namespace, name))
        if current is None:
            raise api_error(404, "Not Found", f'{kind.lower()}s "{name}" not found')
        return copy.deepcopy(current)

    async def patch_status(
        self, kind: str, namespace: str, name: str, status: dict[str, Any], resource_version: str = ""
    ) -> dict[str, Any]:
        self.calls.append(("patch_status", kind, namespace, name, copy.deepcopy(status)))
        self._maybe_fail("patch_status")
        current = self.objects.get((kind, namespace, name))
        if current is None:
            raise api_error(404, "Not Found", f'{kind.lower()}s "{name}" not found')
        if resource_version and resource_version != current["metadata"].get("resourceVersion"):
            raise api_error(409, "Conflict", "the object has been modified")
        current["status"] = _merge(current.get("status") or {}, status)
        current["metadata"]["resourceVersion"] = self._next_version()
        return copy.deepcopy(current)

    async def read_secret_key(self, namespace: str, name: str, key: str) -> bytes | None:
        self.calls.append(("read_secret_key", namespace, name, key))
        self._maybe_fail("read_secret_key")
        return self.secrets.get((namespace, name), {}).get(key)

    async def read_or_create_secret_key(
        self, namespace: str, name: str, key: str, make: Callable[[], bytes]
    ) -> bytes:
        self.calls.append(("read_or_create_secret_key", namespace, name, key))
        self._maybe_fail("read_or_create_secret_key")
        data = self.secrets.get((namespace, name))
        if data is None:
            data = self.secrets[(namespace, name)] = {key: make()}
        if key not in data:
            raise LookupError(f"Secret {namespace}/{name} exists but has no key {key!r}")
        return data[key]

    async def post_event(
        self,
        involved: dict[str, Any],
        event_type: str,
        reason: str,
        message: str,
        component: str = "alecton",
    ) -> None:
        self.calls.append(("post_event", reason))
        self._maybe_fail("post_event")
        name = str((involved.get("metadata") or {}).get("name"))
        self.events.append((name, event_type, reason, message[:1024]))


# ----- helm's storage and the health monitor ------------------------------------------------------


class FakeStorage:
    """ReleaseStorage.lookup over releases kept per (kube context, namespace, release): the
    same name in the same namespace of two clusters is two releases."""

    def __init__(self) -> None:
        self.releases: dict[tuple[str, str, str], StoredRelease] = {}
        self.lookups: list[tuple[str, str, str]] = []
        self.error: ReleaseLookupError | None = None

    def put(
        self,
        owner: str | None,
        context: str = CONTEXT,
        namespace: str = RELEASE_NAMESPACE,
        release: str = RELEASE,
        status: str = "deployed",
    ) -> None:
        """A release whose newest revision names `owner` (None: one alecton did not make)."""
        self.releases[(context, namespace, release)] = StoredRelease(True, owner, status)

    async def lookup(self, access: KubeAccess, release: str, namespace: str) -> StoredRelease:
        self.lookups.append((access.context, namespace, release))
        if self.error is not None:
            raise self.error
        return self.releases.get((access.context, namespace, release), StoredRelease(False))


@dataclass
class Following:
    cluster: ObjectRef
    context: str
    release: str
    namespace: str
    revision: int


class FakeMonitor:
    """HealthMonitor's public methods: what it follows, per Deployment, with no watches."""

    def __init__(self) -> None:
        self.following: dict[ObjectRef, Following] = {}
        self.verdicts: dict[ObjectRef, ReleaseHealth] = {}
        self.track_calls: list[tuple[ObjectRef, int]] = []
        self.untracked: list[ObjectRef] = []
        self.error: TrackError | None = None
        self.listed: list[bool] = []  # per track: from the namespace's list (a restart) or read
        self.seen_verdicts: list[tuple[ObjectRef, ReleaseHealth | None]] = []

    def seen(self, ref: ObjectRef, health: ReleaseHealth | None) -> None:
        self.seen_verdicts.append((ref, health))

    def tracked(self, ref: ObjectRef, revision: int) -> bool:
        current = self.following.get(ref)
        return current is not None and current.revision == revision

    async def track(
        self,
        ref: ObjectRef,
        cluster: ObjectRef,
        access: KubeAccess,
        release: str,
        namespace: str,
        revision: int,
        listed: bool = False,
    ) -> None:
        self.track_calls.append((ref, revision))
        self.listed.append(listed)
        if self.error is not None:
            raise self.error
        self.following[ref] = Following(cluster, access.context, release, namespace, revision)

    def untrack(self, ref: ObjectRef) -> None:
        self.untracked.append(ref)
        self.following.pop(ref, None)

    def verdict(self, ref: ObjectRef) -> ReleaseHealth | None:
        return self.verdicts.get(ref) if ref in self.following else None


class Wakes:
    """ActionContext.wake: who asked to be reconciled again, after how long."""

    def __init__(self) -> None:
        self.calls: list[tuple[ObjectRef, float]] = []

    def __call__(self, ref: ObjectRef, seconds: float) -> None:
        self.calls.append((ref, seconds))


# ----- the context --------------------------------------------------------------------------------


def cluster(name: str = "b", context: str = CONTEXT) -> Cluster:
    return Cluster.parse({"metadata": {"namespace": NS, "name": name}, "spec": {"context": context}})


CLUSTER = cluster()
OLD_CLUSTER = cluster("old", OLD_CONTEXT)

# The tenant acts with the operator's own credentials on both contexts: cluster_access then
# yields a KubeAccess without reading anything.
GRANTS = (f"{NS}={CONTEXT}@operator", f"{NS}={OLD_CONTEXT}@operator")


def operator_config(grants: Iterable[str] = GRANTS, **options: Any) -> OperatorConfig:
    return OperatorConfig(context_policy=ContextPolicy.parse(grants), **options)


@dataclass
class Fakes:
    """An ActionContext of fakes, and the fakes themselves (typed as what they are)."""

    ctx: ActionContext
    helm: FakeHelm
    kube: FakeKube
    storage: FakeStorage
    monitor: FakeMonitor
    wakes: Wakes
    slots: Slots
    metrics: Metrics


def fakes(
    *,
    clusters: Iterable[Cluster] = (CLUSTER, OLD_CLUSTER),
    per_namespace: int = 1,
    config: OperatorConfig | None = None,
) -> Fakes:
    """A fresh context. Metrics makes its own CollectorRegistry per instance, so every
    context gets its own (no collision in prometheus_client's default registry)."""
    helm, kube, storage, monitor, wakes = FakeHelm(), FakeKube(), FakeStorage(), FakeMonitor(), Wakes()
    slots, metrics = Slots(per_namespace), Metrics()
    known = {(c.ref.namespace, c.ref.name): c for c in clusters}
    ctx = ActionContext(
        config=config or operator_config(),
        kube=kube,  # type: ignore[arg-type]
        helm=helm,  # type: ignore[arg-type]
        storage=storage,  # type: ignore[arg-type]
        monitor=monitor,  # type: ignore[arg-type]
        slots=slots,
        metrics=metrics,
        wake=wakes,
        cluster_named=lambda namespace, name: known.get((namespace, name)),
    )
    return Fakes(ctx, helm, kube, storage, monitor, wakes, slots, metrics)


# ----- what the actions act on --------------------------------------------------------------------


def application(targets: Iterable[dict[str, Any]] | None = None, **spec: Any) -> Application:
    """Application web (image web, the bundled chart webapp) with target staging on Cluster
    b; `spec` adds to the Application's spec (health, onFailure, healthTimeout, drift...)."""
    if targets is None:
        targets = [
            {"name": "staging", "cluster": "b", "namespace": RELEASE_NAMESPACE, "values": {"replicas": 2}}
        ]
    body = {
        "metadata": {"namespace": NS, "name": "web"},
        "spec": {
            "chart": "webapp",
            "image": "web",
            "values": {"tier": "web"},
            "targets": list(targets),
            **spec,
        },
    }
    return Application.parse(body)


APP = application()


def image(version: str = "1.0") -> Image:
    return Image.parse(
        {
            "metadata": {"namespace": NS, "name": f"web-{version}", "creationTimestamp": LONG_AGO},
            "spec": {"name": "web", "version": version, "image": f"registry.example/web:{version}"},
        }
    )


def image_for(version: str) -> str:
    """What the controller's image_for answers: the Image of a version."""
    return f"registry.example/web:{version}"


def deployment_body(
    status: dict[str, Any] | None = None,
    *,
    annotations: dict[str, str] | None = None,
    generation: int = 3,
    resource_version: str = "7",
    **spec: Any,
) -> dict[str, Any]:
    """Deployment team/web-staging as the API server returns it; `spec` adds to its spec."""
    meta: dict[str, Any] = {
        "namespace": NS,
        "name": RELEASE,
        "uid": "uid-1",
        "generation": generation,
        "resourceVersion": resource_version,
        "creationTimestamp": LONG_AGO,
        "finalizers": ["alecton.dev/helm-release"],
    }
    if annotations:
        meta["annotations"] = dict(annotations)
    for key in ("deletionTimestamp", "managedFields"):
        if key in spec:
            meta[key] = spec.pop(key)
    return {
        "apiVersion": "alecton.dev/v1alpha1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {"application": "web", "target": "staging", "version": "1.0", **spec},
        "status": status or {},
    }


def plan_of(
    body: dict[str, Any],
    app: Application = APP,
    clusters: Iterable[Cluster] = (CLUSTER,),
    sources: ValuesSources | None = None,
) -> Plan:
    """The release plan the observer would make for `body` (its Image exists)."""
    deployment = Deployment.parse(body)
    target = app.target(deployment.target)
    assert target is not None
    found = next(c for c in clusters if c.ref.name == target.cluster)
    resolved = Resolved(app, target, found, image(deployment.version))
    recorded = RecordedStatus.parse(body.get("status"))
    return plan_release(deployment, recorded, resolved, deployment.ref, CHARTS, sources)


def request(
    body: dict[str, Any],
    step: Step,
    *,
    now: float | None = None,
    promotion: PromotionSeen | None = None,
    health: HealthSeen | None = None,
    drift: DriftSeen | None = None,
) -> Request:
    """The request the controller hands an action for `step` on `body`."""
    snap = DeploymentSnapshot(body)
    observed = Observed(
        Deployment.parse(body),
        snap.status,
        time.time() if now is None else now,
        int(body["metadata"].get("generation") or 0),
        application_found=True,
        plan=step.plan,
        promotion=promotion,
        health=health or HealthSeen(),
        drift=drift or DriftSeen(),
        annotations=dict(body["metadata"].get("annotations") or {}),
    )
    return Request(snap, observed, step)


def location(cluster_: Cluster = CLUSTER, namespace: str = RELEASE_NAMESPACE) -> ReleaseLocation:
    """Where the release of team/web-staging lives on `cluster_` (as cluster_access names it)."""
    return ReleaseLocation(cluster_.ref.name, f"context:{cluster_.context}", namespace, RELEASE)


HERE = location()
OLD_PLACE = location(OLD_CLUSTER)


def entry(
    revision: int,
    status: str = "superseded",
    version: str = "1.0",
    healthy: bool | None = None,
    updated: str = LONG_AGO,
    description: str = "",
) -> HistoryEntry:
    description = description or f"alecton: deployed version {version} for {NS}/{RELEASE}"
    return HistoryEntry(revision, status, "webapp-0.1.0", "1.16.0", updated, description, version, healthy)


def released_status(
    revision: int = 2,
    where: ReleaseLocation = HERE,
    history: list[HistoryEntry] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """The status of a Deployment whose release (made by it) is at `where`, revision `revision`."""
    if history is None:
        history = [entry(revision, "deployed")] + [entry(r) for r in range(revision - 1, 0, -1)]
    return {
        "release": {**where.as_status(), "revision": revision, "status": "deployed", "version": "1.0"},
        "history": [e.as_status() for e in history],
        "appliedVersion": "1.0",
        **fields,
    }


@dataclass
class Progress:
    """The release step's callbacks: `progress` writes the claim, `prepare` (the finalizer)
    runs once the worker share is taken. Each records what helm had been asked by then;
    `prepare` also how many helm shares the namespace held then."""

    helm: FakeHelm
    slots: Slots
    seen: list[tuple[Any, list[str]]] = field(default_factory=list)
    prepared: list[tuple[list[str], int]] = field(default_factory=list)
    prepare_error: Exception | None = None

    async def __call__(self, outcome: Any) -> None:
        self.seen.append((outcome, self.helm.actions()))

    async def prepare(self) -> object:
        self.prepared.append((self.helm.actions(), self.slots.in_flight(NS)))
        if self.prepare_error is not None:
            raise self.prepare_error
        return None
