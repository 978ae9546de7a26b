"""Session fixtures: the real local control plane (etcd + two kube-apiservers), the
CRDs, and the operator running as a child process with Helm 4 or Helm 3.

With ALECTON_TEST_KUBECONFIG and the two context variables set (tests/integration/external.py)
no control plane is started: the suite runs on that pair, and `local_plane` tests are skipped."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from alecton.local.controlplane import LocalControlPlane
from alecton.local.tools import ToolsMissingError, tools_bin

from tests.integration.external import LOCAL_PLANE_REASON, PAIR
from tests.integration.harness import REPO, Cluster, OperatorProcess, chart_repository, wait_for

# What an external pair needs of .tools/bin (the control plane's binaries are not used).
CLIENT_TOOLS = ("kubectl", "helm", "helm3")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if PAIR is None:
        return
    for item in items:
        if marker := item.get_closest_marker("local_plane"):
            why = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")
            item.add_marker(
                pytest.mark.skip(reason=f"{LOCAL_PLANE_REASON}: {why}" if why else LOCAL_PLANE_REASON)
            )


@pytest.fixture(scope="session")
def bin_dir() -> Path:
    try:
        return tools_bin(CLIENT_TOOLS) if PAIR else tools_bin()
    except ToolsMissingError as error:
        pytest.fail(str(error), pytrace=False)  # never skip: CI must build the tools


@pytest.fixture(scope="session")
def cluster(bin_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if PAIR is not None:
        # Someone else's clusters: nothing to start or stop, only our kubeconfig to write.
        kubeconfig = PAIR.write_suite_kubeconfig(tmp_path_factory.mktemp("external"))
        print(f"[external] {PAIR.context_a} as alecton-a, {PAIR.context_b} as alecton-b ({PAIR.kubeconfig})")
        yield Cluster(kubeconfig, bin_dir)
        return
    state_dir = tmp_path_factory.mktemp("control-plane")
    plane = LocalControlPlane(state_dir, log=lambda message: print(f"[control plane] {message}"))
    state = plane.up()
    try:
        yield Cluster(state.kubeconfig, bin_dir, state_dir, plane)
    finally:
        plane.down(quiet=True)


@pytest.fixture(scope="session")
def crds(cluster: Cluster) -> Cluster:
    cluster.kubectl("apply", "-k", str(REPO / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    # Established comes a moment before the storage serves lists; wait for that too.
    wait_for(lambda: cluster.kubectl("get", "alecton", "-A", check=False).returncode == 0, 30, "CR storage")
    return cluster


@pytest.fixture(scope="session")
def http_chart_repository(bin_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """charts/webapp 1.0.0 in a plain-http chart repository on loopback (its URL)."""
    with chart_repository(bin_dir / "helm", tmp_path_factory.mktemp("chart-repository")) as url:
        yield url


HELM_BINARIES = os.environ.get("ALECTON_TEST_HELMS", "helm,helm3").split(",")


@pytest.fixture(scope="module", params=HELM_BINARIES)
def operator(
    request: pytest.FixtureRequest, crds: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The operator, once with Helm 4 (`helm`) and once with Helm 3 (`helm3`).

    Module scope: no two cluster-wide operators ever run at once, so modules that start
    operators of their own (install, reliability, bad input) are not disturbed by this one.
    """
    process = OperatorProcess(
        crds,
        request.param,
        tmp_path_factory.mktemp("operator"),
        extra_args=("--allow-context", "*=alecton-b@operator", "--allow-adopt"),
    )
    process.start()
    before = crds.namespaces()
    try:
        yield process
        # The operator still runs: deleting a tenant namespace uninstalls its releases.
        crds.delete_namespaces_since(before)
    finally:
        process.stop()
        if request.session.testsfailed:
            print(f"--- operator log ({process.log_path}) ---\n{process.log_since_start()[-8000:]}")
