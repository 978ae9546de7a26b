"""deploy/chart rendered as release `alecton` (so its names are those of deploy/), for the unit
tests that check the chart ships what deploy/ does. helm comes from `make tools`."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from alecton.local.tools import ToolsMissingError, tool

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def rendered_chart() -> list[dict[str, Any]]:
    """Every document `helm template alecton deploy/chart` renders (empty ones left out)."""
    try:
        helm = tool("helm")
    except ToolsMissingError as error:
        pytest.fail(str(error), pytrace=False)  # never skip: CI builds the tools
    rendered = subprocess.run(
        [str(helm), "template", "alecton", str(DEPLOY / "chart")], capture_output=True, text=True, timeout=60
    )
    assert rendered.returncode == 0, rendered.stderr
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]
