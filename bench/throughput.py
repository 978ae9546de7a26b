"""Time to deploy many releases applied at once, and where the CPU and memory went meanwhile:
through alecton, or through Flux's controllers on the same control plane."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flux import Flux, flux_watch, flux_workload, kubeconfig_of_b
from harness import Bench, ConditionWatch, Operator, new_namespace, workload
from machine import COMPONENTS, MemorySampler, component_cpu, rss_mib, tree_cpu_seconds


def _measure(
    roots: list[int], watch: ConditionWatch, phase: str, count: int, apply: Callable[[], None]
) -> dict[str, Any]:
    """Apply the wave, wait until `count` objects reach `phase`; the engine's CPU (its process
    trees: helm children included) and its peak memory (sampled sum over those trees)."""
    sampler = MemorySampler(roots)
    cpu_before = tree_cpu_seconds(roots)
    components_before = component_cpu()
    started = time.monotonic()
    try:
        apply()
        watch.wait_count(phase, count, max(3600, count * 0.6))
    finally:
        peak = sampler.stop()
    elapsed = time.monotonic() - started
    components_after = component_cpu()
    return {
        "seconds": elapsed,
        "engine_cpu_s": tree_cpu_seconds(roots) - cpu_before,
        "engine_peak_mib": peak,
        "memory_samples": sampler.samples,
        "component_cpu_s": {name: components_after[name] - components_before[name] for name in COMPONENTS},
    }


def throughput(
    bench: Bench,
    count: int,
    concurrency: int,
    health: bool = False,
    shards: int = 0,
    replicas: int = 1,
    repository: str = "",
) -> dict[str, Any]:
    """`count` Deployments applied at once until all are Deployed; with `shards`, one
    operator per shard (each `concurrency` helm workers), the Deployments spread evenly.
    `repository`: the chart from that chart repository (as Flux gets it) instead of the
    operator's charts directory."""
    suffix = (
        ("-health" if health else "")
        + (f"-{shards}shards" if shards else "")
        + (f"-r{replicas}" if replicas != 1 else "")
        + ("-repo" if repository else "")
    )
    ns = new_namespace(bench, f"tp-{count}-{concurrency}{suffix}")
    operators = [Operator(bench, concurrency, ns, f"s{i}") for i in range(shards)] or [
        Operator(bench, concurrency, ns)
    ]
    watch = bench.watch_phases(ns)
    docs = workload(
        ns, count, f"{ns}-web", health=health, shards=shards, replicas=replicas, repository=repository
    )
    try:
        measured = _measure(
            [o.proc.pid for o in operators], watch, "Deployed", count, lambda: bench.apply(docs, ns)
        )
        return {
            "engine": "alecton",
            "count": count,
            "concurrency": concurrency,
            "health": health,
            "shards": shards,
            "replicas": replicas,
            "chart_source": "repository" if repository else "directory",
            **measured,
            # The operator alone (its own peak), beside the tree's sampled peak.
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


def flux_throughput(
    bench: Bench, count: int, concurrency: int, health: bool, repository: str, replicas: int = 1
) -> dict[str, Any]:
    """The same wave through Flux: `count` HelmReleases applied at once until all are Ready."""
    ns = new_namespace(bench, f"flux-{count}-{concurrency}{'-health' if health else ''}")
    flux = Flux(bench, ns, concurrency)
    watch = flux_watch(bench, ns)
    docs = flux_workload(ns, count, f"{ns}-web", repository, kubeconfig_of_b(bench), health, replicas)
    try:
        measured = _measure(flux.pids, watch, "Ready", count, lambda: bench.apply(docs, ns))
        return {
            "engine": "flux",
            "count": count,
            "concurrency": concurrency,
            "health": health,
            "replicas": replicas,
            "chart_source": "repository",
            **measured,
            "namespace": ns,
        }
    finally:
        watch.close()
        flux.stop()
