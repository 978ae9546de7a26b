"""From CI to production without Git (issue 13), on the real control plane with kwok
nodes: CI only records Images; staging follows them automatically, prod follows staging
after a soak and a person's approval; bad versions never travel; a person's rollback holds
automation until `alecton resume`."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration import resources as r
from tests.integration.harness import REPO, Cluster, OperatorProcess, wait_for, wait_phase
from tests.integration.tenant import as_tenant
from tests.integration.test_cli import alecton, ok

GOOD = "ghcr.io/stefanprodan/podinfo:6.7.0"
CRASH = "ghcr.io/stefanprodan/podinfo:6.9.0-crash"
STAGING = {"versions": {"semver": ">=1.0.0 <2"}}
PROD = {"versions": {"semver": ">=1.0.0 <2"}, "from": "staging", "soak": "3s", "approval": "Manual"}


def promotions(cluster: Cluster, ns: str, deployment: str) -> list[dict[str, Any]]:
    items = json.loads(cluster.kubectl("get", "promotions.alecton.dev", "-n", ns, "-o", "json").stdout)[
        "items"
    ]
    return [p for p in items if p["spec"]["deployment"] == deployment]


def states(cluster: Cluster, ns: str, deployment: str) -> dict[str, str]:
    """toVersion -> state of the newest Promotion for it."""
    found = sorted(promotions(cluster, ns, deployment), key=lambda p: p["metadata"]["creationTimestamp"])
    return {p["spec"]["toVersion"]: (p.get("status") or {}).get("state", "") for p in found}


def promotion_status(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    return ((cluster.get("deployments.alecton.dev", name, ns) or {}).get("status") or {}).get(
        "promotion"
    ) or {}


def spec_version(cluster: Cluster, ns: str, name: str) -> str:
    return str(
        ((cluster.get("deployments.alecton.dev", name, ns) or {}).get("spec") or {}).get("version", "")
    )


def explained(cluster: Cluster, ns: str) -> Callable[..., Any]:
    """wait_for that, when it times out, shows both Deployments' status and the Promotions."""

    def wait(check: Callable[[], Any], timeout: float, what: str) -> Any:
        try:
            return wait_for(check, timeout, what)
        except AssertionError as error:
            shown = {
                name: {
                    k: v
                    for k, v in (
                        (cluster.get("deployments.alecton.dev", name, ns) or {}).get("status") or {}
                    ).items()
                    if k in ("phase", "message", "appliedVersion", "promotion", "failedVersions", "health")
                }
                for name in ("web-staging", "web-prod")
            }
            promos = {p["metadata"]["name"]: p.get("status") for p in promotions(cluster, ns, "web-prod")}
            raise AssertionError(
                f"{error}\n{json.dumps(shown, indent=1)}\n{json.dumps(promos, indent=1)}"
            ) from None

    return wait


@pytest.mark.local_plane(reason="a crashing release on staging (kwok's `-crash` image stage)")
def test_ci_to_production(operator: OperatorProcess) -> None:
    cluster = operator.cluster
    # Who approved is stamped by the API server (deploy/promotion-approvals.yaml).
    cluster.kubectl("apply", "-f", str(REPO / "deploy" / "promotion-approvals.yaml"))
    ns = cluster.new_namespace("promo")
    app = r.application("web", f"{ns}-staging", onFailure="Rollback", healthTimeout="2m")
    app["spec"]["targets"].append(
        {"name": "prod", "cluster": "target-b", "namespace": f"{ns}-prod", "values": {}}
    )
    cluster.apply(r.cluster(), app, namespace=ns)
    wait_for = explained(cluster, ns)  # shadows the plain one: a timeout shows the state
    cluster.apply(r.promoted("web", STAGING), r.promoted("web", PROD, target="prod"), namespace=ns)

    # CI's only step: record the Image. Staging deploys it by itself.
    ok(alecton(cluster, ns, "image", "create", "web", "1.0.0", GOOD))
    wait_phase(cluster, ns, "web-staging", "Deployed", timeout=120)
    assert spec_version(cluster, ns, "web-staging") == "1.0.0"
    assert states(cluster, ns, "web-staging") == {"1.0.0": "Applied"}

    # After the soak, prod gets a Pending Promotion; a person approves; prod deploys.
    wait_for(
        lambda: states(cluster, ns, "web-prod") == {"1.0.0": "Pending"}, 60, "a Pending promotion for prod"
    )
    assert spec_version(cluster, ns, "web-prod") == ""
    listed = ok(alecton(cluster, ns, "promotions", "web"))
    assert "1.0.0" in listed and "Pending" in listed
    ok(alecton(cluster, ns, "approve", "web", "prod"))
    wait_phase(cluster, ns, "web-prod", "Deployed", timeout=120)
    assert spec_version(cluster, ns, "web-prod") == "1.0.0"
    (approved,) = promotions(cluster, ns, "web-prod")
    assert approved["status"]["state"] == "Applied"
    assert approved["spec"]["approval"]["by"], approved  # stamped by the API server's admission policy

    # A version outside the constraint is ignored.
    ok(alecton(cluster, ns, "image", "create", "web", "2.0.0", GOOD))
    # An Image that crashes: staging deploys it, fails its health check and rolls back;
    # prod never sees it, and staging does not try it again.
    ok(alecton(cluster, ns, "image", "create", "web", "1.1.0", CRASH))
    wait_for(
        lambda: any(
            f.get("version") == "1.1.0"
            for f in (
                (cluster.get("deployments.alecton.dev", "web-staging", ns) or {}).get("status") or {}
            ).get("failedVersions")
            or []
        ),
        180,
        "1.1.0 to fail its health check on staging",
    )
    wait_phase(cluster, ns, "web-staging", "RolledBack", timeout=120)
    assert "2.0.0" not in states(cluster, ns, "web-staging")
    assert "1.1.0" not in states(cluster, ns, "web-prod")

    # 1.2.0 is good: staging takes it, prod gets a Pending promotion; a newer 1.3.0
    # supersedes it before anyone approves.
    ok(alecton(cluster, ns, "image", "create", "web", "1.2.0", GOOD))
    wait_for(lambda: states(cluster, ns, "web-prod").get("1.2.0") == "Pending", 180, "1.2.0 pending on prod")
    ok(alecton(cluster, ns, "image", "create", "web", "1.3.0", GOOD))
    wait_for(lambda: states(cluster, ns, "web-prod").get("1.3.0") == "Pending", 180, "1.3.0 pending on prod")
    assert states(cluster, ns, "web-prod")["1.2.0"] == "Superseded"

    # An approval holds for the inputs it was given: prod is suspended, 1.3.0 approved,
    # then prod's values change; when prod runs again the approval no longer matches and
    # 1.3.0 is proposed anew.
    cluster.patch_spec(ns, "web-prod", {"suspend": True})
    # Approved with kubectl this time, claiming to be someone else: the API server records
    # who really approved.
    (pending,) = [p for p in promotions(cluster, ns, "web-prod") if p["spec"]["toVersion"] == "1.3.0"]
    forged = {
        "spec": {"approval": {"decision": "Approved", "digest": pending["spec"]["digest"], "by": "mallory"}}
    }
    name = pending["metadata"]["name"]
    cluster.kubectl(
        "patch", "promotions.alecton.dev", name, "-n", ns, "--type=merge", "-p", json.dumps(forged)
    )
    stamped = cluster.get("promotions.alecton.dev", name, ns) or {}
    assert stamped["spec"]["approval"]["by"] not in ("", "mallory"), stamped["spec"]["approval"]
    app["spec"]["targets"][1]["values"] = {"replicaCount": 2}
    cluster.apply(app, namespace=ns)
    cluster.patch_spec(ns, "web-prod", {"suspend": False})

    def of_1_3_0() -> list[dict[str, Any]]:
        return [p for p in promotions(cluster, ns, "web-prod") if p["spec"]["toVersion"] == "1.3.0"]

    wait_for(lambda: len(of_1_3_0()) == 2, 60, "1.3.0 proposed again")
    by_state = {p["status"]["state"]: p for p in of_1_3_0()}
    assert set(by_state) == {"Superseded", "Pending"}, by_state
    assert "inputs changed after approval" in by_state["Superseded"]["status"]["message"]
    assert spec_version(cluster, ns, "web-prod") == "1.0.0"
    ok(alecton(cluster, ns, "approve", "web", "prod"))
    wait_for(lambda: spec_version(cluster, ns, "web-prod") == "1.3.0", 60, "prod at 1.3.0")
    wait_phase(cluster, ns, "web-prod", "Deployed", timeout=120)

    # A person's rollback on prod holds automation: a newer version soaked on staging is
    # not proposed for prod until `alecton resume`.
    ok(alecton(cluster, ns, "rollback", "web", "prod", "1"))
    wait_phase(cluster, ns, "web-prod", "RolledBack", timeout=120)
    # kubectl shows the desired version beside the one that runs.
    header, row = cluster.kubectl("get", "adep", "web-prod", "-n", ns).stdout.splitlines()[:2]
    columns = dict(zip(header.split(), row.split(), strict=False))
    assert (columns["VERSION"], columns["RUNNING"]) == ("1.3.0", "1.0.0"), (header, row)
    wait_for(lambda: promotion_status(cluster, ns, "web-prod").get("hold"), 30, "the hold in status")
    ok(alecton(cluster, ns, "image", "create", "web", "1.4.0", GOOD))
    wait_for(lambda: states(cluster, ns, "web-staging").get("1.4.0") == "Applied", 120, "staging at 1.4.0")
    wait_phase(cluster, ns, "web-staging", "Deployed", timeout=120)
    operator.restart()  # restarts propose nothing twice
    held = promotion_status(cluster, ns, "web-prod")
    assert held["hold"]["reason"] == "Rollback" and "alecton resume" in held["message"], held
    assert held["hold"]["by"] == "alecton-cli", held  # who set spec.rollback, from managedFields
    assert "1.4.0" not in states(cluster, ns, "web-prod")
    ok(alecton(cluster, ns, "resume", "web", "prod"))
    wait_for(
        lambda: states(cluster, ns, "web-prod").get("1.4.0") == "Pending", 120, "1.4.0 pending after resume"
    )

    # A version proposed by hand (an older one): it supersedes the pending 1.4.0 and goes
    # through approval like any other.
    ok(alecton(cluster, ns, "promote", "web", "--from", "staging", "--to", "prod", "1.2.0"))
    wait_for(lambda: states(cluster, ns, "web-prod").get("1.2.0") == "Pending", 60, "1.2.0 proposed by hand")
    assert states(cluster, ns, "web-prod")["1.4.0"] == "Superseded"
    ok(alecton(cluster, ns, "approve", "web", "prod", "--version", "1.2.0"))
    wait_for(lambda: spec_version(cluster, ns, "web-prod") == "1.2.0", 60, "prod at 1.2.0")

    # A version deployed by hand holds automation too, and says who did it.
    deployed = alecton(cluster, ns, "deploy", "web", "prod", "1.3.0")
    assert deployed.returncode == 0 and "holds automation" in deployed.stderr, deployed.stderr
    wait_for(lambda: promotion_status(cluster, ns, "web-prod").get("hold"), 30, "the ManualDeploy hold")
    hold = promotion_status(cluster, ns, "web-prod")["hold"]
    assert (hold["reason"], hold["by"], hold["version"]) == ("ManualDeploy", "alecton-cli", "1.3.0"), hold

    # Nothing was proposed twice, across the restart.
    for name in ("web-staging", "web-prod"):
        found = [(p["spec"]["toVersion"], p["spec"]["digest"]) for p in promotions(cluster, ns, name)]
        assert len(found) == len(set(found)), found


def history_of(cluster: Cluster, ns: str, name: str) -> list[dict[str, Any]]:
    return list(
        ((cluster.get("deployments.alecton.dev", name, ns) or {}).get("status") or {}).get("history") or []
    )


@pytest.mark.e2e
def test_a_version_set_under_the_operators_field_manager_is_a_person_deploying(
    operator: OperatorProcess,
) -> None:
    """Issue 23, finding 5: any client may call itself `alecton-promotion`. A tenant (the
    shipped alecton-deployer role) sets spec.version with that field manager and a copy of
    the operator's record edited to name its version: the Deployment is held like any
    change by hand, automation does not move it, and its revision's cause is not
    promotion. The operator's own writes carry a record that verifies (cause promotion)."""
    cluster = operator.cluster
    ns = cluster.new_namespace("forged")
    cluster.apply(r.cluster(), r.application("web", f"{ns}-staging"), namespace=ns)
    ok(alecton(cluster, ns, "image", "create", "web", "0.9.0", GOOD))  # outside the range: ignored
    cluster.apply(r.promoted("web", STAGING), namespace=ns)
    ok(alecton(cluster, ns, "image", "create", "web", "1.0.0", GOOD))
    wait_for(lambda: spec_version(cluster, ns, "web-staging") == "1.0.0", 60, "1.0.0 promoted")
    wait_phase(cluster, ns, "web-staging", "Deployed", timeout=120, appliedVersion="1.0.0")
    ours = cluster.get("deployments.alecton.dev", "web-staging", ns) or {}
    record = ours["metadata"]["annotations"]["alecton.dev/promoted"]
    assert record.startswith("1.0.0@web-staging-1-0-0-"), record
    assert ours["status"]["promotion"]["promoted"] == "1.0.0"
    assert history_of(cluster, ns, "web-staging")[0]["cause"] == "promotion"

    tenant = as_tenant(cluster, ns, "alecton-deployer")
    forged = {
        "apiVersion": "alecton.dev/v1alpha1",
        "kind": "Deployment",
        "metadata": {
            "name": "web-staging",
            "annotations": {"alecton.dev/promoted": "0.9.0@" + record.split("@", 1)[1]},
        },
        "spec": {"version": "0.9.0"},
    }
    tenant(
        "apply", "--server-side", "--field-manager=alecton-promotion", "--force-conflicts", "-f", "-",
        stdin=json.dumps(forged),
    )  # fmt: skip
    shown = cluster.kubectl(
        "get", "deployments.alecton.dev", "web-staging", "-n", ns, "-o", "json", "--show-managed-fields"
    )
    managers = {
        m["manager"]
        for m in json.loads(shown.stdout)["metadata"]["managedFields"]
        if "f:version" in (m.get("fieldsV1") or {}).get("f:spec", {})
    }
    assert managers == {"alecton-promotion"}, managers  # managedFields cannot tell who it was

    wait_for(lambda: promotion_status(cluster, ns, "web-staging").get("hold"), 30, "a ManualDeploy hold")
    hold = promotion_status(cluster, ns, "web-staging")["hold"]
    assert (hold["reason"], hold["version"]) == ("ManualDeploy", "0.9.0"), hold
    wait_phase(cluster, ns, "web-staging", "Deployed", timeout=120, appliedVersion="0.9.0")
    (revision,) = [h for h in history_of(cluster, ns, "web-staging") if h.get("version") == "0.9.0"]
    assert revision.get("cause") == "deploy", revision
    assert not promotion_status(cluster, ns, "web-staging").get("promoted")

    # Held: a newer Image is not proposed, across a restart too; `alecton resume` lifts it.
    ok(alecton(cluster, ns, "image", "create", "web", "1.1.0", GOOD))
    operator.restart()
    time.sleep(10)  # the operator promoted 1.0.0 within seconds; resuming below proves it would
    assert spec_version(cluster, ns, "web-staging") == "0.9.0"
    assert "1.1.0" not in states(cluster, ns, "web-staging")
    assert promotion_status(cluster, ns, "web-staging")["hold"]["reason"] == "ManualDeploy"
    ok(alecton(cluster, ns, "resume", "web", "staging"))
    wait_for(lambda: spec_version(cluster, ns, "web-staging") == "1.1.0", 60, "1.1.0 promoted after resume")
    wait_phase(cluster, ns, "web-staging", "Deployed", timeout=120, appliedVersion="1.1.0")
    assert history_of(cluster, ns, "web-staging")[0]["cause"] == "promotion"


@pytest.mark.e2e
def test_the_schema_guards_versions_and_approvals(crds: Cluster) -> None:
    """What the API server refuses itself, with the field named: a Deployment with neither
    version nor promotion, an approval of another digest, an approval changed later."""

    def refused(*docs: dict[str, Any]) -> str:
        listed = json.dumps({"kind": "List", "apiVersion": "v1", "items": list(docs)})
        proc = crds.kubectl("apply", "-n", "default", "-f", "-", stdin=listed, check=False)
        assert proc.returncode != 0, proc.stdout
        return proc.stderr

    bare = {**r.promoted("web", {}), "spec": {"application": "web", "target": "staging"}}
    assert "give spec.version, or spec.promotion" in refused(bare)
    both = r.promoted("web", {"versions": {"semver": "1.x", "pattern": "x"}})
    assert "give exactly one of semver and pattern" in refused(both)

    name = f"p-{uuid.uuid4().hex[:6]}"
    promotion = {
        "apiVersion": "alecton.dev/v1alpha1",
        "kind": "Promotion",
        "metadata": {"name": name},
        "spec": {
            "deployment": "web-prod",
            "application": "web",
            "target": "prod",
            "fromVersion": "1.0.0",
            "toVersion": "1.1.0",
            "reason": "by hand",
            "digest": "d1",
        },
    }
    wrong = {**promotion, "spec": {**promotion["spec"], "approval": {"decision": "Approved", "digest": "d0"}}}
    assert "must name this Promotion's own digest" in refused(wrong)
    crds.apply(promotion, namespace="default")
    approve = {"spec": {"approval": {"decision": "Approved", "digest": "d1"}}}
    crds.kubectl(
        "patch", "promotions.alecton.dev", name, "-n", "default", "--type=merge", "-p", json.dumps(approve)
    )
    reject = {"spec": {"approval": {"decision": "Rejected", "digest": "d1"}}}
    changed = crds.kubectl(
        "patch", "promotions.alecton.dev", name, "-n", "default", "--type=merge", "-p", json.dumps(reject),
        check=False,
    )  # fmt: skip
    assert changed.returncode != 0 and "already decided" in changed.stderr, changed.stderr
    moved = {"spec": {"toVersion": "9.9.9"}}
    immutable = crds.kubectl(
        "patch", "promotions.alecton.dev", name, "-n", "default", "--type=merge", "-p", json.dumps(moved),
        check=False,
    )  # fmt: skip
    assert immutable.returncode != 0 and "immutable" in immutable.stderr, immutable.stderr
    crds.kubectl("delete", "promotions.alecton.dev", name, "-n", "default")
