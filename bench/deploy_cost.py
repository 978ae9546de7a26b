"""CPU seconds of one deploy: the operator's own and its helm children's."""

from __future__ import annotations

from typing import Any

from harness import Bench
from machine import children_cpu_seconds, cpu_seconds
from single_release import add_image, single_release, upgrade


def deploy_cost(bench: Bench, runs: int) -> dict[str, Any]:
    """CPU seconds of the operator versus helm per deploy (helm measured as the
    operator's children: they are the only children it has)."""
    with single_release(bench, "cost") as (ns, operator):
        pid = operator.proc.pid
        op_before = cpu_seconds(pid)
        children_before = children_cpu_seconds(pid)
        for run in range(2, runs + 2):
            add_image(bench, ns, run)
            upgrade(bench, ns, run, 0.02)
        op_cpu = (cpu_seconds(pid) - op_before) / runs
        helm_cpu = (children_cpu_seconds(pid) - children_before) / runs
        return {"runs": runs, "operator_cpu_per_deploy_s": op_cpu, "helm_cpu_per_deploy_s": helm_cpu}
