"""The operator against the real control plane, with Helm 4 and Helm 3.

CRs live in context alecton-a; releases land in context alecton-b and are checked
with helm itself."""

from __future__ import annotations

import json
import time

import pytest

from tests.integration import resources as r
from tests.integration.harness import Cluster, OperatorProcess, wait_for, wait_phase

PODINFO_1 = "ghcr.io/stefanprodan/podinfo:6.7.0"
PODINFO_2 = "ghcr.io/stefanprodan/podinfo:6.8.0"


def setup_app(cluster: Cluster, prefix: str, **app_kwargs) -> tuple[str, str]:
    """A tenant namespace with a Cluster, an Application `web` and Image web 1.0.0."""
    ns = cluster.new_namespace(prefix)
    target_ns = f"{ns}-web"
    cluster.apply(
        r.cluster(),
        r.application("web", target_ns, **app_kwargs),
        r.image("web", "1.0.0", PODINFO_1),
        namespace=ns,
    )
    return ns, target_ns


def helm_values(
    cluster: Cluster, helm: str, release: str, namespace: str, revision: int | None = None
) -> dict:
    args = ["get", "values", release, "--namespace", namespace]
    if revision:
        args += ["--revision", str(revision)]
    return cluster.helm_json(helm, *args)


@pytest.mark.e2e
def test_deploy_upgrade_rollback(operator: OperatorProcess) -> None:
    cluster, helm = operator.cluster, operator.helm
    ns, target_ns = setup_app(cluster, "flow")
    cluster.apply(r.deployment("web", "1.0.0"), namespace=ns)
    obj = wait_phase(cluster, ns, "web-staging", "Deployed")

    history = cluster.helm_json(helm, "history", "web-staging", "--namespace", target_ns)
    assert [h["revision"] for h in history] == [1]
    release = obj["status"]["release"]
    assert release["revision"] == 1 and release["status"] == history[0]["status"] == "deployed"
    assert release["chart"] == history[0]["chart"] == "webapp-1.0.0"
    assert release["image"] == PODINFO_1 and release["version"] == "1.0.0"
    assert helm_values(cluster, helm, "web-staging", target_ns)["image"] == PODINFO_1
    # The release lives in cluster b only.
    assert not cluster.helm_json(helm, "list", "--all-namespaces", context="alecton-a")
    conditions = {c["type"]: c["status"] for c in obj["status"]["conditions"]}
    assert conditions == {"Ready": "True", "Released": "True", "Reconciling": "False", "Stalled": "False"}

    # A new version: revision 2 runs the new image.
    cluster.apply(r.image("web", "2.0.0", PODINFO_2), namespace=ns)
    cluster.patch_spec(ns, "web-staging", {"version": "2.0.0"})
    obj = wait_phase(cluster, ns, "web-staging", "Deployed")
    assert obj["status"]["release"]["revision"] == 2
    assert helm_values(cluster, helm, "web-staging", target_ns)["image"] == PODINFO_2
    deployed = json.loads(
        cluster.kubectl(
            "get", "deployment", "web-staging", "-n", target_ns, "-o", "json", context="alecton-b"
        ).stdout
    )
    assert deployed["spec"]["template"]["spec"]["containers"][0]["image"] == PODINFO_2

    # Roll back to revision 1: revision 3 runs the old image again.
    cluster.patch_spec(ns, "web-staging", {"rollback": {"revision": 1}})
    obj = wait_phase(cluster, ns, "web-staging", "RolledBack")
    assert obj["status"]["release"]["revision"] == 3
    assert obj["status"]["release"]["version"] == "1.0.0"
    assert obj["status"]["release"]["image"] == PODINFO_1
    assert helm_values(cluster, helm, "web-staging", target_ns)["image"] == PODINFO_1
    assert [h["revision"] for h in obj["status"]["history"]] == [3, 2, 1]
    assert [h.get("version") for h in obj["status"]["history"]] == ["1.0.0", "2.0.0", "1.0.0"]
    helm_history = cluster.helm_json(helm, "history", "web-staging", "--namespace", target_ns)
    assert sorted(h["revision"] for h in helm_history) == [1, 2, 3]

    # The rollback ran once: it stays rolled back (no new revisions) when the operator looks
    # again: a metadata change is a watch event, and the reconcile it causes is counted.
    before = operator.metric("alecton_reconciles_total")
    cluster.kubectl("annotate", "deployments.alecton.dev", "web-staging", "-n", ns, "example.com/touched=1")
    wait_for(
        lambda: operator.metric("alecton_reconciles_total") > before, 30, "a reconcile after the rollback"
    )
    assert len(cluster.helm_json(helm, "history", "web-staging", "--namespace", target_ns)) == 3
    # ... until the version changes, which deploys normally again.
    cluster.apply(r.image("web", "3.0.0", PODINFO_2 + "-3"), namespace=ns)
    cluster.patch_spec(ns, "web-staging", {"version": "3.0.0"})
    obj = wait_phase(cluster, ns, "web-staging", "Deployed")
    assert obj["status"]["release"]["revision"] == 4
    events = cluster.kubectl("get", "events", "-n", ns, "-o", "json").stdout
    reasons = [e["reason"] for e in json.loads(events)["items"]]
    assert reasons.count("UpgradeSucceeded") == 3 and reasons.count("RollbackSucceeded") == 1


@pytest.mark.e2e
def test_image_created_after_deployment(operator: OperatorProcess) -> None:
    cluster = operator.cluster
    ns, target_ns = setup_app(cluster, "late")
    cluster.apply(r.deployment("web", "9.9.9"), namespace=ns)
    obj = wait_phase(cluster, ns, "web-staging", "Pending")
    ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "ImageNotFound" and "9.9.9" in ready["message"]
    started = time.monotonic()
    cluster.apply(r.image("web", "9.9.9", PODINFO_2), namespace=ns)
    wait_phase(cluster, ns, "web-staging", "Deployed", timeout=15)
    assert time.monotonic() - started < 15
    assert helm_values(cluster, operator.helm, "web-staging", target_ns)["image"] == PODINFO_2


@pytest.mark.e2e
def test_missing_application_then_created(operator: OperatorProcess) -> None:
    cluster = operator.cluster
    ns = cluster.new_namespace("noapp")
    cluster.apply(r.deployment("web", "1.0.0"), namespace=ns)
    obj = wait_phase(cluster, ns, "web-staging", "Pending")
    assert "Application 'web' does not exist" in obj["status"]["message"]
    cluster.apply(
        r.cluster(), r.application("web", f"{ns}-web"), r.image("web", "1.0.0", PODINFO_1), namespace=ns
    )
    wait_phase(cluster, ns, "web-staging", "Deployed", timeout=15)


def test_application_values_change_redeploys(operator: OperatorProcess) -> None:
    cluster, helm = operator.cluster, operator.helm
    ns, target_ns = setup_app(
        cluster, "values", values={"config": {"message": "one"}}, target_values={"replicaCount": 2}
    )
    cluster.apply(r.deployment("web", "1.0.0"), namespace=ns)
    wait_phase(cluster, ns, "web-staging", "Deployed")
    values = helm_values(cluster, helm, "web-staging", target_ns)
    assert values == {"config": {"message": "one"}, "replicaCount": 2, "image": PODINFO_1}

    cluster.apply(
        r.application(
            "web", target_ns, values={"config": {"message": "two"}}, target_values={"replicaCount": 3}
        ),
        namespace=ns,
    )
    wait_for(
        lambda: helm_values(cluster, helm, "web-staging", target_ns).get("replicaCount") == 3,
        20,
        "redeploy with new values",
    )
    obj = wait_phase(cluster, ns, "web-staging", "Deployed")
    assert obj["status"]["release"]["revision"] == 2
    assert helm_values(cluster, helm, "web-staging", target_ns)["config"] == {"message": "two"}


def test_values_with_special_characters_arrive_literally(operator: OperatorProcess) -> None:
    cluster, helm = operator.cluster, operator.helm
    tricky = {
        "comma": "a,b,c",
        "equals": "key=value,other=1",
        "braces": "{x: 1}",
        "brackets": "[1,2]",
        "dots": "a.b.c",
        "null": "null",
        "true": "true",
        "number": "1.0",
        "newline": "line1\nline2",
        "unicode": "grüße ☃",
    }
    ns, target_ns = setup_app(cluster, "literal", values={"config": tricky})
    cluster.apply(r.deployment("web", "1.0.0"), namespace=ns)
    wait_phase(cluster, ns, "web-staging", "Deployed")
    assert helm_values(cluster, helm, "web-staging", target_ns)["config"] == tricky
    configmap = json.loads(
        cluster.kubectl(
            "get", "configmap", "web-staging", "-n", target_ns, "-o", "json", context="alecton-b"
        ).stdout
    )
    rendered = {k: json.loads(v) for k, v in configmap["data"].items() if k != "image"}
    assert rendered == {**tricky, "message": "hello from alecton"}  # plus the chart's default


@pytest.mark.e2e
def test_cluster_from_secret_kubeconfig(operator: OperatorProcess) -> None:
    cluster, helm = operator.cluster, operator.helm
    ns = cluster.new_namespace("secretkc")
    target_ns = f"{ns}-web"
    # A kubeconfig with only cluster b, credentials embedded as data.
    only_b = cluster.target_kubeconfig()
    secret = r.kubeconfig_secret("b-kubeconfig", only_b)
    cluster.apply(
        secret,
        r.cluster(name="via-secret", context="", secret="b-kubeconfig"),
        r.application("web", target_ns, cluster_name="via-secret"),
        r.image("web", "1.0.0", PODINFO_1),
        r.deployment("web", "1.0.0"),
        namespace=ns,
    )
    obj = wait_phase(cluster, ns, "web-staging", "Deployed")
    assert obj["status"]["release"]["cluster"] == "via-secret"
    latest = max(
        cluster.helm_json(helm, "history", "web-staging", "--namespace", target_ns),
        key=lambda h: h["revision"],
    )
    assert latest["status"] == "deployed"
    # Nothing of the Secret leaks into status or events.
    secret_bits = [only_b["users"][0]["user"]["client-key-data"][:40], "client-key-data"]
    events = cluster.kubectl("get", "events", "-n", ns, "-o", "json").stdout
    assert not any(
        bit in json.dumps(obj) or bit in events or bit in operator.log_since_start() for bit in secret_bits
    )


def test_unknown_chart_fails_with_backoff_not_hot_loop(operator: OperatorProcess) -> None:
    cluster = operator.cluster
    ns, _ = setup_app(cluster, "nochart", chart="oci://127.0.0.1:1/charts/nope")
    cluster.apply(r.deployment("web", "1.0.0"), namespace=ns)
    obj = wait_phase(cluster, ns, "web-staging", "Failed")
    assert "helm upgrade failed" in obj["status"]["message"]
    assert "127.0.0.1:1" in obj["status"]["message"]  # helm's own message, not a generic one
    ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "UpgradeFailed"
    first_failure, seen = time.monotonic(), obj["status"]["failures"]
    # The retry timer fires (backoff 5 s, then 10 s): a second attempt comes, and not before
    # its backoff. Waited on the status, never "sleep, then check that nothing happened".
    obj = wait_for(
        lambda: (
            (got := cluster.get("deployments.alecton.dev", "web-staging", ns))
            and got["status"].get("failures", 0) >= 2
            and got
        ),
        60,
        "the second attempt",
    )
    assert time.monotonic() - first_failure >= 4.0, "retried before its backoff: a hot loop"
    attempts = operator.count(f"helm upgrade --install web-staging (version 1.0.0) [{ns}/web-staging]")
    assert attempts == obj["status"]["failures"] == seen + 1, (obj["status"]["failures"], attempts)


def test_local_chart_outside_charts_dir_is_refused(operator: OperatorProcess) -> None:
    cluster = operator.cluster
    ns, _ = setup_app(cluster, "escape", chart="../tests/charts/smoke")
    cluster.apply(r.deployment("web", "1.0.0"), namespace=ns)
    obj = wait_phase(cluster, ns, "web-staging", "Failed")
    assert "outside the operator's charts directory" in obj["status"]["message"]
    stalled = next(c for c in obj["status"]["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True"


@pytest.mark.e2e
def test_delete_uninstalls_and_orphan_keeps(operator: OperatorProcess) -> None:
    cluster, helm = operator.cluster, operator.helm
    ns, target_ns = setup_app(cluster, "delete")
    cluster.apply(r.application("web", target_ns, target="keep") | {}, namespace=ns)
    app = r.application("web", target_ns)
    app["spec"]["targets"].append({"name": "keep", "cluster": "target-b", "namespace": target_ns})
    cluster.apply(app, namespace=ns)
    cluster.apply(
        r.deployment("web", "1.0.0"),
        r.deployment("web", "1.0.0", target="keep", deletionPolicy="Orphan"),
        namespace=ns,
    )
    wait_phase(cluster, ns, "web-staging", "Deployed")
    wait_phase(cluster, ns, "web-keep", "Deployed")
    obj = cluster.get("deployments.alecton.dev", "web-staging", ns)
    assert "alecton.dev/helm-release" in obj["metadata"]["finalizers"]

    cluster.kubectl("delete", "deployments.alecton.dev", "web-staging", "web-keep", "-n", ns, "--timeout=60s")
    releases = {rel["name"] for rel in cluster.helm_json(helm, "list", "--namespace", target_ns)}
    assert releases == {"web-keep"}


@pytest.mark.e2e
def test_restart_runs_no_helm_upgrade(operator: OperatorProcess) -> None:
    cluster, helm = operator.cluster, operator.helm
    ns, target_ns = setup_app(cluster, "restart")
    app = r.application("web", target_ns)
    app["spec"]["targets"] = [
        {"name": f"t{i}", "cluster": "target-b", "namespace": target_ns} for i in range(4)
    ]
    cluster.apply(app, namespace=ns)
    cluster.apply(*[r.deployment("web", "1.0.0", target=f"t{i}") for i in range(4)], namespace=ns)
    for i in range(4):
        wait_phase(cluster, ns, f"web-t{i}", "Deployed")
    seen = len(json.loads(cluster.kubectl("get", "adep", "-A", "-o", "json").stdout)["items"])
    operator.restart()
    # The restarted operator has reconciled every Deployment at least once...
    wait_for(lambda: operator.metric("alecton_reconciles_total") >= seen, 60, f"{seen} reconciles")
    assert operator.proc is not None and operator.proc.poll() is None
    # ... and ran helm for none of this test's releases.
    assert operator.count(f"[{ns}/") == 0, operator.log_since_start()
    for i in range(4):
        history = cluster.helm_json(helm, "history", f"web-t{i}", "--namespace", target_ns)
        assert len(history) == 1


def test_duplicate_deployment_is_conflict(operator: OperatorProcess) -> None:
    cluster = operator.cluster
    ns, _ = setup_app(cluster, "dup")
    cluster.apply(r.deployment("web", "1.0.0"), namespace=ns)
    wait_phase(cluster, ns, "web-staging", "Deployed")
    cluster.apply(r.deployment("web", "1.0.0", name="second"), namespace=ns)
    obj = wait_phase(cluster, ns, "second", "Conflict")
    assert "'web-staging' already deploys" in obj["status"]["message"]
    # Deleting the owner hands the pair to the remaining one.
    cluster.kubectl("delete", "deployments.alecton.dev", "web-staging", "-n", ns, "--timeout=60s")
    wait_phase(cluster, ns, "second", "Deployed")


def test_foreign_release_is_not_taken_over(operator: OperatorProcess) -> None:
    cluster, helm = operator.cluster, operator.helm
    ns, target_ns = setup_app(cluster, "foreign")
    # Somebody installed web-staging by hand.
    from tests.integration.harness import CHARTS

    cluster.run(
        helm,
        "install",
        "web-staging",
        str(CHARTS / "webapp"),
        "--kube-context",
        "alecton-b",
        "-n",
        target_ns,
        "--create-namespace",
    )
    cluster.apply(r.deployment("web", "1.0.0"), namespace=ns)
    obj = wait_phase(cluster, ns, "web-staging", "Conflict")
    assert "not made by alecton" in obj["status"]["message"]
    assert "alecton.dev/adopt=true" in obj["status"]["message"]
    assert len(cluster.helm_json(helm, "history", "web-staging", "--namespace", target_ns)) == 1
    cluster.kubectl("annotate", "deployments.alecton.dev", "web-staging", "-n", ns, "alecton.dev/adopt=true")
    obj = wait_phase(cluster, ns, "web-staging", "Deployed")
    assert obj["status"]["release"]["revision"] == 2

    # Another tenant's Deployment for the same release on the same target is refused.
    other = cluster.new_namespace("foreign-other")
    cluster.apply(
        r.cluster(),
        r.application("web", target_ns),
        r.image("web", "1.0.0", PODINFO_2),
        r.deployment("web", "1.0.0"),
        namespace=other,
    )
    obj = wait_phase(cluster, other, "web-staging", "Conflict")
    assert f"belongs to alecton Deployment {ns}/web-staging" in obj["status"]["message"]
    assert helm_values(cluster, helm, "web-staging", target_ns)["image"] == PODINFO_1
    # And deleting it does not uninstall the other tenant's release.
    cluster.kubectl("delete", "deployments.alecton.dev", "web-staging", "-n", other, "--timeout=60s")
    latest = max(
        cluster.helm_json(helm, "history", "web-staging", "--namespace", target_ns),
        key=lambda h: h["revision"],
    )
    assert latest["status"] == "deployed"
