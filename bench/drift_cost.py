"""Operator CPU spent on drift checks of Deployed releases."""

from __future__ import annotations

import json
import time
from typing import Any

from harness import Bench, Operator
from machine import cpu_seconds


def _set_drift(bench: Bench, namespace: str, drift: dict[str, Any]) -> None:
    names = bench.kubectl("get", "applications.alecton.dev", "-n", namespace, "-o", "name").split()
    for name in names:
        patch = json.dumps({"spec": {"drift": drift}})
        bench.kubectl("patch", name, "-n", namespace, "--type=merge", "-p", patch)


def drift_cost(bench: Bench, namespace: str, count: int, interval: int, window: float) -> dict[str, Any]:
    """Operator CPU of drift checks (mode Warn) of `count` Deployed releases: idle with drift
    Off, then checks every `interval` seconds (the shortest allowed, 20x the default 10 min)
    over `window` seconds of steady state; the 10 min figure is derived from the measured
    cost per check."""
    operator = Operator(bench, 8, namespace)
    try:
        _set_drift(bench, namespace, {"mode": "Off"})
        bench.wait(lambda: operator.metric("alecton_reconciles_total", result="unchanged") >= count, 180, 0.5)
        time.sleep(5)  # let the requeue of every Deployment after the Applications changed finish
        pid = operator.proc.pid
        cpu, started = cpu_seconds(pid), time.monotonic()
        time.sleep(window / 2)
        idle_share = (cpu_seconds(pid) - cpu) / (time.monotonic() - started)
        _set_drift(bench, namespace, {"mode": "Warn", "interval": f"{interval}s"})
        time.sleep(interval + 5)  # the first round is spread over one interval: then steady state
        cpu, started = cpu_seconds(pid), time.monotonic()
        checks = operator.metric("alecton_drift_checks_total")
        upgrades = operator.metric("alecton_helm_invocations_total")
        time.sleep(window)
        elapsed = time.monotonic() - started
        cpu_used = cpu_seconds(pid) - cpu
        done = operator.metric("alecton_drift_checks_total") - checks
        per_check = max(0.0, cpu_used - idle_share * elapsed) / max(done, 1)
        return {
            "count": count,
            "interval_s": interval,
            "window_s": elapsed,
            "checks": done,
            "drifted": operator.metric("alecton_drift_checks_total", result="drifted"),
            "helm_runs": operator.metric("alecton_helm_invocations_total") - upgrades,
            "idle_cpu_share": idle_share,
            "cpu_share": cpu_used / elapsed,
            "cpu_per_check_ms": per_check * 1000,
            "cpu_share_at_10m": idle_share + per_check * count / 600,
            "mean_check_s": (
                operator.metric("alecton_drift_check_duration_seconds_sum")
                / max(operator.metric("alecton_drift_check_duration_seconds_count"), 1)
            ),
        }
    finally:
        operator.stop()
