"""A diff for a person, and running one with a spinner: what `alecton diff` and
`alecton deploy --diff` both show (the diff itself is `service/diff.py`'s)."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.syntax import Syntax

from alecton.cli.output import OutputFormat, emit
from alecton.cli.session import run_api
from alecton.kube.client import KubeClient
from alecton.reconcile.chart import ChartPolicy
from alecton.reconcile.diff import DiffResult
from alecton.reconcile.plan import DesiredRelease
from alecton.service.diff import DiffTools, diff_view, render_diff
from alecton.service.session import Target

EXIT_DIFF_ERROR = 2  # kubectl diff's: 0 nothing would change, 1 something would, 2 or more an error


def show(result: DiffResult, desired: DesiredRelease, output: OutputFormat) -> None:
    redact = desired.redactor.redact
    if output is not OutputFormat.table:
        emit(diff_view(result, desired), output)
        return
    text = redact(result.text())
    if text and sys.stdout.isatty():
        Console(soft_wrap=True).print(Syntax(text, "diff", theme="ansi_dark", background_color="default"))
    elif text:
        typer.echo(text, nl=False)  # plain for pipes and files, like `kubectl diff`
    Console(stderr=True).print(
        f"{desired.name} in {desired.namespace}, version {desired.version}: {result.summary}"
    )


def diff_of(
    where: Target, application: str, target: str, version: str | None, helm: str, charts: ChartPolicy
) -> tuple[DiffResult, DesiredRelease]:
    tools = DiffTools.of(helm, charts)

    async def run(kube: KubeClient) -> tuple[DiffResult, DesiredRelease]:
        with Console(stderr=True).status(f"Rendering {application} for {target}..."):
            return await render_diff(kube, where, application, target, version, tools)

    return run_api(run, where, error_floor=EXIT_DIFF_ERROR)
