"""What `alecton dashboard` and `alecton web` hand the HTTP server they start.

The CLI starts the server by import string (uvicorn's app factory `SERVER_APP_FACTORY`),
so it never imports `alecton.web`: these plain settings are where the two meet. They are
handed over in this process, not through the environment: the dashboard's session token
stays out of what child processes (a browser, helm) inherit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from alecton.reconcile.chart import ChartFetcher, ChartPolicy

# uvicorn calls it without arguments; it builds the app from `handed_settings()`.
SERVER_APP_FACTORY = "alecton.web.server:app_from_handed_settings"

IN_CLUSTER_CA = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"


@dataclass(frozen=True)
class ApiServer:
    """Where proxy mode sends requests: the API server's URL and the CA that signed it."""

    url: str
    ca_file: str = ""

    @classmethod
    def in_cluster(cls, ca_file: str = "") -> ApiServer:
        host, port = (
            os.environ.get("KUBERNETES_SERVICE_HOST", ""),
            os.environ.get("KUBERNETES_SERVICE_PORT", "443"),
        )
        if not host:
            raise ValueError("not in a cluster: give --server (and --certificate-authority)")
        host = f"[{host}]" if ":" in host else host
        return cls(f"https://{host}:{port}", ca_file or IN_CLUSTER_CA)


@dataclass(frozen=True)
class LocalCaller:
    """Local mode (`alecton dashboard`): the person's kubeconfig and context, and the
    per-run token of the dashboard listening on 127.0.0.1:`port`."""

    kubeconfig: str | None
    context: str | None
    token: str
    port: int


@dataclass(frozen=True)
class ServerSettings:
    """The server's default namespace, whose credentials requests act with (local mode: the
    person's; proxy mode: each request's bearer token, sent to `ApiServer`), and what
    diffs render with."""

    namespace: str
    caller: LocalCaller | ApiServer
    helm: str = ""
    charts: ChartPolicy = field(default_factory=lambda: ChartPolicy(fetcher=ChartFetcher.WEB))


_handed: list[ServerSettings] = []


def hand_to_server(settings: ServerSettings) -> None:
    """The settings the server this process starts next is made with."""
    _handed[:] = [settings]


def handed_settings() -> ServerSettings:
    if not _handed:
        raise RuntimeError("no server settings: the server starts with `alecton dashboard` or `alecton web`")
    return _handed[0]
