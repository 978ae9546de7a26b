"""The roles alecton ships for teams (deploy/tenant-roles.yaml, issue 23 finding 6): the
operator trusts status, so a deployer never writes status and never approves; nothing
aggregates alecton.dev into Kubernetes' admin/edit/view; the chart ships the same rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.unit.shipped_chart import rendered_chart

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
TENANT_ROLES = DEPLOY / "tenant-roles.yaml"
READ = {"get", "list", "watch"}


def docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def cluster_roles(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == "ClusterRole"}


def grants(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) for every combination the role's rules grant."""
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_tenant_roles_are_installed_with_the_operator() -> None:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    assert "tenant-roles.yaml" in kustomization["resources"]
    assert set(cluster_roles(docs(TENANT_ROLES))) == {
        "alecton-deployer",
        "alecton-viewer",
        "alecton-image-publisher",
        "alecton-clusterfreeze-reader",
    }


def test_the_deployer_writes_no_status_and_approves_nothing() -> None:
    deployer = cluster_roles(docs(TENANT_ROLES))["alecton-deployer"]
    granted = grants(deployer)
    assert not any("*" in (group, resource, verb) for group, resource, verb in granted), granted
    assert not [g for g in granted if "/" in g[1]], "no subresource at all: */status is the operator's"
    promotions = {verb for group, resource, verb in granted if resource == "promotions"}
    assert promotions == READ, "approving is patch on promotions (alecton-approver); creating one is too"
    assert not {r for _, r, _ in granted} & {"secrets", "configmaps"}, "the platform decides those"
    writes = {"create", "update", "patch", "delete"}
    for kind in ("applications", "images", "clusters", "deployments", "notifiers", "freezes"):
        assert {verb for _, resource, verb in granted if resource == kind} == READ | writes, kind
    # A ClusterNotifier sees every namespace's news: never a tenant's to write (or read).
    assert not [g for g in granted if g[1].startswith("clusternotifiers")]
    assert not [g for g in granted if g[1] == "clusterfreezes"], (
        "platform-wide freezes are for cluster admins"
    )
    assert {verb for _, resource, verb in granted if resource == "events"} == READ
    # The audit trail is the operator's word: a deployer reads it, never writes it.
    assert {verb for _, resource, verb in granted if resource == "releaserecords"} == READ


def test_the_viewer_only_reads() -> None:
    viewer = cluster_roles(docs(TENANT_ROLES))["alecton-viewer"]
    granted = grants(viewer)
    assert {verb for _, _, verb in granted} <= READ
    kinds = ("applications", "images", "clusters", "deployments", "promotions", "notifiers", "freezes")
    assert {(g, r) for g, r, _ in granted if g == "alecton.dev"} == {
        *(("alecton.dev", kind) for kind in kinds),
        *(("alecton.dev", f"{kind}/status") for kind in kinds),
        ("alecton.dev", "releaserecords"),  # the audit trail has no status
    }


def test_the_image_publisher_records_images_and_nothing_else() -> None:
    """CI that records Images needs neither the deployer's Deployments and Applications
    (deploying, switching spec.verify off) nor Secrets, nor any status (Verified is the
    operator's); Images are immutable, and removing a build is a person's decision."""
    publisher = cluster_roles(docs(TENANT_ROLES))["alecton-image-publisher"]
    assert grants(publisher) == {
        ("alecton.dev", "images", verb) for verb in (*READ, "create", "update", "patch")
    }


def test_everyone_reads_cluster_freezes_and_nobody_but_admins_writes_them() -> None:
    documents = docs(TENANT_ROLES)
    reader = cluster_roles(documents)["alecton-clusterfreeze-reader"]
    assert grants(reader) == {("alecton.dev", "clusterfreezes", verb) for verb in READ}
    [binding] = [d for d in documents if d["kind"] == "ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == "alecton-clusterfreeze-reader"
    assert binding["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"}
    ]


def test_no_shipped_role_aggregates_into_admin_edit_or_view() -> None:
    """`admin`/`edit`/`view` pick up every ClusterRole labelled aggregate-to-*: none of ours
    is, so a RoleBinding to `edit` grants nothing on alecton.dev (and no status writes)."""
    for path in [*DEPLOY.glob("*.yaml"), *(REPO / "crds").glob("*.yaml")]:
        for doc in docs(path):
            labels = (doc.get("metadata") or {}).get("labels") or {}
            aggregating = [k for k in labels if k.startswith("rbac.authorization.k8s.io/aggregate-to-")]
            assert aggregating == [], f"{path.name}: {doc['metadata']['name']} aggregates ({aggregating})"
            assert "aggregationRule" not in doc, f"{path.name}: {doc['metadata']['name']}"
    templates = (DEPLOY / "chart" / "templates").glob("*.yaml")
    assert not [t.name for t in templates if "aggregate-to-" in t.read_text()]


def test_the_chart_ships_the_same_tenant_roles() -> None:
    chart = cluster_roles(rendered_chart())
    for name, role in cluster_roles(docs(TENANT_ROLES)).items():
        assert name in chart, f"the chart has no ClusterRole {name} (release name alecton)"
        assert chart[name]["rules"] == role["rules"], f"{name}: deploy/ and the chart differ"
        assert "aggregationRule" not in chart[name]
    approver = cluster_roles(docs(DEPLOY / "promotion-approvals.yaml"))["alecton-approver"]
    assert chart["alecton-approver"]["rules"] == approver["rules"]
