"""The health monitor's restart path without a cluster: one list of a namespace's deployed
releases serves every release tracked there, a release the list lacks (or a list that fails)
is read on its own, and a verdict the controller acted on does not notify again."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from alecton.api.models import ObjectRef
from alecton.handlers import health_monitor
from alecton.handlers.health_monitor import HealthMonitor, TrackError
from alecton.kube.releases import ListingBudget, _manifests_of
from alecton.reconcile.health import State

NS = "web-ns"
CLUSTER = ObjectRef("team", "b")
ACCESS: Any = SimpleNamespace(identity="id", impersonate="", credentials="c", kubeconfig="", context="")


def manifest(name: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"


def storage_item(release: dict[str, Any]) -> dict[str, Any]:
    body = base64.b64encode(base64.b64encode(gzip.compress(json.dumps(release).encode()))).decode()
    name = f"sh.helm.release.v1.{release.get('name')}.v{release.get('version')}"
    return {"metadata": {"name": name}, "data": {"release": body}}


def test_storage_pages_decode_to_release_revision_and_parsed_manifest() -> None:
    items = [
        storage_item({"name": "a", "version": 3, "manifest": manifest("a")}),
        storage_item({"name": "b", "version": "3", "manifest": manifest("b")}),  # not helm's shape
        {"metadata": {"name": "junk"}, "data": {"release": "not base64!"}},
        storage_item({"name": "c", "version": "1", "manifest": "bad"}),  # not helm's shape either
    ]
    budget = ListingBudget()
    assert _manifests_of(items, budget) == [("a", 3, manifest("a"))]
    assert budget.secrets == 5000 - 4


def test_a_secret_not_named_as_helm_names_that_revision_cannot_speak_for_the_release() -> None:
    """Another writer of the namespace labels a Secret like helm's and claims release `a`,
    revision 3, with its own manifest: only helm's own `sh.helm.release.v1.a.v3` counts."""
    real = storage_item({"name": "a", "version": 3, "manifest": manifest("a")})
    forged = {**storage_item({"name": "a", "version": 3, "manifest": manifest("decoy")})}
    forged["metadata"] = {"name": "innocent-looking"}
    assert _manifests_of([forged], ListingBudget()) == []
    assert _manifests_of([forged, real], ListingBudget()) == [("a", 3, manifest("a"))]


def test_a_namespace_full_of_storage_lookalikes_stops_the_list_at_its_budget() -> None:
    """The tenant writes the namespace's storage: what one list decodes is bounded (the
    releases left are read on their own, each within MAX_RELEASE_BYTES)."""
    items = [storage_item({"name": f"r{i}", "version": 1, "manifest": manifest(f"r{i}")}) for i in range(10)]
    by_count = ListingBudget(secrets=3)
    assert [name for name, _, _ in _manifests_of(items, by_count)] == ["r0", "r1", "r2"]
    assert by_count.spent
    # A release costs the larger of its stored (gzip) and decoded sizes; tiny ones, their gzip.
    decoded = len(json.dumps({"name": "r0", "version": 1, "manifest": manifest("r0")}))
    one_release = max(decoded, len(base64.b64decode(base64.b64decode(items[0]["data"]["release"]))))
    by_bytes = ListingBudget(decoded_bytes=one_release * 2 + 1)
    assert len(_manifests_of(items, by_bytes)) == 2  # the third would go past it: the list stops
    assert by_bytes.spent
    bomb = storage_item({"name": "bomb", "version": 1, "manifest": "x" * 10_000})
    small = ListingBudget(decoded_bytes=1000)
    assert _manifests_of([bomb, *items], small) == [] and small.spent  # cut at 1000 bytes


class Harness:
    """A monitor whose helm storage is a dict, counting lists and reads."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, stored: dict[tuple[str, int], str]) -> None:
        self.lists = 0
        self.reads: list[str] = []
        self.list_fails = False
        self.notified: list[ObjectRef] = []
        self.monitor = HealthMonitor(self.notified.append)

        async def listing(_api: Any, namespace: str, _most: int) -> AsyncIterator:
            self.lists += 1
            await asyncio.sleep(0)  # every track of the restart asks before the list answers
            if self.list_fails:
                raise RuntimeError("403 Forbidden")
            yield [(release, revision, text) for (release, revision), text in stored.items()]

        async def read(_api: Any, release: str, namespace: str, revision: int) -> str:
            self.reads.append(release)
            if (release, revision) not in stored:
                raise RuntimeError("404 Not Found")
            return stored[(release, revision)]

        async def client(_key: Any, _access: Any) -> Any:
            return SimpleNamespace(api=None, resources={})

        monkeypatch.setattr(health_monitor, "deployed_manifests", listing)
        monkeypatch.setattr(health_monitor, "read_manifest", read)
        monkeypatch.setattr(self.monitor, "_client", client)

    async def track(self, release: str, revision: int = 1, listed: bool = True) -> None:
        ref = ObjectRef("team", release)
        await self.monitor.track(ref, CLUSTER, ACCESS, release, NS, revision, listed=listed)


def test_one_list_serves_every_release_tracked_at_a_restart(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        stored = {(f"r{i}", 1): manifest(f"r{i}") for i in range(20)}
        harness = Harness(monkeypatch, stored)
        await asyncio.gather(*(harness.track(f"r{i}") for i in range(20)))
        assert harness.lists == 1 and harness.reads == []
        assert harness.monitor.tracked_count == 20
        verdict = harness.monitor.verdict(ObjectRef("team", "r7"))
        assert verdict is not None and verdict.state is State.CURRENT
        assert verdict.message == "1 object healthy"
        await harness.monitor.close()

    asyncio.run(scenario())


def test_a_release_the_list_lacks_is_read_on_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        harness = Harness(monkeypatch, {("a", 1): manifest("a")})
        await harness.track("a")
        harness.monitor.untrack(ObjectRef("team", "a"))
        await harness.track("a")  # taken from the list already: read, not served twice
        with pytest.raises(TrackError, match="cannot read the manifest of b revision 1"):
            await harness.track("b")
        assert harness.lists == 1 and harness.reads == ["a", "b"]
        await harness.monitor.close()

    asyncio.run(scenario())


def test_a_failed_list_falls_back_to_reading_each_release(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        harness = Harness(monkeypatch, {("a", 1): manifest("a"), ("b", 1): manifest("b")})
        harness.list_fails = True
        await asyncio.gather(harness.track("a"), harness.track("b"))
        assert harness.lists == 1 and sorted(harness.reads) == ["a", "b"]
        assert harness.monitor.tracked_count == 2
        await harness.monitor.close()

    asyncio.run(scenario())


def test_after_helm_the_new_revision_is_read_not_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        harness = Harness(monkeypatch, {("a", 2): manifest("a")})
        await harness.track("a", 2, listed=False)
        assert harness.lists == 0 and harness.reads == ["a"]
        await harness.monitor.close()

    asyncio.run(scenario())


def assessment_done(monitor: HealthMonitor) -> asyncio.Event:
    """Set once the monitor has assessed (waited on: a condition, not a fixed sleep)."""
    done = asyncio.Event()
    assess = monitor._assess

    def assess_and_tell(*args: Any) -> None:
        assess(*args)
        done.set()

    monitor._assess = assess_and_tell  # type: ignore[method-assign]
    return done


def test_a_verdict_the_controller_acted_on_does_not_notify_again(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        ref = ObjectRef("team", "a")
        acted = Harness(monkeypatch, {("a", 1): manifest("a")})
        done = assessment_done(acted.monitor)
        await acted.track("a", listed=False)
        acted.monitor.seen(ref, acted.monitor.verdict(ref))
        assert acted.monitor.assessed_count == 1
        await asyncio.wait_for(done.wait(), 5)  # the assessment the track asked for
        assert acted.notified == []

        not_acted = Harness(monkeypatch, {("a", 1): manifest("a")})
        done = assessment_done(not_acted.monitor)
        await not_acted.track("a", listed=False)
        await asyncio.wait_for(done.wait(), 5)
        assert not_acted.notified == [ref]  # the first verdict is news to the controller
        await acted.monitor.close()
        await not_acted.monitor.close()

    asyncio.run(scenario())


def test_a_release_in_place_is_not_assessed_again_after_tracking(monkeypatch: pytest.MonkeyPatch) -> None:
    """At a restart the controller reads the verdict right after tracking: a pass over the
    namespace per tracked release would cost a thousand passes for nothing."""

    async def scenario() -> None:
        harness = Harness(monkeypatch, {("a", 1): manifest("a")})
        await harness.track("a")
        assert not harness.monitor._pending
        assert harness.monitor.verdict(ObjectRef("team", "a")) is not None
        await harness.monitor.close()

    asyncio.run(scenario())
