"""What the controller reads: kopf's in-memory indexes of the watched kinds, and the few parts
of a Deployment's body the index keeps."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from alecton.api.models import Application, Cluster, Deployment, Image, ObjectRef
from alecton.reconcile.freeze import (
    ActiveFreeze,
    DeploymentFacts,
    Freeze,
    active_freezes,
    cluster_context,
    look_again,
)
from alecton.reconcile.image_policy import pick_image
from alecton.reconcile.promotion_records import PromotionRecord


@dataclass(frozen=True)
class DeploymentSnapshot:
    """What the index keeps of a Deployment: the raw body's few parts we use."""

    body: dict[str, Any]  # apiVersion, kind, metadata, spec, status

    @property
    def ref(self) -> ObjectRef:
        meta = self.body["metadata"]
        return ObjectRef(meta["namespace"], meta["name"])

    @property
    def resource_version(self) -> int:
        try:
            return int(self.body["metadata"].get("resourceVersion") or 0)
        except ValueError:
            return 0

    @property
    def status(self) -> dict[str, Any]:
        return self.body.get("status") or {}


class Indexes:
    """Read access to kopf's live indexes, bound when kopf first calls a handler."""

    def __init__(self) -> None:
        self.deployments: Mapping[Any, Any] = {}
        self.pairs: Mapping[Any, Any] = {}
        self.applications: Mapping[Any, Any] = {}
        self.clusters: Mapping[Any, Any] = {}
        self.images: Mapping[Any, Any] = {}
        self.promotions: Mapping[Any, Any] = {}
        self.by_application: Mapping[Any, Any] = {}
        self.versions: Mapping[Any, Any] = {}
        self.freezes: Mapping[Any, Any] = {}  # namespace -> its Freezes
        self.cluster_freezes: Mapping[Any, Any] = {}  # "" -> every ClusterFreeze

    @staticmethod
    def _one(index: Mapping[Any, Any], key: Any) -> Any:
        store = index.get(key) if key in index else None
        return next(iter(store), None) if store is not None else None

    def deployment(self, ref: ObjectRef) -> DeploymentSnapshot | None:
        return self._one(self.deployments, (ref.namespace, ref.name))

    def application(self, namespace: str, name: str) -> Application | str | None:
        return self._one(self.applications, (namespace, name))

    def cluster(self, namespace: str, name: str) -> Cluster | None:
        return self._one(self.clusters, (namespace, name))

    def image_of(self, namespace: str, application: str, version: str) -> Image | None:
        """The Image an Application's version names: the authoritative one (created first).
        What news is enriched with (source, creation time) by the notifier, audit and DORA sinks."""
        app = self.application(namespace, application)
        if not isinstance(app, Application) or not version:
            return None
        return pick_image(self.images_for(namespace, app.image, version))

    def images_for(self, namespace: str, name: str, version: str) -> list[Image]:
        key = (namespace, name, version)
        return list(self.images[key]) if key in self.images else []

    def image_versions(self, namespace: str, name: str) -> list[str]:
        key = (namespace, name)
        return list(dict.fromkeys(self.versions[key])) if key in self.versions else []

    def of_application(self, namespace: str, application: str) -> list[ObjectRef]:
        key = (namespace, application)
        return [ref for ref, _ in self.by_application[key]] if key in self.by_application else []

    def promotions_for(self, namespace: str, deployment: str) -> list[PromotionRecord]:
        key = (namespace, deployment)
        return list(self.promotions[key]) if key in self.promotions else []

    def followers(self, namespace: str, application: str, target: str) -> list[ObjectRef]:
        """Deployments of `application` whose spec.promotion follows `target`."""
        key = (namespace, application)
        return (
            [ref for ref, source in self.by_application[key] if source == target]
            if key in self.by_application
            else []
        )

    def deployments_for_pair(self, namespace: str, application: str, target: str) -> list[Deployment]:
        key = (namespace, application, target)
        return list(self.pairs[key]) if key in self.pairs else []

    def freezes_for(self, namespace: str) -> list[Freeze]:
        """The namespace's Freezes and every ClusterFreeze."""
        own = list(self.freezes[namespace]) if namespace in self.freezes else []
        return own + (list(self.cluster_freezes[""]) if "" in self.cluster_freezes else [])

    def freeze_facts(self, deployment: Deployment) -> DeploymentFacts:
        ns = deployment.ref.namespace
        app = self.application(ns, deployment.application)
        target = app.target(deployment.target) if isinstance(app, Application) else None
        name = target.cluster if target else ""
        cluster = self.cluster(ns, name) if name else None
        context = cluster_context(cluster.context, cluster.kubeconfig_secret is not None) if cluster else ""
        return DeploymentFacts(ns, deployment.application, deployment.target, name, context)

    def active_freezes(self, deployment: Deployment, now: float) -> tuple[list[ActiveFreeze], float | None]:
        """The freezes that apply to `deployment` at `now`, and when they next change (epoch)."""
        facts, moment = self.freeze_facts(deployment), datetime.fromtimestamp(now, UTC)
        freezes = self.freezes_for(deployment.ref.namespace)
        change = look_again(freezes, facts, moment)
        return active_freezes(freezes, facts, moment), change.timestamp() if change else None

    def deployment_refs_all(self) -> list[ObjectRef]:
        return [ObjectRef(ns, name) for ns, name in list(self.deployments)]

    def deployment_refs(self, namespace: str) -> Iterable[ObjectRef]:
        return [ObjectRef(ns, name) for ns, name in list(self.deployments) if ns == namespace]
