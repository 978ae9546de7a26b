"""`alecton diff` on the real control plane (Helm 4 and Helm 3): the caller's rights,
helm's server-side dry run, the live objects."""

from __future__ import annotations

import base64
import json
import re

import pytest

from tests.integration import resources as r
from tests.integration.harness import OperatorProcess, wait_phase
from tests.integration.test_cli import alecton

GOOD_1 = "ghcr.io/stefanprodan/podinfo:6.7.0"
GOOD_2 = "ghcr.io/stefanprodan/podinfo:6.8.0"
TOKEN = "diff-s3cret-token-value"  # from a Secret, rendered into the chart's own Secret


def test_diff_shows_what_a_new_version_changes_and_never_a_secret(operator: OperatorProcess) -> None:
    cluster = operator.cluster
    ns = cluster.new_namespace("diff")
    target_ns = f"{ns}-web"
    app = r.application("web", target_ns)
    app["spec"]["valuesFrom"] = [
        {"kind": "Secret", "name": "creds", "key": "token", "targetPath": "secrets.token"}
    ]
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds"},
        "data": {"token": base64.b64encode(TOKEN.encode()).decode()},
    }
    cluster.apply(
        secret,
        r.cluster(),
        app,
        r.image("web", "1.0.0", GOOD_1),
        r.image("web", "2.0.0", GOOD_2),
        namespace=ns,
    )
    # Before the first deploy the target namespace does not exist: everything is created.
    fresh = alecton(cluster, ns, "diff", "web", "staging", "1.0.0")
    assert fresh.returncode == 1, fresh.stdout + fresh.stderr
    assert "version 1.0.0: 5 created" in fresh.stderr and "+kind: Deployment" in fresh.stdout
    assert TOKEN not in fresh.stdout + fresh.stderr

    cluster.apply(r.deployment("web", "1.0.0"), namespace=ns)
    wait_phase(cluster, ns, "web-staging", "Deployed", timeout=90)

    # Nothing to do for the deployed version: exit 0, no diff.
    same = alecton(cluster, ns, "diff", "web", "staging")
    assert same.returncode == 0, same.stderr
    assert "no changes" in same.stderr and same.stdout.strip() == ""

    # A new version: the image changes in the Deployment and the ConfigMap; exit 1.
    changed = alecton(cluster, ns, "diff", "web", "staging", "2.0.0")
    assert changed.returncode == 1, changed.stderr
    assert re.search(rf"^-\s+image: {re.escape(GOOD_1)}$", changed.stdout, re.M), changed.stdout
    assert re.search(rf"^\+\s+image: {re.escape(GOOD_2)}$", changed.stdout, re.M), changed.stdout
    report = json.loads(alecton(cluster, ns, "diff", "web", "staging", "2.0.0", "-o", "json").stdout)
    assert report["changed"] is True
    by_kind = {o["kind"]: o for o in report["objects"]}
    assert "/spec/template/spec/containers/0/image" in by_kind["Deployment"]["fields"]

    # `deploy --diff` shows the change first (no prompt off a terminal), then deploys it.
    deployed = alecton(
        cluster, ns, "deploy", "web", "staging", "2.0.0", "--diff", "--wait", "--timeout", "90"
    )
    assert deployed.returncode == 0, deployed.stderr
    assert re.search(rf"^\+\s+image: {re.escape(GOOD_2)}$", deployed.stdout, re.M), deployed.stdout
    after = alecton(cluster, ns, "diff", "web", "staging")
    assert after.returncode == 0, after.stdout + after.stderr

    # A new Secret value: the chart's Secret changes, shown only as hashes. (Suspended
    # first: the operator would otherwise deploy the new value at its next reconcile.)
    cluster.patch_spec(ns, "web-staging", {"suspend": True})
    wait_phase(cluster, ns, "web-staging", "Suspended")
    rotated = "rotated-" + TOKEN
    secret["data"]["token"] = base64.b64encode(rotated.encode()).decode()
    cluster.apply(secret, namespace=ns)
    rotated_diff = alecton(cluster, ns, "diff", "web", "staging", "-o", "json")
    assert rotated_diff.returncode == 1, rotated_diff.stderr
    text = rotated_diff.stdout + rotated_diff.stderr
    assert json.loads(rotated_diff.stdout)["objects"][0]["kind"] == "Secret"
    for value in (TOKEN, rotated):
        assert value not in text and base64.b64encode(value.encode()).decode() not in text
    assert "hmac:" in text

    # Errors are 2 or more, never 0 or 1.
    missing = alecton(cluster, ns, "diff", "nope", "staging")
    assert missing.returncode >= 2 and "nope" in missing.stderr


INSECURE_SWITCH = "--allow-insecure-repositories (ALECTON_ALLOW_INSECURE_REPOSITORIES)"


@pytest.mark.parametrize("operator", ["helm"], indirect=True)
def test_diff_of_a_plain_http_repository_takes_the_operators_switch(
    operator: OperatorProcess, http_chart_repository: str
) -> None:
    """An operator run with --allow-insecure-repositories deploys from http://; `alecton diff`
    (and `deploy --diff`) render the same chart, so they take the same switch, by the same flag
    and environment variable; refused, each says which switch applies where."""
    cluster = operator.cluster
    ns = cluster.new_namespace("diff-http")
    app = r.application("web", f"{ns}-web", repository=http_chart_repository, chartVersion="1.0.0")
    cluster.apply(r.cluster(), app, r.image("web", "1.0.0", GOOD_1), namespace=ns)

    refused = alecton(cluster, ns, "diff", "web", "staging", "1.0.0")
    assert refused.returncode >= 2, refused.stdout + refused.stderr
    assert http_chart_repository in refused.stderr
    assert (
        "which `alecton diff` (and `deploy --diff`) refuses" in refused.stderr
        and INSECURE_SWITCH in refused.stderr
    )
    assert "on the operator" in refused.stderr  # and where deploys take it

    allowed = alecton(cluster, ns, "diff", "web", "staging", "1.0.0", "--allow-insecure-repositories")
    assert allowed.returncode == 1, allowed.stdout + allowed.stderr
    assert "version 1.0.0: 4 created" in allowed.stderr and "+kind: Deployment" in allowed.stdout

    # The operator's environment variable serves the CLI as well.
    by_env = {"ALECTON_ALLOW_INSECURE_REPOSITORIES": "true"}
    assert alecton(cluster, ns, "diff", "web", "staging", "1.0.0", env=by_env).returncode == 1
    shown = alecton(
        cluster, ns, "deploy", "web", "staging", "1.0.0", "--diff", "--allow-insecure-repositories"
    )
    assert shown.returncode == 0 and "+kind: Deployment" in shown.stdout, shown.stderr
    # This module's operator runs without the switch: its refusal names its own.
    failed = str(wait_phase(cluster, ns, "web-staging", "Failed")["status"]["message"])
    assert "the operator refuses" in failed and INSECURE_SWITCH in failed, failed

    # The repository host list is the operator's too: a host not on it is refused, by name.
    elsewhere = alecton(
        cluster, ns, "diff", "web", "staging", "1.0.0", "--allow-repository-host", "charts.example.com",
        env=by_env,
    )  # fmt: skip
    assert elsewhere.returncode >= 2 and "'127.0.0.1'" in elsewhere.stderr, elsewhere.stderr
    assert "--allow-repository-host 127.0.0.1 (ALECTON_ALLOW_REPOSITORY_HOSTS)" in elsewhere.stderr
    listed = {**by_env, "ALECTON_ALLOW_REPOSITORY_HOSTS": "charts.example.com 127.0.0.1"}
    assert alecton(cluster, ns, "diff", "web", "staging", "1.0.0", env=listed).returncode == 1
