"""Freezes: keep each Freeze's and ClusterFreeze's status true (active, until when, next
start), rewritten at every start and end of the freeze, and requeue the Deployments a
changed freeze may concern. The decisions (what is frozen) are `reconcile.freeze`'s."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from alecton.kube.client import KubeClient, api_error_message
from alecton.reconcile.freeze import CLUSTER_FREEZE, Freeze, freeze_status
from alecton.reconcile.times import epoch

log = logging.getLogger("alecton.freeze")

_MARGIN = 0.5  # rewrite just after a start or end, not just before it
_STATUS_KEYS = ("active", "activeUntil", "nextStart", "message")


def parse_freeze(body: dict[str, Any]) -> Freeze | str:
    """The freeze, or why it cannot be used (status.message says so; it freezes nothing)."""
    try:
        return Freeze.parse(body)
    except ValueError as error:
        return str(error)


class FreezeStatus:
    """Writes status of every freeze it is told about, and again at its next start or end."""

    def __init__(self, kube: KubeClient, clock: Callable[[], float] = time.time) -> None:
        self.kube = kube
        self.clock = clock
        self._timers: dict[tuple[str, str, str], asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # referenced until done (asyncio keeps weak ones)

    async def seen(self, body: dict[str, Any], deleted: bool) -> None:
        meta = body.get("metadata") or {}
        kind = str(body.get("kind") or "Freeze")
        key = (kind, str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        if deleted:
            return
        freeze = parse_freeze(body)
        now = self.clock()
        if isinstance(freeze, str):
            wanted: dict[str, Any] = {"active": False, "activeUntil": None, "nextStart": None}
            wanted["message"] = f"invalid, freezes nothing: {freeze}"
        else:
            wanted = freeze_status(freeze, datetime.fromtimestamp(now, UTC))
        wanted["observedGeneration"] = int(meta.get("generation") or 0)
        current = body.get("status") or {}
        if any(current.get(k) != wanted.get(k) for k in (*_STATUS_KEYS, "observedGeneration")):
            await self._write(key, wanted)
        moment = [epoch(wanted.get("activeUntil")), epoch(wanted.get("nextStart"))]
        later = [m for m in moment if m > 0]
        if later:
            # The watch brings no event when a freeze starts or ends by the clock: look again then.
            delay = max(0.0, min(later) - now) + _MARGIN
            loop = asyncio.get_running_loop()
            self._timers[key] = loop.call_later(delay, self._again, body)

    def _again(self, body: dict[str, Any]) -> None:
        task = asyncio.ensure_future(self.seen(body, False))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, key: tuple[str, str, str], status: dict[str, Any]) -> None:
        kind, namespace, name = key
        try:
            await self.kube.patch_status(kind, namespace, name, status)
        except ApiException as error:
            if error.status != 404:  # deleted meanwhile: nothing to say
                log.warning(
                    "%s %s/%s: cannot write status: %s", kind, namespace, name, api_error_message(error)
                )

    def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in self._tasks:
            task.cancel()


def freeze_namespaces(body: dict[str, Any], all_namespaces: Iterable[str]) -> list[str]:
    """The namespaces whose Deployments a changed freeze may concern."""
    if body.get("kind") == CLUSTER_FREEZE:
        return sorted(set(all_namespaces))
    return [str((body.get("metadata") or {}).get("namespace") or "")]
