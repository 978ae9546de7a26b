"""Acting as a tenant: a ServiceAccount of a tenant namespace, bound there to a ClusterRole
with a RoleBinding, and kubectl with that account's token (never the admin's certificate).

    deployer = as_tenant(cluster, ns, "alecton-deployer")
    deployer("apply", "-f", "-", stdin=manifest)       # kubectl as the tenant, in `ns`
    deployer.apply(r.deployment("web", "1.0.0"))        # the same for resource dicts
    deployer.forbidden("patch", "adep", "web-staging", "--subresource=status", ...)
    deployer.alecton("rollback", "web", "staging", "1", "--wait")  # the CLI as the tenant

The roles alecton ships (deploy/tenant-roles.yaml, deploy/promotion-approvals.yaml) are
applied to the cluster first; any other ClusterRole (`edit`, `view`) is bound as it is.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from tests.integration.harness import REPO, Cluster, wait_for

# The ClusterRoles alecton ships for people, and the file that defines each.
SHIPPED_ROLES = {
    "alecton-deployer": REPO / "deploy" / "tenant-roles.yaml",
    "alecton-viewer": REPO / "deploy" / "tenant-roles.yaml",
    "alecton-image-publisher": REPO / "deploy" / "tenant-roles.yaml",
    "alecton-approver": REPO / "deploy" / "promotion-approvals.yaml",
}


class Tenant:
    """kubectl as one ServiceAccount of a tenant namespace (the default namespace of its
    commands; `-n` still chooses another). Call it like `Cluster.kubectl`."""

    def __init__(self, cluster: Cluster, namespace: str, account: str, kubeconfig: Path) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.account = account
        self.kubeconfig = kubeconfig  # the tenant's own kubeconfig: for `alecton` (KUBECONFIG) too

    @property
    def user(self) -> str:
        """The user name the API server sees (and admission policies stamp)."""
        return f"system:serviceaccount:{self.namespace}:{self.account}"

    @property
    def env(self) -> dict[str, str]:
        """An environment in which kubectl, helm and `alecton` act as this tenant."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def __call__(
        self, *args: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.cluster.bin / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} as {self.user} failed ({proc.returncode}):\n{proc.stderr}"
            )
        return proc

    def alecton(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """The `alecton` CLI with the tenant's own kubeconfig (its token), in its namespace."""
        return subprocess.run(
            [sys.executable, "-m", "alecton", *args, "-n", self.namespace],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
        )

    def apply(self, *docs: dict[str, Any], namespace: str | None = None) -> str:
        """`kubectl apply` of resource dicts as the tenant; its output."""
        return self(
            "apply", "-n", namespace or self.namespace, "-f", "-", stdin=yaml.safe_dump_all(docs)
        ).stdout

    def can(self, verb: str, resource: str, namespace: str | None = None) -> bool:
        """`kubectl auth can-i` as the tenant; `resource` may name a subresource,
        `deployments.alecton.dev/status` (for kubectl that would be an object named status)."""
        resource, _, subresource = resource.partition("/")
        extra = [f"--subresource={subresource}"] if subresource else []
        proc = self("auth", "can-i", verb, resource, *extra, "-n", namespace or self.namespace, check=False)
        return proc.stdout.strip() == "yes"

    def forbidden(self, *args: str, stdin: str | None = None) -> str:
        """Run kubectl as the tenant and insist that the API server refused it with 403
        Forbidden (not a 404, not a validation error); its stderr."""
        proc = self(*args, check=False, stdin=stdin)
        assert proc.returncode != 0, f"kubectl {' '.join(args)} as {self.user} was allowed:\n{proc.stdout}"
        assert "Forbidden" in proc.stderr or "forbidden" in proc.stderr, proc.stderr
        return proc.stderr


def as_tenant(
    cluster: Cluster,
    namespace: str,
    role: str,
    *,
    account: str | None = None,
    context: str = "alecton-a",
) -> Tenant:
    """A ServiceAccount in `namespace` bound there (RoleBinding) to ClusterRole `role`, and a
    kubectl acting with its token against `context`'s API server.

    Idempotent: the same (namespace, role) gives the same account and binding. Waits until
    the API server's authorizer has seen the binding, so the first command already counts.
    """
    if role in SHIPPED_ROLES:
        cluster.kubectl("apply", "-f", str(SHIPPED_ROLES[role]), context=context)
    account = account or _dns_label(f"tenant-{role}")
    cluster.apply(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": account},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
        },
        namespace=namespace,
        context=context,
    )
    token = cluster.kubectl(
        "create", "token", account, "-n", namespace, "--duration=2h", context=context
    ).stdout.strip()
    tenant = Tenant(cluster, namespace, account, _kubeconfig(cluster, context, namespace, account, token))
    granted = _a_granted_right(cluster, role, context)
    if granted is not None:
        verb, resource = granted
        wait_for(lambda: tenant.can(verb, resource), 30, f"{tenant.user} to be allowed to {verb} {resource}")
    return tenant


def _kubeconfig(cluster: Cluster, context: str, namespace: str, account: str, token: str) -> Path:
    """A kubeconfig with the cluster's server and CA from the test kubeconfig, and only the
    tenant's token as credentials."""
    full = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    (entry,) = [c for c in full["contexts"] if c["name"] == context]
    (server,) = [c for c in full["clusters"] if c["name"] == entry["context"]["cluster"]]
    user = f"{namespace}-{account}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [server],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {
                "name": user,
                "context": {"cluster": server["name"], "user": user, "namespace": namespace},
            }
        ],
        "current-context": user,
    }
    path = Path(tempfile.mkdtemp(prefix="alecton-tenant-")) / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def _a_granted_right(cluster: Cluster, role: str, context: str) -> tuple[str, str] | None:
    """One (verb, resource) the ClusterRole grants, to wait for; None for a role without
    rules (an aggregated role whose controller has not filled it)."""
    body = json.loads(cluster.kubectl("get", "clusterrole", role, "-o", "json", context=context).stdout)
    for rule in body.get("rules") or []:
        verbs = [v for v in rule.get("verbs") or [] if v != "*"]
        resources = [r for r in rule.get("resources") or [] if r != "*" and "/" not in r]
        groups = [g for g in rule.get("apiGroups") or [] if g != "*"]
        if verbs and resources and groups and not rule.get("resourceNames"):
            group = groups[0]
            return verbs[0], f"{resources[0]}.{group}" if group else resources[0]
    return None


def _dns_label(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63].rstrip("-")
