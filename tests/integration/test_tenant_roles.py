"""The roles alecton ships for teams (deploy/tenant-roles.yaml), as the API server enforces
them: a deployer manages its team's alecton objects, but writes no status (which the
operator trusts), approves nothing and sees no other namespace; a viewer only reads; an
approver approves; CI bound to the image publisher records Images and nothing else; Kubernetes'
own `edit` grants nothing on alecton.dev."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.integration import resources as r
from tests.integration.harness import Cluster, wait_for
from tests.integration.tenant import as_tenant


@pytest.fixture(scope="module")
def namespaces(crds: Cluster) -> Iterator[tuple[str, str]]:
    """A team's namespace and another team's."""
    before = crds.namespaces()
    try:
        yield crds.new_namespace("team"), crds.new_namespace("other")
    finally:
        crds.delete_namespaces_since(before)


def a_promotion(name: str) -> dict:
    """A Promotion as the operator proposes it (made here by the admin: no operator runs)."""
    return {
        "apiVersion": "alecton.dev/v1alpha1",
        "kind": "Promotion",
        "metadata": {"name": name},
        "spec": {
            "deployment": "web-staging",
            "application": "web",
            "target": "staging",
            "fromVersion": "1.0.0",
            "toVersion": "1.1.0",
            "reason": "newest Image",
            "digest": "d1",
        },
    }


APPROVE = json.dumps({"spec": {"approval": {"decision": "Approved", "digest": "d1"}}})


def test_a_deployer_manages_its_objects_but_not_status_approvals_or_other_namespaces(
    crds: Cluster, namespaces: tuple[str, str]
) -> None:
    cluster = crds
    ns, other = namespaces
    deployer = as_tenant(cluster, ns, "alecton-deployer")

    # What a team does: record an Image, describe its Application and Cluster, deploy.
    deployer.apply(
        r.cluster(),
        r.application("web", f"{ns}-web"),
        r.image("web", "1.0.0", "r/web:1"),
        r.deployment("web", "1.0.0"),
    )
    deployer.apply(r.deployment("web", "1.1.0"))  # a new version
    deployer(
        "patch", "deployments.alecton.dev", "web-staging", "--type=merge", "-p", '{"spec":{"suspend":true}}'
    )
    version = deployer("get", "deployments.alecton.dev", "web-staging", "-o", "jsonpath={.spec.version}")
    assert version.stdout == "1.1.0"
    deployer("get", "events")  # what the operator did, and why

    # Status is the operator's record (holds, what it wrote, backoff): not the team's.
    forged = json.dumps({"status": {"promotion": {"written": "9.9.9", "hold": None}}})
    deployer.forbidden(
        "patch",
        "deployments.alecton.dev",
        "web-staging",
        "--subresource=status",
        "--type=merge",
        "-p",
        forged,
    )
    assert not deployer.can("update", "deployments.alecton.dev/status")
    assert not deployer.can("patch", "promotions.alecton.dev/status")

    # Promotions: read, never approved (nor created, which could carry an approval).
    cluster.apply(a_promotion("web-staging-1-1-0"), namespace=ns)
    deployer("get", "promotions.alecton.dev", "web-staging-1-1-0")
    deployer.forbidden("patch", "promotions.alecton.dev", "web-staging-1-1-0", "--type=merge", "-p", APPROVE)
    deployer.forbidden("create", "-f", "-", stdin=json.dumps(a_promotion("forged")))

    # Another team's namespace: nothing, not even reading.
    deployer.forbidden("get", "deployments.alecton.dev", "-n", other)
    deployer.forbidden("get", "applications.alecton.dev", "-n", other)
    deployer.forbidden("apply", "-n", other, "-f", "-", stdin=json.dumps(r.deployment("web", "1.0.0")))
    # Secrets and ConfigMaps are the platform's decision (a team usually also has `edit`).
    deployer.forbidden("get", "secrets")
    deployer.forbidden("get", "configmaps")


def test_a_viewer_reads_and_an_approver_approves(crds: Cluster, namespaces: tuple[str, str]) -> None:
    cluster = crds
    ns, other = namespaces
    cluster.apply(r.deployment("web", "1.0.0", target="prod"), a_promotion("web-prod-1-1-0"), namespace=ns)

    viewer = as_tenant(cluster, ns, "alecton-viewer")
    viewer("get", "deployments.alecton.dev,promotions.alecton.dev,events")
    viewer("get", "deployments.alecton.dev", "web-prod", "--subresource=status")
    assert viewer.can("get", "deployments.alecton.dev/status")
    assert not viewer.can("patch", "deployments.alecton.dev/status")
    viewer.forbidden("apply", "-f", "-", stdin=json.dumps(r.deployment("web", "2.0.0", target="prod")))
    viewer.forbidden("patch", "promotions.alecton.dev", "web-prod-1-1-0", "--type=merge", "-p", APPROVE)
    viewer.forbidden("get", "deployments.alecton.dev", "-n", other)

    approver = as_tenant(cluster, ns, "alecton-approver")
    approver.forbidden(
        "patch", "deployments.alecton.dev", "web-prod", "--type=merge", "-p", '{"spec":{"version":"9"}}'
    )
    approve = ("patch", "promotions.alecton.dev", "web-prod-1-1-0", "--type=merge", "-p", APPROVE)

    def stamped() -> bool:
        # The admission policy (applied with the role) records who approved, once it is active.
        dry = approver(*approve, "--dry-run=server", "-o", "json", check=False)
        return dry.returncode == 0 and json.loads(dry.stdout)["spec"]["approval"].get("by") == approver.user

    wait_for(stamped, 30, "the approval admission policy to be active")
    approver(*approve)
    approval = (cluster.get("promotions.alecton.dev", "web-prod-1-1-0", ns) or {})["spec"]["approval"]
    assert approval["by"] == approver.user, approval  # stamped by the API server


def test_ci_with_the_image_publisher_records_images_and_nothing_else(
    crds: Cluster, namespaces: tuple[str, str]
) -> None:
    """A CI ServiceAccount bound to alecton-image-publisher: `alecton image create` works in its
    namespace (again, unchanged: CI retries); it cannot deploy, change an Application (its
    spec.verify), read a Secret, or record an Image in another team's namespace."""
    cluster = crds
    ns, other = namespaces
    cluster.apply(
        r.cluster(),
        r.application("web", f"{ns}-web"),
        r.deployment("web", "1.0.0"),
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "cosign"},
            "stringData": {"cosign.pub": "k"},
        },
        namespace=ns,
    )
    ci = as_tenant(cluster, ns, "alecton-image-publisher")
    digest = "sha256:" + "d" * 64
    for result in ("created", "unchanged"):
        made = ci.alecton("image", "create", "web", "2.0.0", "registry.example/web:2.0.0", "--digest", digest)
        assert made.returncode == 0 and f"image web 2.0.0 {result}" in made.stdout, made.stdout + made.stderr
    image = cluster.get("images.alecton.dev", "web-2.0.0", ns) or {}
    assert image["spec"]["digest"] == digest, image
    ci("get", "images.alecton.dev", "web-2.0.0")
    ci.apply(r.image("web", "2.1.0", "registry.example/web:2.1.0"))  # kubectl apply, as CI may
    ci.apply(r.image("web", "2.1.0", "registry.example/web:2.1.0"))

    # Deploying is not its job: no Deployment created or changed, no rollback asked.
    ci.forbidden("apply", "-f", "-", stdin=json.dumps(r.deployment("web", "2.0.0", name="web-ci")))
    for spec in ('{"spec":{"version":"2.0.0"}}', '{"spec":{"rollback":{"revision":1}}}'):
        ci.forbidden("patch", "deployments.alecton.dev", "web-staging", "--type=merge", "-p", spec)
    refused = ci.alecton("deploy", "web", "staging", "2.0.0")
    assert refused.returncode != 0 and "forbidden" in (refused.stdout + refused.stderr).lower(), refused
    # Nor what a version deploys with, or whether it must be signed.
    ci.forbidden("patch", "applications.alecton.dev", "web", "--type=merge", "-p", '{"spec":{"verify":null}}')
    ci.forbidden("apply", "-f", "-", stdin=json.dumps(r.application("evil", f"{ns}-evil")))
    ci.forbidden("get", "secrets", "cosign")
    ci.forbidden("get", "secrets")
    # No status (Verified is the operator's), no delete, nothing in another namespace.
    ci.forbidden(
        "patch", "images.alecton.dev", "web-2.0.0", "--subresource=status", "--type=merge",
        "-p", '{"status":{"conditions":[]}}',
    )  # fmt: skip
    ci.forbidden("delete", "images.alecton.dev", "web-2.0.0")
    ci.forbidden("apply", "-n", other, "-f", "-", stdin=json.dumps(r.image("web", "9.9.9", "r/web:9")))
    ci.forbidden("get", "images.alecton.dev", "-n", other)
    assert (cluster.get("deployments.alecton.dev", "web-staging", ns) or {})["spec"]["version"] == "1.0.0"
    assert cluster.get("images.alecton.dev", "web-9.9.9", other) is None


def test_kubernetes_edit_grants_nothing_on_alecton(crds: Cluster, namespaces: tuple[str, str]) -> None:
    """No role aggregates alecton.dev into `edit`: a team needs alecton-deployer for its
    alecton objects, and `edit` never hands out status writes."""
    ns, _ = namespaces
    editor = as_tenant(crds, ns, "edit")
    assert editor.can("create", "deployments.apps") and editor.can(
        "create", "secrets"
    )  # `edit` is aggregated
    for verb, resource in [
        ("get", "deployments.alecton.dev"),
        ("patch", "deployments.alecton.dev/status"),
        ("patch", "promotions.alecton.dev"),
    ]:
        assert not editor.can(verb, resource), f"edit may {verb} {resource}"
