"""The global options (--kubeconfig, --context, -n, -o) before or after the command, as
kubectl takes them; no cluster: `run_api` records where a command would have talked to."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from alecton.cli import deploy, images, local, operator
from alecton.cli.main import app
from alecton.handlers.config import OperatorConfig
from alecton.kube.client import KubeClient
from alecton.service import session
from alecton.service.session import Target
from typer.testing import CliRunner

runner = CliRunner()
CONNECTION = ["--kubeconfig", "/k/config", "--context", "ctx", "-n", "team"]
WHERE = Target("/k/config", "ctx", "team")


@pytest.fixture(autouse=True)
def no_kubeconfig(monkeypatch: pytest.MonkeyPatch) -> None:
    """No $KUBECONFIG from the machine; a namespace not given is the context's (no file read)."""
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setattr(session, "current_namespace", lambda kubeconfig, context: "context-namespace")


@pytest.fixture
def targets(monkeypatch: pytest.MonkeyPatch) -> list[Target]:
    """The Target of every API call the commands make; each call finds no objects."""
    seen: list[Target] = []

    def run_api(coro_fn: Callable[[KubeClient], Awaitable[Any]], target: Target, error_floor: int = 0) -> Any:
        seen.append(target)
        return []

    monkeypatch.setattr(images, "run_api", run_api)
    monkeypatch.setattr(deploy, "run_api", run_api)
    return seen


def alecton(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize(
    "args",
    [
        [*CONNECTION, "image", "list"],
        ["image", *CONNECTION, "list"],
        ["image", "list", *CONNECTION],
        [*CONNECTION, "app", "list"],
        ["app", *CONNECTION, "list"],
        [*CONNECTION, "status"],
        ["status", *CONNECTION],
        ["status", "web", *CONNECTION],
        [*CONNECTION, "releases", "web", "staging"],
    ],
    ids=lambda args: " ".join(args),
)
def test_connection_options_reach_the_command_before_or_after_it(
    targets: list[Target], args: list[str]
) -> None:
    runner.invoke(app, args)  # `releases` finds no Deployment and fails: where it looked is what counts
    assert targets == [WHERE]


@pytest.mark.parametrize(
    ("args", "namespace"),
    [
        (["-n", "root", "status", "-n", "command"], "command"),
        (["-n", "root", "image", "-n", "group", "list"], "group"),
        (["-n", "root", "image", "-n", "group", "list", "-n", "command"], "command"),
        (["-n", "root", "image", "list"], "root"),
        (["image", "-n", "group", "list"], "group"),
        (["status"], "context-namespace"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else value,
)
def test_the_value_after_the_command_wins(targets: list[Target], args: list[str], namespace: str) -> None:
    alecton(*args)
    assert [t.namespace for t in targets] == [namespace]


def test_only_the_options_given_after_the_command_replace_those_before(targets: list[Target]) -> None:
    alecton(*CONNECTION, "image", "list", "--context", "other")
    assert targets == [Target("/k/config", "other", "team")]


def test_kubeconfig_flag_before_the_command_beats_the_environment(
    targets: list[Target], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", "/env/first:/env/second")
    alecton("-n", "team", "status")
    alecton("--kubeconfig", "/flag/config", "-n", "team", "status")
    alecton("-n", "team", "status", "--kubeconfig", "/flag/config")
    assert [t.kubeconfig for t in targets] == ["/env/first", "/flag/config", "/flag/config"]


def test_output_format_before_the_command(targets: list[Target]) -> None:
    assert json.loads(alecton("-o", "json", "image", "list").stdout) == []
    assert json.loads(alecton("image", "-o", "json", "list").stdout) == []
    table = alecton("-o", "json", "image", "list", "-o", "table").stdout
    assert table.split() == ["NAME", "VERSION", "IMAGE", "DIGEST", "VERIFIED", "REVISION", "OBJECT", "AGE"]


def test_deploy_takes_the_options_before_it(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Target] = []

    def run_api(coro_fn: Callable[[KubeClient], Awaitable[Any]], target: Target, error_floor: int = 0) -> Any:
        seen.append(target)
        obj = {"metadata": {"name": "web-staging", "namespace": target.namespace}, "spec": {}, "status": {}}
        return None, obj

    monkeypatch.setattr(deploy, "run_api", run_api)
    result = alecton(*CONNECTION, "-o", "json", "deploy", "web", "staging", "1.0.0")
    assert seen == [WHERE]
    assert json.loads(result.stdout)["namespace"] == "team"


class FakeControlPlane:
    def __init__(self, state_dir: object, log: object) -> None:
        pass

    def status(self) -> dict[str, Any]:
        return {
            "running": True,
            "kubeconfig": "/s/kubeconfig",
            "stateDir": "/s",
            "clusters": {},
            "processes": [],
        }


def test_local_commands_take_the_output_format_and_ignore_connection_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(local, "LocalControlPlane", FakeControlPlane)
    assert json.loads(alecton("-o", "json", "local", "status").stdout)["running"] is True
    # `local` runs its own clusters: a context or namespace for API commands changes nothing.
    assert alecton("--context", "ctx", "-n", "team", "local", "status").stdout.startswith("running: True")


@pytest.fixture
def operator_configs(monkeypatch: pytest.MonkeyPatch) -> list[OperatorConfig]:
    """The configuration `operator run` would run the operator with (it is not started)."""
    configs: list[OperatorConfig] = []

    async def run(config: OperatorConfig) -> None:
        configs.append(config)

    monkeypatch.setattr(operator, "_run", run)
    monkeypatch.setattr("alecton.handlers.logs.setup_logging", lambda fmt, level: None)
    return configs


@pytest.mark.parametrize(
    "before", [["-n", "team"], ["--context", "ctx"], ["--kubeconfig", "/k/config"]], ids=" ".join
)
def test_operator_run_refuses_connection_options_before_it(
    operator_configs: list[OperatorConfig], before: list[str]
) -> None:
    # -n is what the operator watches there, --kubeconfig/--context its management cluster,
    # with their own environment variables: not something to take from in front of `operator`.
    result = runner.invoke(app, [*before, "operator", "run"])
    assert result.exit_code == 2
    assert "give them after `operator run`" in result.output
    assert operator_configs == []


def test_operator_run_takes_its_own_options(operator_configs: list[OperatorConfig]) -> None:
    alecton("-o", "json", "operator", "run", "--context", "mgmt", "-n", "a", "-n", "b")
    assert [(c.context, c.namespaces) for c in operator_configs] == [("mgmt", ("a", "b"))]


def test_cli_errors_are_one_plain_line_without_class_names(tmp_path: Any) -> None:
    """Issue 16: "error: CliError: cannot read ..." showed an internal class name."""
    missing = tmp_path / "missing.yaml"
    result = runner.invoke(app, ["app", "create", "-f", str(missing), *CONNECTION])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"error: cannot read {missing}: file not found"]


def test_an_unexpected_failure_says_so_without_a_class_name(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the sky fell")

    monkeypatch.setattr(images, "run_api", broken)
    result = runner.invoke(app, ["image", "list", *CONNECTION])
    assert result.exit_code == 1
    assert "RuntimeError" not in result.output
    assert "error: unexpected failure: the sky fell" in result.output
    assert "please report" in result.output
