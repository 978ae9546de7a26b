"""Apply-to-Deployed time of the operator versus the same helm command run directly."""

from __future__ import annotations

import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml
from harness import REPO, Bench
from single_release import add_image, single_release, upgrade

CHART = REPO / "charts" / "webapp"


def overhead(bench: Bench, runs: int, health: bool = False) -> dict[str, Any]:
    """Apply-to-Deployed time versus the same `helm upgrade --install` run directly; with
    `health`, Deployed once the pod is Ready versus `helm upgrade --install --wait`."""
    name = "overhead-health" if health else "overhead"
    with single_release(bench, name, health) as (ns, _operator):
        values = bench.workdir / "values.yaml"
        via_operator: list[float] = []
        via_helm: list[float] = []
        for run in range(2, runs + 2):
            add_image(bench, ns, run)
            started = time.monotonic()
            upgrade(bench, ns, run, 0.005)
            via_operator.append(time.monotonic() - started)
            # The same helm command, run directly, against a twin release.
            values.write_text(yaml.safe_dump({"config": {"message": "bench"}, "image": f"r/web:{run}"}))
            started = time.monotonic()
            _helm_upgrade(bench, f"{name}-web", values, health)
            via_helm.append(time.monotonic() - started)
    op, helm = statistics.median(via_operator), statistics.median(via_helm)
    return {
        "runs": runs,
        "health": health,
        "operator_median_s": op,
        "helm_median_s": helm,
        "ratio": op / helm,
        "operator_s": via_operator,
        "helm_s": via_helm,
    }


def _helm_upgrade(bench: Bench, target_ns: str, values: Path, wait: bool = False) -> None:
    """`helm upgrade --install` of the twin release `direct-t0`, as the operator runs it."""
    subprocess.run(
        [
            str(bench.bin / "helm"),
            "upgrade",
            "--install",
            "direct-t0",
            str(CHART),
            "--kubeconfig",
            bench.kubeconfig,
            "--kube-context",
            "alecton-b",
            "--namespace",
            target_ns,
            "--create-namespace",
            "--disable-openapi-validation",  # as the operator runs it (helm/actions.py)
            "--reset-values",
            "--values",
            str(values),
            "--history-max",
            "10",
            "--output",
            "json",
            *(["--wait"] if wait else []),
        ],
        check=True,
        capture_output=True,
    )
