"""The policy that records who asked for a release (deploy/deployment-changed-by.yaml) is
installed by kustomize and by the chart, with the same rules; it never matches status writes."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from alecton.local.tools import ToolsMissingError, tool
from alecton.reconcile.news import CHANGED_BY_ANNOTATION

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "deploy" / "deployment-changed-by.yaml"


def by_kind(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        d["kind"]: d
        for d in documents
        if d and "Admission" in d["kind"] and "changed-by" in d["metadata"]["name"]
    }


def test_kustomize_installs_it() -> None:
    kustomization = yaml.safe_load((REPO / "deploy" / "kustomization.yaml").read_text())
    assert "deployment-changed-by.yaml" in kustomization["resources"]


def test_it_stamps_the_annotation_news_reads_and_never_status() -> None:
    policy = by_kind(list(yaml.safe_load_all(POLICY.read_text())))["MutatingAdmissionPolicy"]
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rule["resources"] == ["deployments"] and rule["apiGroups"] == ["alecton.dev"]
    assert set(rule["operations"]) == {"CREATE", "UPDATE"}
    assert policy["spec"]["failurePolicy"] == "Fail"
    variables = {v["name"]: v["expression"] for v in policy["spec"]["variables"]}
    assert variables["key"] == f"'{CHANGED_BY_ANNOTATION}'"
    # the stamp is computed once (variable changedBy) and applied by the first mutation
    assert "request.userInfo.username" in variables["changedBy"]
    assert "variables.changedBy" in policy["spec"]["mutations"][0]["applyConfiguration"]["expression"]
    assert "request.userInfo.username" in variables["overrideByAfter"]


def test_the_chart_ships_the_same_policy() -> None:
    try:
        helm = tool("helm")
    except ToolsMissingError as error:
        pytest.fail(str(error), pytrace=False)
    rendered = subprocess.run(
        [str(helm), "template", "x", str(REPO / "deploy" / "chart")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rendered.returncode == 0, rendered.stderr
    chart = by_kind(list(yaml.safe_load_all(rendered.stdout)))
    shipped = by_kind(list(yaml.safe_load_all(POLICY.read_text())))
    assert chart["MutatingAdmissionPolicy"]["spec"] == shipped["MutatingAdmissionPolicy"]["spec"]
    assert chart["MutatingAdmissionPolicyBinding"]["spec"] == {"policyName": "x-deployment-changed-by"}
