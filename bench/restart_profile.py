"""Where a restart's time goes: deploy N releases, then restart the operator under
pyinstrument (wall clock of the event loop's thread) and print the profile with the
process's CPU time beside the wall time to every Deployment checked.

python bench/restart_profile.py [N] [--health]     # needs `pip install pyinstrument`
"""

from __future__ import annotations

import argparse
import signal
import time

# `python bench/restart_profile.py` puts bench/ first on sys.path.
from harness import Operator, quiet_bench
from machine import tree_cpu_seconds
from throughput import throughput


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("count", type=int, nargs="?", default=1000)
    parser.add_argument("--health", action="store_true", help="the releases wait for health (Check)")
    parser.add_argument("--show-all", action="store_true", help="library frames too (kopf, asyncio)")
    args = parser.parse_args()
    with quiet_bench("alecton-restart-profile-") as bench:
        workdir = bench.workdir
        deployed = throughput(bench, args.count, 8, args.health)
        print(f"deployed {args.count} in {deployed['seconds']:.1f} s", flush=True)
        report = workdir / "restart-profile.txt"
        started = time.monotonic()
        profiler = ("-m", "pyinstrument", "--interval", "0.001", "-r", "text", "-o", str(report))
        if args.show_all:
            profiler = (*profiler[:2], "--show-all", *profiler[2:])
        operator = Operator(bench, 4, deployed["namespace"], profiler=profiler)
        ready = time.monotonic() - started
        bench.wait(
            lambda: operator.metric("alecton_reconciles_total", result="unchanged") >= args.count,
            120,
            0.1,
        )
        checked = time.monotonic() - started
        cpu = tree_cpu_seconds([operator.proc.pid])
        print(f"ready after {ready:.1f} s, every Deployment checked after {checked:.1f} s; CPU {cpu:.1f} s")
        operator.proc.send_signal(signal.SIGINT)
        operator.proc.wait(timeout=120)
        print(report.read_text())


if __name__ == "__main__":
    main()
