"""The README's "Use it from CI" block, run exactly as a user would paste it."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.integration.harness import REPO


def ci_example() -> str:
    text = (REPO / "README.md").read_text()
    match = re.search(r"<!-- ci-example:start -->\s*```sh\n(.*?)```\s*<!-- ci-example:end -->", text, re.S)
    assert match, "the README lost its ci-example block"
    return match.group(1)


def test_readme_ci_example_passes(bin_dir: Path, tmp_path: Path) -> None:
    state_dir = tmp_path / "plane"
    env = {**os.environ, "ALECTON_LOCAL_DIR": str(state_dir)}
    env.pop("KUBECONFIG", None)
    script = (
        "set -euo pipefail\ncd "
        + str(REPO)
        + "\n"
        + ci_example().replace("> operator.log", f"> {tmp_path}/operator.log")
    )
    proc = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output + (tmp_path / "operator.log").read_text(errors="replace")
    assert "deployed version 1.1.0 as web-staging revision 2" in output
    assert "rolled back web-staging to revision 1 (now revision 3, version 1.0.0)" in output
    assert re.search(r"web\s+staging\s+local-b\s+1\.1\.0\s+RolledBack\s+3", output), output
    assert not state_dir.exists()  # `alecton local down` ran and cleaned up
    # No etcd or kube-apiserver of this control plane (their flags name its directory) is left.
    left = [
        _read(cmdline) for cmdline in Path("/proc").glob("[0-9]*/cmdline") if str(state_dir) in _read(cmdline)
    ]
    assert left == [], left


def _read(path: Path) -> str:
    try:
        return path.read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:  # the process ended while we looked
        return ""
