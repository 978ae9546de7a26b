"""The benchmark's side-by-side table with Flux and its reading of Flux objects (pure parts)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from flux import flux_workload, ready
from report import side_by_side


def _run(engine: str, seconds: float, cpu: float, peak: float, **extra: object) -> dict:
    return {
        "engine": engine,
        "count": 100,
        "health": True,
        "chart_source": "repository",
        "seconds": seconds,
        "engine_cpu_s": cpu,
        "engine_peak_mib": peak,
        **extra,
    }


def test_side_by_side_gives_ratios_of_alecton_over_flux_for_the_same_wave() -> None:
    results = {
        "flux": [_run("flux", 60.0, 20.0, 300.0)],
        "throughput": [
            _run("alecton", 1.0, 1.0, 1.0, chart_source="directory", operator_peak_rss_mib=1.0),
            _run("alecton", 30.0, 14.0, 150.0, operator_peak_rss_mib=110.0),
        ],
    }
    row = side_by_side(results).splitlines()[-1]
    assert row.startswith("| 100 | on | 60.0 s | 30.0 s | **0.50x** |")
    assert "20 / 14 (**0.70x**)" in row
    assert "300 / 150 (**0.50x**)" in row
    assert row.endswith("110 MiB |")


def test_side_by_side_skips_a_flux_wave_without_its_alecton_pair() -> None:
    results = {
        "flux": [_run("flux", 60.0, 20.0, 300.0, health=False)],
        "throughput": [_run("alecton", 1, 1, 1)],
    }
    assert len(side_by_side(results).splitlines()) == 2  # the header only


def test_a_helm_release_is_ready_only_for_its_current_generation() -> None:
    ready_now = {
        "metadata": {"generation": 2},
        "status": {"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "True"}]},
    }
    stale = {**ready_now, "metadata": {"generation": 3}}  # Ready, but for generation 2
    failing = {
        "metadata": {"generation": 1},
        "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "InstallFailed"}]},
    }
    assert ready(ready_now) == "Ready"
    assert ready(stale) != "Ready"
    assert ready(failing) == "InstallFailed"
    assert ready({"metadata": {}}) == ""


def test_flux_waits_on_health_only_when_alecton_does() -> None:
    on = flux_workload("ns", 2, "ns-web", "http://127.0.0.1:1", "kubeconfig", health=True, replicas=1)
    off = flux_workload("ns", 2, "ns-web", "http://127.0.0.1:1", "kubeconfig", health=False, replicas=0)
    releases_on = [d for d in on if d["kind"] == "HelmRelease"]
    releases_off = [d for d in off if d["kind"] == "HelmRelease"]
    assert len(releases_on) == 2
    assert "disableWait" not in releases_on[0]["spec"]["install"]
    assert releases_off[0]["spec"]["install"]["disableWait"] is True
    assert releases_off[0]["spec"]["upgrade"]["disableWait"] is True
    assert releases_off[0]["spec"]["values"]["replicaCount"] == 0
    spec = releases_on[0]["spec"]
    assert spec["kubeConfig"] == {"secretRef": {"name": "cluster-b", "key": "value"}}
    assert spec["targetNamespace"] == spec["storageNamespace"] == "ns-web"
