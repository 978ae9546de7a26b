"""The operator's chart (deploy/chart) as helm reads it: real files, not symlinks; CRDs that
are copies of crds/ (the one source; `make chart-crds` copies them); helm lint and helm
template without a word of complaint, from both pinned helms."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
import yaml
from alecton.local.tools import ToolsMissingError, tool

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "chart"
CRD_SOURCES = sorted((REPO / "crds").glob("*.alecton.dev.yaml"))
ICON = REPO / "docs" / "images" / "alecton-icon.svg"
HELMS = ("helm", "helm3")  # users install the chart with either


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        binary = tool(helm)
    except ToolsMissingError as error:
        pytest.fail(str(error), pytrace=False)  # never skip: CI builds the tools
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=60)


def test_chart_has_no_symlinks() -> None:
    links = [str(path.relative_to(REPO)) for path in CHART.rglob("*") if path.is_symlink()]
    assert links == [], f"helm logs a line for every symlink; make them files (`make chart-crds`): {links}"


def test_chart_crds_are_copies_of_crds() -> None:
    copies = CHART / "crds"
    assert sorted(path.name for path in copies.iterdir()) == [path.name for path in CRD_SOURCES], (
        "deploy/chart/crds/ does not hold exactly crds/*.alecton.dev.yaml: run `make chart-crds`"
    )
    stale = [path.name for path in CRD_SOURCES if (copies / path.name).read_bytes() != path.read_bytes()]
    assert stale == [], f"deploy/chart/crds/ differs from crds/ in {stale}: run `make chart-crds`"


def test_chart_icon_is_the_svg() -> None:
    icon = yaml.safe_load((CHART / "Chart.yaml").read_text())["icon"]
    assert icon == "data:image/svg+xml;base64," + base64.b64encode(ICON.read_bytes()).decode(), (
        "set icon: in deploy/chart/Chart.yaml to "
        "data:image/svg+xml;base64,$(base64 -w0 docs/images/alecton-icon.svg)"
    )


@pytest.mark.parametrize("helm", HELMS)
def test_helm_lint_is_clean(helm: str) -> None:
    linted = run_helm(helm, "lint", str(CHART))
    assert linted.returncode == 0, linted.stdout + linted.stderr
    remarks = [line for line in linted.stdout.splitlines() if "[INFO]" in line or "[WARNING]" in line]
    assert remarks == [] and linted.stderr == "", linted.stdout + linted.stderr


@pytest.mark.parametrize("helm", HELMS)
def test_helm_template_is_quiet_and_includes_every_crd(helm: str) -> None:
    rendered = run_helm(helm, "template", "x", str(CHART), "--include-crds")
    assert rendered.returncode == 0 and rendered.stderr == "", rendered.stderr
    crds = [
        doc["metadata"]["name"]
        for doc in yaml.safe_load_all(rendered.stdout)
        if doc and doc["kind"] == "CustomResourceDefinition"
    ]
    assert sorted(crds) == [path.name.removesuffix(".yaml") for path in CRD_SOURCES]
