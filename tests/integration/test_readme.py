"""The README's "Use it from CI", "HTTP API", "OCI charts", "Signed images" and "With Flux" blocks,
run exactly as a user would paste them.

Not here: the "With kind" test command (the kind-tests block). `kind` needs Docker, and the
command is itself a pytest run of the e2e subset; `make test-external` (hack/test-external.sh)
runs it as written against `alecton local up` renamed as two kind clusters, and
tests/unit/test_external_pair.py checks it names the variables the suite reads."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
from alecton.local.controlplane import free_port

from tests.integration.harness import REPO

# The blocks start and stop their own `alecton local up`: an external pair adds nothing to them.
pytestmark = pytest.mark.local_plane(reason="the README's blocks start their own `alecton local up`")


def example(name: str) -> str:
    text = (REPO / "README.md").read_text()
    match = re.search(rf"<!-- {name}:start -->\s*```sh\n(.*?)```\s*<!-- {name}:end -->", text, re.S)
    assert match, f"the README lost its {name} block"
    return match.group(1)


def run_example(block: str, tmp_path: Path) -> str:
    """Run a README block as pasted, with its own control plane; its combined output."""
    state_dir = tmp_path / "plane"
    env = {**os.environ, "ALECTON_LOCAL_DIR": str(state_dir)}
    env.pop("KUBECONFIG", None)
    env.pop("ALECTON_DASHBOARD_TOKEN", None)
    script = "set -euo pipefail\ncd " + str(REPO) + "\n" + block
    for log in ("operator.log", "dashboard.log", "flux-source.log", "flux-kustomize.log"):
        script = script.replace(f"> {log}", f"> {tmp_path}/{log}")
    proc = subprocess.Popen(
        ["bash", "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its background jobs (operator, controllers) are this group
    )  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        # A block that stopped half way leaves its background jobs and its control plane.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        if proc.returncode != 0 and state_dir.exists():
            subprocess.run(["alecton", "local", "down"], env=env, capture_output=True, timeout=120)
    output = stdout + stderr
    logs = "".join(p.read_text(errors="replace") for p in tmp_path.glob("*.log"))
    assert proc.returncode == 0, output + logs
    assert not state_dir.exists()  # `alecton local down` ran and cleaned up
    # No etcd or kube-apiserver of this control plane (their flags name its directory) is left.
    left = [
        _read(cmdline) for cmdline in Path("/proc").glob("[0-9]*/cmdline") if str(state_dir) in _read(cmdline)
    ]
    assert left == [], left
    return output


def test_readme_ci_example_passes(bin_dir: Path, tmp_path: Path) -> None:
    output = run_example(example("ci-example"), tmp_path)
    assert "deployed version 1.1.0 as web-staging revision 2" in output
    assert "rolled back web-staging to revision 1 (now revision 3, version 1.0.0)" in output
    assert re.search(r"web\s+staging\s+local-b\s+1\.1\.0\s+RolledBack\s+3", output), output


def test_readme_http_example_passes(bin_dir: Path, tmp_path: Path) -> None:
    port = str(free_port())
    output = run_example(example("http-example").replace("8765", port), tmp_path)
    answers = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert answers[0] == {"name": "web", "version": "1.0.0", "image": "ghcr.io/stefanprodan/podinfo:6.7.0"}
    deploys = [a for a in answers if "outcome" in a]
    assert [(d["release"]["revision"], d["outcome"]["ok"]) for d in deploys] == [
        (1, True),
        (2, True),
        (3, True),
    ]
    releases = next(a["releases"] for a in answers if "releases" in a)
    assert [(r["revision"], r["version"], r["cause"]) for r in releases] == [
        (3, "1.0.0", "rollback"),
        (2, "1.1.0", "deploy"),
        (1, "1.0.0", "deploy"),
    ]
    assert next(a for a in answers if a.get("code") == 409)["reason"] == "Conflict"
    assert " HTTP 409" in output.splitlines()


def _read(path: Path) -> str:
    try:
        return path.read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:  # the process ended while we looked
        return ""


def test_readme_oci_example_passes(bin_dir: Path, tmp_path: Path) -> None:
    output = run_example(example("oci-example"), tmp_path)
    assert "Login Succeeded" in output and "Pushed: 127.0.0.1:" in output
    assert re.search(r"web-staging\s+web-staging\s+1\s+.*deployed\s+webapp-1\.0\.0", output), output


def test_readme_signed_images_example_passes(bin_dir: Path, tmp_path: Path) -> None:
    assert (bin_dir / "cosign").exists(), "the block needs cosign: `make tools` builds it"
    output = run_example(example("signed-example"), tmp_path)
    assert "deployed version 1.0.0 as web-staging revision 1" in output, output
    assert "ImageVerificationFailed" in output and "1.0.1 was refused" in output, output
    assert "image.alecton.dev/web-1.0.1 condition met" in output, output
    assert re.search(r"web\s+1\.0\.0\s+\S+\s+sha256:\S+\s+True\s", output), output
    assert re.search(r"web\s+1\.0\.1\s+\S+\s+sha256:\S+\s+False \(ImageVerificationFailed\)", output), output


def test_readme_flux_example_passes(bin_dir: Path, tmp_path: Path) -> None:
    for tool in ("cosign", "flux-source-controller", "flux-kustomize-controller"):
        assert (bin_dir / tool).exists(), f"the block needs {tool}: `make tools` builds it"
    block = example("flux-example").replace("9790", str(free_port()))
    output = run_example(block, tmp_path)
    assert "kustomization.kustomize.toolkit.fluxcd.io/web condition met" in output, output
    assert re.search(r"web\s+staging\s+local-b\s+1\.0\.0\s+Deployed\s+1", output), output
