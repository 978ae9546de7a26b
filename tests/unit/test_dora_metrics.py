"""The DORA metrics sink (handlers/dora_metrics.py) over live news, without a cluster."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alecton.api.models import Application, Image, ObjectRef
from alecton.handlers.dora_metrics import DoraMetrics, committed_at
from alecton.handlers.indexes import Indexes
from alecton.metrics import Metrics
from alecton.reconcile.news import Kind, News, Severity
from alecton.reconcile.times import epoch

T0 = "2026-11-01T00:00:"
LABELS = {"namespace": "team", "application": "web", "target": "prod"}


def news(kind: Kind, second: int, version: str = "1.0", revision: int = 2, **fields: Any) -> News:
    return News(kind, Severity.INFO, "team", "web-prod", "web", "prod", f"{T0}{second:02d}Z",
                version=version, revision=revision, **fields)  # fmt: skip


def sink_with_image(created: str = "2026-10-31T23:59:00Z") -> tuple[DoraMetrics, Metrics]:
    indexes = Indexes()
    indexes.applications = {
        ("team", "web"): [Application(ObjectRef("team", "web"), chart="webapp", image="web-img")]
    }
    indexes.images = {
        ("team", "web-img", "1.0"): [
            Image(ObjectRef("team", "web-1-0-later"), "web-img", "1.0", "r/web:1.0", "2026-10-31T23:59:30Z"),
            Image(ObjectRef("team", "web-1-0"), "web-img", "1.0", "r/web:1.0", created),
        ]
    }
    metrics = Metrics()
    return DoraMetrics(metrics.dora, indexes), metrics


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, {**LABELS, **labels})


def test_a_verified_deploy_counts_once_healthy_with_its_lead_time_from_the_oldest_image() -> None:
    sink, metrics = sink_with_image()
    sink.publish([news(Kind.DEPLOY_STARTED, 0), news(Kind.DEPLOYED, 1, verifying=True)])
    assert value(metrics, "alecton_deployments_total", result="success") is None
    sink.publish([news(Kind.HEALTHY, 5)])
    sink.publish([news(Kind.HEALTHY, 5, generation=3)])  # the same deploy again: counted once
    assert value(metrics, "alecton_deployments_total", result="success") == 1
    assert value(metrics, "alecton_lead_time_seconds_count") == 1
    assert value(metrics, "alecton_lead_time_seconds_sum") == 65  # 23:59:00 -> 00:00:05
    assert value(metrics, "alecton_last_deploy_timestamp_seconds") == epoch(f"{T0}05Z")


def test_a_health_failure_and_its_restore() -> None:
    sink, metrics = sink_with_image()
    sink.publish([news(Kind.DEPLOYED, 1, verifying=True), news(Kind.FAILED, 10, reason="HealthCheckFailed")])
    assert value(metrics, "alecton_deployments_total", result="failure") == 1
    assert value(metrics, "alecton_change_failures_total") == 1
    sink.publish([news(Kind.DEPLOYED, 20, "1.1", 3, verifying=True), news(Kind.HEALTHY, 40, "1.1", 3)])
    assert value(metrics, "alecton_time_to_restore_seconds_count") == 1
    assert value(metrics, "alecton_time_to_restore_seconds_sum") == 30
    assert value(metrics, "alecton_lead_time_seconds_count") is None  # 1.1 has no Image


def test_an_automatic_rollback_is_a_change_failure() -> None:
    sink, metrics = sink_with_image()
    sink.publish([news(Kind.DEPLOYED, 1, "1.1", 3, verifying=True)])
    sink.publish([news(Kind.ROLLED_BACK, 9, "1.0", 4, cause="automatic", previous_version="1.1")])
    assert value(metrics, "alecton_change_failures_total") == 1
    assert value(metrics, "alecton_deployments_total", result="failure") == 1


def test_an_uninstall_removes_the_series() -> None:
    sink, metrics = sink_with_image()
    sink.publish([news(Kind.DEPLOYED, 1), news(Kind.DEGRADED, 2)])
    assert value(metrics, "alecton_deployments_total", result="success") == 1
    sink.publish([news(Kind.UNINSTALLED, 3)])
    assert value(metrics, "alecton_deployments_total", result="success") is None
    assert value(metrics, "alecton_last_deploy_timestamp_seconds") is None
    sink.publish([news(Kind.DEPLOYED, 4, "1.1", 3)])  # a new Deployment of the pair: no old incident
    assert value(metrics, "alecton_time_to_restore_seconds_count") is None


def test_publish_never_raises() -> None:
    class Broken(Indexes):
        def application(self, namespace: str, name: str) -> Any:
            raise RuntimeError("index gone")

    metrics = Metrics()
    sink = DoraMetrics(metrics.dora, Broken())
    sink.publish([news(Kind.DEPLOYED, 1), news(Kind.DEGRADED, 2)])  # no exception
    assert value(metrics, "alecton_deployments_total", result="success") is None
    sink.publish([news(Kind.FAILED, 3, reason="UpgradeFailed")])  # kinds without a lookup still count
    sink.publish([News(Kind.HEALTHY, Severity.INFO, "team", "web-prod", "web", "prod", "not a time")])


def test_labels_are_only_namespace_application_and_target() -> None:
    sink, metrics = sink_with_image()
    sink.publish([news(Kind.DEPLOYED, 1), news(Kind.DEPLOYED, 2, "1.1", 3), news(Kind.DEPLOYED, 3, "1.2", 4)])
    labels = {
        frozenset(sample.labels)
        for family in metrics.registry.collect()
        if family.name.startswith(
            (
                "alecton_deployments",
                "alecton_lead",
                "alecton_change",
                "alecton_time_to",
                "alecton_last_deploy",
            )
        )
        for sample in family.samples
    }
    allowed = {"namespace", "application", "target", "result", "le"}
    assert labels and all(label_set <= allowed for label_set in labels)


def test_committed_at_is_read_defensively() -> None:
    image = Image(ObjectRef("team", "i"), "web", "1.0", "r/web:1.0", "2026-11-01T00:00:00Z")
    assert committed_at(image) == ""

    @dataclass(frozen=True)
    class WithDictSource:
        source: dict[str, str]

    @dataclass(frozen=True)
    class Source:
        committed_at: str

    @dataclass(frozen=True)
    class WithSource:
        source: Source | None

    assert committed_at(WithDictSource({"committedAt": "2026-10-30T00:00:00Z"})) == "2026-10-30T00:00:00Z"  # type: ignore[arg-type]
    assert committed_at(WithSource(Source("2026-10-29T00:00:00Z"))) == "2026-10-29T00:00:00Z"  # type: ignore[arg-type]
    assert committed_at(WithSource(None)) == ""  # type: ignore[arg-type]


def test_a_deployment_that_moves_takes_its_old_series_away_unless_another_still_feeds_them() -> None:
    sink, metrics = sink_with_image()
    sink.publish([news(Kind.DEPLOYED, 1)])
    other = News(
        Kind.DEPLOYED, Severity.INFO, "team", "web-prod-eu", "web", "prod", f"{T0}02Z", version="1.0"
    )
    sink.publish([other])  # a second Deployment feeding the same stream
    moved = News(Kind.DEPLOYED, Severity.INFO, "team", "web-prod", "web", "qa", f"{T0}03Z", version="1.0")
    sink.publish([moved])
    assert value(metrics, "alecton_deployments_total", result="success") == 2  # web-prod-eu still feeds it
    assert value(metrics, "alecton_deployments_total", target="qa", result="success") == 1
    sink.publish([News(Kind.UNINSTALLED, Severity.INFO, "team", "web-prod-eu", "web", "prod", f"{T0}04Z")])
    assert value(metrics, "alecton_deployments_total", result="success") is None
    back = News(Kind.DEPLOYED, Severity.INFO, "team", "web-prod", "web", "prod", f"{T0}05Z", version="1.0")
    sink.publish([back])
    assert value(metrics, "alecton_deployments_total", target="qa", result="success") is None
