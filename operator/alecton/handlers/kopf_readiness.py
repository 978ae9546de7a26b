"""kopf's start-up gate, made to wake its waiters only when it opens.

kopf holds every object's handlers until every indexed object of every kind is indexed: a
ToggleSet with a toggle per object, on which each object's worker waits after indexing its own.
kopf's set wakes all of its waiters on every toggle made or dropped, so a start with N objects
costs N x N wake-ups, each re-taking one lock in turn: with 1000 Deployments the restart spent
6 s of one core there (docs/benchmarks.md, the restart profile). Waiters only ever wait for the
set's state (all indexed, or for pausing: any peer paused), which a made or dropped toggle
changes at most once; so this set wakes them only when that state changes. A child toggle
turned on or off still wakes them as kopf's does (it notifies the shared condition itself).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from kopf._cogs.aiokits import aiotoggles

log = logging.getLogger(__name__)


class ReadinessToggleSet(aiotoggles.ToggleSet):
    """kopf's ToggleSet, notifying its waiters only when a change flips its state."""

    async def make_toggle(self, __val: bool = False, *, name: str | None = None) -> aiotoggles.Toggle:
        toggle = aiotoggles.Toggle(__val, name=name, condition=self._condition)
        async with self._condition:
            before = self.is_on()
            self._toggles.add(toggle)
            self._notify_if_flipped(before)
        return toggle

    async def drop_toggle(self, toggle: aiotoggles.Toggle) -> None:
        await self.drop_toggles((toggle,))

    async def drop_toggles(self, toggles: Iterable[aiotoggles.Toggle]) -> None:
        async with self._condition:
            before = self.is_on()
            self._toggles.difference_update(toggles)
            self._notify_if_flipped(before)

    def _notify_if_flipped(self, before: bool) -> None:
        if self.is_on() != before:
            self._condition.notify_all()


def install() -> bool:
    """Make kopf construct our set (it looks `aiotoggles.ToggleSet` up when it starts). Only
    when kopf's set still has the shape this subclass relies on; otherwise kopf's own stays
    (correct, only slower to start), and the log says so."""
    current = aiotoggles.ToggleSet
    if current is ReadinessToggleSet:
        return True
    probe = current(all)
    if not (hasattr(probe, "_condition") and isinstance(getattr(probe, "_toggles", None), set)):
        log.warning("kopf's ToggleSet changed shape: its start-up gate stays as it is (slower restarts)")
        return False
    aiotoggles.ToggleSet = ReadinessToggleSet  # type: ignore[misc]
    return True
