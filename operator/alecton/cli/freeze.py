"""`alecton freeze start|end|list`: stop the line (deploy freezes) and start it again."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from alecton.cli.help import CliTyper
from alecton.cli.output import OutputFormat, emit, table
from alecton.cli.session import (
    ContextOption,
    KubeconfigOption,
    NamespaceOption,
    OutputOption,
    group_options,
    handle_errors,
    run_api,
)
from alecton.kube.client import KubeClient
from alecton.service.freezes import end_freeze, freeze_rows, start_freeze
from alecton.service.session import Target

freeze_app = CliTyper(
    help="Deploy freezes: while one is active, automatic promotions wait and manual deploys are "
    "refused (unless `alecton deploy --override-freeze REASON`); rollbacks always go through.",
    no_args_is_help=True,
)

NameArgument = Annotated[str, typer.Argument(metavar="NAME", help="The freeze's name.")]
ClusterWideOption = Annotated[
    bool,
    typer.Option(
        "--cluster-wide",
        help="A ClusterFreeze: every namespace (cluster admins only), instead of a Freeze of the namespace.",
    ),
]


freeze_app.callback()(group_options)


@freeze_app.command("start")
@handle_errors
def freeze_start(
    name: NameArgument,
    reason: Annotated[str, typer.Option("--reason", help="Why: shown to everyone whose deploy it refuses.")],
    for_: Annotated[
        str | None, typer.Option("--for", metavar="<duration>", help="End after this long, e.g. 2h or 90m.")
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until", metavar="<date-time>", help="End at this time (RFC 3339, e.g. 2026-12-27T08:00:00Z)."
        ),
    ] = None,
    application: Annotated[
        list[str] | None,
        typer.Option(
            "--application", metavar="<name>", help="Freeze only this application (a glob; repeatable)."
        ),
    ] = None,
    target: Annotated[
        list[str] | None,
        typer.Option("--target", metavar="<name>", help="Freeze only this target (a glob; repeatable)."),
    ] = None,
    cluster_wide: ClusterWideOption = False,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Stop the line: freeze deploys now, for --for, until --until, or until `alecton freeze end`."""
    where = Target.of(kubeconfig, context, namespace)

    async def run(client: KubeClient) -> dict[str, Any]:
        return await start_freeze(
            client,
            where.namespace,
            name,
            reason,
            cluster_wide=cluster_wide,
            duration=for_,
            until=until,
            applications=application,
            targets=target,
        )

    obj = run_api(run, where)
    if output is not OutputFormat.table:
        emit(obj, output)
        return
    until_text = (obj.get("spec") or {}).get("until") or "it is ended"
    scope = "every namespace" if cluster_wide else f"namespace {where.namespace}"
    typer.echo(f"{obj['kind']} {name} started in {scope}, until {until_text}")


@freeze_app.command("end")
@handle_errors
def freeze_end(
    name: NameArgument,
    cluster_wide: ClusterWideOption = False,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """End a freeze (delete it): the changes it held are released at once."""
    where = Target.of(kubeconfig, context, namespace)

    async def run(client: KubeClient) -> None:
        await end_freeze(client, where.namespace, name, cluster_wide=cluster_wide)

    run_api(run, where)
    typer.echo(f"{'ClusterFreeze' if cluster_wide else 'Freeze'} {name} ended")


@freeze_app.command("list")
@handle_errors
def freeze_list(
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """The namespace's freezes and the platform's (ClusterFreezes), active first."""
    where = Target.of(kubeconfig, context, namespace)

    async def run(client: KubeClient) -> list[dict[str, Any]]:
        return await freeze_rows(client, where.namespace)

    rows = run_api(run, where)
    if output is not OutputFormat.table:
        emit(rows, output)
        return
    table(
        ["NAME", "KIND", "ACTIVE", "UNTIL", "NEXT-START", "SCOPE", "REASON"],
        [
            [
                r["name"],
                r["kind"],
                "yes" if r["active"] else "no",
                r["activeUntil"] or ("-" if not r["active"] else "ended by hand"),
                r["nextStart"] or "",
                scope_text(r),
                r["reason"],
            ]
            for r in rows
        ],
    )


def scope_text(row: dict[str, Any]) -> str:
    parts = [
        f"{key}={','.join(row[key])}"
        for key in ("namespaces", "applications", "targets", "clusters")
        if row.get(key)
    ]
    return " ".join(parts) or "everything"
