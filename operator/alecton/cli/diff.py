"""`alecton diff APP TARGET [VERSION]`: what deploying would change, before it happens.

The caller's own kubeconfig and rights render and compare (`service/diff.py`). Exit codes
follow `kubectl diff`: 0 nothing would change, 1 something would, 2 or more an error.
"""

from __future__ import annotations

from typing import Annotated

import typer

from alecton.cli.chart_options import (
    DiffAllowInsecureRepositoriesOption,
    DiffAllowRepositoryHostOption,
    chart_policy,
)
from alecton.cli.diff_display import diff_of, show
from alecton.cli.output import OutputFormat
from alecton.cli.session import (
    ChartsDirOption,
    ContextOption,
    HelmOption,
    KubeconfigOption,
    NamespaceOption,
    OutputOption,
)
from alecton.reconcile.chart import ChartFetcher
from alecton.service.session import Target

EXIT_CHANGES = 1


def diff(
    application: Annotated[str, typer.Argument(help="The Application's name.")],
    target: Annotated[str, typer.Argument(help="One of its targets.")],
    version: Annotated[
        str | None, typer.Argument(help="The Image version to compare (default: the Deployment's).")
    ] = None,
    helm: HelmOption = "",
    charts_dir: ChartsDirOption = None,
    allow_insecure_repositories: DiffAllowInsecureRepositoriesOption = False,
    allow_repository_host: DiffAllowRepositoryHostOption = None,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """What deploying VERSION of APPLICATION to TARGET would change in the target cluster,
    with today's Application, Cluster and Images, as a unified diff (Secrets only as
    hashes). Exit 0: nothing would change; 1: something would; 2 or more: an error."""
    where = Target.of(kubeconfig, context, namespace)
    charts = chart_policy(charts_dir, allow_insecure_repositories, allow_repository_host, ChartFetcher.CLI)
    result, desired = diff_of(where, application, target, version, helm, charts)
    show(result, desired, output)
    if result.changed:
        raise typer.Exit(EXIT_CHANGES)
