"""`alecton deploy`, `rollback`, `releases` and `status`: DeployApplication,
RollbackApplication, ListReleases and the at-a-glance view."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console

from alecton.cli.chart_options import (
    DiffAllowInsecureRepositoriesOption,
    DiffAllowRepositoryHostOption,
    chart_policy,
)
from alecton.cli.diff_display import diff_of, show
from alecton.cli.output import EXIT_ERROR, EXIT_TIMEOUT, OutputFormat, age, corrected, emit, fail, table
from alecton.cli.session import (
    ChartsDirOption,
    CliError,
    ContextOption,
    HelmOption,
    KubeconfigOption,
    NamespaceOption,
    OutputOption,
    handle_errors,
    run_api,
)
from alecton.kube.client import ApiException, KubeClient
from alecton.reconcile.chart import ChartFetcher
from alecton.service.deployments import (
    deployment_status_rows,
    release_history,
    request_deploy,
    request_drift_check,
    request_retry,
    request_rollback,
)
from alecton.service.outcomes import WaitOutcome, deploy_outcome, drift_outcome, rollback_outcome
from alecton.service.session import Target, request_id

WaitOption = Annotated[
    bool,
    typer.Option(
        "--wait",
        help="Wait for the operator's result: healthy (Deployed), or failed (a helm error, a failed "
        "health check, an automatic rollback); shows what is still progressing; exits non-zero on failure.",
    ),
]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", metavar="<seconds>", help="Seconds --wait waits at most.", min=1)
]
ApplicationArgument = Annotated[str, typer.Argument(metavar="APPLICATION", help="The Application's name.")]
TargetArgument = Annotated[str, typer.Argument(metavar="TARGET", help="One of its targets.")]

_POLL_SECONDS = 0.5


async def wait_for(
    client: KubeClient,
    namespace: str,
    name: str,
    outcome: Callable[[dict[str, Any]], WaitOutcome],
    timeout: float,
    what: str,
    kind: str = "Deployment",
) -> tuple[WaitOutcome, dict[str, Any]]:
    """Poll object `name` of `kind` until `outcome` says done; progress on stderr."""
    console = Console(stderr=True)
    deadline = time.monotonic() + timeout
    last_message = ""
    with console.status(f"{what}...") as spinner:
        while True:
            try:
                obj = await client.get(kind, namespace, name)
            except ApiException as error:
                if error.status == 404:
                    raise CliError(f"{kind} {name} was deleted while waiting", EXIT_ERROR) from None
                raise
            result = outcome(obj)
            if result.done:
                return result, obj
            if result.message != last_message:
                last_message = result.message
                spinner.update(f"{what}: {result.message}")
            if time.monotonic() >= deadline:
                raise CliError(
                    f"timed out after {timeout:.0f} s {what.lower()}; last state: {result.message}",
                    EXIT_TIMEOUT,
                )
            await asyncio.sleep(_POLL_SECONDS)


def _finish(result: WaitOutcome | None, obj: dict[str, Any], output: OutputFormat, summary: str) -> None:
    if output is not OutputFormat.table:
        emit(
            {
                "name": obj["metadata"]["name"],
                "namespace": obj["metadata"]["namespace"],
                "spec": obj["spec"],
                "status": obj.get("status", {}),
            },
            output,
        )
    elif result is None:
        typer.echo(summary)
    else:
        typer.echo(result.message or summary)
    if result is not None and not result.ok:
        if output is not OutputFormat.table:
            typer.secho(f"error: {result.message}", err=True, fg=typer.colors.RED)
        else:
            typer.secho("deployment did not succeed", err=True, fg=typer.colors.RED)
        raise typer.Exit(EXIT_ERROR)


def deploy(
    application: ApplicationArgument,
    target: TargetArgument,
    version: Annotated[str, typer.Argument(metavar="VERSION", help="The Image version to deploy.")],
    wait: WaitOption = False,
    timeout: TimeoutOption = 300.0,
    show_diff: Annotated[
        bool, typer.Option("--diff", help="First show what the deploy would change (as `alecton diff`).")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="With --diff on a terminal: deploy without asking.")
    ] = False,
    allow_missing_application: Annotated[
        bool,
        typer.Option(
            "--allow-missing-application",
            help="Create the Deployment even if the Application or its target does not exist yet "
            "(it waits, Pending, until they do).",
        ),
    ] = False,
    override_freeze: Annotated[
        str | None,
        typer.Option(
            "--override-freeze",
            metavar="<reason>",
            help="Deploy although a freeze is active, saying why (recorded on the Deployment, with who).",
        ),
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
    """Deploy VERSION of APPLICATION to TARGET (DeployApplication).

    Creates or updates the Deployment `<application>-<target>` (and ends a held rollback).
    With --diff it first shows the change and, on a terminal, asks before deploying (unless
    --yes).

    An Application or target that does not exist is an error (exit 3), unless
    --allow-missing-application. An active freeze refuses the deploy (exit 6), unless
    --override-freeze gives a reason."""
    where = Target.of(kubeconfig, context, namespace)
    charts = chart_policy(charts_dir, allow_insecure_repositories, allow_repository_host, ChartFetcher.CLI)
    if show_diff:
        changes, desired = diff_of(where, application, target, version, helm, charts)
        show(changes, desired, OutputFormat.table)
        if sys.stdin.isatty() and not yes and not typer.confirm(f"Deploy version {version}?", default=False):
            fail("not deployed", EXIT_ERROR)

    async def run(client: KubeClient) -> tuple[WaitOutcome | None, dict[str, Any]]:
        obj, promoted = await request_deploy(
            client, where.namespace, application, target, version, allow_missing_application, override_freeze
        )
        if promoted:
            Console(stderr=True).print(
                f"note: {application} {target} has a promotion policy: a version set by hand holds "
                f"automation until `alecton resume {application} {target}`"
            )
        if not wait:
            return None, obj
        generation = int(obj["metadata"]["generation"])
        return await wait_for(
            client,
            where.namespace,
            obj["metadata"]["name"],
            lambda o: deploy_outcome(o, generation),
            timeout,
            f"Deploying {application} {version} to {target}",
        )

    result, obj = run_api(run, where)
    _finish(result, obj, output, f"deployment {obj['metadata']['name']}: version {version} requested")


def rollback(
    application: ApplicationArgument,
    target: TargetArgument,
    revision: Annotated[
        int,
        typer.Argument(
            metavar="REVISION", help="The Helm revision to roll back to (see `alecton releases`).", min=1
        ),
    ],
    wait: WaitOption = False,
    timeout: TimeoutOption = 300.0,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Roll APPLICATION on TARGET back to REVISION (RollbackApplication)."""
    where = Target.of(kubeconfig, context, namespace)
    request = request_id()

    async def run(client: KubeClient) -> tuple[WaitOutcome | None, dict[str, Any]]:
        obj = await request_rollback(client, where.namespace, application, target, revision, request)
        name = obj["metadata"]["name"]
        if not wait:
            return None, obj
        return await wait_for(
            client,
            where.namespace,
            name,
            lambda o: rollback_outcome(o, revision, request),
            timeout,
            f"Rolling back {application} on {target} to revision {revision}",
        )

    result, obj = run_api(run, where)
    _finish(
        result,
        obj,
        output,
        f"deployment {obj['metadata']['name']}: rollback to revision {revision} requested",
    )


def retry(
    application: ApplicationArgument,
    target: TargetArgument,
    wait: WaitOption = False,
    timeout: TimeoutOption = 300.0,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Run helm again for APPLICATION on TARGET with the same inputs.

    A version that failed its health check is otherwise not tried again until something
    changes."""
    where = Target.of(kubeconfig, context, namespace)
    request = request_id()

    async def run(client: KubeClient) -> tuple[WaitOutcome | None, dict[str, Any]]:
        obj = await request_retry(client, where.namespace, application, target, request)
        name = obj["metadata"]["name"]
        if not wait:
            return None, obj
        generation = int(obj["metadata"]["generation"])
        return await wait_for(
            client,
            where.namespace,
            name,
            lambda o: deploy_outcome(o, generation),
            timeout,
            f"Retrying {application} on {target}",
        )

    result, obj = run_api(run, where)
    _finish(result, obj, output, f"deployment {obj['metadata']['name']}: retry {request} requested")


def drift(
    application: ApplicationArgument,
    target: TargetArgument,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout", metavar="<seconds>", help="Seconds to wait at most for the operator's answer.", min=1
        ),
    ] = 120.0,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Compare the deployed release of APPLICATION on TARGET with the live objects now.

    The operator does the comparison, with its identity for that Cluster; this prints what
    drifted. Exit 0: in sync; 1: drifted (in mode Correct: still drifted after correcting)."""
    where = Target.of(kubeconfig, context, namespace)
    request = request_id()

    async def run(client: KubeClient) -> tuple[WaitOutcome, dict[str, Any]]:
        obj = await request_drift_check(client, where.namespace, application, target, request)
        return await wait_for(
            client,
            where.namespace,
            obj["metadata"]["name"],
            lambda o: drift_outcome(o, request),
            timeout,
            f"Comparing {application} on {target} with the cluster",
        )

    result, obj = run_api(run, where)
    if output is not OutputFormat.table:
        emit((obj.get("status") or {}).get("drift") or {}, output)
    else:
        typer.echo(result.message)
    if not result.ok:
        raise typer.Exit(EXIT_ERROR)


def releases(
    application: ApplicationArgument,
    target: TargetArgument,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Show the release history of APPLICATION on TARGET, newest first (ListReleases)."""
    where = Target.of(kubeconfig, context, namespace)
    history = run_api(lambda c: release_history(c, where.namespace, application, target), where)
    if output is not OutputFormat.table:
        emit(history, output)
        return
    table(
        [
            "REVISION",
            "STATUS",
            "VERSION",
            "HEALTHY",
            "CORRECTED",
            "CHART",
            "APP VERSION",
            "UPDATED",
            "DESCRIPTION",
        ],
        [
            [
                h.get("revision"),
                h.get("status"),
                h.get("version", ""),
                {True: "yes", False: "no"}.get(h.get("healthy"), ""),
                corrected(h.get("corrections") or []),
                h.get("chart"),
                h.get("appVersion"),
                h.get("updated", "")[:19],
                h.get("description", ""),
            ]
            for h in history
        ],
    )


def status(
    application: Annotated[
        str | None, typer.Argument(metavar="APPLICATION", help="Only this Application.")
    ] = None,
    target: Annotated[str | None, typer.Argument(metavar="TARGET", help="Only this target.")] = None,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Show every target of every Application: desired and running version, phase, revision, age.

    VERSION is the version the Deployment asks for, RUNNING the one that runs: they differ
    after a rollback, and while a new version is being deployed."""
    where = Target.of(kubeconfig, context, namespace)
    rows = run_api(lambda c: deployment_status_rows(c, where.namespace, application, target), where)
    if output is not OutputFormat.table:
        emit(rows, output)
        return
    # REVISION and RUNNING side by side: both describe the release that runs.
    table(
        ["APPLICATION", "TARGET", "CLUSTER", "VERSION", "PHASE", "REVISION", "RUNNING", "AGE", "MESSAGE"],
        [
            [
                r["application"],
                r["target"],
                r["cluster"],
                r["version"],
                r["phase"],
                r["revision"] or "",
                r["running"],
                age(r["lastDeployed"][:19] + "Z" if r["lastDeployed"] else None),
                r["message"][:80],
            ]
            for r in rows
        ],
    )


def register(app: typer.Typer) -> None:
    for command in (deploy, rollback, retry, drift, releases, status):
        app.command(command.__name__)(handle_errors(command))
