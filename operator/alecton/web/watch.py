"""A list+watch cache of one alecton kind, in one namespace or in all, made with one
caller's client, that reports every object that changes.

The dashboard's cache of what a caller sees (web/caller_views.py) is built from these. The
objects are exactly what the API server gave this caller: a watch made with their
credentials, nothing shared with another caller.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from kubernetes_asyncio import client

from alecton.api.models import API_VERSION, PLURALS
from alecton.kube.informers import Informer, Resource

log = logging.getLogger("alecton.web")

# Short watches: the API server authenticates and authorizes each new one, so a caller
# whose rights were taken away stops receiving changes within this time, whatever else.
WATCH_SECONDS = 60
_PAGE = 500

# What `on_event` hears besides the API server's ADDED / MODIFIED / DELETED: every object
# may have changed (a new listing), or the list/watch failed (see `failure`).
RESYNC = "RESYNC"
FAILED = "FAILED"

Event = Callable[[str, str, "dict[str, Any] | None"], None]

# What the overview reads of a Deployment's status; the rest (conditions, the history
# but for the revision that runs) is most of its size and is read per Deployment instead.
_DEPLOYMENT_STATUS = ("phase", "message", "release", "health", "promotion", "observedGeneration")


def _slim(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The object without what no cached view reads (managed fields; of a Deployment's
    status, all but what the overview shows), so thousands fit in little memory."""
    metadata = obj.get("metadata")
    if isinstance(metadata, dict) and "managedFields" in metadata:
        obj["metadata"] = {k: v for k, v in metadata.items() if k != "managedFields"}
    status = obj.get("status")
    if kind == "Deployment" and isinstance(status, dict):
        slim = {k: status[k] for k in _DEPLOYMENT_STATUS if k in status}
        history = [e for e in status.get("history") or [] if isinstance(e, dict)]
        slim["history"] = [e for e in history if e.get("status") == "deployed"][:1]  # the running one
        obj["status"] = slim
    return obj


def _where(obj: dict[str, Any]) -> tuple[str, str]:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")


class KindWatch(Informer):
    """The live objects of one kind, by namespace and name, as one caller may list them
    (namespace "": in every namespace), each change told to `on_event`."""

    def __init__(self, api: client.ApiClient, kind: str, namespace: str, on_event: Event) -> None:
        super().__init__(
            api,
            Resource(API_VERSION, PLURALS[kind]),
            namespace,
            on_change=lambda: None,
            keep=functools.partial(_slim, kind),
            watch_seconds=WATCH_SECONDS,
            page=_PAGE,
        )
        self.kind = kind
        self.by_namespace: dict[str, dict[str, dict[str, Any]]] = {}  # namespace -> name -> object
        self.listed = self.answered  # set by the first listing or the first failure
        self.failure: Exception | None = None
        self._on_event = on_event

    @property
    def status(self) -> int:
        """The HTTP status of the last failure (0: none, or not an HTTP one)."""
        return int(getattr(self.failure, "status", 0) or 0)

    def items(self, namespace: str) -> list[dict[str, Any]]:
        return list((self.by_namespace.get(namespace) or {}).values())

    def _replace(self, listed: list[dict[str, Any]]) -> None:
        objects: dict[str, dict[str, dict[str, Any]]] = {}
        for obj in listed:
            namespace, name = _where(obj)
            objects.setdefault(namespace, {})[name] = obj
        self.by_namespace, self.failure = objects, None
        self._on_event(self.kind, RESYNC, None)

    def _apply(self, change: str, obj: dict[str, Any]) -> None:
        namespace, name = _where(obj)
        if change == "DELETED":
            (self.by_namespace.get(namespace) or {}).pop(name, None)
        else:
            self.by_namespace.setdefault(namespace, {})[name] = obj
        self._on_event(self.kind, change, obj)

    def _failed(self, error: Exception) -> None:
        self.failure = error
        if self.status in (401, 403):
            self.by_namespace = {}  # not theirs (any more): nothing of it is shown
        self._on_event(self.kind, FAILED, None)
