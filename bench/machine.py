"""What the benchmarks read about this machine: CPU and memory of processes from /proc,
and the versions of what runs."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import threading
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
    """CPU of `pid`'s children: those it waited for, and those still running (a long-lived
    helmd with --helm-driver server is never waited for while the operator runs)."""
    fields = _stat_fields(pid)
    waited = (int(fields[13]) + int(fields[14])) / CLK_TCK  # cutime + cstime
    return waited + sum(cpu_seconds(child) for child in descendants(pid))


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


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (from /proc/PID/task/*/children: no scan of /proc)."""
    found: list[int] = []
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            tasks = list(Path(f"/proc/{current}/task").iterdir())
        except OSError:
            continue  # gone meanwhile
        for task in tasks:
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            found += children
            stack += children
    return found


def tree_cpu_seconds(roots: list[int]) -> float:
    """CPU of each root, its finished (waited-for) children and its live descendants: an
    operator's helm processes, or a long-lived helm server it keeps, all count."""
    total = 0.0
    for root in roots:
        for pid in [root, *descendants(root)]:
            try:
                fields = _stat_fields(pid)
            except OSError:
                continue
            total += sum(int(f) for f in fields[11:15]) / CLK_TCK  # utime stime cutime cstime
    return total


def tree_rss_mib(roots: list[int]) -> float:
    """Resident memory of the roots and all their live descendants, summed (shared pages,
    such as the text of several helm processes, count once per process: an upper bound)."""
    total = 0.0
    for root in roots:
        for pid in [root, *descendants(root)]:
            try:
                total += rss_mib(pid)
            except OSError:
                continue
    return total


class MemorySampler:
    """Peak of the summed RSS of process trees, sampled in a thread of the observer every
    `interval` seconds (a few /proc reads per sample: about 0.3 % of one core at 0.1 s)."""

    def __init__(self, roots: list[int], interval: float = 0.1) -> None:
        self.roots = roots
        self.interval = interval
        self.peak_mib = 0.0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_mib = max(self.peak_mib, tree_rss_mib(self.roots))
            self.samples += 1

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_mib
