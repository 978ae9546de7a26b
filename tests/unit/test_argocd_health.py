"""deploy/argocd's Lua health checks, offline: over objects recorded live from the test bed
(tests/fixtures/argocd, written by tests/integration/test_argocd_health.py), over every phase
and state the operator writes, and over a status older than its spec. The argocd-cm patch
and the kustomize Component must carry exactly the scripts."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from alecton.reconcile import promotion_records as promotion
from alecton.reconcile import status as st

from tests.argocd_lua import ARGOCD, FIXTURES, SCRIPTS, health

# Recorded object -> (Argo CD status, words its message must have).
RECORDED = {
    "deployment-pending": ("Progressing", "9.9.9"),
    "deployment-deployed": ("Healthy", "is healthy"),
    "deployment-suspended": ("Suspended", "spec.suspend"),
    "deployment-conflict": ("Degraded", "web-staging"),
    "deployment-rolled-back-auto": ("Degraded", "version 2.0.0 failed"),
    "deployment-rolled-back": ("Healthy", "rolled back"),
    "deployment-frozen": ("Suspended", "release-week"),
    "deployment-verifying": ("Progressing", "verifying health"),
    "deployment-failed-health": ("Degraded", "health timeout"),
    "deployment-degraded": ("Degraded", "unhealthy"),
    "promotion-applied": ("Healthy", "Applied"),
    "promotion-pending": ("Suspended", "alecton approve web prod"),
    "promotion-failed": ("Degraded", "failed its health check"),
    "promotion-rejected": ("Healthy", "Rejected"),
    "image": ("Healthy", "ghcr.io/stefanprodan/podinfo:6.7.0"),
}


def recorded(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / f"{name}.json").read_text()))


def test_every_recorded_object_is_tested() -> None:
    assert sorted(p.stem for p in FIXTURES.glob("*.json")) == sorted(RECORDED)


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_recorded_objects(name: str) -> None:
    obj = recorded(name)
    status, words = RECORDED[name]
    found, message = health(obj["kind"], obj)
    assert found == status and words in message, (found, message)


@pytest.mark.parametrize("name", sorted(n for n in RECORDED if n.startswith("deployment-")))
def test_a_status_older_than_its_spec_is_progressing(name: str) -> None:
    obj = recorded(name)
    obj["metadata"]["generation"] += 1
    found, message = health("Deployment", obj)
    assert found == "Progressing" and "not acted on the latest spec" in message, message


def deployment(phase: str | None, ready_reason: str = "", **spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "alecton.dev/v1alpha1",
        "kind": "Deployment",
        "metadata": {"name": "web-staging", "generation": 4},
        "spec": {"application": "web", "target": "staging", "version": "1.0.0", **spec},
    }
    if phase is not None:
        conditions = [{"type": "Ready", "status": "False", "reason": ready_reason, "observedGeneration": 4}]
        obj["status"] = {
            "observedGeneration": 4,
            "phase": phase,
            "message": f"a {phase} message",
            "conditions": conditions if ready_reason else [],
        }
    return obj


PHASES = {
    st.PENDING: "Progressing",
    st.DEPLOYING: "Progressing",
    st.VERIFYING: "Progressing",
    st.DEPLOYED: "Healthy",
    st.DEGRADED: "Degraded",
    st.FAILED: "Degraded",
    st.ROLLING_BACK: "Progressing",
    st.ROLLED_BACK: "Degraded",  # without spec.rollback: the operator rolled back a failed version
    st.CONFLICT: "Degraded",
    st.SUSPENDED: "Suspended",
    st.DELETING: "Progressing",
}


def test_every_phase_the_operator_writes_is_mapped() -> None:
    written = {v for k, v in vars(st).items() if k.isupper() and isinstance(v, str) and v[:1].isupper()}
    phases = written - {st.READY, st.RELEASED, st.RECONCILING, st.STALLED, st.HEALTH_CHECK_FAILED}
    assert phases == set(PHASES)
    for phase, expected in PHASES.items():
        found, message = health("Deployment", deployment(phase))
        assert found == expected and f"a {phase} message" in message, (phase, found, message)


@pytest.mark.parametrize(
    ("obj", "expected", "words"),
    [
        (deployment(None), "Progressing", "waiting for the alecton operator"),
        (deployment(st.PENDING, "Frozen"), "Suspended", "a Pending message"),
        (deployment(st.ROLLED_BACK, "RollbackHeld", rollback={"revision": 1}), "Suspended", "RolledBack"),
        (deployment(st.ROLLED_BACK, "RolledBack", rollback={"revision": 1}), "Healthy", "RolledBack"),
        (deployment(st.DEPLOYED, "UnexpectedError"), "Degraded", "could not reconcile"),
        (deployment(st.DELETING, "UninstallFailed"), "Degraded", "a Deleting message"),
        (deployment("Exploded"), "Unknown", "unknown phase Exploded"),
    ],
)
def test_deployment_cases(obj: dict[str, Any], expected: str, words: str) -> None:
    found, message = health("Deployment", obj)
    assert found == expected and words in message, (found, message)


def test_a_condition_of_an_older_spec_is_not_read() -> None:
    """Only a Ready condition written for this generation says Frozen (or anything)."""
    obj = deployment(st.PENDING, "Frozen")
    obj["status"]["conditions"][0]["observedGeneration"] = 3
    assert health("Deployment", obj)[0] == "Progressing"


def test_drift_is_named_on_a_healthy_deployment() -> None:
    obj = deployment(st.DEPLOYED)
    drifted = {
        "type": "Drifted",
        "status": "True",
        "message": "Deployment web (changed)",
        "observedGeneration": 4,
    }
    obj["status"]["conditions"].append(drifted)
    assert health("Deployment", obj) == (
        "Healthy",
        "a Deployed message; drift on the target: Deployment web (changed)",
    )


def a_promotion(state: str | None, decision: str = "") -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "alecton.dev/v1alpha1",
        "kind": "Promotion",
        "metadata": {"name": "web-prod-1-2-0-abc", "generation": 1},
        "spec": {"deployment": "web-prod", "application": "web", "target": "prod", "toVersion": "1.2.0"},
    }
    if decision:
        obj["spec"]["approval"] = {"decision": decision, "digest": "d", "by": "alice"}
    if state is not None:
        obj["status"] = {"state": state, "message": f"a {state} message"}
    return obj


STATES = {
    promotion.PENDING: "Suspended",
    promotion.APPROVED: "Suspended",
    promotion.APPLIED: "Healthy",
    promotion.SUPERSEDED: "Healthy",
    promotion.REJECTED: "Healthy",
    promotion.FAILED: "Degraded",
}


def test_every_promotion_state_is_mapped() -> None:
    written = {
        v
        for k, v in vars(promotion).items()
        if k.isupper() and not k.startswith("_") and isinstance(v, str) and v.isalpha()
    }
    assert written == set(STATES)
    for state, expected in STATES.items():
        found, message = health("Promotion", a_promotion(state))
        assert found == expected and f"a {state} message" in message, (state, found, message)


@pytest.mark.parametrize(
    ("obj", "expected", "words"),
    [
        (a_promotion(None), "Suspended", "alecton approve web prod --version 1.2.0"),
        (a_promotion("Pending", "Approved"), "Progressing", "approved by alice"),
        (a_promotion(None, "Rejected"), "Progressing", "rejected by alice"),
        (a_promotion("Lost"), "Unknown", "unknown state Lost"),
    ],
)
def test_promotion_cases(obj: dict[str, Any], expected: str, words: str) -> None:
    found, message = health("Promotion", obj)
    assert found == expected and words in message, (found, message)


def image(*conditions: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "alecton.dev/v1alpha1",
        "kind": "Image",
        "metadata": {"name": "web-1.0.0", "generation": 1},
        "spec": {"name": "web", "version": "1.0.0", "image": "ghcr.io/stefanprodan/podinfo:6.7.0"},
        "status": {"conditions": list(conditions)},
    }


@pytest.mark.parametrize(
    ("obj", "expected", "words"),
    [
        (image(), "Healthy", "web 1.0.0 is ghcr.io"),
        (
            image({"type": "Verified", "status": "False", "message": "no valid signature"}),
            "Degraded",
            "no valid",
        ),
        (image({"type": "Verified", "status": "Unknown", "reason": "Verifying"}), "Progressing", "Verifying"),
        (
            image({"type": "Ready", "status": "True", "observedGeneration": 0}),
            "Progressing",
            "not checked yet",
        ),
        (image({"type": "Stalled", "status": "True", "message": "registry refused"}), "Degraded", "refused"),
        (image({"type": "Reconciling", "status": "False"}), "Healthy", "web 1.0.0"),
    ],
)
def test_image_cases(obj: dict[str, Any], expected: str, words: str) -> None:
    found, message = health("Image", obj)
    assert found == expected and words in message, (found, message)


def _patch_module() -> Any:
    spec = importlib.util.spec_from_file_location(
        "argocd_cm_patch", ARGOCD.parents[1] / "hack" / "argocd-cm-patch.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def scripts() -> dict[str, str]:
    return {f"resource.customizations.health.{p.stem}": p.read_text() for p in SCRIPTS.glob("*.lua")}


def test_the_argocd_cm_patch_is_the_scripts() -> None:
    shipped = (ARGOCD / "argocd-cm-patch.yaml").read_text()
    assert shipped == _patch_module().patch_text(), "run `make argocd-health`"
    assert yaml.safe_load(shipped) == {"data": scripts()}


def test_the_kustomize_component_lists_every_script_under_its_key() -> None:
    component = yaml.safe_load((ARGOCD / "kustomization.yaml").read_text())
    assert component["kind"] == "Component"
    (generator,) = component["configMapGenerator"]
    assert (generator["name"], generator["behavior"]) == ("argocd-cm", "merge")
    assert generator["options"]["disableNameSuffixHash"] is True
    listed = dict(entry.split("=", 1) for entry in generator["files"])
    assert {key: (ARGOCD / path).read_text() for key, path in listed.items()} == scripts()
    # The key Argo CD reads: resource.customizations.health.<group>_<Kind>.
    assert sorted(listed) == [
        f"resource.customizations.health.alecton.dev_{kind}" for kind in ("Deployment", "Image", "Promotion")
    ]
    assert all(Path(ARGOCD / path).parent == SCRIPTS for path in listed.values())
