"""Flux's controllers (built by `make tools`) as local processes against a control plane, set up
the way its users run them on one namespace: `RUNTIME_NAMESPACE` with `--watch-all-namespaces=false`,
no leader election. The benchmark (bench/flux.py: source- and helm-controller) and the GitOps
test (tests/integration/test_flux_gitops.py: source- and kustomize-controller) both start them here."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from alecton.local.controlplane import free_port

# The CRDs `hack/build-tools.sh` copies next to each binary (`.tools/<tool>-crds`).
CRDS_DIR_SUFFIX = "-crds"


def crds_dir(bin_dir: Path, tool: str) -> Path:
    """`.tools/<tool>-crds` for the binaries in `.tools/bin`."""
    return (bin_dir.parent / f"{tool}{CRDS_DIR_SUFFIX}").resolve()


class FluxControllers:
    """Some of `flux-source-controller`, `flux-helm-controller`, `flux-kustomize-controller` for
    one namespace. source-controller serves its artifacts over loopback HTTP from `workdir`."""

    def __init__(
        self,
        bin_dir: Path,
        kubeconfig: str,
        namespace: str,
        workdir: Path,
        tools: Sequence[str],
        concurrency: int = 4,
        extra_args: dict[str, Sequence[str]] | None = None,
    ) -> None:
        self.workdir = workdir
        env = {**os.environ, "KUBECONFIG": kubeconfig, "RUNTIME_NAMESPACE": namespace}
        common = [
            "--watch-all-namespaces=false",
            "--enable-leader-election=false",
            f"--concurrent={concurrency}",
        ]
        self.health_ports: dict[str, int] = {}
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: dict[str, Path] = {}
        try:
            for tool in tools:
                self.health_ports[tool] = free_port()
                args = [
                    *common,
                    f"--metrics-addr=127.0.0.1:{free_port()}",
                    f"--health-addr=127.0.0.1:{self.health_ports[tool]}",
                    *self._storage_args(tool, namespace),
                    *(extra_args or {}).get(tool, ()),
                ]
                self.logs[tool] = workdir / f"{tool}-{namespace}.log"
                with open(self.logs[tool], "wb") as log:
                    self.procs.append(
                        subprocess.Popen(
                            [str(bin_dir / tool), *args], stdout=log, stderr=subprocess.STDOUT, env=env
                        )
                    )
            for port in self.health_ports.values():
                _wait_ready(f"http://127.0.0.1:{port}/readyz", 60)
        except BaseException:
            self.stop()
            raise

    def _storage_args(self, tool: str, namespace: str) -> list[str]:
        """source-controller keeps artifacts on disk and serves them to the other controllers."""
        if tool != "flux-source-controller":
            return []
        storage = self.workdir / f"flux-storage-{namespace}"
        storage.mkdir(exist_ok=True)
        port = free_port()
        return [
            f"--storage-path={storage}",
            f"--storage-addr=127.0.0.1:{port}",
            f"--storage-adv-addr=127.0.0.1:{port}",
        ]

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def log_tail(self, size: int = 4000) -> str:
        """The end of each controller's log, for a failing test's report."""
        return "\n".join(
            f"--- {tool} ---\n{path.read_text(errors='replace')[-size:]}" for tool, path in self.logs.items()
        )

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if urllib.request.urlopen(url, timeout=1).status == 200:  # noqa: S310 (loopback)
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")
