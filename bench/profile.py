"""Profile the operator (pyinstrument, CPU time) while it deploys N releases.

python bench/profile.py [N]     # prints the top of the profile; needs `pip install pyinstrument`
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# `python bench/profile.py` puts bench/ first on sys.path, so `harness` is bench/harness.py.
from alecton.local.controlplane import LocalControlPlane
from alecton.local.tools import tools_bin
from harness import REPO, Bench, new_namespace, operator_command, workload


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    with tempfile.TemporaryDirectory(prefix="alecton-profile-") as tmp:
        workdir = Path(tmp)
        plane = LocalControlPlane(workdir / "plane", log=lambda m: None)
        state = plane.up()
        bench = Bench(state.kubeconfig, tools_bin(), workdir, state.servers["a"], workdir / "plane" / "pki")
        try:
            bench.kubectl("apply", "-k", str(REPO / "crds"))
            bench.kubectl("wait", "--for=condition=Established", "crd", "--all")
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
        finally:
            plane.down(quiet=True)


if __name__ == "__main__":
    main()
