"""`alecton dora`: deployment frequency, lead time, change failure rate and time to restore,
from the namespace's ReleaseRecords (the audit trail), read with your own credentials."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from alecton.cli.output import OutputFormat, emit, table
from alecton.cli.session import ContextOption, KubeconfigOption, NamespaceOption, OutputOption, run_api
from alecton.service.dora import dora_report
from alecton.service.session import Target


def dora(
    application: Annotated[
        str | None, typer.Argument(metavar="APPLICATION", help="Only this Application.")
    ] = None,
    target: Annotated[str | None, typer.Option("--target", "-t", help="Only this target.")] = None,
    since: Annotated[
        str, typer.Option("--since", help="The period, up to now: 30d, 2w, 12h, 1d12h.")
    ] = "30d",
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Show DORA metrics (deploys per day, lead time, change failure rate, time to restore) per target.

    Lead time: median and p90, from the source commit (else the Image's creation) to
    healthy. Change failure rate: failed health checks and automatic rollbacks over deploys.
    Time to restore: median, from Failed or Degraded to healthy again. Read from the
    ReleaseRecords of the namespace (the audit trail) with your own credentials."""
    where = Target.of(kubeconfig, context, namespace)
    report = run_api(lambda c: dora_report(c, where.namespace, application, target, since), where)
    data = report.as_dict()
    if output is not OutputFormat.table:
        emit(data, output)
        return
    if not data["figures"]:
        typer.echo(f"no release records in {report.namespace} from {data['since']} to {data['until']}")
        return
    table(
        [
            "APPLICATION",
            "TARGET",
            "DEPLOYS",
            "PER DAY",
            "FAILURE RATE",
            "LEAD P50",
            "LEAD P90",
            "RESTORE P50",
            "OPEN INCIDENT",
        ],
        [_row(figure) for figure in data["figures"]],
    )


def _row(figure: dict[str, Any]) -> list[str]:
    lead, restore = figure["leadTimeSeconds"], figure["timeToRestoreSeconds"]
    rate = figure["changeFailureRate"]
    return [
        figure["application"],
        figure["target"],
        f"{figure['deploys']} ({figure['changeFailures']} failed)",
        f"{figure['deploymentFrequencyPerDay']:g}",
        "-" if rate is None else f"{rate * 100:.0f}%",
        duration(lead["median"]),
        duration(lead["p90"]),
        duration(restore["median"]),
        figure["openIncidentSince"] or "",
    ]


def duration(seconds: float | None) -> str:
    """45s, 12m, 3.5h, 2.1d; "-" when there is no figure."""
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            value = seconds / size
            return f"{value:.0f}{unit}" if value >= 10 or unit == "m" else f"{value:.1f}{unit}"
    return f"{seconds:.0f}s"
