"""Who asked (issue 25): the API server stamps `alecton.dev/changed-by` on a Deployment with
the user of every request that creates it or changes its spec (deploy/deployment-changed-by.yaml).
Tenants act with the roles alecton ships; the attacker wants a release recorded under
someone else's name."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from alecton.reconcile.freeze import FREEZE_OVERRIDE_BY_ANNOTATION
from alecton.reconcile.news import CHANGED_BY_ANNOTATION, FREEZE_OVERRIDE_ANNOTATION

from tests.integration import resources as r
from tests.integration.harness import REPO, Cluster, wait_for
from tests.integration.tenant import as_tenant

POLICY = REPO / "deploy" / "deployment-changed-by.yaml"


@pytest.fixture(scope="module")
def namespace(crds: Cluster) -> Iterator[str]:
    crds.kubectl("apply", "-f", str(POLICY))
    ns = crds.new_namespace("changed-by")
    wait_for(lambda: policy_in_force(crds, ns), 30, "the changed-by policy to be in force")
    yield ns
    crds.kubectl("delete", "namespace", ns, "--wait=false")


def policy_in_force(cluster: Cluster, ns: str) -> bool:
    """The API server loads admission policies asynchronously: a server-side dry run of a
    create shows whether this one stamps yet."""
    probe = r.deployment("probe", "1.0.0")
    proc = cluster.kubectl(
        "create", "-n", ns, "--dry-run=server", "-o", "json", "-f", "-", stdin=json.dumps(probe), check=False
    )
    if proc.returncode != 0:
        return False
    return CHANGED_BY_ANNOTATION in (json.loads(proc.stdout)["metadata"].get("annotations") or {})


def annotations(cluster: Cluster, ns: str, name: str) -> dict[str, str]:
    body = cluster.get("deployments.alecton.dev", name, ns) or {}
    return dict(body["metadata"].get("annotations") or {})


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


def test_a_freeze_override_holds_only_for_the_generation_its_request_makes(
    crds: Cluster, namespace: str
) -> None:
    """The override's writer is the API server's word, and an override written ahead of a
    change (for a generation the request does not make) is dropped."""
    cluster, ns = crds, namespace
    deployer = as_tenant(cluster, ns, "alecton-deployer", account="overrider")
    deployer.apply(r.deployment("api", "1.0.0"))
    generation = int(
        (cluster.get("deployments.alecton.dev", "api-staging", ns) or {})["metadata"]["generation"]
    )

    def annotate(*pairs: str) -> None:
        deployer("annotate", "--overwrite", "deployments.alecton.dev", "api-staging", *pairs)

    # Ahead of a change: dropped. A forged writer: dropped.
    annotate(
        f"{FREEZE_OVERRIDE_ANNOTATION}={generation + 1}:ahead", f"{FREEZE_OVERRIDE_BY_ANNOTATION}=someone"
    )
    found = annotations(cluster, ns, "api-staging")
    assert FREEZE_OVERRIDE_ANNOTATION not in found and FREEZE_OVERRIDE_BY_ANNOTATION not in found, found

    # For the current generation (releasing changed inputs): kept, with its writer.
    annotate(f"{FREEZE_OVERRIDE_ANNOTATION}={generation}:incident 7")
    found = annotations(cluster, ns, "api-staging")
    assert found.get(FREEZE_OVERRIDE_ANNOTATION) == f"{generation}:incident 7", found
    assert found.get(FREEZE_OVERRIDE_BY_ANNOTATION) == deployer.user, found

    # With the spec change it releases, in one request: kept for the new generation.
    patch = {"metadata": {"annotations": {FREEZE_OVERRIDE_ANNOTATION: f"{generation + 1}:hotfix"}},
             "spec": {"version": "1.1.0"}}  # fmt: skip
    deployer("patch", "deployments.alecton.dev", "api-staging", "--type=merge", "-p", json.dumps(patch))
    found = annotations(cluster, ns, "api-staging")
    assert found.get(FREEZE_OVERRIDE_ANNOTATION) == f"{generation + 1}:hotfix", found

    # Nobody can rename its writer afterwards.
    cluster.kubectl("annotate", "--overwrite", "-n", ns, "deployments.alecton.dev", "api-staging",
                    f"{FREEZE_OVERRIDE_BY_ANNOTATION}=kubernetes-admin")  # fmt: skip
    assert annotations(cluster, ns, "api-staging").get(FREEZE_OVERRIDE_BY_ANNOTATION) == deployer.user
