"""kopf's readiness gate (the ToggleSet every per-object worker waits on at start) must wake its
waiters when the set's state changes, not on every toggle made or dropped: with N objects
listed at start, kopf's own set wakes N waiters N times (the restart profile at 1000 spent
6 s there)."""

from __future__ import annotations

import asyncio

from alecton.handlers import kopf_readiness
from alecton.handlers.kopf_readiness import ReadinessToggleSet
from kopf._cogs.aiokits import aiotoggles

WORKERS = 300


class _Counting:
    """Counts how often waiters re-check the set's state (each wake-up is one check)."""

    def __init__(self, toggles: aiotoggles.ToggleSet) -> None:
        self.checks = 0
        original = toggles.is_on

        def counted() -> bool:
            self.checks += 1
            return original()

        toggles.is_on = counted  # type: ignore[method-assign]


async def _start_like_kopf(toggles: aiotoggles.ToggleSet) -> int:
    """What kopf does at start: the watcher lists the objects one event at a time, making a
    toggle for each and starting its worker; each worker indexes its object, drops its toggle
    and waits for the whole set; the listing's own toggle is dropped when the list ends.
    Returns the number of state checks it cost."""
    counter = _Counting(toggles)
    listing = await toggles.make_toggle(name="listing")
    passed: list[int] = []
    indexed: list[int] = []
    all_indexed = asyncio.Event()

    async def worker(i: int, mine: aiotoggles.Toggle) -> None:
        await asyncio.sleep(0)  # its index handlers
        await toggles.drop_toggle(mine)
        indexed.append(i)
        if len(indexed) == WORKERS:
            all_indexed.set()
        await toggles.wait_for(True)
        passed.append(i)

    workers = []
    for i in range(WORKERS):
        mine = await toggles.make_toggle(name=f"object {i}")
        workers.append(asyncio.create_task(worker(i, mine)))
        await asyncio.sleep(0)  # the next event of the stream
    await all_indexed.wait()  # every worker has indexed its object; the list has not ended
    assert passed == []
    await toggles.drop_toggle(listing)
    await asyncio.wait_for(asyncio.gather(*workers), timeout=30)
    assert sorted(passed) == list(range(WORKERS))
    return counter.checks


def test_waiters_are_woken_once_when_the_set_turns_on() -> None:
    checks = asyncio.run(_start_like_kopf(ReadinessToggleSet(all)))
    # Each toggle made or dropped costs a constant number of checks; each waiter a few.
    assert checks < 10 * WORKERS, checks


def test_the_set_keeps_kopfs_meaning_for_both_functions() -> None:
    asyncio.run(_keeps_kopfs_meaning())


async def _keeps_kopfs_meaning() -> None:
    gate = ReadinessToggleSet(all)
    assert gate.is_on()  # no toggles: all() of nothing
    toggle = await gate.make_toggle(name="one")
    assert gate.is_off()
    waiting = asyncio.create_task(gate.wait_for(True))
    await toggle.turn_to(True)  # a child turned on wakes its set's waiters too
    await asyncio.wait_for(waiting, timeout=5)

    paused = ReadinessToggleSet(any)
    assert paused.is_off()
    peer = await paused.make_toggle(True, name="peer")
    assert paused.is_on()
    resumed = asyncio.create_task(paused.wait_for(False))
    await paused.drop_toggles([peer])
    await asyncio.wait_for(resumed, timeout=5)


def test_installing_replaces_the_set_kopf_constructs() -> None:
    original = aiotoggles.ToggleSet
    try:
        assert kopf_readiness.install() is True
        assert aiotoggles.ToggleSet is ReadinessToggleSet
        assert kopf_readiness.install() is True  # idempotent
    finally:
        aiotoggles.ToggleSet = original  # type: ignore[misc]
