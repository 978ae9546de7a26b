"""`alecton operator run`: the reconciler, in the foreground."""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from alecton.cli.chart_options import (
    CHARTS_PANEL,
    AllowInsecureRepositoriesOption,
    AllowRepositoryHostOption,
)
from alecton.cli.help import CliTyper
from alecton.cli.output import fail
from alecton.cli.session import refuse_connection_defaults
from alecton.handlers.config import OperatorConfig
from alecton.reconcile.access import ContextPolicy
from alecton.reconcile.chart import repository_hosts
from alecton.reconcile.notify_address import parse_networks

app = CliTyper(help="Run the alecton operator.", no_args_is_help=True)

MANAGEMENT_PANEL = "Management cluster"
CLUSTERS_PANEL = "Target clusters"
HELM_PANEL = "Helm"
OBSERVABILITY_PANEL = "Probes and logs"
AVAILABILITY_PANEL = "Replicas and shards"
SHARD_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")


@app.callback()
def _no_global_options(ctx: typer.Context) -> None:
    # `alecton -n team operator run` must not quietly make the operator watch only `team`,
    # nor `alecton --context x operator run` quietly ignore the context it was given:
    # `operator run` has its own, different --kubeconfig/--context/-n (env vars, in-cluster
    # default, -n repeatable for the watched namespaces).
    refuse_connection_defaults(
        ctx,
        "`operator run` has its own --kubeconfig, --context and -n (the namespaces it watches): "
        "give them after `operator run`",
    )


KubeconfigOption = Annotated[
    str | None,
    typer.Option(
        "--kubeconfig",
        metavar="<file>",
        envvar="ALECTON_KUBECONFIG",
        help="Kubeconfig of the management cluster "
        "(default: $KUBECONFIG, ~/.kube/config, then in-cluster). Its contexts are the Cluster contexts.",
        rich_help_panel=MANAGEMENT_PANEL,
    ),
]

ContextOption = Annotated[
    str | None,
    typer.Option(
        "--context",
        metavar="<name>",
        envvar="ALECTON_CONTEXT",
        help="Context of the management cluster.",
        rich_help_panel=MANAGEMENT_PANEL,
    ),
]

TargetKubeconfigOption = Annotated[
    str | None,
    typer.Option(
        "--target-kubeconfig",
        metavar="<file>",
        envvar="ALECTON_TARGET_KUBECONFIG",
        help="Kubeconfig whose contexts Clusters name (default: the operator's kubeconfig). "
        "In a pod: a mounted Secret, while the operator itself uses its ServiceAccount.",
        rich_help_panel=CLUSTERS_PANEL,
    ),
]

NamespaceOption = Annotated[
    list[str] | None,
    typer.Option(
        "--namespace",
        "-n",
        metavar="<namespace>",
        envvar="ALECTON_NAMESPACES",
        help="Watch only these namespaces (repeatable; default: all).",
        rich_help_panel=MANAGEMENT_PANEL,
    ),
]

HelmOption = Annotated[
    str,
    typer.Option(
        "--helm",
        metavar="<file>",
        envvar="ALECTON_HELM",
        help="The helm binary (Helm 4 or 3).",
        rich_help_panel=HELM_PANEL,
    ),
]

HelmConcurrencyOption = Annotated[
    int,
    typer.Option(
        "--helm-concurrency",
        envvar="ALECTON_HELM_CONCURRENCY",
        min=1,
        max=64,
        help="How many helm processes may run at once (different releases only).",
        rich_help_panel=HELM_PANEL,
    ),
]

HelmTimeoutOption = Annotated[
    float,
    typer.Option(
        "--helm-timeout",
        metavar="<seconds>",
        envvar="ALECTON_HELM_TIMEOUT",
        min=5,
        help="Seconds a helm command may take before it is stopped.",
        rich_help_panel=HELM_PANEL,
    ),
]

HistoryMaxOption = Annotated[
    int,
    typer.Option(
        "--history-max",
        envvar="ALECTON_HISTORY_MAX",
        min=1,
        max=100,
        help="Release revisions helm keeps, and that status.history shows.",
        rich_help_panel=HELM_PANEL,
    ),
]


class HelmDriver(StrEnum):
    cli = "cli"
    server = "server"


HelmDriverOption = Annotated[
    HelmDriver,
    typer.Option(
        "--helm-driver",
        envvar="ALECTON_HELM_DRIVER",
        help="How helm runs: `server` (default), one long-lived helmd serves every action (Helm 4 "
        "only; with Helm 3 or no helmd the CLI is used); `cli`, a helm process per action.",
        rich_help_panel=HELM_PANEL,
    ),
]

HelmdOption = Annotated[
    str | None,
    typer.Option(
        "--helmd",
        metavar="<file>",
        envvar="ALECTON_HELMD",
        help="The helmd binary for --helm-driver server (default: the one next to helm; "
        "without one the CLI runs).",
        rich_help_panel=HELM_PANEL,
    ),
]

HelmOpenapiValidationOption = Annotated[
    bool,
    typer.Option(
        "--helm-openapi-validation",
        envvar="ALECTON_HELM_OPENAPI_VALIDATION",
        help="Let helm check rendered objects against the cluster's OpenAPI schema before applying "
        "(costs more than half of helm's CPU per upgrade; the API server validates in any case).",
        rich_help_panel=HELM_PANEL,
    ),
]

ChartsDirOption = Annotated[
    Path | None,
    typer.Option(
        "--charts-dir",
        metavar="<dir>",
        envvar="ALECTON_CHARTS_DIR",
        help="Directory of charts that Applications may name directly (bundled charts).",
        rich_help_panel=CHARTS_PANEL,
    ),
]

AllowContextOption = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-context",
        metavar="<grant>",
        envvar="ALECTON_ALLOW_CONTEXTS",
        help="Grant a tenant namespace a context of the operator's kubeconfig, or `in-cluster` "
        "(the operator's own cluster), bounded to target namespaces by a glob and acting as an "
        "identity: TENANT=CONTEXT[:NAMESPACE-GLOB][@IDENTITY][,...] (repeatable; TENANT `*` is "
        "every namespace). IDENTITY is a ServiceAccount impersonated for every helm run and API "
        "call (default alecton-deployer: of the release namespace on a named context, of the "
        "tenant namespace on in-cluster), or `operator` for the operator's own credentials "
        "(cluster-wide; logged at start). Deny by default: without a grant a namespace reaches "
        "no cluster.",
        rich_help_panel=CLUSTERS_PANEL,
    ),
]

AllowAdoptOption = Annotated[
    bool,
    typer.Option(
        "--allow-adopt",
        envvar="ALECTON_ALLOW_ADOPT",
        help="Let a Deployment annotated alecton.dev/adopt=true take over a release alecton did "
        "not make (in a namespace its grant covers).",
        rich_help_panel=CLUSTERS_PANEL,
    ),
]

LockGraceOption = Annotated[
    float,
    typer.Option(
        "--lock-grace",
        metavar="<seconds>",
        envvar="ALECTON_LOCK_GRACE",
        min=0,
        help="A release stuck in pending-* is repaired only when its last update is older than "
        "--helm-timeout plus this many seconds (a younger one may belong to a running helm).",
        rich_help_panel=HELM_PANEL,
    ),
]

NamespaceShareOption = Annotated[
    float,
    typer.Option(
        "--namespace-share",
        envvar="ALECTON_NAMESPACE_SHARE",
        min=0.01,
        max=1.0,
        help="The share of the helm workers one namespace may hold at once (at least one).",
        rich_help_panel=HELM_PANEL,
    ),
]

AllowInsecureKubeconfigOption = Annotated[
    bool,
    typer.Option(
        "--allow-insecure-kubeconfig",
        envvar="ALECTON_ALLOW_INSECURE_KUBECONFIG",
        help="Accept Secret kubeconfigs with exec plugins, auth providers or file paths.",
        rich_help_panel=CLUSTERS_PANEL,
    ),
]

ProbeAddressOption = Annotated[
    str,
    typer.Option(
        "--probe-address",
        metavar="<host:port>",
        envvar="ALECTON_PROBE_ADDRESS",
        help="Serve /healthz, /readyz and Prometheus /metrics on HOST:PORT (e.g. :8080); off when empty.",
        rich_help_panel=OBSERVABILITY_PANEL,
    ),
]

LeaderElectOption = Annotated[
    bool,
    typer.Option(
        "--leader-elect",
        envvar="ALECTON_LEADER_ELECT",
        help="Run as one of several replicas: only the holder of a Lease reconciles; the others "
        "wait and take over within about 12 s when it dies.",
        rich_help_panel=AVAILABILITY_PANEL,
    ),
]

LeaderElectionNamespaceOption = Annotated[
    str,
    typer.Option(
        "--leader-election-namespace",
        metavar="<namespace>",
        envvar="POD_NAMESPACE",
        help="The operator's own namespace: its Lease, and the Secret alecton-promotion-key whose "
        "key signs the versions it writes for promotions (made on first use) "
        "(default: the Pod's namespace, else `default`).",
        rich_help_panel=AVAILABILITY_PANEL,
    ),
]

ShardOption = Annotated[
    str,
    typer.Option(
        "--shard",
        metavar="<name>",
        envvar="ALECTON_SHARD",
        help="Reconcile only Deployments labelled alecton.dev/shard=NAME (default: only those "
        "without the label). Each shard runs its own operator (and Lease).",
        rich_help_panel=AVAILABILITY_PANEL,
    ),
]

AuditLogOption = Annotated[
    str,
    typer.Option(
        "--audit-log",
        metavar="<file|->",
        envvar="ALECTON_AUDIT_LOG",
        help="Also write every release transition as one JSON line to FILE (made readable by the "
        "operator only) or `-` for stdout, for the cluster's log pipeline. Off when empty.",
        rich_help_panel=OBSERVABILITY_PANEL,
    ),
]

AuditRetentionOption = Annotated[
    float,
    typer.Option(
        "--audit-retention-days",
        metavar="<days>",
        envvar="ALECTON_AUDIT_RETENTION_DAYS",
        min=0.0001,
        help="Delete ReleaseRecords (the audit trail, `alecton history`) older than this many days "
        "(fractions allowed); swept every 10 minutes, or a tenth of a shorter retention.",
        rich_help_panel=OBSERVABILITY_PANEL,
    ),
]

NotifyAllowCidrOption = Annotated[
    list[str] | None,
    typer.Option(
        "--notify-allow-cidr",
        metavar="<cidr>",
        envvar="ALECTON_NOTIFY_ALLOW_CIDRS",
        help="Let Notifiers reach receivers in this network although it is loopback, private or "
        "link-local (repeatable; default: public addresses only, checked when each connection is "
        "made). Plain http:// is accepted only to these.",
        rich_help_panel=OBSERVABILITY_PANEL,
    ),
]

LogFormatOption = Annotated[
    str,
    typer.Option(
        "--log-format",
        metavar="<text|json>",
        envvar="ALECTON_LOG_FORMAT",
        help="Log line format: text or json.",
        rich_help_panel=OBSERVABILITY_PANEL,
    ),
]

VerboseOption = Annotated[
    bool, typer.Option("--verbose", "-v", help="Debug logging.", rich_help_panel=OBSERVABILITY_PANEL)
]


@app.command()
def run(
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    target_kubeconfig: TargetKubeconfigOption = None,
    namespace: NamespaceOption = None,
    helm: HelmOption = "helm",
    helm_concurrency: HelmConcurrencyOption = 4,
    helm_timeout: HelmTimeoutOption = 300.0,
    history_max: HistoryMaxOption = 10,
    helm_openapi_validation: HelmOpenapiValidationOption = False,
    helm_driver: HelmDriverOption = HelmDriver.server,
    helmd: HelmdOption = None,
    charts_dir: ChartsDirOption = None,
    allow_context: AllowContextOption = None,
    allow_adopt: AllowAdoptOption = False,
    allow_insecure_repositories: AllowInsecureRepositoriesOption = False,
    allow_repository_host: AllowRepositoryHostOption = None,
    lock_grace: LockGraceOption = 60.0,
    namespace_share: NamespaceShareOption = 0.5,
    allow_insecure_kubeconfig: AllowInsecureKubeconfigOption = False,
    probe_address: ProbeAddressOption = "",
    leader_elect: LeaderElectOption = False,
    leader_election_namespace: LeaderElectionNamespaceOption = "",
    shard: ShardOption = "",
    audit_log: AuditLogOption = "",
    audit_retention_days: AuditRetentionOption = 400.0,
    notify_allow_cidr: NotifyAllowCidrOption = None,
    log_format: LogFormatOption = "text",
    verbose: VerboseOption = False,
) -> None:
    """Watch Images, Applications, Clusters and Deployments and reconcile Deployments with helm."""
    try:
        policy = ContextPolicy.parse(allow_context or [])
        parse_networks(notify_allow_cidr or [])
    except ValueError as error:
        fail(str(error), 2)
    config = OperatorConfig(
        kubeconfig=kubeconfig,
        context=context,
        target_kubeconfig=target_kubeconfig,
        namespaces=tuple(namespace or ()),
        helm_binary=helm,
        helm_concurrency=helm_concurrency,
        helm_timeout=helm_timeout,
        history_max=history_max,
        helm_openapi_validation=helm_openapi_validation,
        helm_driver=helm_driver.value,
        helmd_binary=helmd,
        charts_dir=charts_dir.resolve() if charts_dir else None,
        context_policy=policy,
        allow_insecure_kubeconfig=allow_insecure_kubeconfig,
        allow_insecure_repositories=allow_insecure_repositories,
        repository_hosts=repository_hosts(allow_repository_host or []),
        allow_adopt=allow_adopt,
        lock_grace=lock_grace,
        namespace_share=namespace_share,
        helm_home=Path(tempfile.gettempdir()) / "alecton-helm",
        probe_address=probe_address,
        leader_elect=leader_elect,
        leader_election_namespace=leader_election_namespace or "default",
        shard=shard,
        audit_log=audit_log,
        audit_retention_days=audit_retention_days,
        notify_allow_cidrs=tuple(notify_allow_cidr or ()),
    )
    if audit_log and audit_log != "-" and not Path(audit_log).parent.is_dir():
        fail(f"--audit-log {audit_log}: no directory {Path(audit_log).parent}", 2)
    if shard and not SHARD_NAME.fullmatch(shard):
        fail(f"--shard {shard!r}: a shard name is a label value (letters, digits, -, _ and .)", 2)
    from alecton.handlers.logs import setup_logging

    setup_logging(log_format, logging.DEBUG if verbose else logging.INFO)
    _log_grants(policy)
    asyncio.run(_run(config))


def _log_grants(policy: ContextPolicy) -> None:
    logger = logging.getLogger("alecton")
    if policy.grants:
        logger.info("cluster grants: %s", " ".join(policy.describe()))
        for grant in policy.operator_grants():
            logger.warning(
                "grant %s hands its tenant the operator's own credentials on that cluster "
                "(helm and its charts can read and write anything the operator can there)",
                grant,
            )
    else:
        logger.warning("no --allow-context grants: no namespace may deploy to any cluster (deny by default)")


async def _run(config: OperatorConfig) -> None:
    from alecton.handlers.kopf_app import LeadershipLostError, run_operator

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await run_operator(config, stop)
    except LeadershipLostError as error:
        # Exit non-zero: the Pod restarts and stands by again, with fresh state.
        logging.getLogger("alecton").error("%s", error)
        raise SystemExit(1) from None
