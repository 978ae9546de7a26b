"""Prometheus metrics of the operator (exposed by `handlers.probes`)."""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class PhaseCollector(Collector):
    """`alecton_deployments{phase}`, counted from the in-memory index at scrape time."""

    def __init__(self, phases: Callable[[], Iterable[str]]) -> None:
        self._phases = phases

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("alecton_deployments", "Deployments by phase", labels=["phase"])
        for phase, count in sorted(Tally(self._phases()).items()):
            family.add_metric([phase], count)
        yield family


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reconciles = Counter(
            "alecton_reconciles", "Deployment reconciles by result", ["result"], registry=self.registry
        )
        self.helm_invocations = Counter(
            "alecton_helm_invocations",
            "helm commands run, by action and outcome",
            ["action", "outcome"],
            registry=self.registry,
        )
        self.helm_duration = Histogram(
            "alecton_helm_duration_seconds",
            "Duration of helm commands",
            ["action"],
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=self.registry,
        )
        self.helm_in_flight = Gauge(
            "alecton_helm_in_flight", "helm processes running now", registry=self.registry
        )
        self.health_watches = Gauge(
            "alecton_health_watches",
            "watches (informers) the health checks hold open, shared per cluster, namespace and kind",
            registry=self.registry,
        )
        self.health_tracked = Gauge(
            "alecton_health_tracked_releases",
            "releases whose health is being followed",
            registry=self.registry,
        )
        self.health_assessed = Gauge(
            "alecton_health_assessed_releases",
            "followed releases with a verdict (every watch they need has listed)",
            registry=self.registry,
        )

        self.drift_checks = Counter(
            "alecton_drift_checks",
            "drift checks of deployed releases, by result (in_sync, drifted, corrected, "
            "correction_failed, error)",
            ["result"],
            registry=self.registry,
        )
        self.drift_duration = Histogram(
            "alecton_drift_check_duration_seconds",
            "Duration of drift checks (manifest read, object reads, comparison, correction)",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )

        self._notifier_metrics: NotifierMetrics | None = None
        self.dora = DoraSeries(self.registry)

    def watch_phases(self, phases: Callable[[], Iterable[str]]) -> None:
        self.registry.register(PhaseCollector(phases))

    def helm_started(self) -> None:
        self.helm_in_flight.inc()

    def helm_finished(self, action: str, started: float, ok: bool) -> None:
        self.helm_in_flight.dec()
        self.helm_duration.labels(action).observe(time.monotonic() - started)
        self.helm_invocations.labels(action, "success" if ok else "failure").inc()

    # ----- notifications (handlers/notifiers.py) -----------------------------------------

    def notifier_metrics(self) -> NotifierMetrics:
        if self._notifier_metrics is None:
            self._notifier_metrics = NotifierMetrics(self.registry)
        return self._notifier_metrics


class NotifierMetrics:
    """Per Notifier (`namespace/name`, `cluster/name` for a ClusterNotifier)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.deliveries = Counter(
            "alecton_notification_deliveries",
            "Notification attempts by notifier, provider and result (success, failure, skipped, refused)",
            ["notifier", "provider", "result"],
            registry=registry,
        )
        self.queued = Gauge(
            "alecton_notification_queue_depth",
            "News waiting to be delivered, by notifier",
            ["notifier"],
            registry=registry,
        )
        self.dropped = Counter(
            "alecton_notification_dropped",
            "News dropped because a notifier's queue was full (the oldest goes)",
            ["notifier"],
            registry=registry,
        )

    def forget(self, notifier: str) -> None:
        """Every series of a deleted Notifier goes, counters too: a tenant making Notifiers of
        fresh names must not grow /metrics without bound. (A Notifier made again under the
        same name starts its counters at 0, which `rate()` reads as a counter reset.)"""
        for metric in (self.deliveries, self.queued, self.dropped):
            metric.remove_by_labels({"notifier": notifier})


class DoraSeries:
    """DORA metrics per (namespace, application, target), fed by `handlers.dora_metrics`. No
    other label: versions, revisions and reasons would grow without bound. The series of an
    uninstalled Deployment are removed (`forget`)."""

    LABELS = ("namespace", "application", "target")

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = list(self.LABELS)
        self.deployments = Counter(
            "alecton_deployments",  # exposed as alecton_deployments_total
            "Deploys that reached the target, by result (success: healthy; failure: health check "
            "failed or rolled back automatically)",
            [*labels, "result"],
            registry=registry,
        )
        self.change_failures = Counter(
            "alecton_change_failures",
            "Deploys whose health check failed or that were rolled back automatically",
            labels,
            registry=registry,
        )
        self.lead_time = Histogram(
            "alecton_lead_time_seconds",
            "From the source commit (else the Image's creation) to the version's first healthy deploy",
            labels,
            buckets=(10, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400, 259200, 604800, 2592000),
            registry=registry,
        )
        self.time_to_restore = Histogram(
            "alecton_time_to_restore_seconds",
            "From the first Failed/Degraded/automatic rollback to the next healthy release",
            labels,
            buckets=(10, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400, 259200, 604800),
            registry=registry,
        )
        self.last_deploy = Gauge(
            "alecton_last_deploy_timestamp_seconds",
            "When the newest deploy (success or failure) reached its verdict, Unix time",
            labels,
            registry=registry,
        )

    def deployed(self, stream: tuple[str, str, str], success: bool, at: float) -> None:
        self.deployments.labels(*stream, "success" if success else "failure").inc()
        if not success:
            self.change_failures.labels(*stream).inc()
        self.last_deploy.labels(*stream).set(at)

    def forget(self, stream: tuple[str, str, str]) -> None:
        # `remove` of a label set that was never used is a no-op in prometheus_client.
        for metric in (self.change_failures, self.lead_time, self.time_to_restore, self.last_deploy):
            metric.remove(*stream)
        for result in ("success", "failure"):
            self.deployments.remove(*stream, result)
