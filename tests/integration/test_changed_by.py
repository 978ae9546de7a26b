"""Who asked (issue 25): the API server stamps `alecton.dev/changed-by` on a Deployment with
the user of every request that creates it or changes its spec (deploy/deployment-changed-by.yaml).
Tenants act with the roles alecton ships; the attacker wants a release recorded under
someone else's name."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from alecton.reconcile.news import CHANGED_BY_ANNOTATION

from tests.integration import resources as r
from tests.integration.harness import REPO, Cluster
from tests.integration.tenant import as_tenant

POLICY = REPO / "deploy" / "deployment-changed-by.yaml"


@pytest.fixture(scope="module")
def namespace(crds: Cluster) -> Iterator[str]:
    crds.kubectl("apply", "-f", str(POLICY))
    ns = crds.new_namespace("changed-by")
    yield ns
    crds.kubectl("delete", "namespace", ns, "--wait=false")


def changed_by(cluster: Cluster, ns: str, name: str) -> str:
    body = cluster.get("deployments.alecton.dev", name, ns) or {}
    return str((body["metadata"].get("annotations") or {}).get(CHANGED_BY_ANNOTATION, ""))


def test_the_api_server_names_who_changed_the_spec(crds: Cluster, namespace: str) -> None:
    cluster, ns = crds, namespace
    deployer = as_tenant(cluster, ns, "alecton-deployer")
    other = as_tenant(cluster, ns, "alecton-deployer", account="someone-else")

    # Created by one tenant while claiming to be the admin: the API server writes the creator.
    forged = r.deployment("web", "1.0.0")
    forged["metadata"]["annotations"] = {CHANGED_BY_ANNOTATION: "kubernetes-admin"}
    deployer.apply(forged)
    assert changed_by(cluster, ns, "web-staging") == deployer.user

    # Another tenant changes spec.version: it is now their name.
    other("patch", "deployments.alecton.dev", "web-staging", "--type=merge", "-p",
          json.dumps({"spec": {"version": "1.1.0"}}))  # fmt: skip
    assert changed_by(cluster, ns, "web-staging") == other.user

    # Setting the annotation alone to someone else's name (no spec change) is undone.
    deployer("annotate", "--overwrite", "deployments.alecton.dev", "web-staging",
             f"{CHANGED_BY_ANNOTATION}=system:serviceaccount:kube-system:admin")  # fmt: skip
    assert changed_by(cluster, ns, "web-staging") == other.user
    # Neither can it be removed to hide who asked.
    deployer("annotate", "deployments.alecton.dev", "web-staging", f"{CHANGED_BY_ANNOTATION}-")
    assert changed_by(cluster, ns, "web-staging") == other.user

    # A spec change that also sends a forged name gets the sender's own.
    deployer("patch", "deployments.alecton.dev", "web-staging", "--type=merge", "-p",
             json.dumps({"metadata": {"annotations": {CHANGED_BY_ANNOTATION: other.user}},
                         "spec": {"version": "1.2.0"}}))  # fmt: skip
    assert changed_by(cluster, ns, "web-staging") == deployer.user

    # Writes that change neither spec nor the annotation (labels, here) keep the name.
    cluster.kubectl("label", "-n", ns, "deployments.alecton.dev", "web-staging", "team=web")
    assert changed_by(cluster, ns, "web-staging") == deployer.user

    # Status writes (the operator's) do not match: the admin's status patch keeps it too.
    cluster.kubectl("patch", "-n", ns, "deployments.alecton.dev", "web-staging", "--subresource=status",
                    "--type=merge", "-p", json.dumps({"status": {"message": "x"}}))  # fmt: skip
    assert changed_by(cluster, ns, "web-staging") == deployer.user
