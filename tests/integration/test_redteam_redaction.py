"""Red team: values from Secrets that are not YAML strings.

docs/security.md, "Secrets": a tenant's chart must not be able to make helm quote a value
that came from a Secret into status, Events or logs. Whoever may change an Application (the
`alecton-deployer` role, which grants no Secrets) must not read a Secret's value that way.
A numeric secret (a PIN, an account number, a password made of digits) is a number once the
Secret's `values.yaml` is parsed. The test PASSES when it stays out of everything alecton
writes and FAILS when it leaks.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator

import pytest

from tests.integration import resources as r
from tests.integration.harness import TEST_CHARTS, Cluster, OperatorProcess, events
from tests.integration.test_tenancy import message, probe_app, tenant_apply, wait_phase

PIN = random.randrange(10**11, 10**12)  # twelve digits


def forms(number: int) -> list[str]:
    """How helm may print it: as an integer, or as Go's float64 (%v: 1.23456789012e+11)."""
    digits = str(number)
    return [digits, f"{digits[0]}.{digits[1:].rstrip('0')}"]


@pytest.fixture(scope="module")
def redaction_operator(crds: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    ns = f"rt-red-{uuid.uuid4().hex[:5]}"
    before = crds.namespaces()
    crds.kubectl("create", "namespace", ns)
    process = OperatorProcess(
        crds,
        "helm",
        tmp_path_factory.mktemp("redteam-redaction"),
        extra_args=(
            f"--namespace={ns}",
            "--charts-dir",
            str(TEST_CHARTS),
            "--allow-context",
            f"{ns}=alecton-b:{ns}-*",
        ),
    )
    process.namespace_under_test = ns  # type: ignore[attr-defined]
    process.start()
    try:
        yield process
        crds.delete_namespaces_since(before)
    finally:
        process.stop()


def test_a_numeric_secret_value_is_redacted_too(redaction_operator: OperatorProcess) -> None:
    cluster = redaction_operator.cluster
    ns = redaction_operator.namespace_under_test  # type: ignore[attr-defined]
    target = f"{ns}-web"
    cluster.onboard(target, tenant=ns)
    tenant_apply(
        cluster,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "web-secrets"},
            "stringData": {"values.yaml": f"pin: {PIN}\n"},
        },
        namespace=ns,
    )
    sources = [{"kind": "Secret", "name": "web-secrets"}]
    # The chart quotes the value a tenant names (tests/charts/probe: failWith).
    tenant_apply(
        cluster,
        r.cluster(),
        probe_app("web", target, values={"failWith": "pin"}, valuesFrom=sources),
        r.image("web", "1", "r/web:1"),
        r.deployment("web", "1"),
        namespace=ns,
    )
    obj = wait_phase(cluster, ns, "web-staging", "Failed")
    written = json.dumps(obj) + json.dumps(events(cluster, ns)) + redaction_operator.log_since_start()
    leaked = [form for form in forms(PIN) if form in written]
    assert not leaked, f"the Secret's value {PIN} leaked as {leaked}: {message(obj)}"
