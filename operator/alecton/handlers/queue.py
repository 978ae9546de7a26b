"""A keyed work queue, as controller-runtime's: each key is processed by one worker at
a time, a key added while queued is not duplicated, and a key added while being
processed is processed again afterwards. Delayed adds implement backoff."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(self) -> None:
        self._queue: asyncio.Queue[K] = asyncio.Queue()
        self._queued: set[K] = set()
        self._running: set[K] = set()
        self._dirty: set[K] = set()
        self._timers: dict[K, asyncio.TimerHandle] = {}

    def add(self, key: K) -> None:
        if key in self._running:
            self._dirty.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def add_after(self, key: K, delay: float) -> None:
        """Add `key` after `delay` seconds, unless a timer already fires sooner: several
        parts schedule the same key (backoff, a soak, the next drift check) and each needs
        its own moment; a reconcile that comes early only schedules itself again."""
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        if (timer := self._timers.get(key)) is not None:
            if timer.when() <= when:
                return
            timer.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key)

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    async def get(self) -> K:
        key = await self._queue.get()
        self._queued.discard(key)
        self._running.add(key)
        return key

    def done(self, key: K) -> None:
        self._running.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def forget(self, key: K) -> None:
        if timer := self._timers.pop(key, None):
            timer.cancel()

    def __len__(self) -> int:
        return len(self._queued)

    @property
    def in_flight(self) -> int:
        return len(self._running)
