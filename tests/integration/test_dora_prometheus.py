"""DORA metrics end to end: a real Prometheus (built from its Go module by `make tools`)
scrapes the operator while it deploys, fails a deploy's health check (rolled back
automatically) and restores, twice; then every query of the Grafana dashboard
(deploy/grafana/alecton-dora.json) returns a number through Prometheus's HTTP API.

And `alecton dora` over ReleaseRecords, read with the caller's own credentials.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import secrets
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from alecton.local.controlplane import free_port
from alecton.reconcile.news import Kind, News, Severity
from playwright.sync_api import ConsoleMessage, expect, sync_playwright

from tests.integration import resources as r
from tests.integration.harness import (
    REPO,
    Cluster,
    OperatorProcess,
    WebProcess,
    module_operator,
    wait_for,
    wait_phase,
)
from tests.integration.tenant import as_tenant

GOOD = "ghcr.io/stefanprodan/podinfo:6.7.0"
CRASH = "ghcr.io/stefanprodan/podinfo:6.9.0-crash"  # kwok crash-loops its pods
DASHBOARD = REPO / "deploy" / "grafana" / "alecton-dora.json"
QUERY_TIMEOUT = 5.0


class Prometheus:
    """The real Prometheus, scraping one target every second."""

    def __init__(self, binary: Path, target: str, work: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = work / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
                    "scrape_configs": [{"job_name": "alecton", "static_configs": [{"targets": [target]}]}],
                }
            )
        )
        self.log_path = work / "prometheus.log"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(binary), f"--config.file={config}", f"--storage.tsdb.path={work / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        wait_for(self.ready, 60, "Prometheus to be ready")

    def ready(self) -> bool:
        assert self.proc.poll() is None, f"Prometheus exited: {self.log_path.read_text()[-3000:]}"
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=QUERY_TIMEOUT) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        with urllib.request.urlopen(url, timeout=QUERY_TIMEOUT) as answer:
            body = json.load(answer)
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def value(self, expr: str) -> float:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else 0.0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def operator(crds: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """One operator (Helm 4): the figures do not depend on helm's major version."""
    with module_operator(crds, "helm", tmp_path_factory.mktemp("operator")) as process:
        yield process


@pytest.fixture(scope="module")
def prometheus(operator: OperatorProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    binary = operator.cluster.bin / "prometheus"
    if not binary.exists():
        pytest.fail(
            "no prometheus in .tools/bin: run `make tools` (hack/build-tools.sh builds it)", pytrace=False
        )
    server = Prometheus(binary, f"127.0.0.1:{operator.metrics_port}", tmp_path_factory.mktemp("prometheus"))
    try:
        yield server
    finally:
        server.stop()


def dashboard_queries() -> list[tuple[str, str]]:
    board = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in board["panels"] for target in panel["targets"]]


def as_grafana_would(expr: str, namespace: str) -> str:
    """The dashboard's variables as Grafana fills them: this namespace, a 10 minute range."""
    for name, value in (("$__range_s", "600"), ("$__range", "10m"), ("$namespace", namespace),
                        ("$application", "web"), ("$target", "staging")):  # fmt: skip
        expr = expr.replace(name, value)
    assert "$" not in expr, expr
    return expr


@pytest.mark.local_plane(reason="a crashing release (kwok's `-crash` image stage)")
def test_every_dashboard_query_returns_data_for_deploys_failures_and_restores(
    operator: OperatorProcess, prometheus: Prometheus
) -> None:
    cluster = operator.cluster
    ns = cluster.new_namespace("dora")
    app = r.application("web", f"{ns}-web", onFailure="Rollback", healthTimeout="2m")
    cluster.apply(r.cluster(), app, namespace=ns)
    where = f'namespace="{ns}", application="web", target="staging"'

    def seen(expr: str, at_least: float, what: str) -> None:
        wait_for(lambda: prometheus.value(expr) >= at_least, 90, f"Prometheus to see {what}")

    def deploy(version: str, image: str, phase: str) -> None:
        cluster.apply(r.image("web", version, image), namespace=ns)  # created now: the lead time's start
        cluster.apply(r.deployment("web", version), namespace=ns)
        wait_phase(cluster, ns, "web-staging", phase, timeout=120)

    for cycle in (1, 2):
        deploy(f"{cycle}.0.0", GOOD, "Deployed")
        seen(f'sum(alecton_deployments_total{{result="success", {where}}})', cycle, f"deploy {cycle}")
        seen(f"sum(alecton_lead_time_seconds_count{{{where}}})", cycle, f"lead time {cycle}")
        # The crashing version fails its health check and is rolled back automatically; the
        # rolled-back revision verifies healthy, which ends the incident.
        deploy(f"{cycle}.5.0", CRASH, "RolledBack")
        seen(f"sum(alecton_change_failures_total{{{where}}})", cycle, f"change failure {cycle}")
        seen(f'sum(alecton_deployments_total{{result="failure", {where}}})', cycle, f"failed deploy {cycle}")
        seen(f"sum(alecton_time_to_restore_seconds_count{{{where}}})", cycle, f"restore {cycle}")

    queries = dashboard_queries()
    assert len(queries) >= 6
    for title, expr in queries:
        result = prometheus.query(as_grafana_would(expr, ns))
        assert result, f"{title}: no data for {expr}"
        values = [float(series["value"][1]) for series in result]
        assert all(math.isfinite(v) for v in values), f"{title}: {values} for {expr}"
    ours = f'namespace="{ns}"'
    rate = prometheus.value(
        f"sum(alecton_change_failures_total{{{ours}}}) / sum(alecton_deployments_total{{{ours}}})"
    )
    assert rate == pytest.approx(0.5)


# ----- alecton dora over ReleaseRecords -----------------------------------------------------
STAND_IN_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "releaserecords.alecton.dev"},
    "spec": {
        "group": "alecton.dev",
        "scope": "Namespaced",
        "names": {"kind": "ReleaseRecord", "plural": "releaserecords", "singular": "releaserecord"},
        "versions": [{
            "name": "v1alpha1", "served": True, "storage": True,
            "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
        }],
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def release_records(crds: Cluster) -> Iterator[str]:
    """The ReleaseRecord CRD: the audit trail's when it is installed (crds/), else a stand-in
    with no schema, made here and removed afterwards (the audit trail owns the real one)."""
    present = crds.kubectl("get", "crd", "releaserecords.alecton.dev", check=False).returncode == 0
    if not present:
        crds.apply(STAND_IN_CRD, namespace="default")
        crds.kubectl("wait", "--for=condition=Established", "crd/releaserecords.alecton.dev", "--timeout=60s")
        wait_for(
            lambda: crds.kubectl("get", "releaserecords", "-A", check=False).returncode == 0, 30, "storage"
        )
    try:
        yield "audit" if present else "stand-in"
    finally:
        if not present:
            crds.kubectl("delete", "crd", "releaserecords.alecton.dev", "--wait=false", check=False)


def record(ns: str, kind: Kind, time_text: str, version: str, revision: int, **fields: Any) -> dict[str, Any]:
    news = News(kind, Severity.INFO, ns, "web-staging", "web", "staging", time_text, version=version,
                revision=revision, **fields)  # fmt: skip
    return {
        "apiVersion": "alecton.dev/v1alpha1",
        "kind": "ReleaseRecord",
        "metadata": {
            "name": f"web-staging-{news.key[:16]}",
            "labels": {
                "alecton.dev/application": "web",
                "alecton.dev/target": "staging",
                "alecton.dev/deployment": "web-staging",
                "alecton.dev/kind": str(kind),
            },
        },
        "spec": {**news.as_dict(), "source": {"committedAt": "2026-11-01T09:00:00Z"}},
    }


def dora_cli(kubeconfig: str, ns: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alecton", "dora", *args, "--kubeconfig", kubeconfig, "-n", ns],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_alecton_dora_reads_release_records_with_the_callers_credentials(
    crds: Cluster, release_records: str
) -> None:
    ns = crds.new_namespace("dora-records")
    other = crds.new_namespace("dora-other")
    try:
        crds.apply(
            record(ns, Kind.DEPLOYED, "2026-11-01T10:00:00Z", "1.0", 1, verifying=True),
            record(ns, Kind.HEALTHY, "2026-11-01T10:01:00Z", "1.0", 1),
            record(ns, Kind.DEPLOYED, "2026-11-02T10:00:00Z", "1.1", 2, verifying=True),
            record(ns, Kind.FAILED, "2026-11-02T10:02:00Z", "1.1", 2, reason="HealthCheckFailed"),
            record(ns, Kind.DEPLOYED, "2026-11-02T11:00:00Z", "1.2", 3),
            namespace=ns,
        )
        admin = dora_cli(crds.kubeconfig, ns, "web", "--target", "staging", "--since", "3650d", "-o", "json")
        assert admin.returncode == 0, admin.stderr
        (figures,) = json.loads(admin.stdout)["figures"]
        assert (figures["deploys"], figures["changeFailures"]) == (3, 1)
        assert figures["leadTimeSeconds"]["median"] == 3660  # committed 09:00, healthy 10:01
        assert figures["timeToRestoreSeconds"]["median"] == 58 * 60
        table = dora_cli(crds.kubeconfig, ns, "--since", "3650d")
        assert table.returncode == 0 and "staging" in table.stdout and "33%" in table.stdout, table

        # A tenant of another namespace reads with its own token: the API server refuses.
        stranger = as_tenant(crds, other, "alecton-viewer")
        refused = dora_cli(str(stranger.kubeconfig), ns, "--since", "3650d")
        assert refused.returncode != 0 and "forbidden" in refused.stderr.lower(), refused
        assert "web" not in refused.stdout
    finally:
        crds.kubectl("delete", "namespace", ns, other, "--wait=false", check=False)


def days_ago(days: float) -> str:
    moment = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_delivery_page_at_phone_width(crds: Cluster, release_records: str, tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium is needed (.ci/run installs it)"
    ns = crds.new_namespace("delivery")
    crds.apply(
        record(ns, Kind.DEPLOYED, days_ago(3), "1.0", 1, verifying=True),
        record(ns, Kind.HEALTHY, days_ago(2.99), "1.0", 1),
        record(ns, Kind.DEPLOYED, days_ago(2), "1.1", 2, verifying=True),
        record(ns, Kind.FAILED, days_ago(1.99), "1.1", 2, reason="HealthCheckFailed"),
        record(ns, Kind.DEPLOYED, days_ago(1), "1.2", 3),
        namespace=ns,
    )
    token = secrets.token_urlsafe(32)
    dashboard = WebProcess(
        ["dashboard", "--no-browser", "--kubeconfig", crds.kubeconfig, "--context", "alecton-a", "-n", ns],
        free_port(), tmp_path, env={"ALECTON_DASHBOARD_TOKEN": token},
    )  # fmt: skip
    problems: list[str] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            try:
                page = browser.new_context(viewport={"width": 375, "height": 800}).new_page()

                def console(message: ConsoleMessage) -> None:
                    if message.type in ("error", "warning"):
                        problems.append(f"console {message.type}: {message.text}")

                page.on("console", console)
                page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
                page.goto(f"{dashboard.url}/#token={token}")
                expect(page.locator("body")).to_have_attribute("data-ready", "true")
                page.locator('button[data-page="delivery"]').click()
                assert "page=delivery" in page.url
                card = page.locator('.delivery-card[data-app="web"][data-target="staging"]')
                expect(card).to_be_visible(timeout=30_000)
                expect(card.locator('[data-field="failure-rate"] .tile-value')).to_have_text("33%")
                expect(card.locator('[data-field="lead-time"] .tile-value')).not_to_have_text("—")
                assert card.locator("svg.chart rect.bar-ok").count() == 2  # two days with a success
                assert card.locator("svg.chart rect.bar-bad").count() == 1
                assert card.locator("svg.chart rect.bar-lead").count() == 2  # 1.0 and 1.2 became healthy
                assert page.evaluate("document.documentElement.scrollWidth") <= 375
                assert page.locator("#applications").is_hidden()
                shots = REPO / "test-artifacts" / "dashboard"
                shots.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(shots / "delivery-phone.png"), full_page=True)
                page.reload()  # the page is kept in the URL
                expect(card).to_be_visible(timeout=30_000)
            finally:
                browser.close()
    finally:
        dashboard.stop()
        crds.kubectl("delete", "namespace", ns, "--wait=false", check=False)
    assert problems == []
