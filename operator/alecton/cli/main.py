"""The `alecton` command."""

from __future__ import annotations

import typer

from alecton import __version__
from alecton.cli import deploy, diff, images, local, operator
from alecton.cli.session import handle_errors

app = typer.Typer(
    help="alecton deploys CI-recorded container images through Helm charts.\n\n"
    "Images, Applications, Clusters and Deployments are Kubernetes resources "
    "(group alecton.dev); the operator reconciles Deployments with helm.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(images.image_app, name="image")
app.add_typer(images.app_app, name="app")
deploy.register(app)
app.command("diff")(handle_errors(diff.diff, diff.EXIT_DIFF_ERROR))
app.add_typer(local.app, name="local")
app.add_typer(operator.app, name="operator")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"alecton {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """alecton: Helm releases for CI-built images, as Kubernetes resources."""
