"""The roles alecton ships for teams (deploy/tenant-roles.yaml), as the API server enforces
them: a deployer manages its team's alecton objects, but writes no status (which the
operator trusts), approves nothing and sees no other namespace; a viewer only reads; an
approver approves; CI bound to the image publisher records Images and nothing else; Kubernetes'
own `edit` grants nothing on alecton.dev."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from tests.integration import resources as r
from tests.integration.harness import REPO, Cluster, wait_for
from tests.integration.tenant import Tenant, as_tenant


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
    install_the_image_deletion_policy(cluster, ci)  # as shipped: CI's own work passes it
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


def install_the_image_deletion_policy(cluster: Cluster, ci: Tenant) -> None:
    """deploy/image-deletion.yaml, waited for until the API server refuses `ci` with it."""
    cluster.kubectl("apply", "-f", str(REPO / "deploy" / "image-deletion.yaml"))
    held = r.image("policy-probe", "0", "registry.example/probe:0")
    held["metadata"]["finalizers"] = ["example.com/hold"]

    def refused_dry_run() -> bool:
        # A server-side dry run passes admission without storing anything.
        proc = ci("create", "--dry-run=server", "-f", "-", stdin=json.dumps(held), check=False)
        return proc.returncode != 0 and "needs the right to delete" in proc.stderr

    wait_for(refused_dry_run, 30, "the image deletion policy to be in force")


def an_owner_that_does_not_exist() -> dict[str, str]:
    """An ownerReference the garbage collector finds absent (no ConfigMap has this uid)."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "name": "gone", "uid": str(uuid.uuid4())}


def test_ci_with_the_image_publisher_cannot_have_the_garbage_collector_delete_a_recorded_build(
    crds: Cluster, namespaces: tuple[str, str]
) -> None:
    """Red team R27B-5: the publisher has no `delete` on Images, but ownerReferences and
    finalizers decide when an object is deleted. A leaked CI token pointing the team's Image
    at an owner that does not exist has the garbage collector delete it; a shadow Image the
    attacker recorded for the same version is then the oldest, the one deployed. Only who may
    delete an Image changes them (deploy/image-deletion.yaml)."""
    cluster = crds
    ns, _ = namespaces
    cluster.apply(r.image("api", "1.0.0", "registry.example/api:1.0.0"), namespace=ns)
    team_image = cluster.get("images.alecton.dev", "api-1.0.0", ns) or {}
    ci = as_tenant(cluster, ns, "alecton-image-publisher")
    install_the_image_deletion_policy(cluster, ci)
    ci.apply(r.image("api", "1.0.0", "evil.example/api:1.0.0", object_name="api-1.0.0-shadow"))

    owner = an_owner_that_does_not_exist()
    orphaned = json.dumps({"metadata": {"ownerReferences": [owner]}})
    attack = ci("patch", "images.alecton.dev", "api-1.0.0", "--type=merge", "-p", orphaned, check=False)
    # The garbage collector's chance: a control Image the admin points at the same absent
    # owner is deleted; by then the team's Image would have been too.
    control = r.image("api", "0.0.0-control", "registry.example/api:control")
    control["metadata"]["ownerReferences"] = [owner]
    cluster.apply(control, namespace=ns)
    wait_for(
        lambda: cluster.get("images.alecton.dev", "api-0.0.0-control", ns) is None,
        60,
        "the garbage collector to delete the control Image",
    )
    kept = cluster.get("images.alecton.dev", "api-1.0.0", ns)
    assert kept is not None, "the garbage collector deleted the team's Image: the shadow one is now deployed"
    assert kept["metadata"]["uid"] == team_image["metadata"]["uid"]
    assert "ownerReferences" not in kept["metadata"], kept["metadata"]
    assert attack.returncode != 0 and "needs the right to delete" in attack.stderr, attack.stderr


def test_ci_with_the_image_publisher_cannot_set_or_strip_an_images_finalizers(
    crds: Cluster, namespaces: tuple[str, str]
) -> None:
    """R27B-5 too: a finalizer CI adds blocks a person's deletion of the Image; one it strips
    skips what the finalizer guards. Nor may CI create an Image that already carries owners
    or finalizers. Labels and re-applying stay CI's; a deployer (who may delete) may change
    them."""
    cluster = crds
    ns, _ = namespaces
    cluster.apply(r.image("api", "2.0.0", "registry.example/api:2.0.0"), namespace=ns)
    ci = as_tenant(cluster, ns, "alecton-image-publisher")
    install_the_image_deletion_policy(cluster, ci)
    try:
        finalizers_of_an_image_are_changed_only_by_who_may_delete_it(cluster, ns, ci)
    finally:  # a finalizer left behind would hold the namespace's deletion
        for name in ("api-2.0.0", "api-2.0.0-finalizers"):
            unheld = json.dumps({"metadata": {"finalizers": None}})
            cluster.kubectl("patch", "aimg", name, "-n", ns, "--type=merge", "-p", unheld, check=False)


def finalizers_of_an_image_are_changed_only_by_who_may_delete_it(
    cluster: Cluster, ns: str, ci: Tenant
) -> None:
    held = json.dumps({"metadata": {"finalizers": ["attacker.example/hold"]}})
    refused = ci("patch", "images.alecton.dev", "api-2.0.0", "--type=merge", "-p", held, check=False)
    kept = cluster.get("images.alecton.dev", "api-2.0.0", ns) or {}
    assert "finalizers" not in kept["metadata"], f"CI holds the team's Image: {kept['metadata']}"
    assert refused.returncode != 0 and "needs the right to delete" in refused.stderr, refused.stderr
    cluster.kubectl(
        "patch", "images.alecton.dev", "api-2.0.0", "-n", ns, "--type=merge",
        "-p", json.dumps({"metadata": {"finalizers": ["backup.example/keep"]}}),
    )  # fmt: skip
    stripped = json.dumps({"metadata": {"finalizers": None}})
    refused = ci("patch", "images.alecton.dev", "api-2.0.0", "--type=merge", "-p", stripped, check=False)
    kept = cluster.get("images.alecton.dev", "api-2.0.0", ns) or {}
    assert kept["metadata"].get("finalizers") == ["backup.example/keep"], (
        f"CI stripped it: {kept['metadata']}"
    )
    assert refused.returncode != 0 and "needs the right to delete" in refused.stderr, refused.stderr

    # Nor at creation (an Image born owned by the team's objects, or undeletable).
    for field, value in (
        ("ownerReferences", [an_owner_that_does_not_exist()]),
        ("finalizers", ["attacker.example/hold"]),
    ):
        born = r.image("api", f"2.0.0-{field.lower()}", "evil.example/api:2.0.0")
        born["metadata"][field] = value
        refused = ci("apply", "-f", "-", stdin=json.dumps(born), check=False)
        assert refused.returncode != 0 and "needs the right to delete" in refused.stderr, refused.stderr

    # Everything else stays CI's: labels, and re-applying unchanged.
    ci.apply(r.image("api", "2.1.0", "registry.example/api:2.1.0"))
    ci("label", "images.alecton.dev", "api-2.1.0", "built-by=ci")
    ci.apply(r.image("api", "2.1.0", "registry.example/api:2.1.0"))
    # Whoever may delete the Image may change them (a deployer: removing the finalizer).
    deployer = as_tenant(cluster, ns, "alecton-deployer")
    deployer("patch", "images.alecton.dev", "api-2.0.0", "--type=merge", "-p", stripped)
    assert "finalizers" not in (cluster.get("images.alecton.dev", "api-2.0.0", ns) or {})["metadata"]
