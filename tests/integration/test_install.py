"""Installing alecton like a real operator: kustomize base, least-privilege RBAC proven
by the API server's audit log, the Helm chart, metrics and probes."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from alecton.local.controlplane import free_port

from tests.integration import resources as r
from tests.integration.harness import REPO, Cluster, OperatorProcess, wait_for, wait_phase

SA_USER = "system:serviceaccount:alecton-system:alecton"


def granted_rules(docs: list[dict]) -> set[tuple[str, str, str]]:
    # The operator's roles: its ClusterRole, the Role for its Lease and the one that creates
    # its promotion key (the approver and tenant roles are for people).
    roles = [
        d
        for d in docs
        if d
        and (
            (d["kind"] == "ClusterRole" and d["metadata"]["name"].endswith("-operator"))
            or (
                d["kind"] == "Role" and d["metadata"]["name"].endswith(("-leader-election", "-promotion-key"))
            )
        )
    ]
    assert len(roles) == 3, [d["metadata"]["name"] for d in roles]
    return {
        (group, resource, verb)
        for role in roles
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


@pytest.fixture(scope="module")
def installed(crds: Cluster) -> Cluster:
    # A server-side dry run cannot create the namespace its other objects go into.
    crds.kubectl("apply", "-f", str(REPO / "deploy" / "namespace.yaml"))
    dry = crds.kubectl("apply", "-k", str(REPO / "deploy"), "--dry-run=server")
    assert "deployment.apps/alecton-operator created (server dry run)" in dry.stdout
    crds.kubectl("apply", "-k", str(REPO / "deploy"))
    operator = json.loads(
        crds.kubectl("get", "deployment", "alecton-operator", "-n", "alecton-system", "-o", "json").stdout
    )
    pod = operator["spec"]["template"]["spec"]
    container = pod["containers"][0]
    # Two replicas: only the Lease holder reconciles, so a rolling update is safe.
    assert operator["spec"]["replicas"] == 2 and "--leader-elect" in container["args"]
    assert operator["spec"]["strategy"]["type"] == "RollingUpdate"
    assert any(e["name"] == "POD_NAMESPACE" for e in container["env"])
    assert (
        pod["securityContext"]["runAsNonRoot"]
        and pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    )
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    return crds


@pytest.fixture(scope="module")
def sa_operator(installed: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """The operator with the deploy/ ServiceAccount's identity on the management cluster
    (a real token from the TokenRequest API), admin on the target cluster."""
    cluster = installed
    before = cluster.namespaces()
    # The operator makes its promotion key on first use: that `create` is audited too.
    cluster.kubectl("delete", "secret", "alecton-promotion-key", "-n", "alecton-system", "--ignore-not-found")
    token = cluster.kubectl(
        "create", "token", "alecton", "-n", "alecton-system", "--duration=2h"
    ).stdout.strip()
    config = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    config["users"].append({"name": "alecton-sa", "user": {"token": token}})
    for context in config["contexts"]:
        if context["name"] == "alecton-a":
            context["context"]["user"] = "alecton-sa"
    path = tmp_path_factory.mktemp("sa") / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    port = free_port()
    # Watch only this module's namespaces: other modules leave resources behind.
    namespaces = [cluster.new_namespace("rbac"), cluster.new_namespace("metrics")]
    process = OperatorProcess(
        cluster,
        "helm",
        tmp_path_factory.mktemp("sa-operator"),
        extra_args=(
            "--probe-address",
            f"127.0.0.1:{port}",
            *[f"--namespace={ns}" for ns in namespaces],
            "--allow-context",
            "*=alecton-b@operator",
            "--allow-context",
            f"{namespaces[0]}=in-cluster:{namespaces[0]}-local",
            # As deployed: one of several replicas, holding the Lease (its Role is audited too).
            "--leader-elect",
            "--leader-election-namespace",
            "alecton-system",
            # The audit trail's retention, short enough that a sweep deletes records (and the
            # `delete` it needs is audited) while the test runs: 0.0004 days is about 35 s.
            "--audit-retention-days",
            "0.0004",
        ),
        kubeconfig=str(path),
    )
    process.port = port  # type: ignore[attr-defined]
    process.namespaces = namespaces  # type: ignore[attr-defined]
    process.start()
    try:
        yield process
        # The operator still runs: deleting the namespaces uninstalls what they deployed.
        cluster.delete_namespaces_since(before)
    finally:
        process.stop()  # also when the cleanup fails: no operator outlives the module


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.mark.local_plane(reason="reads the local API server's audit log")
def test_rbac_is_sufficient_and_minimal(sa_operator: OperatorProcess) -> None:
    cluster = sa_operator.cluster
    ns = sa_operator.namespaces[0]  # type: ignore[attr-defined]
    target_ns = f"{ns}-web"
    secret = r.kubeconfig_secret("b", cluster.target_kubeconfig())
    cluster.apply(
        secret,
        r.cluster(name="target-b", context="", secret="b"),
        r.application("web", target_ns),
        r.image("web", "1.0.0", "r/web:1"),
        r.image("web", "2.0.0", "r/web:2"),
        r.deployment("web", "1.0.0"),
        namespace=ns,
    )
    # The full flow: deploy -> upgrade -> rollback -> delete.
    wait_phase(cluster, ns, "web-staging", "Deployed")
    cluster.patch_spec(ns, "web-staging", {"version": "2.0.0"})
    wait_for(
        lambda: (
            (cluster.get("deployments.alecton.dev", "web-staging", ns) or {})
            .get("status", {})
            .get("release", {})
            .get("revision")
            == 2
        ),
        30,
        "revision 2",
    )
    cluster.patch_spec(ns, "web-staging", {"rollback": {"revision": 1}})
    wait_phase(cluster, ns, "web-staging", "RolledBack")
    cluster.kubectl("delete", "deployments.alecton.dev", "web-staging", "-n", ns, "--timeout=60s")
    assert cluster.helm_json("helm", "list", "--namespace", target_ns) == []

    # The operator's own cluster, as the tenant's ServiceAccount, with values from a ConfigMap.
    local_ns = f"{ns}-local"
    cluster.tenant_service_account(ns, local_ns)
    values = "--from-literal=values.yaml=replicaCount: 2"
    cluster.kubectl("create", "configmap", "web-values", values, "-n", ns)
    local = r.application("here", local_ns, cluster_name="here")
    local["spec"]["valuesFrom"] = [{"kind": "ConfigMap", "name": "web-values"}]
    cluster.apply(
        {**r.cluster(name="here", context=""), "spec": {}},
        local,
        r.image("web", "1.0.0", "r/web:1"),
        # The version is chosen by the operator: a Promotion is created and applied.
        r.promoted("here", {"versions": {"semver": "1.x"}}),
        namespace=ns,
    )
    wait_phase(cluster, ns, "here-staging", "Deployed")
    promotions = json.loads(cluster.kubectl("get", "promotions.alecton.dev", "-n", ns, "-o", "json").stdout)
    assert [(p["spec"]["toVersion"], p["status"]["state"]) for p in promotions["items"]] == [
        ("1.0.0", "Applied")
    ]
    cluster.kubectl("delete", "deployments.alecton.dev", "here-staging", "-n", ns, "--timeout=60s")
    assert cluster.helm_json("helm", "list", "--namespace", local_ns, context="alecton-a") == []
    # Freezes (issue 25): the operator writes each one's status. These select nothing.
    freeze = {"apiVersion": r.API, "kind": "Freeze", "metadata": {"name": "audit"}}
    freeze["spec"] = {"reason": "rbac audit", "applications": ["nothing-*"]}
    platform = {**freeze, "kind": "ClusterFreeze", "metadata": {"name": f"{ns}-audit"}}
    platform["spec"] = {"reason": "rbac audit", "namespaces": ["nothing-*"]}
    cluster.apply(freeze, namespace=ns)
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(platform))

    def freeze_active(kind: str, name: str, where: str) -> bool:
        return bool(
            ((cluster.get(f"{kind}.alecton.dev", name, where) or {}).get("status") or {}).get("active")
        )

    wait_for(lambda: freeze_active("freezes", "audit", ns), 30, "the status of the Freeze")
    wait_for(
        lambda: freeze_active("clusterfreezes", f"{ns}-audit", ""), 30, "the status of the ClusterFreeze"
    )
    cluster.kubectl("delete", "clusterfreezes.alecton.dev", f"{ns}-audit")

    # spec.verify (issue 27): the verdict on an Image is read, changed and written into its
    # status (here its policy's Secret is missing: not judged, Unknown).
    signed = r.image("signed", "1.0.0", "r/signed:1")
    signed["spec"]["digest"] = "sha256:" + "a" * 64
    policy = {"provider": "cosign", "secretRef": {"name": "cosign"}}
    cluster.apply(
        signed,
        r.application("signed", target_ns, image_name="signed", verify=policy),
        r.deployment("signed", "1.0.0"),
        namespace=ns,
    )
    wait_for(
        lambda: (
            "VerificationSecretNotFound"
            in cluster.kubectl(
                "get",
                "images.alecton.dev",
                "signed-1.0.0",
                "-n",
                ns,
                "-o",
                "jsonpath={.status.conditions[*].reason}",
            ).stdout
        ),
        30,
        "the Image's Verified condition",
    )
    cluster.kubectl("delete", "deployments.alecton.dev", "signed-staging", "-n", ns, "--timeout=60s")
    assert "forbidden" not in sa_operator.log_since_start().lower(), sa_operator.log_since_start()

    # Notifiers and ClusterNotifiers: watched, their status written (here: a refused address).
    hook = {"provider": "webhook", "address": "https://127.0.0.1:9/"}
    cluster.apply(
        {"apiVersion": r.API, "kind": "Notifier", "metadata": {"name": "hook"}, "spec": hook}, namespace=ns
    )
    everyone = {"apiVersion": r.API, "kind": "ClusterNotifier", "metadata": {"name": ns}, "spec": hook}
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(everyone))
    for kind, where in (("notifiers.alecton.dev", ["-n", ns]), ("clusternotifiers.alecton.dev", [])):
        name = "hook" if where else ns
        wait_for(
            lambda k=kind, n=name, w=where: (
                "AddressRefused"
                in cluster.kubectl("get", k, n, *w, "-o", "jsonpath={.status.conditions[*].reason}").stdout
            ),
            30,
            f"{kind} status",
        )
    cluster.kubectl("delete", "clusternotifiers.alecton.dev", ns)

    # The audit trail: a record of each transition, deleted once past the retention.
    first = json.loads(cluster.kubectl("get", "releaserecords.alecton.dev", "-n", ns, "-o", "json").stdout)
    names = {item["metadata"]["name"] for item in first["items"]}
    assert names, "no ReleaseRecord was written"

    def swept() -> bool:
        now = json.loads(cluster.kubectl("get", "releaserecords.alecton.dev", "-n", ns, "-o", "json").stdout)
        return not names & {item["metadata"]["name"] for item in now["items"]}

    wait_for(swept, 90, "the retention sweep to delete the first records")

    # What the API server saw the operator's identity do ...
    audit = cluster.state_dir / "audit-a.log"  # type: ignore[operator]
    wait_for(lambda: audit.exists() and SA_USER in audit.read_text(), 10, "audit events")
    used: set[tuple[str, str, str]] = set()
    denied = []
    as_tenant: set[str] = set()  # namespaces the impersonated identity touched
    for line in audit.read_text().splitlines():
        event = json.loads(line)
        ref = event.get("objectRef")
        if event["user"]["username"] != SA_USER or not ref:
            continue
        if event.get("impersonatedUser"):
            # helm, the owner check and health acting as a tenant's ServiceAccount: what the
            # operator itself needs for that is the right to impersonate it, and what it did
            # as the tenant stayed in the target namespace and was never refused.
            assert event["impersonatedUser"]["username"] == f"system:serviceaccount:{ns}:alecton-deployer"
            used.add(("", "serviceaccounts", "impersonate"))
            as_tenant.add(ref.get("namespace") or f"{ref['resource']}/{ref.get('name', '')}")
            if event.get("responseStatus", {}).get("code") == 403:
                denied.append(f"as the tenant: {event['requestURI']}")
            continue
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        used.add((ref.get("apiGroup", ""), resource, event["verb"]))
        if event.get("responseStatus", {}).get("code") == 403:
            denied.append(event["requestURI"])
    # ... is exactly what deploy/rbac.yaml grants: every rule was needed, none was missing.
    granted = granted_rules(list(yaml.safe_load_all((REPO / "deploy" / "rbac.yaml").read_text())))
    assert denied == []
    assert local_ns in as_tenant and as_tenant <= {local_ns, f"namespaces/{local_ns}"}, as_tenant
    assert used == granted, f"used but not granted: {used - granted}; granted but unused: {granted - used}"


def test_metrics_and_probes(sa_operator: OperatorProcess) -> None:
    base = f"http://127.0.0.1:{sa_operator.port}"  # type: ignore[attr-defined]
    wait_for(lambda: get(f"{base}/healthz")[0] == 200, 30, "/healthz")
    assert get(f"{base}/readyz") == (200, "ready\n")
    cluster = sa_operator.cluster
    ns = sa_operator.namespaces[1]  # type: ignore[attr-defined]
    cluster.apply(
        r.cluster(),
        r.application("web", f"{ns}-web"),
        r.image("web", "1.0.0", "r/web:1"),
        r.deployment("web", "1.0.0"),
        namespace=ns,
    )
    wait_phase(cluster, ns, "web-staging", "Deployed")
    status, text = get(f"{base}/metrics")
    assert status == 200

    def sample(name: str, **labels: str) -> float:
        for line in text.splitlines():
            if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    assert sample("alecton_reconciles_total", result="upgrade") >= 1
    assert sample("alecton_helm_invocations_total", action="upgrade", outcome="success") >= 1
    assert sample("alecton_helm_duration_seconds_count", action="upgrade") >= 1
    assert sample("alecton_deployments", phase="Deployed") >= 1
    assert "alecton_helm_in_flight 0.0" in text


def test_helm_chart_installs_with_the_same_rbac(installed: Cluster) -> None:
    cluster = installed
    rendered = cluster.run(
        "helm", "template", "alecton", str(REPO / "deploy" / "chart"), "--namespace", "alecton-chart"
    ).stdout
    chart_docs = list(yaml.safe_load_all(rendered))
    kustomize_docs = list(yaml.safe_load_all((REPO / "deploy" / "rbac.yaml").read_text()))
    assert granted_rules(chart_docs) == granted_rules(kustomize_docs)
    # A real install into the target cluster, which has no alecton CRDs yet: the chart brings them.
    cluster.run(
        "helm",
        "install",
        "alecton",
        str(REPO / "deploy" / "chart"),
        "--kube-context",
        "alecton-b",
        "--namespace",
        "alecton-chart",
        "--create-namespace",
        "--set",
        "allowContexts={*=prod}",
    )
    crds = cluster.kubectl("get", "crd", "-o", "name", context="alecton-b").stdout
    assert "customresourcedefinition.apiextensions.k8s.io/deployments.alecton.dev" in crds
    deployment = json.loads(
        cluster.kubectl(
            "get", "deployment", "alecton-operator", "-n", "alecton-chart", "-o", "json", context="alecton-b"
        ).stdout
    )
    assert "--allow-context=*=prod" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    history = cluster.helm_json("helm", "history", "alecton", "--namespace", "alecton-chart")
    assert history[-1]["status"] == "deployed"


def test_the_web_server_has_no_rights_and_no_token(installed: Cluster) -> None:
    """alecton-web (deploy/web.yaml and the chart's web.enabled) acts only with each caller's
    token: no binding names its ServiceAccount and no token is mounted."""
    cluster = installed
    rendered = cluster.run(
        "helm", "template", "alecton", str(REPO / "deploy" / "chart"), "--set", "web.enabled=true"
    ).stdout
    for docs in (
        list(yaml.safe_load_all(rendered)),
        list(yaml.safe_load_all((REPO / "deploy" / "web.yaml").read_text())),
    ):
        (account,) = [
            d for d in docs if d and d["kind"] == "ServiceAccount" and d["metadata"]["name"].endswith("web")
        ]
        (web,) = [
            d for d in docs if d and d["kind"] == "Deployment" and d["metadata"]["name"].endswith("web")
        ]
        assert account["automountServiceAccountToken"] is False
        pod = web["spec"]["template"]["spec"]
        assert (
            pod["automountServiceAccountToken"] is False
            and pod["serviceAccountName"] == account["metadata"]["name"]
        )
        subjects = [s for d in docs if d and d["kind"].endswith("Binding") for s in d.get("subjects") or []]
        assert account["metadata"]["name"] not in {s.get("name") for s in subjects}
        assert pod["containers"][0]["args"][0] == "web"
    # The manifests are valid for the API server (a dry run of the real thing).
    ns = cluster.new_namespace("web-manifest")
    cluster.kubectl("apply", "--dry-run=server", "-n", ns, "-f", str(REPO / "deploy" / "web.yaml"))
