"""The chart policy's switches, defined once for every command that fetches charts: the
operator (deploys) and `alecton diff`, `deploy --diff`, `dashboard` and `web` (diffs). Each
switch has one flag and one environment variable everywhere, so one
`export ALECTON_ALLOW_INSECURE_REPOSITORIES=true` serves them all."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from alecton.cli.session import DIFF_OPTIONS_PANEL
from alecton.reconcile.chart import (
    INSECURE_REPOSITORIES_ENV,
    INSECURE_REPOSITORIES_FLAG,
    REPOSITORY_HOSTS_ENV,
    REPOSITORY_HOSTS_FLAG,
    ChartFetcher,
    ChartPolicy,
    repository_hosts,
)

CHARTS_PANEL = "Charts"


def _insecure_repositories(panel: str, fetched: str) -> Any:
    return typer.Option(
        INSECURE_REPOSITORIES_FLAG,
        envvar=INSECURE_REPOSITORIES_ENV,
        help=f"Accept http:// chart repositories (fetched {fetched}).",
        rich_help_panel=panel,
    )


def _repository_hosts(panel: str, fetched: str) -> Any:
    return typer.Option(
        REPOSITORY_HOSTS_FLAG,
        metavar="<host>",
        envvar=REPOSITORY_HOSTS_ENV,
        help=f"Fetch charts (repositories and OCI) only from these hosts ({fetched}; repeatable, "
        "space-separated in the variable; default: any).",
        rich_help_panel=panel,
    )


_BY_OPERATOR = "for deploys, from the operator's network position"
_FOR_DIFFS = "for diffs, from where this command runs"

# The operator's (`operator run`): what it deploys.
AllowInsecureRepositoriesOption = Annotated[bool, _insecure_repositories(CHARTS_PANEL, _BY_OPERATOR)]
AllowRepositoryHostOption = Annotated[list[str] | None, _repository_hosts(CHARTS_PANEL, _BY_OPERATOR)]
# The commands that render diffs: the same switches, for what they render.
DiffAllowInsecureRepositoriesOption = Annotated[bool, _insecure_repositories(DIFF_OPTIONS_PANEL, _FOR_DIFFS)]
DiffAllowRepositoryHostOption = Annotated[list[str] | None, _repository_hosts(DIFF_OPTIONS_PANEL, _FOR_DIFFS)]


def chart_policy(
    charts_dir: Path | None, allow_insecure: bool, hosts: list[str] | None, fetcher: ChartFetcher
) -> ChartPolicy:
    """The policy the switches of one command give (`fetcher`: whose refusals name them)."""
    return ChartPolicy(charts_dir, allow_insecure, repository_hosts(hosts or []), fetcher)
