"""`alecton local`: the embedded control plane (one etcd, two kube-apiservers)."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer

from alecton.cli.help import CliTyper
from alecton.cli.output import OutputFormat, emit, fail
from alecton.cli.session import OutputOption, pass_to_subcommand
from alecton.local.configuration import DEFAULT_NODES, context_name
from alecton.local.controlplane import ControlPlaneError, LocalControlPlane
from alecton.local.tools import ToolsMissingError

app = CliTyper(
    help="Run a real local control plane, for trying alecton and for its tests.\n\n"
    "etcd plus two clusters (contexts alecton-a and alecton-b), each with kube-apiserver, "
    "kube-controller-manager, kube-scheduler and kwok nodes.",
    no_args_is_help=True,
)

StateDir = typer.Option(
    None,
    "--state-dir",
    envvar="ALECTON_LOCAL_DIR",
    metavar="<dir>",
    help="Where certificates, the kubeconfig, data and logs live (default: ~/.local/state/alecton/local).",
)


def _progress(message: str) -> None:
    typer.secho(f"» {message}", err=True, fg=typer.colors.BLUE)


@app.callback()
def _pass_global_options(ctx: typer.Context) -> None:
    # `alecton -o json local status`. The connection options reach no local command (they
    # run their own clusters and write their own kubeconfig), so they are ignored here.
    pass_to_subcommand(ctx)


@app.command()
def up(
    state_dir: Path | None = StateDir,
    timeout: float = typer.Option(
        90.0, metavar="<seconds>", help="Seconds to wait for /readyz and Ready nodes."
    ),
    nodes: int = typer.Option(
        DEFAULT_NODES,
        "--nodes",
        min=0,
        help="Simulated (kwok) nodes per cluster; 0 runs API servers only (no pod ever runs).",
    ),
) -> None:
    """Start etcd and two clusters and write a kubeconfig with two contexts.

    Each cluster runs an API server, a controller-manager, a scheduler and kwok nodes; one
    OCI registry (TLS from the local CA, user `alecton`) serves charts and images."""
    plane = LocalControlPlane(state_dir, log=_progress)
    try:
        state = plane.up(timeout=timeout, nodes=nodes)
    except (ToolsMissingError, ControlPlaneError) as error:
        fail(str(error))
    typer.echo(
        f"Local control plane is up (kubeconfig {state.kubeconfig}).\n"
        f"  export KUBECONFIG={state.kubeconfig}\n"
        f"  contexts: {context_name('a')} (management cluster), {context_name('b')} (target), "
        f"{state.nodes} simulated nodes each\n"
        f"  logs and state: {state.state_dir}; stop with `alecton local down`"
    )
    if state.registry:
        typer.echo(
            f"  OCI registry: https://{state.registry} (user alecton; TLS from the local CA): "
            '`eval "$(alecton local env)"` sets ALECTON_LOCAL_REGISTRY, _CA and _PASSWORD_FILE'
        )


@app.command()
def down(state_dir: Path | None = StateDir) -> None:
    """Stop everything `local up` started and remove its state directory."""
    LocalControlPlane(state_dir, log=_progress).down()


@app.command()
def env(state_dir: Path | None = StateDir) -> None:
    """Print `export KUBECONFIG=...` (and the OCI registry's host, CA and password file) for
    the running control plane.

    Use it as `eval "$(alecton local env)"`."""
    info = LocalControlPlane(state_dir, log=_progress).status()
    if not info.get("kubeconfig"):
        fail(
            f"the local control plane is not running (no state in {info['stateDir']}): run `alecton local up`"
        )
    typer.echo(f"export KUBECONFIG={shlex.quote(info['kubeconfig'])}")
    if registry := info.get("registry"):
        typer.echo(f"export ALECTON_LOCAL_REGISTRY={shlex.quote(registry['host'])}")
        typer.echo(f"export ALECTON_LOCAL_REGISTRY_CA={shlex.quote(registry['caFile'])}")
        typer.echo(f"export ALECTON_LOCAL_REGISTRY_PASSWORD_FILE={shlex.quote(registry['passwordFile'])}")


@app.command()
def status(
    state_dir: Path | None = StateDir,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Say whether the control plane runs, and where its kubeconfig and logs are."""
    info = LocalControlPlane(state_dir, log=_progress).status()
    if output is not OutputFormat.table:
        emit(info, output)
    elif not info.get("kubeconfig"):
        typer.echo(f"not running (no state in {info['stateDir']})")
    else:
        typer.echo(f"running: {info['running']}  kubeconfig: {info['kubeconfig']}")
        for name, cluster in info["clusters"].items():
            typer.echo(f"  {name}: {cluster['server']} ready={cluster['ready']}")
        if registry := info.get("registry"):
            typer.echo(f"  OCI registry: https://{registry['host']} user {registry['user']}")
        for proc in info["processes"]:
            typer.echo(f"  {proc['name']} pid {proc['pid']} alive={proc['alive']} log {proc['log']}")
    if not info["running"]:
        raise typer.Exit(1)
