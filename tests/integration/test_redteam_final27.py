"""Red team of the issue 27 fixes, on the real control plane, as a tenant (the shipped
alecton-deployer role and its own token, tests/integration/tenant.py through tenant_apply):
each test checks what the attacker wanted does not happen (R28-2: failed before the fix,
as docs/security.md says)."""

from __future__ import annotations

import json
import uuid

from tests.integration import resources as r
from tests.integration.harness import OperatorProcess, events
from tests.integration.test_redteam_redaction import redaction_operator as redaction_operator
from tests.integration.test_tenancy import message, probe_app, tenant_apply, wait_phase


def test_a_secret_value_a_chart_prints_as_hex_or_in_pieces_stays_out_of_status(
    redaction_operator: OperatorProcess,
) -> None:
    cluster = redaction_operator.cluster
    ns = redaction_operator.namespace_under_test  # type: ignore[attr-defined]
    target = f"{ns}-hex"
    cluster.onboard(target, tenant=ns)
    password = f"pw{uuid.uuid4().hex[:14]}"  # 16 characters: two 8-character halves
    tenant_apply(
        cluster,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "hex-secrets"},
            "stringData": {"values.yaml": f"password: {json.dumps(password)}\n"},
        },
        namespace=ns,
    )
    # The deployer (no rights on Secrets) names the team's Secret and a chart that prints it
    # as hex and in two pieces (tests/charts/probe: failHex).
    tenant_apply(
        cluster,
        r.cluster(),
        probe_app(
            "hex",
            target,
            values={"failHex": "password"},
            valuesFrom=[{"kind": "Secret", "name": "hex-secrets"}],
        ),
        r.image("hex", "1", "r/hex:1"),
        r.deployment("hex", "1"),
        namespace=ns,
    )
    obj = wait_phase(cluster, ns, "hex-staging", "Failed")
    written = json.dumps(obj) + json.dumps(events(cluster, ns)) + redaction_operator.log_since_start()
    forms = {"hex": password.encode().hex(), "halves": f"{password[:8]} / {password[8:]}"}
    leaked = [how for how, form in forms.items() if form in written]
    # What the tenant wanted: the Secret's value, read back from what alecton wrote.
    assert not leaked, f"the Secret's value leaked as {leaked}: {message(obj)}"
