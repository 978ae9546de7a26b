"""The delivery loop against a local aiohttp receiver (no cluster): retries until success,
each News once, refused addresses never connected to, the queue bounded, the sink never
raising and never crossing namespaces."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from alecton.handlers import notify_delivery
from alecton.handlers.indexes import Indexes
from alecton.handlers.notifiers import Notifiers
from alecton.metrics import Metrics
from alecton.reconcile.news import Kind, News, Severity
from alecton.reconcile.notify_address import parse_networks

LOOPBACK = parse_networks(["127.0.0.0/8"])


class Kube:
    """What the delivery loop calls on the KubeClient."""

    def __init__(self) -> None:
        self.statuses: list[tuple[str, str, dict[str, Any]]] = []
        self.secrets: dict[tuple[str, str], dict[str, bytes]] = {}

    async def read_secret(self, namespace: str, name: str) -> dict[str, bytes] | None:
        return self.secrets.get((namespace, name))

    async def patch_status(
        self, kind: str, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        self.statuses.append((namespace, name, status))
        return {}


def news(namespace: str = "team-a", version: str = "1.0.0") -> News:
    return News(
        kind=Kind.DEPLOYED,
        severity=Severity.INFO,
        namespace=namespace,
        deployment="web-staging",
        application="web",
        target="staging",
        time="2026-12-03T06:00:00Z",
        version=version,
    )


def notifier(namespace: str, address: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "hook", "namespace": namespace, "generation": 1},
        "spec": {"provider": "webhook", "address": address, **spec},
    }


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():  # noqa: ASYNC110 (polls a condition, bounded by the timeout)
            await asyncio.sleep(0.01)


async def receiver(answers: list[int]) -> tuple[web.AppRunner, str, list[str]]:
    """A receiver answering `answers` in turn (then 200); the keys of what it accepted."""
    accepted: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        code = answers.pop(0) if answers else 200
        if code == 200:
            accepted.append(request.headers["X-Alecton-Key"])
        return web.Response(status=code)

    app = web.Application()
    app.router.add_post("/", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/", accepted


def hub(kube: Kube, allowed: Any = LOOPBACK) -> Notifiers:
    return Notifiers(kube, Indexes(), Metrics().notifier_metrics(), allowed, "alecton-system")  # type: ignore[arg-type]


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notify_delivery, "BACKOFF_BASE", 0.01)
    monkeypatch.setattr(notify_delivery, "STATUS_INTERVAL", 0.05)


def test_retries_until_accepted_once_each_and_only_in_its_namespace() -> None:
    async def scenario() -> None:
        runner, url, accepted = await receiver([503, 503])
        kube = Kube()
        notifiers = hub(kube)
        await notifiers.changed(notifier("team-a", url), "Notifier")
        first, second = news(), news(version="1.0.1")
        notifiers.publish([first, news("team-b"), first])  # another namespace; a repeat
        notifiers.publish([second])
        await until(lambda: len(accepted) == 2)
        delivery = notifiers.deliveries[("Notifier", "team-a", "hook")]
        await until(
            lambda: any(s[2].get("failures") == 2 and s[2].get("lastDelivery") for s in kube.statuses)
        )
        assert accepted == [first.key, second.key]
        assert delivery.state.failures == 2 and not delivery.state.retrying
        await notifiers.stop()
        await runner.cleanup()

    run(scenario)


def test_a_name_resolving_to_loopback_is_refused_at_connect_time() -> None:
    async def scenario() -> None:
        runner, url, accepted = await receiver([])
        port = url.rsplit(":", 1)[1].rstrip("/")
        kube = Kube()
        notifiers = hub(kube, allowed=())  # nothing internal allowed
        await notifiers.changed(notifier("team-a", f"https://localhost:{port}/"), "Notifier")
        notifiers.publish([news()])
        delivery = notifiers.deliveries[("Notifier", "team-a", "hook")]
        await until(lambda: delivery.state.last is not None)
        assert delivery.state.last is not None and delivery.state.last.result == "refused"
        assert (
            "localhost resolves to" in delivery.state.last.reason and "loopback" in delivery.state.last.reason
        )
        assert delivery.state.problem is not None and delivery.state.problem[0] == "AddressRefused"
        assert accepted == []
        await notifiers.stop()
        await runner.cleanup()

    run(scenario)


def test_an_ip_literal_is_refused_before_any_news() -> None:
    async def scenario() -> None:
        kube = Kube()
        notifiers = hub(kube)
        await notifiers.changed(notifier("team-a", "http://169.254.169.254/"), "Notifier")
        await until(lambda: bool(kube.statuses))
        condition = kube.statuses[-1][2]["conditions"][0]
        assert condition["reason"] == "AddressRefused" and "link-local" in condition["message"]
        await notifiers.stop()

    run(scenario)


def test_the_queue_is_bounded_and_publish_never_blocks_or_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notify_delivery, "QUEUE_SIZE", 3)

    async def scenario() -> None:
        kube = Kube()
        notifiers = hub(kube)
        await notifiers.changed(notifier("team-a", "https://hooks.example.com/", suspend=True), "Notifier")
        notifiers.publish([news(version=str(v)) for v in range(5)])  # suspended: nothing queued
        delivery = notifiers.deliveries[("Notifier", "team-a", "hook")]
        assert len(delivery.queue) == 0
        for v in range(5):
            delivery.offer(news(version=str(v)))
        assert len(delivery.queue) == 3 and delivery.state.dropped == 2
        settings, delivery.settings = delivery.settings, object()  # type: ignore[assignment]
        notifiers.publish([news()])  # matching raised: logged, not raised
        delivery.settings = settings
        await notifiers.stop()

    run(scenario)


def test_an_invalid_spec_is_reported_once() -> None:
    async def scenario() -> None:
        kube = Kube()
        notifiers = hub(kube)
        bad = {"metadata": {"name": "x", "namespace": "a", "generation": 2}, "spec": {"provider": "pager"}}
        await notifiers.changed(bad, "Notifier")
        await notifiers.changed(bad, "Notifier")
        assert len(kube.statuses) == 1
        assert kube.statuses[0][2]["conditions"][0]["reason"] == "InvalidSpec"
        assert notifiers.deliveries == {}

    run(scenario)
