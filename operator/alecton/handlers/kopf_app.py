"""kopf wiring: login, settings, indexes of the watched kinds, and event handlers that
feed the controller's queue. Thin on purpose: decisions live in `reconcile/`."""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import kopf

from alecton.api.models import (
    GROUP,
    VERSION,
    Application,
    Cluster,
    Deployment,
    Image,
    InvalidResourceError,
    ObjectRef,
)
from alecton.handlers import kopf_readiness
from alecton.handlers.audit import AuditTrail, start_audit
from alecton.handlers.config import OperatorConfig
from alecton.handlers.controller import Controller
from alecton.handlers.dora_metrics import DoraMetrics
from alecton.handlers.freezes import FreezeStatus, freeze_namespaces, parse_freeze
from alecton.handlers.images import DuplicateImages
from alecton.handlers.indexes import DeploymentSnapshot
from alecton.handlers.leader import LeaderElector, identity
from alecton.handlers.notifiers import Notifiers
from alecton.handlers.probes import ProbeServer
from alecton.helm.actions import HelmActions
from alecton.helm.runner import HelmRunner
from alecton.helm.server import use_driver
from alecton.kube.access import use_private_dir
from alecton.kube.client import KubeClient, load_configuration
from alecton.metrics import Metrics
from alecton.reconcile.notify_address import parse_networks
from alecton.reconcile.notify_policy import CLUSTER_NOTIFIER, NOTIFIER
from alecton.reconcile.promotion_records import PromotionRecord

log = logging.getLogger("alecton.operator")


def _raw(body: kopf.Body) -> dict[str, Any]:
    """A plain-dict copy of the parts of a body we keep in memory."""
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": dict(body.get("metadata") or {}),
        "spec": dict(body.get("spec") or {}),
        "status": dict(body.get("status") or {}),
    }


def _key(body: kopf.Body) -> tuple[str, str]:
    return (body["metadata"]["namespace"], body["metadata"]["name"])


SHARD_LABEL = "alecton.dev/shard"


def shard_filter(shard: str) -> dict[str, Any]:
    """The Deployments of this shard: labelled with its name, or (no shard) unlabelled."""
    return {SHARD_LABEL: shard or kopf.ABSENT}


def shard_label_selector(shard: str) -> str:
    """The same choice as `shard_filter`, as the API server's label selector."""
    return f"{SHARD_LABEL}={shard}" if shard else f"!{SHARD_LABEL}"


# The initial listing in pages: a restart with thousands of Deployments never holds one
# answer of them all at once (a shard of 2500 among 10,000 peaked at 446 MiB that way).
LIST_CHUNK = 500


def configure_watching(settings: kopf.OperatorSettings, shard: str) -> None:
    """What kopf's watches ask the API server for. A shard's Deployments are selected by the
    server: with the label filter alone (client side) every shard received, parsed and queued
    every Deployment of the namespace, only to drop most of them."""
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    settings.watching.connect_timeout = 30
    settings.watching.chunk_size = LIST_CHUNK
    settings.watching.label_selectors[GROUP, "deployments"] = shard_label_selector(shard)


def build_registry(controller: Controller, config: OperatorConfig) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    # Only Deployments are sharded: every shard needs every Application, Image, Cluster and
    # Promotion of the namespaces its Deployments live in.
    mine = shard_filter(config.shard)
    notifiers = Notifiers(
        controller.kube,
        controller.indexes,
        controller.metrics.notifier_metrics(),
        parse_networks(config.notify_allow_cidrs),
        config.operator_namespace,
    )
    _register_lifecycle(registry, controller, config, notifiers)
    _register_indexes(registry, mine)
    _register_events(registry, controller, config, mine)
    _register_notifiers(registry, notifiers)
    _register_freeze_events(registry, controller, config)
    return registry


def _register_lifecycle(
    registry: kopf.OperatorRegistry, controller: Controller, config: OperatorConfig, notifiers: Notifiers
) -> None:
    """Login with the operator's kubeconfig, kopf's settings, and the workers' life."""
    trails: list[AuditTrail] = []

    @kopf.on.login(registry=registry)
    async def login(**_: Any) -> kopf.ConnectionInfo:
        cfg = await load_configuration(config.kubeconfig, config.context)
        token = (cfg.api_key or {}).get("authorization") or (cfg.api_key or {}).get("BearerToken")
        scheme, _, token_value = (token or "").partition(" ")
        return kopf.ConnectionInfo(
            server=cfg.host,
            ca_path=cfg.ssl_ca_cert,
            insecure=not cfg.verify_ssl,
            certificate_path=cfg.cert_file,
            private_key_path=cfg.key_file,
            scheme=scheme or None,
            token=token_value or None,
        )

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        # We never write kopf's own annotations or finalizers: all handlers are
        # event handlers and indexes, and the controller owns the finalizer.
        settings.persistence.finalizer = "alecton.dev/kopf"
        settings.posting.enabled = False
        # No runtime watching of CRDs and namespaces: the four kinds are discovered once
        # at start-up, so the operator needs no RBAC on customresourcedefinitions.
        settings.scanning.disabled = True
        configure_watching(settings, config.shard)
        settings.networking.request_timeout = 60
        settings.batching.batch_window = 0.01  # react within milliseconds
        trails.append(start_audit(controller, config))  # before any reconcile publishes news
        controller.news.add(notifiers)
        controller.news.add(DoraMetrics(controller.metrics.dora, controller.indexes))
        controller.start()

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        await controller.stop()
        for trail in trails:
            await trail.stop()
        await notifiers.stop()


def _register_indexes(registry: kopf.OperatorRegistry, mine: dict[str, Any]) -> None:
    """The in-memory indexes, ready before any handler runs."""

    @kopf.index(GROUP, VERSION, "deployments", id="deployments", labels=mine, registry=registry)
    async def deployments(body: kopf.Body, **_: Any) -> dict[Any, Any]:
        return {_key(body): DeploymentSnapshot(_raw(body))}

    @kopf.index(GROUP, VERSION, "deployments", id="deployment_pairs", labels=mine, registry=registry)
    async def deployment_pairs(body: kopf.Body, **_: Any) -> dict[Any, Any]:
        try:
            dep = Deployment.parse(_raw(body))
        except InvalidResourceError:
            return {}
        return {(dep.ref.namespace, dep.application, dep.target): dep}

    @kopf.index(GROUP, VERSION, "applications", id="applications", registry=registry)
    async def applications(body: kopf.Body, **_: Any) -> dict[Any, Any]:
        try:
            return {_key(body): Application.parse(_raw(body))}
        except InvalidResourceError as error:
            return {_key(body): str(error)}

    @kopf.index(GROUP, VERSION, "clusters", id="clusters", registry=registry)
    async def clusters(body: kopf.Body, **_: Any) -> dict[Any, Any]:
        try:
            return {_key(body): Cluster.parse(_raw(body))}
        except InvalidResourceError:
            return {}

    @kopf.index(GROUP, VERSION, "images", id="images", registry=registry)
    async def images(body: kopf.Body, **_: Any) -> dict[Any, Any]:
        try:
            image = Image.parse(_raw(body))
        except InvalidResourceError:
            return {}
        return {(image.ref.namespace, image.name, image.version): image}

    # For promotion: which Deployments of an application follow which target, the
    # Deployments of an application, the versions of an image name (direct lookups, so an
    # event costs no scan of the whole index).
    @kopf.index(GROUP, VERSION, "deployments", id="by_application", labels=mine, registry=registry)
    async def by_application(body: kopf.Body, **_: Any) -> dict[Any, Any]:
        spec = body.get("spec") or {}
        namespace, name = _key(body)
        if not spec.get("application"):
            return {}
        promotion = spec.get("promotion")
        source = str(promotion.get("from") or "") if isinstance(promotion, dict) else ""
        return {(namespace, str(spec["application"])): (ObjectRef(namespace, name), source)}

    @kopf.index(GROUP, VERSION, "images", id="image_versions", registry=registry)
    async def image_versions(body: kopf.Body, **_: Any) -> dict[Any, Any]:
        spec = body.get("spec") or {}
        if not spec.get("name") or not spec.get("version"):
            return {}
        return {(body["metadata"]["namespace"], str(spec["name"])): str(spec["version"])}

    # Freezes by namespace; ClusterFreezes under "" (an invalid one freezes nothing, and its
    # status says why).
    @kopf.index(GROUP, VERSION, "freezes", id="freezes", registry=registry)
    async def freezes(body: kopf.Body, **_: Any) -> dict[Any, Any]:
        freeze = parse_freeze(_raw(body))
        return {} if isinstance(freeze, str) else {freeze.namespace: freeze}

    @kopf.index(GROUP, VERSION, "clusterfreezes", id="cluster_freezes", registry=registry)
    async def cluster_freezes(body: kopf.Body, **_: Any) -> dict[Any, Any]:
        freeze = parse_freeze(_raw(body))
        return {} if isinstance(freeze, str) else {"": freeze}

    @kopf.index(GROUP, VERSION, "promotions", id="promotions", registry=registry)
    async def promotions(body: kopf.Body, **_: Any) -> dict[Any, Any]:
        record = PromotionRecord.parse(_raw(body))
        return {(body["metadata"]["namespace"], record.deployment): record} if record.deployment else {}


def _bind(controller: Controller, kwargs: dict[str, Any]) -> None:
    """Hand kopf's indexes (passed to every handler) to the controller."""
    idx = controller.indexes
    idx.deployments = kwargs["deployments"]
    idx.pairs = kwargs["deployment_pairs"]
    idx.applications = kwargs["applications"]
    idx.clusters = kwargs["clusters"]
    idx.images = kwargs["images"]
    idx.promotions = kwargs["promotions"]
    idx.by_application = kwargs["by_application"]
    idx.versions = kwargs["image_versions"]
    idx.freezes = kwargs["freezes"]
    idx.cluster_freezes = kwargs["cluster_freezes"]


def _register_events(
    registry: kopf.OperatorRegistry, controller: Controller, config: OperatorConfig, mine: dict[str, Any]
) -> None:
    """Watch events -> the queue. Handlers are async: kopf runs sync handlers in threads, and
    the queue is not thread-safe."""

    def bind(kwargs: dict[str, Any]) -> None:
        _bind(controller, kwargs)

    @kopf.on.event(GROUP, VERSION, "deployments", labels=mine, registry=registry)
    async def deployment_event(body: kopf.Body, type: str | None, **kwargs: Any) -> None:
        bind(kwargs)
        namespace, name = _key(body)
        try:
            resource_version = int(body["metadata"].get("resourceVersion") or 0)
        except ValueError:
            resource_version = 0
        ref = ObjectRef(namespace, name)
        controller.deployment_event(ref, resource_version, deleted=type == "DELETED")
        # A deleted Deployment can hand its application/target to a Conflict-ed one.
        if type == "DELETED":
            spec = body.get("spec") or {}
            controller.namespace_changed(namespace, spec.get("application"))

    @kopf.on.event(GROUP, VERSION, "applications", registry=registry)
    async def application_event(body: kopf.Body, **kwargs: Any) -> None:
        bind(kwargs)
        namespace, name = _key(body)
        controller.namespace_changed(namespace, name)

    @kopf.on.event(GROUP, VERSION, "clusters", registry=registry)
    async def cluster_event(body: kopf.Body, **kwargs: Any) -> None:
        bind(kwargs)
        controller.namespace_changed(body["metadata"]["namespace"])

    duplicates = DuplicateImages(controller.kube)

    @kopf.on.event(GROUP, VERSION, "images", registry=registry)
    async def image_event(body: kopf.Body, type: str | None, **kwargs: Any) -> None:
        bind(kwargs)
        namespace = body["metadata"]["namespace"]
        # An Image's spec is immutable: a change is its status (the operator's own verdict
        # on its signature), which no Deployment's plan reads.
        if type != "MODIFIED":
            controller.namespace_changed(namespace)
        # Only the unsharded operator reports duplicates: every shard sees every Image.
        spec = body.get("spec") or {}
        if type != "DELETED" and not config.shard:
            same = controller.indexes.images_for(namespace, str(spec.get("name")), str(spec.get("version")))
            await duplicates.check(_raw(body), same)

    @kopf.on.event(GROUP, VERSION, "promotions", registry=registry)
    async def promotion_event(body: kopf.Body, **kwargs: Any) -> None:
        bind(kwargs)
        deployment = (body.get("spec") or {}).get("deployment")
        if deployment:  # an approval or a rejection: the Deployment's promotion step acts on it
            controller.queue.add(ObjectRef(body["metadata"]["namespace"], str(deployment)))


def _register_freeze_events(
    registry: kopf.OperatorRegistry, controller: Controller, config: OperatorConfig
) -> None:
    """A changed Freeze or ClusterFreeze requeues the Deployments it may concern; the
    unsharded operator keeps its status."""

    def bind(kwargs: dict[str, Any]) -> None:
        _bind(controller, kwargs)

    statuses = FreezeStatus(controller.kube)

    async def freeze_changed(body: kopf.Body, type: str | None, kwargs: dict[str, Any]) -> None:
        bind(kwargs)
        raw = _raw(body)
        # The operator's own status write is the only change that leaves the generation
        # observed: it concerns no Deployment (a ClusterFreeze would requeue them all).
        status_only = type == "MODIFIED" and raw["status"].get("observedGeneration") == (
            raw["metadata"].get("generation")
        )
        if not status_only:
            namespaces = {ref.namespace for ref in controller.indexes.deployment_refs_all()}
            for namespace in freeze_namespaces(raw, namespaces):
                controller.namespace_changed(namespace)
        if not config.shard:  # one writer of the status: the unsharded operator
            await statuses.seen(raw, deleted=type == "DELETED")

    @kopf.on.event(GROUP, VERSION, "freezes", registry=registry)
    async def freeze_event(body: kopf.Body, type: str | None, **kwargs: Any) -> None:
        await freeze_changed(body, type, kwargs)

    @kopf.on.event(GROUP, VERSION, "clusterfreezes", registry=registry)
    async def cluster_freeze_event(body: kopf.Body, type: str | None, **kwargs: Any) -> None:
        await freeze_changed(body, type, kwargs)

    @kopf.on.cleanup(registry=registry)
    async def stop_freeze_timers(**_: Any) -> None:
        statuses.stop()


def _register_notifiers(registry: kopf.OperatorRegistry, notifiers: Notifiers) -> None:
    """Notifiers and ClusterNotifiers -> their delivery tasks (made, changed, stopped)."""

    async def seen(body: kopf.Body, type: str | None, kind: str) -> None:
        meta = body.get("metadata") or {}
        if type == "DELETED":
            namespace = "" if kind == CLUSTER_NOTIFIER else str(meta.get("namespace") or "")
            await notifiers.deleted((kind, namespace, str(meta.get("name"))))
        else:
            await notifiers.changed(_raw(body), kind)

    @kopf.on.event(GROUP, VERSION, "notifiers", registry=registry)
    async def notifier_event(body: kopf.Body, type: str | None, **_: Any) -> None:
        await seen(body, type, NOTIFIER)

    @kopf.on.event(GROUP, VERSION, "clusternotifiers", registry=registry)
    async def cluster_notifier_event(body: kopf.Body, type: str | None, **_: Any) -> None:
        await seen(body, type, CLUSTER_NOTIFIER)


class LeadershipLostError(Exception):
    pass


async def run_operator(config: OperatorConfig, stop: asyncio.Event | None = None) -> None:
    # Temporary kubeconfigs and values files live in one private directory, emptied now.
    use_private_dir(Path(tempfile.gettempdir()) / f"alecton-{os.getuid()}")
    kube = await KubeClient.connect(config.kubeconfig, config.context)
    metrics = Metrics()
    runner = HelmRunner(
        binary=config.helm_binary, timeout=config.helm_timeout, home=config.helm_home, metrics=metrics
    )
    await use_driver(runner, config.helm_driver, config.helmd_binary)
    actions = HelmActions(
        runner, history_max=config.history_max, openapi_validation=config.helm_openapi_validation
    )
    controller = Controller(config, kube, actions, metrics)
    registry = build_registry(controller, config)
    probes = None
    standing_by = asyncio.Event()
    if config.probe_address:
        host, _, port = config.probe_address.rpartition(":")
        # A healthy standby is ready too: a rolling update must be able to replace replicas
        # that wait for the Lease.
        bind = host or "0.0.0.0"  # noqa: S104 (a Pod's probe port)
        probes = ProbeServer(metrics, lambda: controller.ready or standing_by.is_set(), bind, int(port))
        await probes.start()
    stop = stop or asyncio.Event()
    elector: LeaderElector | None = None
    holding: asyncio.Task[None] | None = None
    lost = False

    async def step_down() -> None:
        nonlocal lost
        lost = True
        await runner.stop_all()  # before the Lease can expire for anyone else
        stop.set()

    try:
        if config.leader_elect:
            elector = LeaderElector(kube, config.leader_election_namespace, config.lease_name, identity())
            acquired = asyncio.ensure_future(
                elector.acquire(
                    lambda holder: log.info("standby: lease %s held by %s", config.lease_name, holder)
                )
            )
            stopped = asyncio.ensure_future(stop.wait())
            standing_by.set()
            await asyncio.wait({acquired, stopped}, return_when=asyncio.FIRST_COMPLETED)
            standing_by.clear()
            stopped.cancel()
            if not acquired.done():
                acquired.cancel()
                return  # asked to stop while standing by
            log.info("leading: lease %s/%s", config.leader_election_namespace, config.lease_name)
            holding = asyncio.ensure_future(elector.hold(lambda: asyncio.ensure_future(step_down())))
        kopf_readiness.install()  # before kopf builds its start-up gate
        await kopf.operator(
            registry=registry,
            standalone=True,
            clusterwide=not config.namespaces,
            namespaces=list(config.namespaces),
            stop_flag=stop,
        )
    finally:
        if holding is not None:
            holding.cancel()
        if elector is not None and not lost and holding is not None:
            await elector.release()  # a clean stop hands over at once
        if probes:
            await probes.stop()
        if runner.server is not None:  # helmd, idle now: its handlers have returned
            await runner.server.stop()
        await kube.close()
    if lost:
        raise LeadershipLostError(f"lost lease {config.lease_name}: stopped reconciling")
