"""The one place that writes a Deployment: its status, its finalizer and its Events.

Bodies returned by our own writes are newer than kopf's index until the watch delivers
them; `snapshot` prefers them, so a quick re-reconcile does not act on stale status.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from typing import Any

from alecton.api.models import FINALIZER, ObjectRef
from alecton.handlers.indexes import DeploymentSnapshot, Indexes
from alecton.kube.client import ApiException, KubeClient
from alecton.reconcile.outcomes import Event, Summary

log = logging.getLogger("alecton.controller")


class DeploymentWriter:
    def __init__(self, kube: KubeClient, indexes: Indexes) -> None:
        self.kube = kube
        self.indexes = indexes
        self._written: dict[ObjectRef, DeploymentSnapshot] = {}

    # ----- what was written -----------------------------------------------------------

    def snapshot(self, ref: ObjectRef) -> DeploymentSnapshot | None:
        indexed = self.indexes.deployment(ref)
        written = self._written.get(ref)
        if written and (indexed is None or written.resource_version > indexed.resource_version):
            return written
        return indexed

    def seen(self, ref: ObjectRef, resource_version: int, deleted: bool) -> None:
        """The watch delivered this version: our copy is no longer newer."""
        written = self._written.get(ref)
        if written and (deleted or resource_version >= written.resource_version):
            del self._written[ref]

    def forget(self, ref: ObjectRef) -> None:
        self._written.pop(ref, None)

    # ----- writes -----------------------------------------------------------------------

    async def write(self, snap: DeploymentSnapshot, summary: Summary) -> DeploymentSnapshot:
        """Write a summary: the status patch, then the Events, then the finalizer."""
        if summary.status is not None:
            snap = await self.write_status(snap, summary.status)
        for event in summary.events:
            await self.post_event(snap, event)
        if summary.remove_finalizer:
            await self.remove_finalizer(snap)
        return snap

    async def write_status(self, snap: DeploymentSnapshot, status: dict[str, Any]) -> DeploymentSnapshot:
        ref = snap.ref
        return await self._remember(
            snap, self.kube.patch_status("Deployment", ref.namespace, ref.name, status)
        )

    async def post_event(self, snap: DeploymentSnapshot, event: Event) -> None:
        try:
            await self.kube.post_event(snap.body, event.type, event.reason, event.message)
        except ApiException as error:  # an Event is best effort; the status is the record
            log.warning("could not post event %s for %s: %s", event.reason, snap.ref, error.reason)

    async def ensure_finalizer(self, snap: DeploymentSnapshot) -> DeploymentSnapshot:
        finalizers = list(snap.body["metadata"].get("finalizers") or [])
        if FINALIZER in finalizers:
            return snap
        return await self._patch_finalizers(snap, [*finalizers, FINALIZER])

    async def remove_finalizer(self, snap: DeploymentSnapshot) -> None:
        finalizers = list(snap.body["metadata"].get("finalizers") or [])
        if FINALIZER in finalizers:
            await self._patch_finalizers(snap, [f for f in finalizers if f != FINALIZER])

    async def _patch_finalizers(self, snap: DeploymentSnapshot, finalizers: list[str]) -> DeploymentSnapshot:
        ref = snap.ref
        meta = snap.body["metadata"]
        # resourceVersion makes this an optimistic write: a concurrent change of the
        # finalizer list fails with 409 and the reconcile is retried.
        patch = {"metadata": {"finalizers": finalizers, "resourceVersion": meta.get("resourceVersion")}}
        return await self._remember(snap, self.kube.patch("Deployment", ref.namespace, ref.name, patch))

    async def _remember(
        self, snap: DeploymentSnapshot, write: Coroutine[Any, Any, dict[str, Any]]
    ) -> DeploymentSnapshot:
        """Run a write of the Deployment and keep the body it returns; a Deployment deleted
        meanwhile is not an error."""
        try:
            body = await write
        except ApiException as error:
            if error.status == 404:
                return snap
            raise
        written = DeploymentSnapshot(body)
        self._written[snap.ref] = written
        return written
