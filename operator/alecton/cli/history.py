"""`alecton history`: the audit trail of one application and target (ReleaseRecords), which
outlives the bounded release history `alecton releases` shows and the Deployment itself."""

from __future__ import annotations

from typing import Annotated

import typer

from alecton.cli.output import OutputFormat, emit, table
from alecton.cli.session import (
    ContextOption,
    KubeconfigOption,
    NamespaceOption,
    OutputOption,
    handle_errors,
    run_api,
)
from alecton.service.records import DEFAULT_LIMIT, MAX_LIMIT, record_row, release_records
from alecton.service.session import Target

COLUMNS = ("time", "event", "version", "revision", "commit", "cause", "by", "result")


def history(
    application: Annotated[str, typer.Argument(metavar="APPLICATION", help="The Application.")],
    target: Annotated[str, typer.Argument(metavar="TARGET", help="Its target.")],
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=MAX_LIMIT, help="Show at most this many records.")
    ] = DEFAULT_LIMIT,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Show who deployed what, when and why on TARGET of APPLICATION, newest first (the audit trail).

    One record per transition (deploy started, deployed, healthy, failed, rolled back, held,
    drift, promotions), kept after the release history is trimmed and after the Deployment is
    deleted, until the operator's retention removes it. `alecton releases` shows helm's
    revisions instead."""
    where = Target.of(kubeconfig, context, namespace)
    records = run_api(lambda c: release_records(c, where.namespace, application, target, limit), where)
    if output is not OutputFormat.table:
        emit(records, output)
        return
    if not records:
        typer.echo(f"no records of {application} on {target} in {where.namespace}")
        return
    rows = [record_row(record) for record in records]
    table(
        [c.upper() for c in COLUMNS],
        [[row[c] if c != "result" else row[c][:80] for c in COLUMNS] for row in rows],
    )


def register(app: typer.Typer) -> None:
    app.command("history")(handle_errors(history))
