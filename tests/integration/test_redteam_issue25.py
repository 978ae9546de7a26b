"""Red team, issue 25, on the real control plane: freeze overrides against the audit trail.

Two people of one team, both with the shipped `alecton-deployer` role (ServiceAccounts
`alice` and `mallory`), the who-asked policy applied, a Freeze in force. Each test FAILS if
the attack succeeds.

- An override is "valid only for the generation that change makes". Mallory writes the
  annotation alone (no spec change, no new generation) naming the *next* generation; Alice's
  next change, made during the freeze, must still be Frozen.
- Mallory releases Alice's frozen change by writing the override annotation alone for the
  current generation. The ReleaseRecord of that deploy must say it went out past a freeze
  (the override's reason) and must not name only Alice (who asked for the change, not for the
  override).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration import resources as r
from tests.integration.harness import REPO, Cluster, OperatorProcess, module_operator, wait_for, wait_phase
from tests.integration.tenant import as_tenant

GOOD = "ghcr.io/stefanprodan/podinfo:6.7.0"
OVERRIDE = "alecton.dev/freeze-override"


@pytest.fixture(scope="module")
def frozen_team(crds: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    crds.kubectl("apply", "-f", str(REPO / "deploy" / "deployment-changed-by.yaml"))
    grant = ("--allow-context", "*=alecton-b@operator")
    with module_operator(crds, "helm", tmp_path_factory.mktemp("redteam25"), grant) as process:
        yield process


def deployment(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    return cluster.get("deployments.alecton.dev", name, ns) or {}


def settled(cluster: Cluster, ns: str, name: str) -> dict[str, Any] | None:
    """The Deployment once the operator has judged its current generation: Frozen, or
    released (Deployed at the version its spec asks)."""
    obj = deployment(cluster, ns, name)
    status = obj.get("status") or {}
    if status.get("observedGeneration") != obj.get("metadata", {}).get("generation"):
        return None
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    if ready.get("reason") == "Frozen":
        return obj
    if status.get("phase") == "Deployed" and status.get("appliedVersion") == obj["spec"]["version"]:
        return obj
    return None


def is_frozen(obj: dict[str, Any]) -> bool:
    ready = next((c for c in obj["status"].get("conditions") or [] if c.get("type") == "Ready"), {})
    return ready.get("reason") == "Frozen"


def setup_team(cluster: Cluster, name: str) -> tuple[str, Any, Any]:
    ns = cluster.new_namespace(name)
    cluster.apply(r.cluster(), r.application("web", f"{ns}-staging"), namespace=ns)
    alice = as_tenant(cluster, ns, "alecton-deployer", account="alice")
    mallory = as_tenant(cluster, ns, "alecton-deployer", account="mallory")
    alice.apply(*(r.image("web", v, GOOD) for v in ("1.0.0", "1.0.1", "1.0.2")))
    alice.apply(r.deployment("web", "1.0.0"))
    wait_phase(cluster, ns, "web-staging", "Deployed", timeout=120, appliedVersion="1.0.0")
    alice.apply(
        {
            "apiVersion": r.API,
            "kind": "Freeze",
            "metadata": {"name": "stop"},
            "spec": {"reason": "quarter close"},
        }
    )
    wait_for(
        lambda: ((cluster.get("freezes.alecton.dev", "stop", ns) or {}).get("status") or {}).get("active"),
        30,
        "the freeze to be active",
    )
    return ns, alice, mallory


def annotate_only(tenant: Any, value: str) -> None:
    """A metadata-only write: no spec change, so no new generation."""
    patch = {"metadata": {"annotations": {OVERRIDE: value}}}
    tenant("patch", "deployments.alecton.dev", "web-staging", "--type=merge", "-p", json.dumps(patch))


def test_an_override_written_ahead_does_not_release_a_later_change_by_someone_else(
    frozen_team: OperatorProcess,
) -> None:
    cluster = frozen_team.cluster
    ns, alice, mallory = setup_team(cluster, "rt25-ahead")
    generation = int(deployment(cluster, ns, "web-staging")["metadata"]["generation"])

    # Mallory plants an override for the generation Alice's next change will make.
    annotate_only(mallory, f"{generation + 1}:planted ahead")
    assert int(deployment(cluster, ns, "web-staging")["metadata"]["generation"]) == generation

    # Alice changes the version during the freeze, with kubectl, giving no override.
    alice(
        "patch",
        "deployments.alecton.dev",
        "web-staging",
        "--type=merge",
        "-p",
        '{"spec":{"version":"1.0.1"}}',
    )
    obj = wait_for(lambda: settled(cluster, ns, "web-staging"), 120, "the change to be judged")
    assert is_frozen(obj), (
        "BROKEN: an override planted before the change released it past the freeze: "
        f"appliedVersion={obj['status'].get('appliedVersion')}, "
        f"annotations={obj['metadata'].get('annotations')}"
    )


def test_a_deploy_past_a_freeze_is_recorded_with_its_override_and_who_gave_it(
    frozen_team: OperatorProcess,
) -> None:
    cluster = frozen_team.cluster
    ns, alice, mallory = setup_team(cluster, "rt25-record")

    # Alice's change is held by the freeze.
    alice(
        "patch",
        "deployments.alecton.dev",
        "web-staging",
        "--type=merge",
        "-p",
        '{"spec":{"version":"1.0.2"}}',
    )
    held = wait_for(lambda: settled(cluster, ns, "web-staging"), 120, "the change to be judged")
    assert is_frozen(held), held["status"]
    generation = int(held["metadata"]["generation"])

    # Mallory overrides it with a metadata-only write (no spec change).
    annotate_only(mallory, f"{generation}:mallory-was-here")
    wait_phase(cluster, ns, "web-staging", "Deployed", timeout=120, appliedVersion="1.0.2")

    def deployed_record() -> dict[str, Any] | None:
        body = json.loads(cluster.kubectl("get", "releaserecords.alecton.dev", "-n", ns, "-o", "json").stdout)
        for item in body["items"]:
            spec = item["spec"]
            if spec.get("kind") == "Deployed" and spec.get("version") == "1.0.2":
                return dict(spec)
        return None

    record = wait_for(deployed_record, 60, "the ReleaseRecord of 1.0.2")
    text = json.dumps(record)
    assert "mallory-was-here" in text, (
        f"BROKEN: the deploy past the freeze is recorded as an ordinary one: {text}"
    )
    assert mallory.user in text, (
        f"BROKEN: the override is attributed to {record.get('requestedBy')!r}, not to {mallory.user}: {text}"
    )


def test_an_uninstall_is_not_recorded_under_the_name_of_whoever_last_deployed(
    frozen_team: OperatorProcess,
) -> None:
    """The who-asked policy matches CREATE and UPDATE only: a DELETE stamps nothing, so the
    Uninstalled record (and News) names the last person who changed the spec."""
    cluster = frozen_team.cluster
    ns, alice, mallory = setup_team(cluster, "rt25-delete")
    mallory("delete", "deployments.alecton.dev", "web-staging", "--wait=false")

    def uninstalled() -> dict[str, Any] | None:
        body = json.loads(cluster.kubectl("get", "releaserecords.alecton.dev", "-n", ns, "-o", "json").stdout)
        return next((dict(i["spec"]) for i in body["items"] if i["spec"].get("kind") == "Uninstalled"), None)

    record = wait_for(uninstalled, 120, "the Uninstalled record")
    assert record.get("requestedBy") != alice.user, (
        f"BROKEN: mallory's uninstall is recorded as asked by {alice.user}: {json.dumps(record)}"
    )
