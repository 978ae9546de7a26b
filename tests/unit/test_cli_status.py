"""`alecton status` shows the version asked for and the version that runs."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from alecton.cli import deploy
from alecton.cli.main import app
from alecton.kube.client import KubeClient
from alecton.service.session import Target
from alecton.service.status import status_rows
from typer.testing import CliRunner

ROLLED_BACK = {
    "metadata": {"name": "web-staging"},
    "spec": {"application": "web", "target": "staging", "version": "1.1.0"},
    "status": {
        "phase": "RolledBack",
        "release": {"revision": 3, "status": "deployed", "version": "1.0.0", "cluster": "local-b"},
        "history": [
            {"revision": 3, "status": "deployed", "version": "1.0.0", "description": "Rollback to 1"},
            {"revision": 2, "status": "superseded", "version": "1.1.0"},
            {"revision": 1, "status": "superseded", "version": "1.0.0"},
        ],
    },
}


@pytest.fixture(autouse=True)
def rolled_back_deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    def run_api(coro_fn: Callable[[KubeClient], Awaitable[Any]], target: Target, error_floor: int = 0) -> Any:
        return status_rows([], [ROLLED_BACK])

    monkeypatch.setattr(deploy, "run_api", run_api)


def test_status_table_has_version_and_running_columns() -> None:
    result = CliRunner().invoke(app, ["status", "-n", "team"])
    assert result.exit_code == 0, result.output
    header, row = result.stdout.splitlines()
    assert header.split() == [
        "APPLICATION",
        "TARGET",
        "CLUSTER",
        "VERSION",
        "PHASE",
        "REVISION",
        "RUNNING",
        "AGE",
        "MESSAGE",
    ]
    assert row.split() == ["web", "staging", "local-b", "1.1.0", "RolledBack", "3", "1.0.0"]


def test_status_rows_in_json_have_the_running_version() -> None:
    result = CliRunner().invoke(app, ["-o", "json", "status", "-n", "team"])
    [row] = json.loads(result.stdout)
    assert (row["version"], row["running"]) == ("1.1.0", "1.0.0")
