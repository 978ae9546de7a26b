"""The audit trail's sink and sweep (handlers/audit.py) with a fake API: publish never waits
on the API, a full queue drops instead of blocking, 409 is done, failures are retried with a
capped backoff and invalid records given up, the JSON lines are private and one per News,
and retention deletes a bounded number of old records per sweep."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from alecton.api.models import Application, Image, ObjectRef
from alecton.handlers.audit import (
    MAX_ATTEMPTS,
    SWEEP_DELETES,
    AuditTrail,
    RetentionSweep,
    image_lookup,
    open_audit_log,
)
from alecton.handlers.indexes import Indexes
from alecton.kube.client import ApiException
from alecton.reconcile.news import Kind, News, Severity

from tests.unit.test_audit_records import IMAGE, NEWS


class Records:
    """The API as the audit trail sees it: create fails as told, list pages, delete."""

    def __init__(self) -> None:
        self.created: dict[str, dict[str, Any]] = {}
        self.failures: list[int] = []  # statuses the next creates fail with
        self.stored: list[dict[str, Any]] = []
        self.deleted: list[tuple[str, str]] = []
        self.pages: list[str] = []

    async def create(self, kind: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        assert kind == "ReleaseRecord" and namespace == body["metadata"]["namespace"]
        if self.failures:
            raise ApiException(status=self.failures.pop(0), reason="told to")
        if body["metadata"]["name"] in self.created:
            raise ApiException(status=409, reason="AlreadyExists")
        self.created[body["metadata"]["name"]] = body
        return body

    async def list_page(
        self, kind: str, namespace: str | None, limit: int, continue_token: str = "", label_selector: str = ""
    ) -> tuple[list[dict[str, Any]], str]:
        self.pages.append(continue_token)
        start = int(continue_token or 0)
        page = self.stored[start : start + limit]
        return page, str(start + limit) if start + limit < len(self.stored) else ""

    async def delete(self, kind: str, namespace: str, name: str) -> None:
        self.deleted.append((namespace, name))
        self.stored = [r for r in self.stored if r["metadata"]["name"] != name]


async def no_wait(seconds: float) -> None:
    waits.append(seconds)


waits: list[float] = []


def trail(client: Records, log_file: Any = None, queue_size: int = 10) -> AuditTrail:
    return AuditTrail(client, lambda news: IMAGE, log_file, queue_size=queue_size, sleep=no_wait)  # type: ignore[arg-type]


def test_publish_returns_at_once_and_the_writer_creates_the_record() -> None:
    async def scenario() -> Records:
        client = Records()
        sink = trail(client)
        sink.start()
        sink.publish([NEWS])
        assert client.created == {}  # nothing sent yet: publish never awaited the API
        await asyncio.wait_for(sink.queues["team"].join(), 5)
        await sink.stop()
        return client

    (body,) = asyncio.run(scenario()).created.values()
    assert body["spec"]["source"]["revision"] == "4f2c1e9a0b7d" and body["spec"]["version"] == "1.4.2"


def test_a_full_queue_drops_instead_of_blocking() -> None:
    async def scenario() -> AuditTrail:
        sink = trail(Records(), queue_size=2)  # not started: nothing drains
        sink.publish([NEWS, NEWS, NEWS])
        return sink

    sink = asyncio.run(scenario())
    assert sink.queued == 2 and sink.dropped == 1


def test_a_second_write_of_the_same_transition_is_done() -> None:
    client = Records()
    sink = trail(client)
    body = {"metadata": {"namespace": "team", "name": "web-prod-1"}, "spec": {}}
    assert asyncio.run(sink.write(body)) and asyncio.run(sink.write(body))
    assert list(client.created) == ["web-prod-1"] and sink.written == 1


def test_failures_are_retried_with_a_capped_backoff_and_invalid_records_given_up() -> None:
    client, body = Records(), {"metadata": {"namespace": "team", "name": "r"}, "spec": {}}
    sink = trail(client)
    waits.clear()
    client.failures = [500, 429, 403, 503]
    assert asyncio.run(sink.write(body)) and "r" in client.created
    assert waits == [1.0, 2.0, 4.0, 8.0]
    waits.clear()
    client.failures = [500] * MAX_ATTEMPTS
    assert not asyncio.run(sink.write({**body, "metadata": {"namespace": "team", "name": "s"}}))
    assert len(waits) == MAX_ATTEMPTS and max(waits) == 60.0
    waits.clear()
    client.failures = [422]
    assert (
        not asyncio.run(sink.write({**body, "metadata": {"namespace": "team", "name": "t"}})) and waits == []
    )


def test_a_sink_never_raises_into_the_controller() -> None:
    def broken(news: News) -> Image | None:
        raise RuntimeError("index gone")

    sink = AuditTrail(Records(), broken)  # type: ignore[arg-type]
    sink.publish([NEWS])  # logged, not raised
    assert sink.queued == 0


def test_the_audit_log_gets_one_json_line_per_news() -> None:
    out = io.StringIO()
    sink = trail(Records(), log_file=out)
    from dataclasses import replace

    sink.publish([NEWS, replace(NEWS, kind=Kind.HEALTHY, message="a\nb")])
    lines = out.getvalue().splitlines()
    assert [json.loads(line)["kind"] for line in lines] == ["Deployed", "Healthy"]
    assert json.loads(lines[0])["source"]["repository"] == "github.com/org/web"


def test_the_audit_log_file_is_private_and_appended(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text("earlier\n")
    path.chmod(0o644)
    handle = open_audit_log(str(path))
    handle.write("next\n")
    handle.close()
    assert path.read_text() == "earlier\nnext\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    fresh = tmp_path / "new.jsonl"
    open_audit_log(str(fresh)).close()
    assert stat.S_IMODE(os.stat(fresh).st_mode) == 0o600


def test_the_image_of_a_news_comes_from_the_indexes() -> None:
    indexes = Indexes()
    app = Application.parse({"metadata": {"name": "web", "namespace": "team"},
                             "spec": {"chart": "c", "image": "web-image", "targets": []}})  # fmt: skip
    newer = Image(ObjectRef("team", "b"), "web-image", "1.4.2", "r/other", "2026-12-03T00:00:00Z")
    oldest = Image(ObjectRef("team", "a"), "web-image", "1.4.2", "r/web:1.4.2", "2026-12-01T00:00:00Z")
    indexes.applications = {("team", "web"): [app]}
    indexes.images = {("team", "web-image", "1.4.2"): [newer, oldest]}
    lookup = image_lookup(indexes)
    assert lookup(NEWS) == oldest  # the authoritative Image, as the operator picks
    from dataclasses import replace

    assert lookup(replace(NEWS, version="9.9.9")) is None
    assert lookup(replace(NEWS, application="gone")) is None


def test_retention_deletes_old_records_page_by_page_bounded_per_sweep() -> None:
    client = Records()
    now = dt.datetime(2026, 12, 3, tzinfo=dt.UTC)

    def made(name: str, created: str) -> dict[str, Any]:
        return {"metadata": {"name": name, "namespace": "team", "creationTimestamp": created}}

    old = [made(f"old-{i:04}", "2024-01-01T00:00:00Z") for i in range(SWEEP_DELETES + 30)]
    new = [made(f"new-{i}", "2026-12-01T00:00:00Z") for i in range(700)]
    client.stored = new + old  # the old ones are on the second and third pages
    sweep = RetentionSweep(client, 400, now=lambda: now)  # type: ignore[arg-type]
    assert asyncio.run(sweep.sweep()) == SWEEP_DELETES
    assert all(name.startswith("old-") for _, name in client.deleted)
    assert asyncio.run(sweep.sweep()) == 30  # the next sweep goes on and finishes
    assert len(set(client.deleted)) == SWEEP_DELETES + 30


def test_an_expired_continue_token_starts_the_list_again() -> None:
    class Expiring(Records):
        async def list_page(self, *args: Any, **kwargs: Any) -> tuple[list[dict[str, Any]], str]:
            raise ApiException(status=410, reason="Expired")

    sweep = RetentionSweep(Expiring(), 400)  # type: ignore[arg-type]
    sweep._token = "stale"
    assert asyncio.run(sweep.sweep()) == 0 and sweep._token == ""


@pytest.mark.parametrize("severity", list(Severity))
def test_every_severity_is_recorded(severity: Severity) -> None:
    from dataclasses import replace

    client = Records()
    sink = trail(client)
    sink.publish([replace(NEWS, severity=severity)])
    body = sink.queues[NEWS.namespace].get_nowait()
    assert body["spec"]["severity"] == str(severity)


def test_a_clean_stop_writes_what_is_queued_and_a_broken_write_does_not_stop_the_writer() -> None:
    class Flaky(Records):
        async def create(self, kind: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
            if body["metadata"]["name"] == "bad":
                raise RuntimeError("a bug")
            return await super().create(kind, namespace, body)

    async def scenario() -> Records:
        client = Flaky()
        sink = trail(client)
        sink.start()
        sink.enqueue({"metadata": {"namespace": "team", "name": "bad"}, "spec": {}})
        sink.publish([NEWS])
        await sink.stop()  # drains before stopping
        return client

    assert len(asyncio.run(scenario()).created) == 1


def test_a_dropped_connection_is_retried() -> None:
    import aiohttp

    class Disconnecting(Records):
        calls = 0

        async def create(self, kind: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
            Disconnecting.calls += 1
            if Disconnecting.calls == 1:
                raise aiohttp.ServerDisconnectedError()
            return await super().create(kind, namespace, body)

    client = Disconnecting()
    assert asyncio.run(trail(client).write({"metadata": {"namespace": "team", "name": "r"}, "spec": {}}))
    assert list(client.created) == ["r"] and Disconnecting.calls == 2
