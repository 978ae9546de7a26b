"""The ValidatingAdmissionPolicies alecton ships (deploy/shard-label.yaml, deploy/image-deletion.yaml)
are installed by kustomize, and the chart ships each with the same spec and a binding that denies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.shipped_chart import rendered_chart

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
POLICY_FILES = ("shard-label.yaml", "image-deletion.yaml")


def policies(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents if d and d["kind"] == "ValidatingAdmissionPolicy"}


def bindings(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        d["metadata"]["name"]: d for d in documents if d and d["kind"] == "ValidatingAdmissionPolicyBinding"
    }


def shipped(file: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all((DEPLOY / file).read_text()))


@pytest.fixture(scope="module")
def chart() -> list[dict[str, Any]]:
    """The chart rendered as release `alecton`, so its names are those of deploy/."""
    return rendered_chart()


@pytest.mark.parametrize("file", POLICY_FILES)
def test_kustomize_installs_it(file: str) -> None:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    assert file in kustomization["resources"]


@pytest.mark.parametrize("file", POLICY_FILES)
def test_the_chart_ships_the_same_policy_bound_to_deny(file: str, chart: list[dict[str, Any]]) -> None:
    for name, policy in policies(shipped(file)).items():
        assert name in policies(chart), f"the chart has no ValidatingAdmissionPolicy {name}"
        assert policies(chart)[name]["spec"] == policy["spec"], f"{name}: deploy/{file} and the chart differ"
        assert policy["spec"]["failurePolicy"] == "Fail"
        binding = {"policyName": name, "validationActions": ["Deny"]}
        assert bindings(shipped(file))[name]["spec"] == binding
        assert bindings(chart)[name]["spec"] == binding


def test_only_who_may_delete_an_image_sets_its_owners_or_finalizers() -> None:
    """R27B-5: ownerReferences and finalizers decide when an Image is deleted (the garbage
    collector), so changing them, at creation too, needs `delete` on that Image; status
    writes (the operator's Verified) never match."""
    (policy,) = policies(shipped("image-deletion.yaml")).values()
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rule["apiGroups"] == ["alecton.dev"] and rule["resources"] == ["images"]
    assert set(rule["operations"]) == {"CREATE", "UPDATE"}
    variables = {v["name"]: v["expression"] for v in policy["spec"]["variables"]}
    assert ".name(object.metadata.name).check('delete')" in variables["mayDelete"]
    guarded = [v["expression"] for v in policy["spec"]["validations"]]
    assert guarded == [
        "variables.ownersBefore == variables.ownersAfter || variables.mayDelete",
        "variables.finalizersBefore == variables.finalizersAfter || variables.mayDelete",
    ]
