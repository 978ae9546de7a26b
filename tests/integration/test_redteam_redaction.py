"""Red team: values from Secrets that are not YAML strings.

docs/security.md, "Secrets": a tenant's chart must not be able to make helm quote a value
that came from a Secret into status, Events or logs. Whoever may change an Application (the
`alecton-deployer` role, which grants no Secrets) must not read a Secret's value that way.
A numeric secret (a PIN, an account number, a password made of digits) is a number once the
Secret's `values.yaml` is parsed. The test PASSES when it stays out of everything alecton
writes and FAILS when it leaks.
"""

from __future__ import annotations

import base64
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


def test_a_secret_value_a_chart_encodes_is_redacted_in_every_form(
    redaction_operator: OperatorProcess,
) -> None:
    """Red team R27B-7: a chart renders a Secret's value transformed (`b64enc`, inside a
    longer `printf "user:%s" | b64enc` as for a basic-auth header, `toJson`, `upper`) and
    helm's error quotes it: the Redactor knew only the value and its plain base64."""
    cluster = redaction_operator.cluster
    ns = redaction_operator.namespace_under_test  # type: ignore[attr-defined]
    target = f"{ns}-enc"
    cluster.onboard(target, tenant=ns)
    password = f"pw&{uuid.uuid4().hex[:12]}<x"
    tenant_apply(
        cluster,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "enc-secrets"},
            "stringData": {"values.yaml": f"password: {json.dumps(password)}\n"},
        },
        namespace=ns,
    )
    sources = [{"kind": "Secret", "name": "enc-secrets"}]
    tenant_apply(
        cluster,
        r.cluster(),
        probe_app("enc", target, values={"failEncoded": "password"}, valuesFrom=sources),
        r.image("enc", "1", "r/enc:1"),
        r.deployment("enc", "1"),
        namespace=ns,
    )
    obj = wait_phase(cluster, ns, "enc-staging", "Failed")
    # What the chart printed is withheld whole (R28-2); the forms below are searched anyway.
    assert "[withheld: the values hold data from Secrets" in message(obj), message(obj)
    written = json.dumps(obj) + json.dumps(events(cluster, ns)) + redaction_operator.log_since_start()
    basic_auth = base64.b64encode(f"user:{password}".encode()).decode()
    forms = {
        "the value": password,
        "b64enc": base64.b64encode(password.encode()).decode(),
        # From the third group on, "user:" + value encodes the value's bytes alone.
        "b64enc of user:value": basic_auth[8:24],
        "toJson": json.dumps(password)[1:-1].replace("&", "\\u0026").replace("<", "\\u003c"),
        "upper": password.upper(),
    }
    # The status, Events and log are JSON (once more, for the log's records): look in the
    # decoded text as well as in the text as written.
    leaked = [how for how, form in forms.items() if form in written or form in written.replace("\\\\", "\\")]
    assert not leaked, f"the Secret's value leaked as {leaked}: {message(obj)}"
