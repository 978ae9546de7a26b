"""The `alecton` command."""

from __future__ import annotations

from typing import Annotated

import typer

from alecton import __version__
from alecton.cli import deploy, diff, dora, freeze, history, images, local, onboard, operator, promote, web
from alecton.cli.diff_display import EXIT_DIFF_ERROR
from alecton.cli.help import CliTyper
from alecton.cli.session import (
    ContextOption,
    GroupOutputOption,
    KubeconfigOption,
    NamespaceOption,
    handle_errors,
    pass_to_subcommand,
)

app = CliTyper(
    help="alecton deploys CI-recorded container images through Helm charts.\n\n"
    "Images, Applications, Clusters and Deployments are Kubernetes resources "
    "(group alecton.dev); the operator reconciles Deployments with helm.\n\n"
    "The global options (`--kubeconfig`, `--context`, `-n`, `-o`) go before or after the "
    "command, as with kubectl: `alecton -n team status` is `alecton status -n team`; "
    "given on both sides, the one after the command wins.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(images.image_app, name="image")
app.add_typer(images.app_app, name="app")
app.add_typer(freeze.freeze_app, name="freeze")
deploy.register(app)
history.register(app)
promote.register(app)
web.register(app)
# diff's docstring is one long paragraph: the listing gets a one-sentence summary.
app.command(
    "diff",
    short_help="Show what deploying VERSION of APPLICATION to TARGET would change in the target cluster.",
)(handle_errors(diff.diff, EXIT_DIFF_ERROR))
app.command("onboard")(onboard.onboard)
app.command("dora")(handle_errors(dora.dora))
app.add_typer(local.app, name="local")
app.add_typer(operator.app, name="operator")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"alecton {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
    output: GroupOutputOption = None,
) -> None:
    pass_to_subcommand(ctx, kubeconfig=kubeconfig, context=context, namespace=namespace, output=output)
