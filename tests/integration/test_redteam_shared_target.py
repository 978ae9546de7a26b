"""Red team: two tenants whose named-context grants cover the same target namespace.

On a named context every helm run impersonates the ServiceAccount `alecton-deployer` of the
*release namespace* (docs/security.md), so two tenants granted the same target namespace
(`'*=alecton-b:web-*'` as the README shows, `'*=CONTEXT'` as its upgrade notes suggest, or two
overlapping globs) act there as one and the same identity, an `admin` of that namespace.
The rows "tenant B points its target at tenant A's release" (ownership from helm's storage
labels) and the values/Secret rows promise that B still cannot take A's release nor read A's
secrets. Each test PASSES when that holds and FAILS when the attack works.
"""

from __future__ import annotations

import base64
import gzip
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.integration import resources as r
from tests.integration.harness import TEST_CHARTS, Cluster, OperatorProcess, events, wait_for
from tests.integration.test_tenancy import message, probe_app, tenant_apply, wait_phase

MARKER = f"TENANTASECRET{uuid.uuid4().hex}"


class Place:
    def __init__(self) -> None:
        suffix = uuid.uuid4().hex[:5]
        self.a = f"rt-a-{suffix}"  # the victim tenant
        self.b = f"rt-b-{suffix}"  # the attacker tenant
        self.shared = f"shared-{suffix}"  # a target namespace both grants cover


@pytest.fixture(scope="module")
def place() -> Place:
    return Place()


@pytest.fixture(scope="module")
def shared_operator(
    crds: Cluster, place: Place, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    before = crds.namespaces()
    for ns in (place.a, place.b):
        crds.kubectl("create", "namespace", ns)
    # What the platform team does once for the target namespace: for tenant A only. B's grant
    # covers the namespace too, but B acts as its own ServiceAccount there, which has no rights.
    crds.onboard(place.shared, tenant=place.a)
    process = OperatorProcess(
        crds,
        "helm",
        tmp_path_factory.mktemp("redteam-shared"),
        extra_args=(
            f"--namespace={place.a}",
            f"--namespace={place.b}",
            "--charts-dir",
            str(TEST_CHARTS),
            "--helm-timeout",
            "20",
            # Two tenants, each bounded to shared-* of cluster b (the README's `web-*` shape).
            "--allow-context",
            f"{place.a}=alecton-b:shared-*",
            "--allow-context",
            f"{place.b}=alecton-b:shared-*",
        ),
    )
    process.start()
    try:
        yield process
        crds.delete_namespaces_since(before)
    finally:
        process.stop()


def _victim_deploys(cluster: Cluster, place: Place) -> None:
    """Tenant A: a release in the shared namespace whose chart keeps a value from A's Secret
    in a Secret of the target namespace (what every chart with a database password does)."""
    secret_values = {
        "extraObjects": [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "a-db"},
                "stringData": {"password": MARKER},
            }
        ]
    }
    tenant_apply(
        cluster,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "a-values"},
            "stringData": {"values.yaml": yaml.safe_dump(secret_values)},
        },
        namespace=place.a,
    )
    tenant_apply(
        cluster,
        r.cluster(),
        probe_app("web", place.shared, valuesFrom=[{"kind": "Secret", "name": "a-values"}]),
        r.image("web", "1", "r/web:1"),
        r.deployment("web", "1"),
        namespace=place.a,
    )
    wait_phase(cluster, place.a, "web-staging", "Deployed")


def test_a_tenant_cannot_read_another_tenants_secret_in_a_shared_target_namespace(
    shared_operator: OperatorProcess, place: Place
) -> None:
    cluster = shared_operator.cluster
    _victim_deploys(cluster, place)
    assert MARKER not in json.dumps(cluster.get("deployments.alecton.dev", "web-staging", place.a))

    # Tenant B: its own release in the same namespace, with a chart that `lookup`s A's Secret.
    lookup = {"lookup": {"namespace": place.shared, "name": "a-db", "key": "password"}}
    tenant_apply(
        cluster,
        r.cluster(),
        probe_app("peek", place.shared, values=lookup),
        r.image("peek", "1", "r/peek:1"),
        r.deployment("peek", "1"),
        namespace=place.b,
    )
    obj = wait_phase(cluster, place.b, "peek-staging", "Failed")
    leaked = MARKER in json.dumps(obj) or MARKER in json.dumps(events(cluster, place.b))
    assert not leaked, f"tenant B read tenant A's Secret through its chart: {message(obj)}"


def _forged_release(name: str, namespace: str, version: int) -> str:
    """helm's storage format (base64(gzip(JSON))) of a release claiming to be deployed."""
    release = {
        "name": name,
        "namespace": namespace,
        "version": version,
        "info": {"status": "deployed", "description": "Upgrade complete"},
        "chart": {"metadata": {"apiVersion": "v2", "name": "probe", "version": "0.1.0"}},
        "config": {},
        "manifest": "",
    }
    return base64.b64encode(gzip.compress(json.dumps(release).encode())).decode()


def test_a_tenant_cannot_claim_another_tenants_release_by_writing_helms_storage(
    shared_operator: OperatorProcess, place: Place
) -> None:
    """B's chart writes a Secret labelled like helm's storage of A's release, naming B's
    Deployment as the owner: the owner check then sends A away and lets B upgrade (and, by
    deleting its Deployment, uninstall) A's release."""
    cluster = shared_operator.cluster
    if (cluster.get("deployments.alecton.dev", "web-staging", place.a) or {}).get("status", {}).get(
        "phase"
    ) != "Deployed":
        _victim_deploys(cluster, place)
    forged = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "helm.sh/release.v1",
        "metadata": {
            "name": "sh.helm.release.v1.web-staging.v99",
            "labels": {
                "owner": "helm",
                "name": "web-staging",
                "status": "deployed",
                "version": "99",
                "alecton.dev/owner-namespace": place.b,
                "alecton.dev/owner-name": "web-staging",
            },
        },
        "data": {
            "release": base64.b64encode(_forged_release("web-staging", place.shared, 99).encode()).decode()
        },
    }
    tenant_apply(
        cluster,
        r.cluster(),
        probe_app("plant", place.shared, values={"extraObjects": [forged]}),
        r.image("plant", "1", "r/plant:1"),
        r.deployment("plant", "1"),
        namespace=place.b,
    )
    # B's identity in the shared namespace is its own ServiceAccount, which the platform team
    # never onboarded there: the plant fails (forbidden) and nothing is written.
    planted = wait_for(
        lambda: (
            (got := cluster.get("deployments.alecton.dev", "plant-staging", place.b) or {})
            and (got.get("status") or {}).get("phase") in ("Deployed", "Failed")
            and got
        ),
        120,
        "B's plant to settle",
    )
    assert planted["status"]["phase"] == "Failed" and "forbidden" in message(planted).lower(), message(
        planted
    )
    assert (
        cluster.get("secret", "sh.helm.release.v1.web-staging.v99", place.shared, context="alecton-b") is None
    )

    # B points a Deployment at A's place (same release name, same namespace).
    tenant_apply(
        cluster,
        r.cluster(),
        probe_app("web", place.shared, values={"greeting": "owned-by-b"}),
        r.image("web", "1", "r/web:1"),
        r.deployment("web", "1"),
        namespace=place.b,
    )

    def settled() -> dict[str, Any] | None:
        obj = cluster.get("deployments.alecton.dev", "web-staging", place.b) or {}
        status = obj.get("status") or {}
        if status.get("observedGeneration") == obj["metadata"]["generation"] and status.get("phase") in (
            "Deployed",
            "Failed",
            "Conflict",
        ):
            return obj
        return None

    obj = wait_for(settled, 120, "B's Deployment at A's place to settle")
    breaches: list[str] = []
    configmap = json.loads(
        cluster.kubectl(
            "get", "configmap", "web-staging", "-n", place.shared, "-o", "json", context="alecton-b"
        ).stdout
    )
    if configmap["data"].get("greeting") == "owned-by-b":
        breaches.append("B upgraded A's release with B's values")
    refused = obj["status"]["phase"] == "Conflict" or (
        obj["status"]["phase"] == "Failed" and "forbidden" in message(obj).lower()
    )
    if not refused:
        breaches.append(f"B's owner check passed at A's place: {obj['status']['phase']}: {message(obj)}")

    # A changes its values: its own release must still be its own.
    tenant_apply(
        cluster,
        probe_app(
            "web",
            place.shared,
            values={"greeting": "a-again"},
            valuesFrom=[{"kind": "Secret", "name": "a-values"}],
        ),
        namespace=place.a,
    )

    def a_settled() -> str | None:
        a_obj = cluster.get("deployments.alecton.dev", "web-staging", place.a) or {}
        if (a_obj.get("status") or {}).get("phase") == "Conflict":
            return "Conflict: " + message(a_obj)
        cm = cluster.get("configmap", "web-staging", place.shared, context="alecton-b") or {}
        return "ok" if (cm.get("data") or {}).get("greeting") == "a-again" else None

    outcome = wait_for(a_settled, 120, "A's Deployment to apply its new values or report Conflict")
    if outcome != "ok":
        breaches.append(f"A lost its own release to B: {outcome}")
    if breaches:
        # Deleting B's Deployment: does it uninstall the release A made?
        cluster.kubectl("delete", "deployments.alecton.dev", "web-staging", "-n", place.b, "--timeout=90s")
        gone = cluster.get("configmap", "web-staging", place.shared, context="alecton-b") is None
        if gone:
            breaches.append("deleting B's Deployment uninstalled A's release")
    assert not breaches, breaches
