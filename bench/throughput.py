"""Time to Deploy many Deployments applied at once, and where the CPU went meanwhile."""

from __future__ import annotations

import time
from typing import Any

from harness import Bench, Operator, new_namespace, workload
from machine import COMPONENTS, children_cpu_seconds, component_cpu, cpu_seconds, rss_mib


def throughput(
    bench: Bench, count: int, concurrency: int, health: bool = False, shards: int = 0, replicas: int = 1
) -> dict[str, Any]:
    """`count` Deployments applied at once until all are Deployed; with `shards`, one
    operator per shard (each `concurrency` helm workers), the Deployments spread evenly.
    Also where the CPU went: the operator, its helm children, each control-plane component."""
    suffix = (
        ("-health" if health else "")
        + (f"-{shards}shards" if shards else "")
        + (f"-r{replicas}" if replicas != 1 else "")
    )
    ns = new_namespace(bench, f"tp-{count}-{concurrency}{suffix}")
    operators = [Operator(bench, concurrency, ns, f"s{i}") for i in range(shards)] or [
        Operator(bench, concurrency, ns)
    ]
    watch = bench.watch_phases(ns)
    try:
        cpu_before = [cpu_seconds(o.proc.pid) for o in operators]
        helm_before = [children_cpu_seconds(o.proc.pid) for o in operators]
        components_before = component_cpu()
        started = time.monotonic()
        bench.apply(workload(ns, count, f"{ns}-web", health=health, shards=shards, replicas=replicas), ns)
        watch.wait_count("Deployed", count, 1800)
        elapsed = time.monotonic() - started
        components_after = component_cpu()
        return {
            "count": count,
            "concurrency": concurrency,
            "health": health,
            "shards": shards,
            "replicas": replicas,
            "seconds": elapsed,
            "operator_cpu_s": sum(
                cpu_seconds(o.proc.pid) - b for o, b in zip(operators, cpu_before, strict=True)
            ),
            "helm_cpu_s": sum(
                children_cpu_seconds(o.proc.pid) - b for o, b in zip(operators, helm_before, strict=True)
            ),
            "component_cpu_s": {
                name: components_after[name] - components_before[name] for name in COMPONENTS
            },
            "operator_peak_rss_mib": max(rss_mib(o.proc.pid, "VmHWM") for o in operators),
            "helm_upgrades": sum(
                o.metric("alecton_helm_invocations_total", action="upgrade") for o in operators
            ),
            "health_watches": sum(o.metric("alecton_health_watches") for o in operators),
            "namespace": ns,
        }
    finally:
        watch.close()
        for operator in operators:
            operator.stop()
