"""Profile the operator (pyinstrument, CPU time) while it deploys N releases.

python bench/profile.py [N]     # prints the top of the profile; needs `pip install pyinstrument`
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

# `python bench/profile.py` puts bench/ first on sys.path, so `harness` is bench/harness.py.
from harness import new_namespace, operator_command, quiet_bench, workload


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    with quiet_bench("alecton-profile-") as bench:
        workdir = bench.workdir
        time.sleep(2)
        ns = new_namespace(bench, "profile")
        report = workdir / "profile.txt"
        operator = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pyinstrument",
                "--interval",
                "0.001",
                "-r",
                "text",
                "-o",
                str(report),
                *operator_command(bench, ns, 4),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(3)
        bench.apply(workload(ns, count, f"{ns}-web"), ns)
        bench.wait(
            lambda: sum(s.get("phase") == "Deployed" for s in bench.phases(ns).values()) == count, 600, 1
        )
        operator.send_signal(signal.SIGINT)
        operator.wait(timeout=120)
        print(report.read_text())


if __name__ == "__main__":
    main()
