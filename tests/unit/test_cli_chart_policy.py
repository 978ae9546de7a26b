"""Issue 27: every command that fetches charts takes the chart policy's switches, by the same
flag and environment variable as the operator; each builds the policy of its own process
(which a refusal names). No cluster: the commands stop where they would render or serve."""

from __future__ import annotations

import socket
from typing import Any

import pytest
import typer
from alecton.cli import deploy, diff, operator, web
from alecton.cli.main import app
from alecton.handlers.config import OperatorConfig
from alecton.local.controlplane import free_port
from alecton.reconcile.chart import ChartFetcher, ChartPolicy
from alecton.service.server_settings import ServerSettings
from alecton.service.session import Target
from typer.testing import CliRunner

runner = CliRunner()
SWITCHES = {
    "--allow-insecure-repositories": "ALECTON_ALLOW_INSECURE_REPOSITORIES",
    "--allow-repository-host": "ALECTON_ALLOW_REPOSITORY_HOSTS",
}
ENVIRONMENT = {
    "ALECTON_ALLOW_INSECURE_REPOSITORIES": "true",
    "ALECTON_ALLOW_REPOSITORY_HOSTS": "Charts.example.com 127.0.0.1",
}
HOSTS = frozenset({"charts.example.com", "127.0.0.1"})
CONNECTION = ["--kubeconfig", "/k/config", "--context", "ctx", "-n", "team"]


def command(*path: str) -> Any:
    found: Any = typer.main.get_command(app)
    for name in path:
        found = found.commands[name]
    return found


@pytest.mark.parametrize(
    "path", [("operator", "run"), ("diff",), ("deploy",), ("dashboard",), ("web",)], ids=" ".join
)
def test_every_command_that_fetches_charts_has_the_operators_switches(path: tuple[str, ...]) -> None:
    options = {p.opts[0]: p for p in command(*path).params if p.param_type_name == "option"}
    for flag, variable in SWITCHES.items():
        assert options[flag].envvar == variable, (path, flag)
    assert options["--allow-repository-host"].multiple


@pytest.fixture
def rendered(monkeypatch: pytest.MonkeyPatch) -> list[ChartPolicy]:
    """The chart policy `alecton diff` and `deploy --diff` would render with (nothing renders)."""
    policies: list[ChartPolicy] = []

    class NoChange:
        changed = False

    def diff_of(
        where: Target, app: str, target: str, version: str | None, helm: str, charts: ChartPolicy
    ) -> Any:
        policies.append(charts)
        return NoChange(), None

    for module in (diff, deploy):
        monkeypatch.setattr(module, "diff_of", diff_of)
        monkeypatch.setattr(module, "show", lambda result, desired, output: None)
    metadata = {"name": "web-staging", "namespace": "team", "generation": 1}
    monkeypatch.setattr(deploy, "run_api", lambda fn, where: (None, {"metadata": metadata, "spec": {}}))
    return policies


def test_diff_and_deploy_take_the_switches_as_flags(rendered: list[ChartPolicy]) -> None:
    switches = ["--allow-insecure-repositories", "--allow-repository-host", "charts.example.com"]
    for args in (["diff", "web", "staging", "1.0.0"], ["deploy", "web", "staging", "1.0.0", "--diff"]):
        result = runner.invoke(app, [*args, *switches, *CONNECTION])
        assert result.exit_code == 0, result.output
    assert rendered == [ChartPolicy(None, True, frozenset({"charts.example.com"}), ChartFetcher.CLI)] * 2


def test_diff_and_deploy_take_the_operators_environment_variables(rendered: list[ChartPolicy]) -> None:
    for args in (["diff", "web", "staging", "1.0.0"], ["deploy", "web", "staging", "1.0.0", "--diff"]):
        assert runner.invoke(app, [*args, *CONNECTION], env=ENVIRONMENT).exit_code == 0
    assert rendered == [ChartPolicy(None, True, HOSTS, ChartFetcher.CLI)] * 2


def test_without_the_switches_a_diff_allows_neither(rendered: list[ChartPolicy]) -> None:
    assert (
        runner.invoke(
            app, ["diff", "web", "staging", *CONNECTION], env={k: "" for k in ENVIRONMENT}
        ).exit_code
        == 0
    )
    assert rendered == [ChartPolicy(fetcher=ChartFetcher.CLI)]


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[ServerSettings]:
    """What `alecton dashboard` and `alecton web` would serve with (nothing is served)."""
    settings: list[ServerSettings] = []

    def serve(given: ServerSettings, sock: socket.socket, access_log: bool) -> None:
        sock.close()
        settings.append(given)

    monkeypatch.setattr(web, "_serve", serve)
    return settings


def test_dashboard_and_web_take_the_switches(served: list[ServerSettings]) -> None:
    dashboard = ["dashboard", "--no-browser", *CONNECTION]
    proxy = ["web", "--server", "https://api.example.com:6443", "--listen", "127.0.0.1"]
    assert runner.invoke(app, dashboard, env=ENVIRONMENT).exit_code == 0
    flags = ["--allow-insecure-repositories", "--allow-repository-host", "127.0.0.1"]
    result = runner.invoke(app, [*proxy, "--port", str(free_port()), *flags])
    assert result.exit_code == 0, result.output
    assert [s.charts for s in served] == [
        ChartPolicy(None, True, HOSTS, ChartFetcher.DASHBOARD),
        ChartPolicy(None, True, frozenset({"127.0.0.1"}), ChartFetcher.WEB),
    ]


def test_the_operator_takes_the_same_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    configs: list[OperatorConfig] = []

    async def run(config: OperatorConfig) -> None:
        configs.append(config)

    monkeypatch.setattr(operator, "_run", run)
    monkeypatch.setattr("alecton.handlers.logs.setup_logging", lambda fmt, level: None)
    assert runner.invoke(app, ["operator", "run"], env=ENVIRONMENT).exit_code == 0
    assert [c.charts for c in configs] == [ChartPolicy(None, True, HOSTS, ChartFetcher.OPERATOR)]
