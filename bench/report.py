"""The results as the table of docs/benchmarks.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

RESTART_HEALTH = " (health on: every release followed again)"
# Issue 26's goals: against Flux in the same run (the side-by-side table), and 1000 on its own.
GOALS = {
    100: "<= 0.6x Flux's time, same run",
    500: "<= 0.6x Flux's time, same run",
    1000: "<= 0.6x Flux's time, same run; <= 150 s in a run of its own",
}


def render(results: dict[str, Any]) -> str:
    v, o, c = (results[k] for k in ("versions", "overhead", "cost"))
    lines = [
        f"Machine: {v['cpus']} cores, {v['memory_gib']} GiB, shared by etcd, both kube-apiservers, "
        f"the operator and helm. Kubernetes {v['kubernetes']}, helm {v['helm']}, Python {v['python']}.",
        "",
        "| measurement | result | goal |",
        "|---|---|---|",
        f"| overhead: apply -> `Deployed`, median of {o['runs']} | {o['operator_median_s']:.3f} s vs "
        f"{o['helm_median_s']:.3f} s for the same `helm upgrade --install` run directly: "
        f"**ratio {o['ratio']:.2f}** | <= 1.10 |",
    ]
    for t in results["throughput"]:
        goal = GOALS.get(t["count"], "")
        health = (
            f"health **on** (pods Ready on kwok nodes; {t['health_watches']:.0f} shared watches)"
            if t.get("health")
            else "health off (`health: None`)"
        )
        if t.get("replicas", 1) == 0:
            health += ", **replicaCount 0** (no pods, as in Flux's benchmark)"
        source = (
            "chart from the loopback repository" if t.get("chart_source") == "repository" else "bundled chart"
        )
        lines.append(
            f"| {t['count']} Deployments at once, helm concurrency {t['concurrency']}, {health}, {source} | "
            f"**{t['seconds']:.1f} s**; CPU (operator + helm) {t['engine_cpu_s']:.1f} s, peak memory "
            f"(operator + helm, sampled sum) {t['engine_peak_mib']:.0f} MiB, operator alone "
            f"{t['operator_peak_rss_mib']:.0f} MiB; {t['helm_upgrades']:.0f} helm upgrades"
            f"{_cpu_breakdown(t)} | {goal} |"
        )
    lines += _after_the_waves(results)
    lines.append(
        f"| cost of one deploy (mean of {c['runs']}) | "
        f"operator {c['operator_cpu_per_deploy_s'] * 1000:.0f} ms "
        f"CPU, helm {c['helm_cpu_per_deploy_s'] * 1000:.0f} ms CPU | know where time goes |"
    )
    if results.get("flux"):
        lines += [
            "",
            "**Side by side with Flux, same run** (goals: time <= 0.6x, CPU <= 0.7x, peak memory <= 0.7x):",
            "",
        ]
        lines.append(side_by_side(results))
    return "\n".join(lines)


def _after_the_waves(results: dict[str, Any]) -> list[str]:
    """The restart, memory and drift rows; a phase the run did not finish says so."""
    missing = [k for k in ("restart", "memory", "drift") if k not in results]
    if missing:
        return [f"| {', '.join(missing)} | not measured in this run (see below) | |"]
    m, rs, d = (results[k] for k in ("memory", "restart", "drift"))
    return [
        f"| restart with {rs['count']} Deployed{RESTART_HEALTH if rs.get('health') else ''} "
        f"| **{rs['helm_upgrades']:.0f} helm upgrades**; "
        "every Deployment "
        f"checked {rs['start_to_idle_s']:.1f} s after the process started | 0 upgrades, idle within 5 s |",
        f"| memory: idle after that restart, {rs['count']} Deployed with {rs['history_entries']} history "
        f"entries in status | **{rs['idle_rss_mib']:.0f} MiB** RSS (peak {rs['peak_rss_mib']:.0f} MiB) "
        "| <= 150 MiB |",
        f"| memory: {m['images']} Images, {m['applications']} Applications, {m['deployments']} "
        f"Deployments (suspended: never deployed), idle | **{m['rss_mib']:.0f} MiB** RSS | <= 150 MiB |",
        f"| drift checks of {d['count']} Deployed releases (mode Warn, no drift), every "
        f"{d['interval_s']} s for {d['window_s']:.0f} s: {d['checks']:.0f} checks, "
        f"{d['helm_runs']:.0f} helm runs | operator CPU **{d['cpu_share'] * 100:.1f} %** "
        f"(idle {d['idle_cpu_share'] * 100:.1f} %), {d['cpu_per_check_ms']:.1f} ms CPU per check "
        f"(mean check {d['mean_check_s'] * 1000:.0f} ms); at the default 10 min: "
        f"**{d['cpu_share_at_10m'] * 100:.2f} %** | <= 5 % at 10 min |",
    ]


def _cpu_breakdown(t: dict[str, Any]) -> str:
    """Where the rest of a throughput run's CPU went (seconds), for the table."""
    parts = [f"{name} {seconds:.0f}" for name, seconds in t["component_cpu_s"].items()]
    return f"; control plane CPU s: {', '.join(parts)}"


def side_by_side(results: dict[str, Any]) -> str:
    """Flux and alecton on the same waves of the same run, as ratios (alecton / Flux)."""
    lines = [
        "| releases | health (both sides wait) | Flux time | alecton time | ratio | CPU s Flux / alecton "
        "(ratio) | peak memory MiB Flux / alecton (ratio) | alecton operator alone |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for flux in results.get("flux") or []:
        ours = next(
            (
                t
                for t in results["throughput"]
                if (t["count"], t["health"], t.get("chart_source"))
                == (flux["count"], flux["health"], "repository")
            ),
            None,
        )
        if ours is None:
            continue
        lines.append(
            f"| {flux['count']} | {'on' if flux['health'] else 'off'} | {flux['seconds']:.1f} s | "
            f"{ours['seconds']:.1f} s | **{ours['seconds'] / flux['seconds']:.2f}x** | "
            f"{flux['engine_cpu_s']:.0f} / {ours['engine_cpu_s']:.0f} "
            f"(**{ours['engine_cpu_s'] / flux['engine_cpu_s']:.2f}x**) | "
            f"{flux['engine_peak_mib']:.0f} / {ours['engine_peak_mib']:.0f} "
            f"(**{ours['engine_peak_mib'] / flux['engine_peak_mib']:.2f}x**) | "
            f"{ours['operator_peak_rss_mib']:.0f} MiB |"
        )
    return "\n".join(lines)


def write_report(results: dict[str, Any], path: Path) -> None:
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{start}\n{end}\n"
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    path.write_text(f"{head}{start}\n{render(results)}\n{end}{tail}")
