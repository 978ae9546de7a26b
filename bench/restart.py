"""An operator restarted on releases already Deployed: helm upgrades it runs, time to idle."""

from __future__ import annotations

import time
from typing import Any

from harness import Bench, Operator
from machine import rss_mib, tree_rss_mib


def restart(bench: Bench, namespace: str, count: int, health: bool, shard: str = "") -> dict[str, Any]:
    """Restart with `count` Deployed resources: helm upgrades run and time to idle. `shard`:
    the operator of that shard alone, on its share of the namespace."""
    started = time.monotonic()
    operator = Operator(bench, 4, namespace, shard)
    try:
        bench.wait(lambda: operator.metric("alecton_reconciles_total", result="unchanged") >= count, 120, 0.1)
        checked = time.monotonic() - started  # process start to every Deployment checked
        assessed = None
        if health:  # process start to a health verdict for every release (every watch listed)
            bench.wait(lambda: operator.metric("alecton_health_assessed_releases") >= count, 120, 0.1)
            assessed = time.monotonic() - started
        time.sleep(10)  # idle: what the operator keeps for `count` Deployed releases and their histories
        return {
            "count": count,
            "helm_upgrades": operator.metric("alecton_helm_invocations_total", action="upgrade"),
            "start_to_idle_s": checked,
            "start_to_verdicts_s": assessed,
            "idle_rss_mib": tree_rss_mib([operator.proc.pid]),  # with any helm process it keeps
            "peak_rss_mib": rss_mib(operator.proc.pid, "VmHWM"),
            "health": health,
            "shard": shard,
            "history_entries": sum(
                len(status.get("history") or []) for status in bench.phases(namespace).values()
            ),
        }
    finally:
        operator.stop()
