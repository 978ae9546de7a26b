"""Flux's helm-controller and source-controller (Flux v2.9) on the same control plane, set up
as its users run them, so each wave can be measured through Flux and alecton in one run.

Setup (every setting, also in docs/benchmarks.md):
- both controllers run as local processes against cluster a (the admin kubeconfig), watching only
  the run's namespace (`RUNTIME_NAMESPACE`, `--watch-all-namespaces=false`), no leader election,
  `--concurrent` = the run's helm concurrency on both controllers;
- one `HelmRepository` (the loopback chart repository both sides use), one `HelmRelease` per
  release with `chart.spec` (so one `HelmChart` each, as `flux create helmrelease` makes them),
  `kubeConfig.secretRef` to a Secret holding cluster b's kubeconfig, `targetNamespace` and
  `storageNamespace` in cluster b, `install.createNamespace`, the same values as alecton's;
- health: Flux's default wait (kstatus on every object of the release) when health is on;
  `install.disableWait` / `upgrade.disableWait` when it is off;
- everything else at Flux's defaults (interval 10m, timeout 5m, history 5, remediation off).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import yaml
from alecton.local.chart_repository import chart_repository
from alecton.local.flux import FluxControllers, crds_dir
from harness import REPO, Bench, ConditionWatch

FLUX_TOOLS = ("flux-source-controller", "flux-helm-controller")
HELM_RELEASE_API = "helm.toolkit.fluxcd.io/v2"
SOURCE_API = "source.toolkit.fluxcd.io/v1"
CHART = "webapp"


def flux_available(bench: Bench) -> bool:
    return all((bench.bin / name).exists() for name in FLUX_TOOLS)


def install_flux_crds(bench: Bench) -> None:
    for name in FLUX_TOOLS:
        bench.kubectl("apply", "--server-side", "-f", str(crds_dir(bench.bin, name)))
    bench.kubectl("wait", "--for=condition=Established", "crd", "--all")


class ChartRepository:
    """charts/webapp packaged into a classic chart repository served on loopback (what both
    sides pull: Flux through source-controller, alecton through `helm --repo`)."""

    def __init__(self, bench: Bench) -> None:
        directory = bench.workdir / "chart-repository"
        directory.mkdir(exist_ok=True)
        self._served = contextlib.ExitStack()
        self.url = self._served.enter_context(
            chart_repository(bench.bin / "helm", REPO / "charts" / CHART, directory)
        )

    def close(self) -> None:
        self._served.close()


class Flux(FluxControllers):
    """source-controller and helm-controller for one namespace; stopped after the run."""

    def __init__(self, bench: Bench, namespace: str, concurrency: int) -> None:
        super().__init__(
            bench.bin,
            bench.kubeconfig,
            namespace,
            bench.workdir,
            ("flux-source-controller", "flux-helm-controller"),
            concurrency=concurrency,
        )


def flux_workload(
    namespace: str,
    count: int,
    target_ns: str,
    repository_url: str,
    kubeconfig_b: str,
    health: bool,
    replicas: int,
) -> list[dict[str, Any]]:
    """The Secret with cluster b's kubeconfig, the HelmRepository and `count` HelmReleases of the
    same chart with the same values alecton's workload gives (`r/web:1`, the bench message)."""
    values: dict[str, Any] = {"image": "r/web:1", "config": {"message": "bench"}}
    if replicas != 1:
        values["replicaCount"] = replicas
    wait = {} if health else {"disableWait": True}
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "cluster-b"},
            "stringData": {"value": kubeconfig_b},
        },
        {
            "apiVersion": SOURCE_API,
            "kind": "HelmRepository",
            "metadata": {"name": "charts"},
            "spec": {"url": repository_url, "interval": "10m"},
        },
    ]
    for index in range(count):
        name = f"web{index // 64}-t{index % 64}"
        docs.append(
            {
                "apiVersion": HELM_RELEASE_API,
                "kind": "HelmRelease",
                "metadata": {"name": name},
                "spec": {
                    "interval": "10m",
                    "releaseName": name,
                    "targetNamespace": target_ns,
                    "storageNamespace": target_ns,
                    "kubeConfig": {"secretRef": {"name": "cluster-b", "key": "value"}},
                    "chart": {
                        "spec": {
                            "chart": CHART,
                            "version": "1.0.0",
                            "sourceRef": {"kind": "HelmRepository", "name": "charts"},
                            "interval": "10m",
                        }
                    },
                    "install": {"createNamespace": True, **wait},
                    "upgrade": dict(wait),
                    "values": values,
                },
            }
        )
    return docs


def ready(obj: dict[str, Any]) -> str:
    """A Flux object's phase for the watch: `Ready` once its Ready condition is True for its
    current generation, else the condition's reason."""
    status = obj.get("status") or {}
    generation = (obj.get("metadata") or {}).get("generation")
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Ready":
            if condition.get("status") == "True" and status.get("observedGeneration") == generation:
                return "Ready"
            return str(condition.get("reason") or "")
    return ""


def kubeconfig_of_b(bench: Bench) -> str:
    """Cluster b's single-context admin kubeconfig, as the local control plane wrote it."""
    path = Path(bench.kubeconfig).parent / "kubeconfig-b"
    return yaml.safe_dump(yaml.safe_load(path.read_text()))


def flux_watch(bench: Bench, namespace: str) -> ConditionWatch:
    return ConditionWatch(bench, f"/apis/{HELM_RELEASE_API}/namespaces/{namespace}/helmreleases", ready)
