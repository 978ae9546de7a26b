"""Leader election decisions (reconcile/lease.py), without a cluster."""

from __future__ import annotations

from alecton.reconcile.lease import ACQUIRE, RENEW, WAIT, LeaseRecord, lease_step, lost, micro_time, released

NOW = 1_800_000_000.0


def held(holder: str, renewed: float, duration: float = 10, transitions: int = 2) -> LeaseRecord:
    return LeaseRecord.parse(
        {
            "holderIdentity": holder,
            "renewTime": micro_time(renewed),
            "acquireTime": micro_time(renewed - 100),
            "leaseDurationSeconds": duration,
            "leaseTransitions": transitions,
        }
    )


def test_no_lease_or_a_free_one_is_taken() -> None:
    step = lease_step(None, "a", NOW, 10)
    assert step.action == ACQUIRE and step.spec is not None
    assert step.spec["holderIdentity"] == "a" and step.spec["leaseTransitions"] == 0
    assert step.spec["leaseDurationSeconds"] == 10
    free = lease_step(LeaseRecord.parse({"leaseTransitions": 3}), "a", NOW, 10)
    assert free.action == ACQUIRE and free.spec["leaseTransitions"] == 3  # type: ignore[index]


def test_a_live_holder_is_waited_for_until_its_lease_expires() -> None:
    step = lease_step(held("b", NOW - 4), "a", NOW, 10)
    assert (step.action, step.holder, round(step.wait, 3)) == (WAIT, "b", 6.0)


def test_an_expired_lease_is_taken_over_and_counts_a_transition() -> None:
    step = lease_step(held("b", NOW - 10.5), "a", NOW, 10)
    assert step.action == ACQUIRE and step.spec["holderIdentity"] == "a"  # type: ignore[index]
    assert step.spec["leaseTransitions"] == 3  # type: ignore[index]


def test_the_holder_renews_keeping_when_it_acquired() -> None:
    record = held("a", NOW - 2)
    step = lease_step(record, "a", NOW, 10)
    assert step.action == RENEW and step.spec["renewTime"] == micro_time(NOW)  # type: ignore[index]
    assert step.spec["acquireTime"] == micro_time(NOW - 102)  # type: ignore[index]


def test_a_holder_that_cannot_renew_in_time_steps_down_before_the_lease_expires() -> None:
    assert not lost(NOW - 7.9, NOW, renew_deadline=8)
    assert lost(NOW - 8, NOW, renew_deadline=8)


def test_a_clean_shutdown_frees_the_lease_for_the_standby_at_once() -> None:
    spec = released(held("a", NOW - 1), "a", NOW)
    assert spec is not None and spec["holderIdentity"] is None
    assert lease_step(LeaseRecord.parse(spec), "b", NOW + 0.1, 10).action == ACQUIRE
    assert released(held("b", NOW - 1), "a", NOW) is None  # not ours: leave it


def test_micro_times_round_trip() -> None:
    assert LeaseRecord.parse({"renewTime": micro_time(NOW + 0.25)}).renewed == NOW + 0.25
    assert LeaseRecord.parse({"renewTime": "garbage"}).renewed is None


def test_a_renewal_stuck_on_a_silent_api_server_steps_down_before_the_lease_expires() -> None:
    """Issue 23: a renew request could wait the client's 30 s against a 10 s Lease, so a
    replica kept running helm after another had taken over. A read that never answers
    ends within half the renew deadline and the holder calls on_lost in time."""
    import asyncio
    import time as clock

    from alecton.handlers.leader import LeaderElector

    class SilentApi:
        async def read_namespaced_lease(self, *args: object, **kwargs: object) -> None:
            await asyncio.sleep(3600)

    class Kube:
        timeout = 30.0
        api = None

    async def scenario() -> float:
        elector = LeaderElector(Kube(), "ns", "lease", "me", duration=10.0, renew_deadline=3.0, retry=0.5)  # type: ignore[arg-type]
        elector.renewed = clock.monotonic()
        type(elector)._api = property(lambda self: SilentApi())  # type: ignore[method-assign,assignment]
        lost = asyncio.Event()
        started = clock.monotonic()
        await asyncio.wait_for(elector.hold(lost.set), timeout=20)
        assert lost.is_set()
        return clock.monotonic() - started

    took = asyncio.run(scenario())
    assert took < 5.0, f"stepped down after {took:.1f} s; the Lease lasts 10 s"
