"""An object missing a field is refused with a message naming that field, never with a CEL
rule's "no such key: ... evaluating rule" about some other rule (tests/unit/test_crd_rules.py
checks the rules' has() guards statically)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration import resources as r
from tests.integration.harness import Cluster

PROMOTION_FIELDS = ["deployment", "application", "target", "fromVersion", "toVersion", "reason", "digest"]


@pytest.mark.parametrize(
    ("kind", "spec", "fields"),
    [
        pytest.param("Image", {}, ["spec.name", "spec.version", "spec.image"], id="image"),
        pytest.param("Application", None, ["spec"], id="application-without-spec"),
        pytest.param("Application", {}, ["spec.chart", "spec.image"], id="application"),
        pytest.param(
            "Application",
            {"chart": "webapp", "image": "web", "targets": [{"cluster": "target-b", "namespace": "web"}]},
            ["spec.targets[0].name"],
            id="application-target-without-name",
        ),
        # No Required error, so the rules run: the targets rule must not trip over no targets.
        pytest.param(
            "Application",
            {"chart": "webapp", "image": "web", "imageValues": {"repository": "image.repository"}},
            ["spec.imageValues"],
            id="application-without-targets-or-image-tag",
        ),
        pytest.param("Cluster", {"kubeconfigSecretRef": {}}, ["spec.kubeconfigSecretRef.name"], id="cluster"),
        pytest.param("Deployment", None, ["spec"], id="deployment-without-spec"),
        pytest.param("Deployment", {}, ["spec.application", "spec.target"], id="deployment"),
        pytest.param(
            "Deployment",
            {"application": "web", "target": "staging"},
            ["spec.version"],
            id="deployment-version",
        ),
        pytest.param(
            "Promotion",
            {"approval": {"decision": "Approved"}},
            [f"spec.{name}" for name in PROMOTION_FIELDS] + ["spec.approval.digest"],
            id="promotion",
        ),
    ],
)
def test_missing_fields_are_named(
    crds: Cluster, kind: str, spec: dict[str, Any] | None, fields: list[str]
) -> None:
    body: dict[str, Any] = {"apiVersion": r.API, "kind": kind, "metadata": {"name": "minimal"}}
    if spec is not None:
        body["spec"] = spec
    proc = crds.kubectl(
        "apply", "-n", "default", "--dry-run=server", "-f", "-", stdin=json.dumps(body), check=False
    )
    assert proc.returncode != 0 and "is invalid" in proc.stderr, proc.stderr
    assert "no such key" not in proc.stderr, proc.stderr
    assert [field for field in fields if f"{field}: " not in proc.stderr] == [], proc.stderr


def test_application_without_targets_is_accepted(crds: Cluster) -> None:
    """The operator reads no targets as none; this was refused with "no such key: targets"."""
    application = r.application("web", "web")
    del application["spec"]["targets"]
    crds.kubectl("apply", "-n", "default", "--dry-run=server", "-f", "-", stdin=json.dumps(application))


def test_a_chart_digest_with_a_chart_version_is_refused_saying_which_to_remove(crds: Cluster) -> None:
    """helm pulls `oci://...@sha256:` whatever spec.chartVersion says: the pair is refused
    when applied, and each alone is accepted."""
    pinned = "oci://registry.example/charts/webapp@sha256:" + "c" * 64

    def applied(chart: str, **spec: str) -> Any:
        application = r.application("web", "web", chart=chart, **spec)
        return crds.kubectl(
            "apply",
            "-n",
            "default",
            "--dry-run=server",
            "-f",
            "-",
            stdin=json.dumps(application),
            check=False,
        )

    refused = applied(pinned, chartVersion="1.2.3")
    assert refused.returncode != 0, refused.stdout
    assert "spec.chartVersion: Invalid value" in refused.stderr, refused.stderr
    assert (
        "spec.chart pins a digest (oci://...@sha256:...), which helm pulls whatever chartVersion says: "
        "remove chartVersion, or remove the @sha256:... from spec.chart to deploy chartVersion"
    ) in refused.stderr, refused.stderr
    for chart, spec in ((pinned, {}), ("oci://registry.example/charts/webapp", {"chartVersion": "1.2.3"})):
        accepted = applied(chart, **spec)
        assert accepted.returncode == 0, (chart, accepted.stderr)
