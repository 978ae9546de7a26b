"""A namespace is a tenant: what one tenant tries with its own namespace and kubectl, and
what stops it. Each test here failed on the code before the tenancy rework (issue 10);
docs/security.md maps every threat to its test.

One operator for the module, with explicit grants made for namespaces created up front
(deny by default: a namespace without a grant reaches no cluster at all).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from alecton.local.pki import CertificateAuthority

from tests.integration import resources as r
from tests.integration.harness import CHARTS, TEST_CHARTS, Cluster, OperatorProcess, events, wait_for
from tests.integration.harness import wait_phase as wait_phase_within
from tests.integration.tenant import Tenant, as_tenant


def wait_phase(cluster: Cluster, namespace: str, name: str, phase: str, timeout: float = 120.0) -> dict:
    # A generous bound: under the full suite a kopf request of this module's operator was
    # once seen to stall for its 60 s request timeout (see the issue note); these tests
    # are about what happens, not how fast.
    return wait_phase_within(cluster, namespace, name, phase, timeout)


# ----- tenants act with their own ServiceAccount token and the roles alecton ships -----------

_TEAMS: dict[str, Tenant] = {}


def team(cluster: Cluster, namespace: str) -> Tenant:
    """kubectl as tenant `namespace`'s person: a ServiceAccount token bound there to the
    shipped `alecton-deployer` ClusterRole (alecton objects, no status, no approvals) and to
    `edit` (its own Secrets and ConfigMaps), never the admin's certificate."""
    if namespace not in _TEAMS:
        tenant = as_tenant(cluster, namespace, "alecton-deployer")
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": f"{tenant.account}-edit"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
            "subjects": [{"kind": "ServiceAccount", "name": tenant.account, "namespace": namespace}],
        }
        cluster.apply(binding, namespace=namespace)
        wait_for(lambda: tenant.can("create", "secrets"), 30, "the tenant's edit binding")
        _TEAMS[namespace] = tenant
    return _TEAMS[namespace]


def tenant_apply(cluster: Cluster, *docs: dict[str, Any], namespace: str) -> None:
    team(cluster, namespace).apply(*docs, namespace=namespace)


def tenant_patch_spec(cluster: Cluster, namespace: str, name: str, spec: dict[str, Any]) -> None:
    team(cluster, namespace)(
        "patch", "deployments.alecton.dev", name, "--type=merge", "-p", json.dumps({"spec": spec})
    )


MARKER = f"TOPSECRET-{uuid.uuid4().hex}"


class Tenants:
    """Namespace names made before the operator starts, so grants can name them."""

    def __init__(self) -> None:
        suffix = uuid.uuid4().hex[:5]
        self.bounded = f"bounded-{suffix}"  # alecton-b, target namespaces bounded-*-web only
        self.ungranted = f"nogrant-{suffix}"  # no grant at all
        self.local = f"local-{suffix}"  # in-cluster, target namespaces local-*
        self.owner = f"owner-{suffix}"  # alecton-b, any target namespace
        self.other = f"other-{suffix}"  # alecton-b, any target namespace (a second tenant)
        self.hung = f"hung-{suffix}"  # blackhole only (its retries must not hold others' slots)


class BlackHole:
    """An API server that completes the TLS handshake and then never answers: only a
    deadline on the request itself ends a call to it."""

    def __init__(self, workdir: Path) -> None:
        self.ca = CertificateAuthority()
        serving = self.ca.serving("blackhole")
        (workdir / "tls.crt").write_bytes(serving.cert_pem)
        (workdir / "tls.key").write_bytes(serving.key_pem)
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(workdir / "tls.crt", workdir / "tls.key")
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                self.held.append(self.tls.wrap_socket(conn, server_side=True))
            except (OSError, ssl.SSLError):
                conn.close()

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture(scope="module")
def tenants() -> Tenants:
    return Tenants()


@pytest.fixture(scope="module")
def black_hole(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BlackHole]:
    hole = BlackHole(tmp_path_factory.mktemp("black-hole"))
    yield hole
    hole.close()


@pytest.fixture(scope="module")
def tenancy(
    crds: Cluster, tenants: Tenants, black_hole: BlackHole, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    before = crds.namespaces()
    for ns in vars(tenants).values():
        crds.kubectl("create", "namespace", ns)
    # The target kubeconfig: the local clusters plus a context whose server never answers.
    targets = yaml.safe_load(Path(crds.kubeconfig).read_text())
    ca_data = base64.b64encode(black_hole.ca.cert_pem).decode()
    hole = {"server": f"https://127.0.0.1:{black_hole.port}", "certificate-authority-data": ca_data}
    targets["clusters"].append({"name": "blackhole", "cluster": hole})
    user = targets["contexts"][0]["context"]["user"]
    targets["contexts"].append({"name": "blackhole", "context": {"cluster": "blackhole", "user": user}})
    target_kubeconfig = tmp_path_factory.mktemp("tenancy-kubeconfig") / "targets.yaml"
    target_kubeconfig.write_text(yaml.safe_dump(targets))
    process = OperatorProcess(
        crds,
        "helm",
        tmp_path_factory.mktemp("tenancy"),
        extra_args=(
            *(
                f"--namespace={ns}"
                for ns in (tenants.bounded, tenants.local, tenants.owner, tenants.other, tenants.hung)
            ),
            "--charts-dir",
            str(TEST_CHARTS),
            "--target-kubeconfig",
            str(target_kubeconfig),
            "--helm-timeout",
            "10",
            "--allow-context",
            f"{tenants.bounded}=alecton-b:{tenants.bounded}-*-web",
            "--allow-context",
            f"{tenants.local}=in-cluster:{tenants.local}-*",
            "--allow-context",
            f"{tenants.owner}=alecton-b",
            "--allow-context",
            f"{tenants.hung}=blackhole",
            "--allow-context",
            f"{tenants.other}=alecton-b",
        ),
    )
    process.start()
    try:
        yield process
        # The operator still runs: deleting the namespaces uninstalls what they deployed.
        crds.delete_namespaces_since(before)
    finally:
        process.stop()  # also when the cleanup fails: no operator outlives the module


def probe_app(
    name: str, target_ns: str, cluster: str = "target-b", values: dict[str, Any] | None = None, **spec: Any
) -> dict[str, Any]:
    app = r.application(name, target_ns, image_name=name, chart="probe", values=values, cluster_name=cluster)
    app["spec"].update(spec)
    return app


def deploy(cluster: Cluster, ns: str, target_ns: str, app: str = "web", **app_spec: Any) -> None:
    """Tenant `ns` deploys `app` into `target_ns` of cluster b, which the platform team onboarded
    for it (grants on alecton-b act as the tenant's own alecton-<tenant> ServiceAccount there)."""
    if target_ns != "kube-system":
        cluster.onboard(target_ns, tenant=ns)
    tenant_apply(
        cluster,
        r.cluster(),
        probe_app(app, target_ns, **app_spec),
        r.image(app, "1", f"r/{app}:1"),
        r.deployment(app, "1"),
        namespace=ns,
    )


def history(cluster: Cluster, release: str, namespace: str, context: str = "alecton-b") -> list[dict]:
    """helm's history of a release; [] only when helm says the release does not exist (any
    other failure fails the test: an error must never read as "no release")."""
    proc = cluster.run(
        "helm", "history", release, "--kube-context", context, "-n", namespace, "-o", "json", check=False
    )
    if proc.returncode != 0:
        assert "release: not found" in proc.stderr, proc.stderr
        return []
    return json.loads(proc.stdout)


def message(obj: dict) -> str:
    return str((obj.get("status") or {}).get("message"))


# ----- 1. deny by default, grants bound target namespaces, in-cluster impersonates -------------


@pytest.mark.e2e
def test_no_grant_reaches_no_cluster(
    tenancy: OperatorProcess, tenants: Tenants, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """An operator started without any grant: neither a context nor its own cluster."""
    cluster, ns = tenancy.cluster, tenants.ungranted
    bare = OperatorProcess(
        cluster,
        "helm",
        tmp_path_factory.mktemp("no-grants"),
        extra_args=(f"--namespace={ns}", "--charts-dir", str(TEST_CHARTS)),
        default_grant=False,
    )
    bare.start()
    try:
        deploy(cluster, ns, f"{ns}-web")
        here = {**r.cluster(name="here", context=""), "spec": {}}
        tenant_apply(cluster, here, probe_app("mine", f"{ns}-mine", cluster="here"), namespace=ns)
        tenant_apply(cluster, r.image("mine", "1", "r/mine:1"), r.deployment("mine", "1"), namespace=ns)
        obj = wait_phase(cluster, ns, "web-staging", "Failed")
        assert f"--allow-context {ns}=alecton-b" in message(obj)
        obj = wait_phase(cluster, ns, "mine-staging", "Failed")
        assert f"--allow-context {ns}=in-cluster" in message(obj)
        assert history(cluster, "web-staging", f"{ns}-web") == []
        assert history(cluster, "mine-staging", f"{ns}-mine", context="alecton-a") == []
        # Only this operator watches the namespace: its finalizers go while it runs.
        team(cluster, ns)("delete", "deployments.alecton.dev", "--all", "-n", ns, "--timeout=60s")
    finally:
        bare.stop()


@pytest.mark.e2e
def test_grant_bounds_the_target_namespaces(tenancy: OperatorProcess, tenants: Tenants) -> None:
    cluster, ns = tenancy.cluster, tenants.bounded
    deploy(cluster, ns, f"{ns}-a-web")
    wait_phase(cluster, ns, "web-staging", "Deployed")
    deploy(cluster, ns, "kube-system", app="intruder")
    obj = wait_phase(cluster, ns, "intruder-staging", "Failed")
    assert f"--allow-context {ns}=alecton-b:kube-system" in message(obj)
    assert f"granted only for target namespaces {ns}-*-web" in message(obj)
    assert history(cluster, "intruder-staging", "kube-system") == []


@pytest.mark.e2e
def test_in_cluster_helm_runs_as_the_tenants_service_account(
    tenancy: OperatorProcess, tenants: Tenants
) -> None:
    cluster, ns = tenancy.cluster, tenants.local
    target_ns = f"{ns}-web"
    victim = cluster.new_namespace("victim")
    cluster.kubectl(
        "create", "secret", "generic", "kubeconfig", f"--from-literal=token={MARKER}", "-n", victim
    )
    cluster.tenant_service_account(ns, target_ns)
    local = {**r.cluster(name="here", context=""), "spec": {}}
    tenant_apply(cluster, local, r.image("web", "1", "r/web:1"), namespace=ns)
    tenant_apply(cluster, probe_app("web", target_ns, cluster="here"), r.deployment("web", "1"), namespace=ns)
    obj = wait_phase(cluster, ns, "web-staging", "Deployed")
    assert obj["status"]["release"]["cluster"] == "here"
    assert history(cluster, "web-staging", target_ns, context="alecton-a")[0]["status"] == "deployed"

    # A chart that copies another namespace's Secret into its error: RBAC stops the lookup.
    lookup = {"lookup": {"namespace": victim, "name": "kubeconfig", "key": "token"}}
    tenant_apply(cluster, probe_app("web", target_ns, cluster="here", values=lookup), namespace=ns)
    obj = wait_phase(cluster, ns, "web-staging", "Failed")
    assert f"system:serviceaccount:{ns}:alecton-deployer" in message(obj)
    assert "forbidden" in message(obj)
    assert MARKER not in json.dumps(obj) and MARKER not in json.dumps(events(cluster, ns))
    assert MARKER not in tenancy.log_since_start()


def test_a_named_context_grant_keeps_the_tenants_chart_inside_its_namespace(
    tenancy: OperatorProcess, tenants: Tenants
) -> None:
    """Issue 23, finding 1: with `--allow-context TENANT=alecton-b:GLOB` helm ran with the
    operator's cluster-wide credentials, so a chart read a Secret of another namespace with
    `lookup` and wrote into kube-system and a ClusterRoleBinding to cluster-admin. Now it acts
    as the tenant's own ServiceAccount of the release namespace: the attacker's goals stay out of reach."""
    cluster, ns = tenancy.cluster, tenants.bounded
    target_ns = f"{ns}-peek-web"
    victim = f"victim-{uuid.uuid4().hex[:5]}"
    cluster.kubectl("create", "namespace", victim, context="alecton-b")
    cluster.kubectl(
        "create", "secret", "generic", "kubeconfig", f"--from-literal=token={MARKER}", "-n", victim,
        context="alecton-b",
    )  # fmt: skip
    lookup = {"lookup": {"namespace": victim, "name": "kubeconfig", "key": "token"}}
    deploy(cluster, ns, target_ns, app="peek", values=lookup)
    obj = wait_phase(cluster, ns, "peek-staging", "Failed")
    assert f"system:serviceaccount:{target_ns}:alecton-{ns}" in message(obj), message(obj)
    assert "forbidden" in message(obj)
    assert MARKER not in json.dumps(obj) and MARKER not in json.dumps(events(cluster, ns))
    assert MARKER not in tenancy.log_since_start()

    planted = f"planted-{uuid.uuid4().hex[:5]}"
    escape = {
        "extraObjects": [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": planted, "namespace": "kube-system"},
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": planted},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "cluster-admin",
                },
                "subjects": [{"kind": "ServiceAccount", "name": f"alecton-{ns}", "namespace": target_ns}],
            },
        ]
    }
    tenant_apply(cluster, probe_app("peek", target_ns, values=escape), namespace=ns)
    obj = wait_for(
        lambda: (
            (got := cluster.get("deployments.alecton.dev", "peek-staging", ns))
            and got["status"].get("phase") == "Failed"
            and "forbidden" in message(got)
            and ("kube-system" in message(got) or "clusterrolebinding" in message(got).lower())
            and got
        ),
        120,
        "the escape attempt to fail",
    )
    for kind, where in (("configmap", ["-n", "kube-system"]), ("clusterrolebinding", [])):
        proc = cluster.kubectl("get", kind, planted, *where, context="alecton-b", check=False)
        assert proc.returncode != 0 and "NotFound" in proc.stderr, f"{kind} {planted} was created"
    # Helm never got to create the namespace either: that is the platform team's.
    assert history(cluster, "peek-staging", target_ns) == [] or all(
        h["status"] != "deployed" for h in history(cluster, "peek-staging", target_ns)
    )


# ----- 2. kubeconfigs that would fall back to the operator's identity ---------------------------


def shaped_kubeconfig(cluster: Cluster, case: str) -> dict[str, Any]:
    kubeconfig = cluster.target_kubeconfig()
    if case == "no-clusters":
        kubeconfig["clusters"] = []
    elif case == "no-server":
        del kubeconfig["clusters"][0]["cluster"]["server"]
    elif case == "http-server":
        kubeconfig["clusters"][0]["cluster"]["server"] = "http://127.0.0.1:8080"
    elif case == "missing-context":
        kubeconfig["current-context"] = "elsewhere"
    elif case == "users-as-map":
        kubeconfig["users"] = {"name": "u"}
    return kubeconfig


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("no-clusters", "cluster"),
        ("no-server", "server"),
        ("http-server", "https://"),
        ("missing-context", "'elsewhere' not found"),
        ("users-as-map", "users"),
    ],
)
def test_incomplete_kubeconfig_is_refused(
    tenancy: OperatorProcess, tenants: Tenants, case: str, expected: str
) -> None:
    cluster = tenancy.cluster
    ns = tenants.owner
    name = f"kc-{case}"
    tenant_apply(
        cluster,
        r.kubeconfig_secret(name, shaped_kubeconfig(cluster, case)),
        r.cluster(name=name, context="", secret=name),
        probe_app(name, f"{ns}-{case}", cluster=name),
        r.image(name, "1", "r/web:1"),
        r.deployment(name, "1"),
        namespace=ns,
    )
    obj = wait_phase(cluster, ns, f"{name}-staging", "Failed")
    assert "refused" in message(obj) and expected in message(obj), message(obj)
    assert obj["status"]["conditions"][0]["reason"] == "ClusterRefused"


# ----- 3/4. ownership is (cluster, namespace, name); uninstall only where it lives ----------------


def test_changing_the_target_namespace_never_takes_another_tenants_release(
    tenancy: OperatorProcess, tenants: Tenants
) -> None:
    cluster = tenancy.cluster
    shared = f"shared-{uuid.uuid4().hex[:5]}"
    deploy(cluster, tenants.other, shared, app="taken")
    wait_phase(cluster, tenants.other, "taken-staging", "Deployed")
    deploy(cluster, tenants.owner, f"{tenants.owner}-taken", app="taken")
    wait_phase(cluster, tenants.owner, "taken-staging", "Deployed")
    # The platform team shares the namespace with both (else the owner's identity has no rights
    # there at all): what stops the owner now is the release's owner in helm's storage.
    cluster.onboard(shared, tenant=tenants.owner)

    tenant_apply(
        cluster, probe_app("taken", shared, values={"greeting": "mine now"}), namespace=tenants.owner
    )
    obj = wait_phase(cluster, tenants.owner, "taken-staging", "Conflict")
    assert f"belongs to alecton Deployment {tenants.other}/taken-staging" in message(obj)
    assert [h["revision"] for h in history(cluster, "taken-staging", shared)] == [1]
    # The old release stays where it was: a conflict at the new place moves nothing.
    assert history(cluster, "taken-staging", f"{tenants.owner}-taken")[-1]["status"] == "deployed"


def test_a_failed_first_install_never_takes_a_place_another_tenant_then_fills(
    tenancy: OperatorProcess, tenants: Tenants
) -> None:
    """Issue 23, finding 2: tenant A moved its target to tenant B's namespace with values the
    chart refuses (no release is made there), B installed its own release there, A fixed its
    values: alecton upgraded B's release as A's, and deleting A's Deployment uninstalled it.
    The claim of the new place carried the old revision, so the owner check was skipped."""
    cluster, attacker, victim = tenancy.cluster, tenants.owner, tenants.other
    shared = f"shared-{uuid.uuid4().hex[:5]}"
    deploy(cluster, attacker, f"{attacker}-claim", app="claim")
    wait_phase(cluster, attacker, "claim-staging", "Deployed")
    # The platform team onboarded the namespace for both tenants (their choice to share it).
    cluster.onboard(shared, tenant=attacker)
    tenant_apply(cluster, probe_app("claim", shared, values={"failWith": "greeting"}), namespace=attacker)
    obj = wait_phase(cluster, attacker, "claim-staging", "Failed")
    assert "is not accepted" in message(obj)
    assert history(cluster, "claim-staging", shared) == []

    deploy(cluster, victim, shared, app="claim")
    wait_phase(cluster, victim, "claim-staging", "Deployed")
    tenant_apply(cluster, probe_app("claim", shared), namespace=attacker)
    obj = wait_phase(cluster, attacker, "claim-staging", "Conflict")
    assert f"belongs to alecton Deployment {victim}/claim-staging" in message(obj)
    assert [h["revision"] for h in history(cluster, "claim-staging", shared)] == [1]

    team(cluster, attacker)(
        "delete", "deployments.alecton.dev", "claim-staging", "-n", attacker, "--timeout=90s"
    )
    stored = history(cluster, "claim-staging", shared)
    assert [(h["revision"], h["status"]) for h in stored] == [(1, "deployed")], stored
    assert "for " + victim in stored[0]["description"]
    # The attacker's own release at its old place went with its Deployment.
    assert history(cluster, "claim-staging", f"{attacker}-claim") == []


def test_moving_a_target_installs_there_and_removes_the_old_release(
    tenancy: OperatorProcess, tenants: Tenants
) -> None:
    cluster, ns = tenancy.cluster, tenants.owner
    deploy(cluster, ns, f"{ns}-one", app="mover")
    wait_phase(cluster, ns, "mover-staging", "Deployed")
    cluster.onboard(f"{ns}-two", tenant=ns)
    tenant_apply(cluster, probe_app("mover", f"{ns}-two"), namespace=ns)
    obj = wait_phase(
        cluster,
        ns,
        "mover-staging",
        "Deployed",
    )
    wait_for(
        lambda: (
            (cluster.get("deployments.alecton.dev", "mover-staging", ns) or {})["status"]["release"][
                "namespace"
            ]
            == f"{ns}-two"
        ),
        30,
        "the release to move",
    )
    obj = wait_phase(cluster, ns, "mover-staging", "Deployed")
    assert history(cluster, "mover-staging", f"{ns}-two")[-1]["status"] == "deployed"
    wait_for(lambda: history(cluster, "mover-staging", f"{ns}-one") == [], 30, "the old release to go")
    assert f"removed the release from namespace {ns}-one" in message(obj)
    assert any(e["reason"] == "ReleaseMoved" for e in events(cluster, ns))


def test_moving_back_to_a_kept_release_carries_none_of_the_other_places_record(
    tenancy: OperatorProcess, tenants: Tenants
) -> None:
    """R27B-3: a release at another place is another release, numbered from 1 again. Moving back
    to a place whose release was kept (deletionPolicy Orphan) makes its revision 2 there; the
    history helm gives was merged by revision number with the record of the place left, so
    revision 1 here showed that place's revision 1 as healthy, with its image and cause (what a
    rollback under spec.verify trusts)."""
    cluster, ns = tenancy.cluster, tenants.owner
    one, two = f"{ns}-back-one", f"{ns}-back-two"
    for target_ns in (one, two):
        cluster.onboard(target_ns, tenant=ns)
    tenant_apply(
        cluster,
        r.cluster(),
        probe_app("returner", one),
        r.image("returner", "1", "r/returner:1"),
        r.deployment("returner", "1", deletionPolicy="Orphan"),
        namespace=ns,
    )
    wait_phase(cluster, ns, "returner-staging", "Deployed")

    def recorded() -> dict[str, Any]:
        return (cluster.get("deployments.alecton.dev", "returner-staging", ns) or {}).get("status") or {}

    def released_healthy_at(target_ns: str, revision: int) -> bool:
        status = recorded()
        newest = (status.get("history") or [{}])[0]
        at = (status.get("release") or {}).get("namespace") == target_ns
        return at and newest.get("revision") == revision and newest.get("healthy") is True

    tenant_apply(cluster, probe_app("returner", two), namespace=ns)
    wait_for(lambda: released_healthy_at(two, 1), 120, "revision 1 at the second place, healthy")
    assert [h["status"] for h in history(cluster, "returner-staging", one)] == ["deployed"]  # kept

    tenant_apply(cluster, probe_app("returner", one), namespace=ns)
    wait_for(lambda: released_healthy_at(one, 2), 120, "revision 2 back at the first place, healthy")
    newest, *older = recorded()["history"]
    assert newest["image"] == "r/returner:1" and newest["cause"] == "deploy"
    assert [e["revision"] for e in older] == [1]
    carried = [key for e in older for key in ("image", "healthy", "cause", "corrections") if key in e]
    assert carried == [], older


def test_uninstall_happens_only_where_the_release_lives(tenancy: OperatorProcess, tenants: Tenants) -> None:
    cluster = tenancy.cluster
    shared = f"shared-{uuid.uuid4().hex[:5]}"
    deploy(cluster, tenants.other, shared, app="gone")
    wait_phase(cluster, tenants.other, "gone-staging", "Deployed")
    own = f"{tenants.owner}-gone"
    deploy(cluster, tenants.owner, own, app="gone")
    wait_phase(cluster, tenants.owner, "gone-staging", "Deployed")
    # Suspended, so the target change is not acted on; then the Deployment is deleted.
    tenant_patch_spec(cluster, tenants.owner, "gone-staging", {"suspend": True})
    wait_phase(cluster, tenants.owner, "gone-staging", "Suspended")
    tenant_apply(cluster, probe_app("gone", shared), namespace=tenants.owner)
    team(cluster, tenants.owner)("delete", "deployments.alecton.dev", "gone-staging", "--wait=true")
    assert history(cluster, "gone-staging", own) == []
    assert history(cluster, "gone-staging", shared)[-1]["status"] == "deployed"


# ----- 5. adoption, version strings -------------------------------------------------------------


def test_adoption_needs_the_operators_permission(tenancy: OperatorProcess, tenants: Tenants) -> None:
    cluster, ns = tenancy.cluster, tenants.owner
    target_ns = f"{ns}-hand"
    cluster.run(
        "helm", "install", "hand-staging", str(TEST_CHARTS / "probe"),
        "--kube-context", "alecton-b", "-n", target_ns, "--create-namespace",
    )  # fmt: skip
    deploy(cluster, ns, target_ns, app="hand")
    team(cluster, ns)("annotate", "deployments.alecton.dev", "hand-staging", "alecton.dev/adopt=true")
    obj = wait_phase(cluster, ns, "hand-staging", "Conflict")
    assert "--allow-adopt" in message(obj)
    assert [h["revision"] for h in history(cluster, "hand-staging", target_ns)] == [1]


def test_version_with_whitespace_is_rejected_by_the_schema(
    tenancy: OperatorProcess, tenants: Tenants
) -> None:
    proc = team(tenancy.cluster, tenants.owner)(
        "apply", "-f", "-", check=False, stdin=json.dumps(r.deployment("web", "1 --set x=y", name="spaced"))
    )
    assert proc.returncode != 0 and "spec.version" in proc.stderr


# ----- 6. a live lock is not "repaired" ---------------------------------------------------------


@pytest.mark.local_plane(reason="a hook pod that never gets Ready (kwok's `-unready` image stage)")
def test_a_release_locked_by_a_running_helm_is_not_repaired(
    tenancy: OperatorProcess, tenants: Tenants
) -> None:
    cluster, ns = tenancy.cluster, tenants.owner
    target_ns = f"{ns}-locked"
    deploy(cluster, ns, target_ns, app="locked")
    wait_phase(cluster, ns, "locked-staging", "Deployed")
    # A person's helm upgrade that waits for a migration Job that never finishes (its pod
    # never gets Ready on the kwok nodes): the release is pending-upgrade while it runs.
    person = subprocess.Popen(
        [
            str(cluster.bin / "helm"), "upgrade", "locked-staging", str(CHARTS / "webapp"),
            "--set", "migration.enabled=true", "--set", "migration.image=busybox:1-unready",
            "--kube-context", "alecton-b", "-n", target_ns,
            "--timeout", "300s",
        ],
        env={**os.environ, "KUBECONFIG": cluster.kubeconfig},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: history(cluster, "locked-staging", target_ns)[-1]["status"] == "pending-upgrade", 30)
        tenant_apply(cluster, probe_app("locked", target_ns, values={"greeting": "now"}), namespace=ns)
        obj = wait_phase(cluster, ns, "locked-staging", "Failed")
        assert "another operation" in message(obj) and "not repaired" in message(obj), message(obj)
        assert history(cluster, "locked-staging", target_ns)[-1]["status"] == "pending-upgrade"
        assert person.poll() is None  # the person's helm still runs, untouched
    finally:
        person.send_signal(signal.SIGTERM)
        person.wait(timeout=30)


# ----- 7. values from Secrets never leave their namespace in text ------------------------------


def test_values_from_secrets_are_redacted_everywhere(tenancy: OperatorProcess, tenants: Tenants) -> None:
    cluster, ns = tenancy.cluster, tenants.owner
    tenant_apply(
        cluster,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "web-secrets"},
            "stringData": {"values.yaml": yaml.safe_dump({"password": MARKER})},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "web-config"},
            "data": {"g": "from-cm"},
        },
        namespace=ns,
    )
    sources = [
        {"kind": "Secret", "name": "web-secrets"},
        {"kind": "ConfigMap", "name": "web-config", "key": "g", "targetPath": "greeting"},
    ]
    deploy(cluster, ns, f"{ns}-vf", app="vf", valuesFrom=sources)
    wait_phase(cluster, ns, "vf-staging", "Deployed")
    configmap = json.loads(
        cluster.kubectl(
            "get", "configmap", "vf-staging", "-n", f"{ns}-vf", "-o", "json", context="alecton-b"
        ).stdout
    )
    assert configmap["data"]["greeting"] == "from-cm"

    tenant_apply(
        cluster,
        probe_app("vf", f"{ns}-vf", values={"failWith": "password"}, valuesFrom=sources),
        namespace=ns,
    )
    obj = wait_phase(cluster, ns, "vf-staging", "Failed")
    assert "execution error at (probe/templates/configmap.yaml" in message(obj)  # where, not what
    assert "[withheld: the values hold data from Secrets" in message(obj)
    assert MARKER not in json.dumps(obj)
    assert MARKER not in json.dumps(events(cluster, ns))
    assert MARKER not in tenancy.log_since_start()


# ----- 8. every call has a deadline ------------------------------------------------------------


def test_a_target_that_never_answers_fails_within_the_deadline(
    tenancy: OperatorProcess, tenants: Tenants
) -> None:
    cluster, ns = tenancy.cluster, tenants.hung
    tenant_apply(
        cluster,
        r.cluster(name="hung", context="blackhole"),
        probe_app("hung", f"{ns}-hung", cluster="hung"),
        r.image("hung", "1", "r/hung:1"),
        r.deployment("hung", "1"),
        namespace=ns,
    )
    started = time.monotonic()
    obj = wait_phase(cluster, ns, "hung-staging", "Failed", timeout=90)
    assert time.monotonic() - started < 80, "helm --timeout 10 plus the kill limit"
    assert "cannot reach the cluster" in message(obj) or "did not finish within" in message(obj), message(obj)


# ----- 9. deep values --------------------------------------------------------------------------


def test_values_nested_too_deep_are_refused(tenancy: OperatorProcess, tenants: Tenants) -> None:
    cluster, ns = tenancy.cluster, tenants.owner
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(200):
        node["a"] = {}
        node = node["a"]
    team(cluster, ns)("apply", "-f", "-", stdin=json.dumps(probe_app("deep", f"{ns}-deep", values=deep)))
    tenant_apply(cluster, r.image("deep", "1", "r/deep:1"), r.deployment("deep", "1"), namespace=ns)
    obj = wait_phase(cluster, ns, "deep-staging", "Failed")
    assert "nested deeper than 64 levels" in message(obj)
    assert obj["status"]["conditions"][0]["reason"] == "ValuesRefused"


# ----- 10. smaller holes -----------------------------------------------------------------------


def test_chart_names_cannot_be_flags(tenancy: OperatorProcess, tenants: Tenants) -> None:
    app = probe_app("flag", "x")
    app["spec"]["chart"] = "--post-renderer=/bin/sh"
    proc = team(tenancy.cluster, tenants.owner)("apply", "-f", "-", check=False, stdin=json.dumps(app))
    assert proc.returncode != 0 and "spec.chart" in proc.stderr


def test_plain_http_repositories_are_refused(tenancy: OperatorProcess, tenants: Tenants) -> None:
    cluster, ns = tenancy.cluster, tenants.owner
    deploy(cluster, ns, f"{ns}-http", app="plain", repository="http://127.0.0.1:9/charts")
    obj = wait_phase(cluster, ns, "plain-staging", "Failed")
    assert "--allow-insecure-repositories" in message(obj)


# ----- semantics: failures and rollbacks ------------------------------------------------------


def test_reverting_after_a_failed_upgrade_deploys_again(tenancy: OperatorProcess, tenants: Tenants) -> None:
    cluster, ns = tenancy.cluster, tenants.owner
    deploy(cluster, ns, f"{ns}-revert", app="revert")
    wait_phase(cluster, ns, "revert-staging", "Deployed")
    tenant_apply(cluster, probe_app("revert", f"{ns}-revert", values={"failWith": "greeting"}), namespace=ns)
    wait_phase(cluster, ns, "revert-staging", "Failed")
    # The objects no longer match revision 1 for sure only if helm wrote something; either
    # way the operator must try again rather than call the old fingerprint applied.
    tenant_apply(cluster, probe_app("revert", f"{ns}-revert"), namespace=ns)
    wait_for(
        lambda: (
            (obj := cluster.get("deployments.alecton.dev", "revert-staging", ns))
            and obj["status"].get("phase") == "Deployed"
            and obj["status"]["release"].get("revision") == 2
        ),
        60,
        "a new revision after reverting",
    )


@pytest.mark.e2e
def test_a_rollback_holds_until_a_new_version(tenancy: OperatorProcess, tenants: Tenants) -> None:
    cluster, ns = tenancy.cluster, tenants.owner
    target_ns = f"{ns}-hold"
    cluster.onboard(target_ns, tenant=ns)
    tenant_apply(
        cluster,
        r.cluster(),
        probe_app("hold", target_ns),
        *(r.image("hold", v, f"r/hold:{v}") for v in ("1", "2", "3")),
        r.deployment("hold", "1"),
        namespace=ns,
    )
    wait_phase(cluster, ns, "hold-staging", "Deployed")
    tenant_patch_spec(cluster, ns, "hold-staging", {"version": "2"})
    wait_phase(
        cluster,
        ns,
        "hold-staging",
        "Deployed",
    )
    wait_for(lambda: len(history(cluster, "hold-staging", target_ns)) == 2, 30, "revision 2")
    tenant_patch_spec(cluster, ns, "hold-staging", {"rollback": {"revision": 1}})
    wait_phase(cluster, ns, "hold-staging", "RolledBack")

    tenant_apply(cluster, probe_app("hold", target_ns, values={"greeting": "changed"}), namespace=ns)
    wait_for(
        lambda: (
            "held at revision 3" in message(cluster.get("deployments.alecton.dev", "hold-staging", ns) or {})
        ),
        30,
        "the hold to be reported",
    )
    assert len(history(cluster, "hold-staging", target_ns)) == 3

    # A rollback request and a version change together: the version wins.
    tenant_patch_spec(cluster, ns, "hold-staging", {"version": "3", "rollback": {"revision": 2}})
    obj = wait_phase(cluster, ns, "hold-staging", "Deployed")
    assert obj["status"]["lastRollback"]["result"] == "Superseded"
    assert obj["status"]["release"]["version"] == "3"
