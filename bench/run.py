"""alecton benchmarks on the local control plane; writes docs/benchmarks.md.

    python bench/run.py            # the full set (about 15 minutes here)
    python bench/run.py --quick    # a smoke version (CI-sized)

Everything runs on this machine: etcd, both kube-apiservers, the operator and helm
share the same cores, so figures are medians of one run, with ratios taken in that
same run.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import signal
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

# `python bench/run.py` puts bench/ first on sys.path: the modules beside this file import
# as top-level modules (`harness`, `throughput`, ...), as bench/profile.py imports them too.
from alecton.local.controlplane import LocalControlPlane
from alecton.local.tools import tools_bin
from deploy_cost import deploy_cost
from drift_cost import drift_cost
from flux import ChartRepository, flux_available, install_flux_crds
from harness import REPO, Bench
from machine import versions
from memory import memory
from overhead import overhead
from report import side_by_side, write_report
from restart import restart
from throughput import flux_throughput, throughput

Results = dict[str, Any]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a small smoke version")
    parser.add_argument(
        "--output",
        type=Path,
        help="the results' JSON (default: docs/benchmarks-results.json for a full run, "
        "test-artifacts/bench-partial.json for --only-* runs, which must not replace the full run's)",
    )
    parser.add_argument(
        "--only-overhead", action="store_true", help="only the overhead and cost measurements (for A/B runs)"
    )
    parser.add_argument(
        "--only-overhead-health",
        metavar="RUNS",
        type=int,
        default=0,
        help="only the single-deploy overhead with health checks on, versus `helm upgrade --wait`",
    )
    parser.add_argument(
        "--only-throughput",
        metavar="COUNT:CONCURRENCY:HEALTH:SHARDS[:REPLICAS],...",
        default="",
        help="only these throughput runs, e.g. 100:8:0:0,1000:8:0:2,1000:8:0:0:0 (no report rewrite)",
    )
    parser.add_argument(
        "--only-pairs",
        metavar="COUNT:CONCURRENCY:HEALTH,...",
        default="",
        help="only these waves, each through Flux and alecton (no report rewrite), e.g. 100:8:1,300:8:1",
    )
    parser.add_argument(
        "--then-restart",
        action="store_true",
        help="with --only-throughput: then restart an operator on the last run's Deployed releases",
    )
    parser.add_argument(
        "--helm-driver",
        choices=("cli", "server"),
        default=os.environ.get("ALECTON_HELM_DRIVER", "server"),
        help="the operators' --helm-driver: a helm process per action, or one long-lived helmd",
    )
    args = parser.parse_args()
    if args.output is None:
        partial = args.only_pairs or args.only_throughput or args.only_overhead or args.only_overhead_health
        name = "test-artifacts/bench-partial.json" if partial else "docs/benchmarks-results.json"
        args.output = REPO / name
    # The operators this benchmark starts inherit it (`alecton operator run` reads it).
    os.environ["ALECTON_HELM_DRIVER"] = args.helm_driver
    return args


def install_crds(bench: Bench) -> None:
    bench.kubectl("apply", "-k", str(REPO / "crds"))
    bench.kubectl("wait", "--for=condition=Established", "crd", "--all")
    # kubectl resolves the `alecton` category through discovery, which lists the new kinds a
    # moment after they are Established.
    get_all = [str(bench.bin / "kubectl"), "--kubeconfig", bench.kubeconfig, "get", "alecton", "-A"]
    bench.wait(lambda: subprocess.run(get_all, capture_output=True).returncode == 0, 30, 0.2)


def show(measurement: dict[str, Any]) -> dict[str, Any]:
    """Print a measurement as soon as it is taken (a full run takes long), and pass it on."""
    print(json.dumps(measurement), flush=True)
    return measurement


def save(results: Results, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")


# ----- the phases ----------------------------------------------------------------------------


def only_throughput(bench: Bench, results: Results, runs: str, then_restart: bool) -> None:
    """`--only-throughput` runs, then with `--then-restart` a restart on the last one's releases."""
    results["throughput"] = []
    for run in runs.split(","):
        count, concurrency, health, shards, *replicas = (int(x) for x in run.split(":"))
        print(f"throughput {run} ...", flush=True)
        results["throughput"].append(
            show(throughput(bench, count, concurrency, bool(health), shards, *replicas))
        )
    if then_restart:
        last = results["throughput"][-1]
        # With shards: one shard's operator restarted on its share (each shard restarts alone).
        shards = last.get("shards") or 0
        results["restart"] = show(
            restart(
                bench,
                last["namespace"],
                last["count"] // max(1, shards),
                last["health"],
                "s0" if shards else "",
            )
        )


def measure_overhead_and_cost(bench: Bench, results: Results, quick: bool) -> None:
    print("overhead ...", flush=True)
    results["overhead"] = show(overhead(bench, 3 if quick else 12))
    results["cost"] = show(deploy_cost(bench, 3 if quick else 10))


def run_pairs(bench: Bench, results: Results, pairs: list[tuple[int, int, bool]]) -> None:
    """Each wave (count, helm concurrency, health) through alecton and, in the same run on the
    same control plane, through Flux (when its controllers are built), in alternating order
    (Flux first for the first wave); both pull the chart from the same loopback chart
    repository."""
    results.setdefault("throughput", [])
    results.setdefault("flux", [])
    # Served until the process ends: restart and drift later read releases whose chart came
    # from it (a daemon thread; nothing to close).
    repository = ChartRepository(bench)
    engines = ["flux", "alecton"] if flux_available(bench) else ["alecton"]
    if "flux" in engines:
        install_flux_crds(bench)
    for index, (count, concurrency, health) in enumerate(pairs):
        for engine in engines if index % 2 == 0 else engines[::-1]:
            print(f"throughput {engine} {count} @ {concurrency} health={health} ...", flush=True)
            if engine == "flux":
                results["flux"].append(
                    show(flux_throughput(bench, count, concurrency, health, repository.url))
                )
            else:
                measured = throughput(bench, count, concurrency, health, repository=repository.url)
                results["throughput"].append(show(measured))


def measure_throughput(bench: Bench, results: Results, quick: bool) -> None:
    """Each size with health off and on, side by side with Flux; then alecton alone with no
    pods at all (replicaCount 0, as Flux's own benchmark measures)."""
    sizes = (20,) if quick else (100, 500, 1000)
    run_pairs(bench, results, [(n, 4 if quick else 8, h) for n in sizes for h in (False, True)])
    if not quick:
        print("throughput alecton 1000 @ 8 pods=0 ...", flush=True)
        results["throughput"].append(show(throughput(bench, 1000, 8, False, replicas=0)))


def measure_restart(bench: Bench, results: Results, quick: bool) -> None:
    biggest = max(results["throughput"], key=lambda t: (t["count"], t["health"]))
    print("restart ...", flush=True)
    results["restart"] = show(restart(bench, biggest["namespace"], biggest["count"], biggest["health"]))


def measure_drift(bench: Bench, results: Results, quick: bool) -> None:
    print("drift checks ...", flush=True)
    # The drift goal is stated for 500 releases: the 500 (or quick: 20) without health.
    drifted = next(t for t in results["throughput"] if t["count"] == (20 if quick else 500))
    window = 30 if quick else 90
    results["drift"] = show(drift_cost(bench, drifted["namespace"], drifted["count"], 30, window))


def measure_memory(bench: Bench, results: Results, quick: bool) -> None:
    print("memory ...", flush=True)
    results["memory"] = show(memory(bench, *((100, 10, 100) if quick else (1000, 100, 1000))))


# After overhead and cost, in this order: restart and drift reuse the throughput runs' releases.
FULL_SET: tuple[Callable[[Bench, Results, bool], None], ...] = (
    measure_throughput,
    measure_restart,
    measure_drift,
    measure_memory,
)


def main() -> None:
    args = parse_args()
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 PID` prints where a stuck run waits
    with tempfile.TemporaryDirectory(prefix="alecton-bench-") as tmp:
        workdir = Path(tmp)
        plane = LocalControlPlane(workdir / "plane", log=lambda m: print(f"[plane] {m}", flush=True))
        state = plane.up()
        bench = Bench(state.kubeconfig, tools_bin(), workdir, state.servers["a"], workdir / "plane" / "pki")
        try:
            install_crds(bench)
            results: Results = {"versions": versions(bench), "quick": args.quick}
            if args.only_pairs:
                pairs = [tuple(int(x) for x in run.split(":")) for run in args.only_pairs.split(",")]
                run_pairs(bench, results, [(c, n, bool(h)) for c, n, h in pairs])
                save(results, args.output)
                print(side_by_side(results))
                return
            if args.only_overhead_health:
                results["overhead_health"] = show(overhead(bench, args.only_overhead_health, health=True))
                save(results, args.output)
                return
            if args.only_throughput:
                only_throughput(bench, results, args.only_throughput, args.then_restart)
                save(results, args.output)
                return
            measure_overhead_and_cost(bench, results, args.quick)
            if args.only_overhead:
                print(json.dumps({"overhead": results["overhead"], "cost": results["cost"]}))
                return
            for phase in FULL_SET:
                phase(bench, results, args.quick)
                save(results, args.output)  # what a long run measured survives a later failure
        finally:
            plane.down(quiet=True)
    save(results, args.output)
    if results.get("flux"):
        print(side_by_side(results))
    if not args.quick:
        write_report(results, REPO / "docs" / "benchmarks.md")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
