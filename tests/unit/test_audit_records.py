"""The audit trail's pure parts (reconcile/audit.py): a News as a ReleaseRecord and a JSON
line, names and labels, what retention removes, how failed writes wait, how records read."""

from __future__ import annotations

import datetime as dt
import json

from alecton.api.models import Image, ImageSource, ObjectRef
from alecton.reconcile.audit import (
    APPLICATION_LABEL,
    DEPLOYMENT_LABEL,
    KIND_LABEL,
    TARGET_LABEL,
    audit_line,
    expired,
    label_value,
    record_body,
    record_labels,
    record_name,
    records_of,
    retry_delay,
)
from alecton.reconcile.news import Kind, News, Severity

NEWS = News(
    kind=Kind.DEPLOYED, severity=Severity.INFO, namespace="team", deployment="web-prod", application="web",
    target="prod", time="2026-12-03T06:00:00Z", version="1.4.2", image="r/web:1.4.2", revision=7,
    cause="deploy", requested_by="system:serviceaccount:team:ci", input_digest="abc", message="deployed",
)  # fmt: skip
SOURCE = ImageSource(repository="github.com/org/web", revision="4f2c1e9a0b7d", url="https://x/4f2c1e9a0b7d",
                     committed_at="2026-12-01T09:30:00Z")  # fmt: skip
IMAGE = Image(ObjectRef("team", "web-1.4.2"), "web", "1.4.2", "r/web:1.4.2", "2026-12-02T10:00:00Z", SOURCE)


def test_a_record_is_the_news_with_the_images_source_and_no_owner() -> None:
    body = record_body(NEWS, IMAGE)
    assert body["kind"] == "ReleaseRecord" and body["apiVersion"] == "alecton.dev/v1alpha1"
    assert body["metadata"]["name"] == f"web-prod-{NEWS.key[:16]}"
    assert body["metadata"]["namespace"] == "team" and "ownerReferences" not in body["metadata"]
    assert body["metadata"]["labels"] == {APPLICATION_LABEL: "web", TARGET_LABEL: "prod",
                                          DEPLOYMENT_LABEL: "web-prod", KIND_LABEL: "Deployed"}  # fmt: skip
    spec = body["spec"]
    assert {k: v for k, v in spec.items() if k not in ("source", "imageCreatedAt")} == NEWS.as_dict()
    assert spec["source"] == SOURCE.as_dict() and spec["imageCreatedAt"] == "2026-12-02T10:00:00Z"
    assert News.from_dict(spec) == NEWS  # the News reads back from its record


def test_without_an_image_the_record_is_the_news_alone() -> None:
    assert record_body(NEWS, None)["spec"] == NEWS.as_dict()
    plain = Image(ObjectRef("team", "web-1"), "web", "1", "r/web:1", "")
    assert record_body(NEWS, plain)["spec"] == NEWS.as_dict()


def test_the_same_transition_has_the_same_name_and_another_one_another() -> None:
    from dataclasses import replace

    assert record_name(NEWS) == record_name(replace(NEWS, message="other words"))
    assert record_name(NEWS) != record_name(replace(NEWS, time="later"))  # a second episode
    assert record_name(NEWS) != record_name(replace(NEWS, kind=Kind.HEALTHY))
    long = replace(NEWS, deployment="d" * 253)
    assert len(record_name(long)) <= 253 and record_name(long).endswith("-" + long.key[:16])


def test_long_messages_and_extras_stay_within_the_crd() -> None:
    from dataclasses import replace

    spec = record_body(replace(NEWS, message="x" * 10_000, extra={"k": "v" * 5000}), None)["spec"]
    assert len(spec["message"]) == 4096 and spec["message"].endswith("…")
    assert len(spec["extra"]["k"]) == 1024


def test_label_values_are_valid_and_distinct() -> None:
    assert label_value("web") == "web"
    long_a, long_b = "a" * 70, "a" * 69 + "b"
    assert label_value(long_a) != label_value(long_b)
    for value in (label_value(long_a), label_value("weird name/with:chars"), label_value("-x-")):
        assert len(value) <= 63 and value[0].isalnum() and value[-1].isalnum(), value
    assert record_labels("web", "prod") == {APPLICATION_LABEL: "web", TARGET_LABEL: "prod"}


def test_the_audit_line_is_one_line_of_the_record() -> None:
    line = audit_line(NEWS.__class__(**{**NEWS.__dict__, "message": "two\nlines"}), IMAGE)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "two\nlines" and parsed["source"]["revision"] == "4f2c1e9a0b7d"
    assert parsed["requestedBy"] == "system:serviceaccount:team:ci" and parsed["key"]


def record(name: str, created: str, namespace: str = "team") -> dict[str, object]:
    return {"metadata": {"name": name, "namespace": namespace, "creationTimestamp": created}}


def test_retention_deletes_only_old_records_oldest_first_and_bounded() -> None:
    now = dt.datetime(2026, 12, 3, tzinfo=dt.UTC)
    records = [
        record("new", "2026-12-01T00:00:00Z"),
        record("old-2", "2025-10-01T00:00:00Z"),
        record("old-1", "2025-01-01T00:00:00Z", "other"),
        record("broken", "not a time"),
        record("edge", "2025-10-29T00:00:00Z"),  # 400 days before now: not older
    ]
    assert expired(records, now, 400, 10) == [("other", "old-1"), ("team", "old-2")]
    assert expired(records, now, 400, 1) == [("other", "old-1")]
    assert expired(records, now, 400, 0) == []


def test_failed_writes_wait_longer_each_time_up_to_a_cap() -> None:
    delays = [retry_delay(attempt) for attempt in range(10)]
    assert delays[:4] == [1.0, 2.0, 4.0, 8.0] and max(delays) == 60.0 and retry_delay(500) == 60.0


def test_records_read_newest_first_for_exactly_one_application_and_target() -> None:
    def rec(name: str, time: str, revision: int, app: str = "web", target: str = "prod") -> dict[str, object]:
        spec = {"application": app, "target": target, "time": time, "revision": revision, "kind": "Deployed"}
        return {"metadata": {"name": name}, "spec": spec}

    found = [rec("a", "2026-12-01T00:00:00Z", 1), rec("c", "2026-12-02T00:00:00Z", 3),
             rec("b", "2026-12-02T00:00:00Z", 2), rec("x", "2026-12-09T00:00:00Z", 9, target="staging"),
             {"metadata": {"name": "no-spec"}}]  # fmt: skip
    assert [r["name"] for r in records_of(found, "web", "prod", 10)] == ["c", "b", "a"]
    assert [r["name"] for r in records_of(found, "web", "prod", 1)] == ["c"]
    assert records_of(found, "web", "prod", 10)[0]["kind"] == "Deployed"


def test_the_service_reads_records_by_label_and_shows_the_columns_people_ask_for() -> None:
    import asyncio

    from alecton.service.records import record_row, release_records

    body = record_body(NEWS, IMAGE)

    class Client:
        selector = ""

        async def list(self, kind: str, namespace: str, label_selector: str = "") -> list[dict[str, object]]:
            assert (kind, namespace) == ("ReleaseRecord", "team")
            Client.selector = label_selector
            return [body]

    (found,) = asyncio.run(release_records(Client(), "team", "web", "prod", 5))  # type: ignore[arg-type]
    assert Client.selector == f"{APPLICATION_LABEL}=web,{TARGET_LABEL}=prod"
    assert record_row(found) == {
        "time": "2026-12-03T06:00:00Z", "event": "Deployed", "version": "1.4.2", "revision": "7",
        "commit": "4f2c1e9", "cause": "deploy", "by": "system:serviceaccount:team:ci", "result": "deployed",
    }  # fmt: skip
