"""The `dashboard` command (the dashboard and HTTP API on a person's machine) and the `web`
command (the same server in a cluster, behind an authenticating proxy)."""

from __future__ import annotations

import asyncio
import contextlib
import html
import os
import re
import secrets
import socket
import webbrowser
from pathlib import Path
from typing import Annotated

import typer

from alecton.cli.chart_options import (
    DiffAllowInsecureRepositoriesOption,
    DiffAllowRepositoryHostOption,
    chart_policy,
)
from alecton.cli.output import EXIT_USAGE, fail
from alecton.cli.session import (
    ChartsDirOption,
    ContextOption,
    HelmOption,
    KubeconfigOption,
    NamespaceOption,
    handle_errors,
)
from alecton.kube.access import private_file
from alecton.reconcile.chart import ChartFetcher
from alecton.service.server_settings import (
    SERVER_APP_FACTORY,
    ApiServer,
    LocalCaller,
    ServerSettings,
    hand_to_server,
)
from alecton.service.session import Target

# The server's modules (FastAPI, uvicorn: about 0.5 s of imports) load only when a server
# starts, not with every `alecton` command or the operator: uvicorn imports the app by its
# import string (`SERVER_APP_FACTORY`), with the settings handed to it here.

TOKEN_ENV = "ALECTON_DASHBOARD_TOKEN"  # noqa: S105 (the name of a variable, not a secret)
_TOKEN_FORM = re.compile(r"[A-Za-z0-9_-]{32,}")


def _redirect_page(url: str) -> bytes:
    """A local page that sends the browser on to `url` (kept in a file only we can read)."""
    target = html.escape(url, quote=True)
    return (
        f'<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url={target}">'
        f'<title>alecton dashboard</title><a href="{target}">Open the alecton dashboard</a>'
    ).encode()


def _bind(host: str, port: int) -> socket.socket:
    try:
        sock = socket.create_server((host, port), reuse_port=False)
    except OSError as error:
        fail(f"cannot listen on {host}:{port}: {error.strerror or error}", EXIT_USAGE)
    sock.set_inheritable(True)
    return sock


def _serve(settings: ServerSettings, sock: socket.socket, access_log: bool) -> None:
    import uvicorn

    hand_to_server(settings)
    config = uvicorn.Config(
        SERVER_APP_FACTORY,
        factory=True,
        log_level="warning",
        access_log=access_log,
        timeout_graceful_shutdown=3,
        # Every header and body has a limit: a slow or huge request must not hold the server.
        h11_max_incomplete_event_size=64 * 1024,
    )
    server = uvicorn.Server(config)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(server.serve(sockets=[sock]))


def dashboard(
    port: Annotated[
        int,
        typer.Option(
            "--port",
            "-p",
            metavar="<port>",
            min=0,
            max=65535,
            help="Port on 127.0.0.1 (default: a free one).",
        ),
    ] = 0,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Print the URL; do not open a browser.")
    ] = False,
    helm: HelmOption = "",
    charts_dir: ChartsDirOption = None,
    allow_insecure_repositories: DiffAllowInsecureRepositoriesOption = False,
    allow_repository_host: DiffAllowRepositoryHostOption = None,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Open the dashboard (and the HTTP API) on this machine, with your kubeconfig's rights.

    Listens on 127.0.0.1 only and prints a URL with a random token for this run (the page
    keeps it for this address; scripts send `Authorization: Bearer <token>`). Set
    $ALECTON_DASHBOARD_TOKEN to choose the token (e.g. for curl). Ctrl+C stops it."""
    where = Target.of(kubeconfig, context, namespace)
    token = os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(32)
    if not _TOKEN_FORM.fullmatch(token):
        fail(f"${TOKEN_ENV} must be at least 32 characters of A-Z, a-z, 0-9, - and _", EXIT_USAGE)
    charts = chart_policy(
        charts_dir, allow_insecure_repositories, allow_repository_host, ChartFetcher.DASHBOARD
    )
    sock = _bind("127.0.0.1", port)
    bound = sock.getsockname()[1]
    settings = ServerSettings(
        namespace=where.namespace,
        caller=LocalCaller(where.kubeconfig, where.context, token, bound),
        helm=helm,
        charts=charts,
    )
    # The token is in the fragment: browsers never send it to a server or in a Referer.
    url = f"http://127.0.0.1:{bound}/#token={token}"
    typer.echo(f"alecton dashboard for namespace {where.namespace}: {url}", err=True)
    typer.echo(f"HTTP API: http://127.0.0.1:{bound}/v1/ (Authorization: Bearer <the token>)", err=True)
    typer.echo("Press Ctrl+C to stop.", err=True)
    with contextlib.ExitStack() as stack:
        if not no_browser:
            # Not the URL itself: a browser's command line is readable by every local user.
            page = stack.enter_context(private_file(_redirect_page(url), ".html"))
            webbrowser.open(page.as_uri())
        _serve(settings, sock, access_log=False)  # the first URL holds the token: no access log


def web(
    ctx: typer.Context,
    port: Annotated[
        int, typer.Option("--port", "-p", metavar="<port>", min=1, max=65535, help="Port.")
    ] = 8080,
    listen: Annotated[
        str, typer.Option("--listen", metavar="<address>", help="Address to listen on.")
    ] = "0.0.0.0",  # noqa: S104 (a Pod's port, behind its proxy)
    server: Annotated[
        str,
        typer.Option(
            "--server",
            metavar="<url>",
            help="The Kubernetes API server (default: in a cluster, its service address).",
        ),
    ] = "",
    certificate_authority: Annotated[
        Path | None,
        typer.Option(
            "--certificate-authority",
            metavar="<file>",
            help="CA of the API server (default: in a cluster, its service account CA file).",
        ),
    ] = None,
    namespace: Annotated[
        str, typer.Option("--namespace", "-n", metavar="<namespace>", help="Default namespace of requests.")
    ] = "default",
    access_log: Annotated[
        bool, typer.Option("--access-log", help="Log every request (never a header).")
    ] = False,
    helm: HelmOption = "",
    charts_dir: ChartsDirOption = None,
    allow_insecure_repositories: DiffAllowInsecureRepositoriesOption = False,
    allow_repository_host: DiffAllowRepositoryHostOption = None,
) -> None:
    """Serve the dashboard and HTTP API for a cluster, behind an authenticating proxy.

    Every API request must carry `Authorization: Bearer <token>`: the token is passed to
    the Kubernetes API as the caller's (an OIDC ID token, a ServiceAccount token). The
    server itself has no credentials."""
    ca = str(certificate_authority) if certificate_authority else ""
    try:
        api_server = ApiServer(server, ca) if server else ApiServer.in_cluster(ca)
    except ValueError as error:
        fail(str(error), EXIT_USAGE)
    charts = chart_policy(charts_dir, allow_insecure_repositories, allow_repository_host, ChartFetcher.WEB)
    settings = ServerSettings(namespace=namespace, caller=api_server, helm=helm, charts=charts)
    sock = _bind(listen, port)
    bound = sock.getsockname()[1]
    typer.echo(f"{ctx.command_path} on {listen}:{bound}, API server {api_server.url}", err=True)
    _serve(settings, sock, access_log)


def register(app: typer.Typer) -> None:
    app.command("dashboard")(handle_errors(dashboard))
    app.command("web")(handle_errors(web))
