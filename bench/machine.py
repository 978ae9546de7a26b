"""What the benchmarks read about this machine: CPU and memory of processes from /proc,
and the versions of what runs."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path

from harness import Bench

CLK_TCK = os.sysconf("SC_CLK_TCK")

# Processes of the local control plane, by the name in their command line.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


def _stat_fields(pid: int) -> list[str]:
    # After the command name, which may hold spaces and parentheses itself.
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def children_cpu_seconds(pid: int) -> float:
    fields = _stat_fields(pid)
    return (int(fields[13]) + int(fields[14])) / CLK_TCK  # cutime + cstime (waited-for children)


def component_cpu() -> dict[str, float]:
    """CPU seconds used so far by each control-plane component (all its processes): read
    once before and once after a run, so the observer costs nothing in between."""
    totals = dict.fromkeys(COMPONENTS, 0.0)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            program = (proc / "cmdline").read_bytes().split(b"\0", 1)[0].decode()
            name = Path(program).name
            if name in totals:
                totals[name] += cpu_seconds(int(proc.name))
        except (OSError, ValueError):
            continue  # gone meanwhile
    return totals


def rss_mib(pid: int, key: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def versions(bench: Bench) -> dict[str, str]:
    def first_line(*cmd: str) -> str:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip().splitlines()[0]

    return {
        "python": platform.python_version(),
        "kubernetes": json.loads(bench.kubectl("version", "-o", "json"))["serverVersion"]["gitVersion"],
        "helm": first_line(str(bench.bin / "helm"), "version", "--short"),
        "cpus": str(os.cpu_count()),
        "memory_gib": f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f}",
    }
