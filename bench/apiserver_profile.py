"""Where the API servers' CPU goes during a wave: a CPU profile of both kube-apiservers.

Start the wave on a control plane whose API servers serve pprof, then take the profile:

    ALECTON_LOCAL_PROFILING=1 python bench/run.py --only-throughput 1000:8:1:0 &
    python bench/apiserver_profile.py [SECONDS] [OUTDIR]

It finds the newest benchmark control plane (/tmp/alecton-bench-*), asks each API server for
`/debug/pprof/profile?seconds=SECONDS` through kubectl (admin credentials; one request each,
nothing polled) and prints the top of each with `go tool pprof`.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = REPO / ".tools" / "bin"


def newest_kubeconfig() -> Path:
    # The harness makes its control plane in the temporary directory (tempfile's default).
    pattern = "alecton-bench-*/plane/kubeconfig"
    planes = sorted(Path(tempfile.gettempdir()).glob(pattern), key=lambda p: p.stat().st_mtime)
    if not planes:
        sys.exit(f"no benchmark control plane running ({tempfile.gettempdir()}/{pattern})")
    return planes[-1]


def profile(kubeconfig: Path, context: str, seconds: int, out: Path) -> Path:
    path = out / f"apiserver-{context}.pprof"
    with path.open("wb") as sink:
        subprocess.run(
            [str(BIN / "kubectl"), "--kubeconfig", str(kubeconfig), "--context", context,
             "--request-timeout", f"{seconds + 30}s",
             "get", "--raw", f"/debug/pprof/profile?seconds={seconds}"],
            stdout=sink, check=True,
        )  # fmt: skip
    return path


def main() -> None:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else REPO / "test-artifacts"
    out.mkdir(parents=True, exist_ok=True)
    kubeconfig = newest_kubeconfig()
    contexts = ("alecton-a", "alecton-b")
    with ThreadPoolExecutor(len(contexts)) as pool:
        paths = list(pool.map(lambda c: profile(kubeconfig, c, seconds, out), contexts))
    for context, path in zip(contexts, paths, strict=True):
        print(f"== {context} ({path})", flush=True)
        for view in ("-top", "-top -cum"):
            command = ["go", "tool", "pprof", *view.split(), "-nodecount=30", str(BIN / "kube-apiserver")]
            subprocess.run([*command, str(path)], check=False)


if __name__ == "__main__":
    main()
