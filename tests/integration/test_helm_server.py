"""The "server" helm driver (a long-lived helmd) against the helm CLI, on the real control
plane: the same actions leave the same release behind (history, manifest, labels on helm's
storage), give the same error texts, and a cancelled upgrade ends failed, not pending."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alecton.helm.actions import HelmActionError, HelmActions
from alecton.helm.runner import HelmRunner
from alecton.helm.server import use_driver
from alecton.kube.access import KubeAccess
from alecton.reconcile.chart import ChartSource

from tests.integration.harness import Cluster, wait_for

REPO = Path(__file__).resolve().parents[2]
WEBAPP = ChartSource(str(REPO / "charts" / "webapp"))
LABELS = {"alecton.dev/deployment": "web-staging", "alecton.dev/namespace": "team"}
# A hook Job whose pod never gets Ready on the kwok nodes: helm waits for it.
NEVER_READY = {"migration": {"enabled": True, "image": "busybox:1-unready"}}


@pytest.fixture(scope="module")
def namespaces(cluster: Cluster) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for name in made:
        cluster.kubectl("delete", "namespace", name, "--wait=false", context="alecton-b", check=False)


def actions_for(cluster: Cluster, driver: str, home: Path, timeout: float = 60) -> HelmActions:
    runner = HelmRunner(binary=str(cluster.bin / "helm"), timeout=timeout, home=home)
    assert asyncio.run(use_driver(runner, driver)) == driver
    return HelmActions(runner)


def target(cluster: Cluster) -> KubeAccess:
    return KubeAccess(cluster.kubeconfig, "alecton-b")


async def run_both(actions: HelmActions, namespace: str, kube: KubeAccess) -> dict[str, Any]:
    """Install, upgrade, a failed upgrade, a rollback: what helm keeps of each."""
    first = await actions.upgrade("web", namespace, WEBAPP, {"replicas": 1}, kube, "first", LABELS)
    second = await actions.upgrade("web", namespace, WEBAPP, {"replicas": 2}, kube, "second", LABELS)
    rendered = await actions.render("web", namespace, WEBAPP, {"replicas": 3}, kube, "dry", LABELS)
    await actions.rollback("web", namespace, 1, kube)
    history = await actions.history("web", namespace, kube)
    manifest = await actions.manifest("web", namespace, kube)
    missing = await actions.manifest("absent", namespace, kube)
    await actions.runner.stop_all()
    return {
        "installed": (first.revision, first.status, first.chart, first.description),
        "upgraded": (second.revision, second.status, second.description),
        "rendered": rendered.replace(namespace, "NS"),
        "history": [(h.revision, h.status, h.chart, h.app_version, h.description) for h in history],
        "manifest": (manifest or "").replace(namespace, "NS"),
        "missing": missing,
    }


def storage_labels(cluster: Cluster, namespace: str) -> list[dict[str, str]]:
    secrets = json.loads(
        cluster.kubectl(
            "get", "secrets", "-n", namespace, "-l", "owner=helm", "-o", "json", context="alecton-b"
        ).stdout
    )["items"]
    labels = [s["metadata"]["labels"] for s in sorted(secrets, key=lambda s: s["metadata"]["name"])]
    # When each revision was written differs between the two runs, nothing else may.
    return [{k: v for k, v in label.items() if k not in ("modifiedAt", "createdAt")} for label in labels]


def test_the_same_release_through_the_cli_and_through_helmd(
    cluster: Cluster, namespaces: list[str], tmp_path: Path
) -> None:
    kube = target(cluster)
    results = {}
    for driver in ("cli", "server"):
        namespace = f"helmd-same-{driver}"
        namespaces.append(namespace)
        results[driver] = asyncio.run(run_both(actions_for(cluster, driver, tmp_path), namespace, kube))
        results[driver]["labels"] = storage_labels(cluster, namespace)
    assert results["server"] == results["cli"]
    newest = results["cli"]["history"][0]
    assert (newest[0], newest[1], newest[4]) == (3, "deployed", "Rollback to 1")
    assert results["cli"]["labels"][0]["alecton.dev/deployment"] == "web-staging"


def secret_lists(cluster: Cluster) -> float:
    """How many namespaced LISTs of Secrets cluster b's API server has answered."""
    metrics = cluster.kubectl("get", "--raw", "/metrics", context="alecton-b").stdout
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("apiserver_request_total{")
        and 'resource="secrets"' in line
        and 'scope="namespace"' in line
        and 'verb="LIST"' in line
    )


def test_helmd_lists_a_new_releases_history_once(
    cluster: Cluster, namespaces: list[str], tmp_path: Path
) -> None:
    """helm lists the history of the release two or three times in a first `upgrade --install`, and
    the API server matches each list against every Secret of the namespace (a quarter of its
    CPU with 10,000 releases, docs/benchmarks.md); helmd asks once per action until it
    writes. The CLI's count is measured the same way, beside it."""
    kube = target(cluster)
    lists = {}
    for driver in ("cli", "server"):
        namespace = f"helmd-lists-{driver}"
        namespaces.append(namespace)
        actions = actions_for(cluster, driver, tmp_path)

        async def install(actions: HelmActions = actions, namespace: str = namespace) -> None:
            await actions.upgrade("web", namespace, WEBAPP, {}, kube, "first", LABELS)
            await actions.runner.stop_all()

        before = secret_lists(cluster)
        asyncio.run(install())
        lists[driver] = secret_lists(cluster) - before
    assert lists["cli"] >= 2  # helm's own: is there a release, is the name free (, prune)
    assert lists["server"] == 1, lists


def failing_chart(path: Path) -> ChartSource:
    (path / "templates").mkdir(parents=True)
    (path / "Chart.yaml").write_text("apiVersion: v2\nname: failing\nversion: 0.1.0\n")
    (path / "values.schema.json").write_text(
        json.dumps({"type": "object", "properties": {"replicas": {"type": "integer", "minimum": 1}}})
    )
    (path / "templates" / "cm.yaml").write_text(
        '{{- if not .Values.db }}{{ fail "no database: set db.host" }}{{ end }}\n'
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n"
        "data:\n  host: {{ .Values.db.host | quote }}\n  x: {{ .Values.db.missing.deeper }}\n"
    )
    return ChartSource(str(path))


async def errors_of(actions: HelmActions, chart: ChartSource, namespace: str, kube: KubeAccess) -> list[str]:
    said = []
    for values in ({}, {"replicas": 0, "db": {"host": "x"}}, {"db": {"host": "x"}}):
        try:
            await actions.upgrade("broken", namespace, chart, values, kube, "d", LABELS)
            said.append("deployed")
        except HelmActionError as error:
            said.append(error.result.error.replace(namespace, "NS"))
    try:
        await actions.rollback("never-installed", namespace, 3, kube)
    except HelmActionError as error:
        said.append(error.result.error)
    await actions.runner.stop_all()
    return said


def test_error_texts_are_the_clis(cluster: Cluster, namespaces: list[str], tmp_path: Path) -> None:
    chart = failing_chart(tmp_path / "failing")
    said = {}
    for driver in ("cli", "server"):
        namespace = f"helmd-errors-{driver}"
        namespaces.append(namespace)
        said[driver] = asyncio.run(
            errors_of(actions_for(cluster, driver, tmp_path), chart, namespace, target(cluster))
        )
    assert said["server"] == said["cli"]
    assert "no database: set db.host" in said["cli"][0]
    assert "minimum" in said["cli"][1] or "replicas" in said["cli"][1]
    assert said["cli"][3].endswith("release: not found")


def latest_status(cluster: Cluster, namespace: str) -> str:
    history = cluster.helm_json("helm", "history", "web", "--namespace", namespace)
    return str(max(history, key=lambda h: h["revision"])["status"])


@pytest.mark.local_plane(reason="a hook pod that never gets Ready (kwok's `-unready` image stage)")
def test_a_cancelled_upgrade_ends_failed_and_a_locked_release_says_so_in_the_clis_words(
    cluster: Cluster, namespaces: list[str], tmp_path: Path
) -> None:
    namespace = "helmd-cancel"
    namespaces.append(namespace)
    kube = target(cluster)
    server = actions_for(cluster, "server", tmp_path)
    cli = actions_for(cluster, "cli", tmp_path)

    async def scenario() -> tuple[str, str]:
        await server.upgrade("web", namespace, WEBAPP, {}, kube, "first", LABELS)
        hanging = asyncio.ensure_future(
            server.upgrade("web", namespace, WEBAPP, NEVER_READY, kube, "h", LABELS)
        )
        await asyncio.to_thread(
            wait_for, lambda: latest_status(cluster, namespace) == "pending-upgrade", 60, "pending-upgrade"
        )
        locked = []
        for actions in (cli, server):
            try:
                await actions.upgrade("web", namespace, WEBAPP, {}, kube, "while locked", LABELS)
            except HelmActionError as error:
                assert error.release_locked
                locked.append(error.result.error)
        hanging.cancel()
        with pytest.raises(asyncio.CancelledError):
            await hanging
        await server.runner.stop_all()
        return locked[0], locked[1]

    by_cli, by_server = asyncio.run(scenario())
    assert by_server == by_cli
    assert latest_status(cluster, namespace) == "failed"  # marked by helm when cancelled


def test_helmd_is_built_next_to_helm(cluster: Cluster) -> None:
    assert shutil.which(str(cluster.bin / "helmd")), "make tools builds helmd with helm"
