"""deploy/grafana/alecton-dora.json is built only on the operator's DORA metrics (the
integration test test_dora_prometheus.py runs every query against a real Prometheus)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from alecton.metrics import Metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "alecton-dora.json"
DORA_FAMILIES = {
    "alecton_deployments_total",
    "alecton_change_failures_total",
    "alecton_lead_time_seconds_bucket",
    "alecton_time_to_restore_seconds_bucket",
    "alecton_last_deploy_timestamp_seconds",
}


def test_every_query_uses_only_the_dora_metrics_the_operator_exposes() -> None:
    board = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in board["panels"] for target in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\balecton_[a-z_]+", expr)}
    assert used == DORA_FAMILIES
    metrics = Metrics()
    metrics.dora.deployed(("ns", "app", "target"), True, 1.0)
    metrics.dora.deployed(("ns", "app", "target"), False, 2.0)
    metrics.dora.lead_time.labels("ns", "app", "target").observe(1)
    metrics.dora.time_to_restore.labels("ns", "app", "target").observe(1)
    exposed = {sample.name for family in metrics.registry.collect() for sample in family.samples}
    assert exposed >= DORA_FAMILIES


def test_panels_cover_the_four_keys_and_use_the_datasource_variable() -> None:
    board = json.loads(DASHBOARD.read_text())
    titles = " ".join(panel["title"] for panel in board["panels"]).lower()
    for key in ("deployment frequency", "lead time", "change failure rate", "time to restore"):
        assert key in titles
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    assert all(panel["datasource"]["uid"] == "${datasource}" for panel in board["panels"])
    names = [variable["name"] for variable in board["templating"]["list"]]
    assert names == ["datasource", "namespace", "application", "target"]
