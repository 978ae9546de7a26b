"""Notifiers, wired: the NewsSink the controller publishes to, and one delivery task per
Notifier and ClusterNotifier, made, changed and stopped as kopf sees them.

`publish` only files each News into the bounded queue of every Notifier it matches
(`reconcile.notify_policy.matches`: a namespaced Notifier sees its own namespace's News only),
so it never blocks and never raises. The Secrets are read from the Notifier's own namespace
(a ClusterNotifier's from the operator's namespace) by name, and never logged.
"""

from __future__ import annotations

import logging
from typing import Any

from alecton.handlers.indexes import Indexes
from alecton.handlers.notify_delivery import Delivery, utc_now
from alecton.kube.client import ApiException, KubeClient
from alecton.metrics import NotifierMetrics
from alecton.reconcile.news import News
from alecton.reconcile.notify_address import IPNetwork
from alecton.reconcile.notify_payloads import Source
from alecton.reconcile.notify_policy import (
    CLUSTER_NOTIFIER,
    InvalidNotifierError,
    matches,
    parse_notifier,
)
from alecton.reconcile.notify_status import INVALID_SPEC, NotifierState, status_patch

log = logging.getLogger("alecton.notify")

Key = tuple[str, str, str]  # (kind, namespace, name)


def image_source(indexes: Indexes, news: News) -> Source | None:
    """The source (repository, revision) of the Image a News names: its application's image
    name at the News's version, the oldest Image of that pair (the authoritative one). Image
    `spec.source` may be absent (CI that records none): no commit status then."""
    image = indexes.image_of(news.namespace, news.application, news.version)
    if image is None or image.source is None or not (image.source.repository and image.source.revision):
        return None
    return Source(image.source.repository, image.source.revision)


class Notifiers:
    """The sink (`publish`) and the set of delivery tasks."""

    def __init__(
        self,
        kube: KubeClient,
        indexes: Indexes,
        metrics: NotifierMetrics,
        allowed: tuple[IPNetwork, ...],
        operator_namespace: str,
    ) -> None:
        self.kube = kube
        self.indexes = indexes
        self.metrics = metrics
        self.allowed = allowed
        self.operator_namespace = operator_namespace
        self.deliveries: dict[Key, Delivery] = {}
        self._invalid: dict[Key, int] = {}  # generation already reported invalid

    # ----- NewsSink ----------------------------------------------------------------------

    def publish(self, news: list[News]) -> None:
        for (kind, namespace, name), delivery in list(self.deliveries.items()):
            for item in news:
                try:
                    if matches(delivery.settings, item):
                        delivery.offer(item)
                except Exception as error:  # a sink never raises into a reconcile
                    log.error("%s %s/%s: cannot queue %s: %r", kind, namespace, name, item.kind, error)

    # ----- kopf events -------------------------------------------------------------------

    async def changed(self, body: dict[str, Any], kind: str) -> None:
        meta = body.get("metadata") or {}
        key: Key = (
            kind,
            "" if kind == CLUSTER_NOTIFIER else str(meta.get("namespace") or ""),
            str(meta["name"]),
        )
        status = dict(body.get("status") or {})
        try:
            settings = parse_notifier(body, kind)
        except InvalidNotifierError as error:
            await self.deleted(key)
            await self._report_invalid(key, body, str(error))
            return
        self._invalid.pop(key, None)
        current = self.deliveries.get(key)
        if current is not None:
            if current.settings != settings:
                current.update(settings, status)
            return
        delivery = Delivery(
            settings,
            self.kube,
            self.metrics,
            self.allowed,
            self.operator_namespace if settings.cluster_scoped else settings.namespace,
            lambda news: image_source(self.indexes, news),
            status,
        )
        self.deliveries[key] = delivery
        delivery.start()
        log.info("notifier %s %s (%s): delivering", kind, settings.label, settings.provider)

    async def deleted(self, key: Key) -> None:
        delivery = self.deliveries.pop(key, None)
        if delivery is not None:
            await delivery.stop()

    async def stop(self) -> None:
        for key in list(self.deliveries):
            await self.deleted(key)

    async def _report_invalid(self, key: Key, body: dict[str, Any], message: str) -> None:
        kind, namespace, name = key
        generation = int((body.get("metadata") or {}).get("generation") or 0)
        if self._invalid.get(key) == generation:
            return  # reported; our own status write comes back as an event
        self._invalid[key] = generation
        state = NotifierState(generation=generation, problem=(INVALID_SPEC, message))
        patch = status_patch(state, dict(body.get("status") or {}), utc_now())
        try:
            await self.kube.patch_status(kind, namespace, name, patch)  # cluster-scoped kinds: no namespace
        except ApiException as error:
            log.warning("status of %s %s/%s: %s", kind, namespace, name, error.status)
