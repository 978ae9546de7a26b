"""The Kubernetes identity a web request acts with: never the server's own.

- Local mode (`alecton dashboard`): the person's kubeconfig and context, as every other
  `alecton` command uses it.
- Proxy mode (`alecton web`): the request's bearer token, sent to the API server as is.
  The server has the API server's address and CA, and no credentials at all: no token,
  no access.

Requests lease their client from a pool (web/clients.py): one per caller in proxy mode
(filed under a digest of the token), one per loaded kubeconfig in local mode, so a request
reuses the caller's open connections instead of a TLS handshake each.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import yaml
from kubernetes_asyncio import client

from alecton.kube.access import private_file
from alecton.kube.client import KubeClient, current_context, kubeconfig_path, load_configuration
from alecton.service.server_settings import ApiServer
from alecton.web.clients import ClientPool, credential_digest

AGENT = "alecton-web"
# Credentials from exec plugins and OIDC expire: the kubeconfig is read again this often.
RELOAD_SECONDS = 300.0


class NoCredentialsError(Exception):
    """A request without the caller's token (proxy mode): 401 before any Kubernetes call."""


class Identity:
    """Makes the API client of one request (the caller's)."""

    mode = ""

    async def client(self, token: str) -> KubeClient:
        """A new client of the caller's, which the caller closes."""
        raise NotImplementedError

    def key(self, token: str) -> str:
        """Whom `token` stands for here: what the caller's client and views are filed
        under (never the token itself)."""
        return credential_digest(token)

    @contextlib.asynccontextmanager
    async def lease(self, token: str) -> AsyncIterator[KubeClient]:
        """The caller's client for one request (or stream): a fresh one unless pooled."""
        api = await self.client(token)
        try:
            yield api
        finally:
            await api.close()

    def kubeconfig(self, token: str) -> contextlib.AbstractContextManager[tuple[str, str]]:
        """(kubeconfig file, context) of the caller, for helm (diffs)."""
        raise NotImplementedError

    async def close(self) -> None:
        """Close the clients kept for callers (the server stops)."""
        pool = getattr(self, "pool", None)
        if pool is not None:
            await pool.close()


class LocalIdentity(Identity):
    mode = "local"

    def __init__(self, kubeconfig: str | None, context: str | None) -> None:
        # The context is fixed at start (the current one if none is named), so the API calls
        # and helm (diffs) never reach different clusters after `kubectl config use-context`.
        self.path = kubeconfig_path(kubeconfig)
        self.context = context or current_context(self.path)
        self._configuration: client.Configuration | None = None
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()
        self._generation = 0  # a new client for every (re)loaded kubeconfig
        self.pool = ClientPool(size=4)

    async def _current(self) -> client.Configuration:
        async with self._lock:
            if self._configuration is None or time.monotonic() - self._loaded_at > RELOAD_SECONDS:
                self._configuration = await load_configuration(self.path, self.context)
                self._loaded_at = time.monotonic()
                self._generation += 1
            return self._configuration

    def key(self, token: str) -> str:
        return "local"  # one person: their kubeconfig

    @contextlib.asynccontextmanager
    async def lease(self, token: str) -> AsyncIterator[KubeClient]:
        await self._current()
        async with self.pool.lease(f"local-{self._generation}", lambda: self.client(token)) as api:
            yield api

    async def client(self, token: str) -> KubeClient:
        api = client.ApiClient(await self._current())
        api.user_agent = f"{AGENT}/0.1"
        return KubeClient(api)

    @contextlib.contextmanager
    def kubeconfig(self, token: str) -> Iterator[tuple[str, str]]:
        yield self.path or "", self.context or ""


class BearerIdentity(Identity):
    mode = "proxy"

    def __init__(self, server: ApiServer) -> None:
        self.server = server
        base = client.Configuration(host=server.url)
        if server.ca_file:
            base.ssl_ca_cert = server.ca_file
        base.verify_ssl = True
        self._base = base
        self.pool = ClientPool()

    @contextlib.asynccontextmanager
    async def lease(self, token: str) -> AsyncIterator[KubeClient]:
        if not token:
            raise NoCredentialsError
        async with self.pool.lease(self.key(token), lambda: self.client(token)) as api:
            yield api

    async def client(self, token: str) -> KubeClient:
        if not token:
            raise NoCredentialsError
        configuration = copy.copy(self._base)
        configuration.api_key = {"BearerToken": token}
        configuration.api_key_prefix = {"BearerToken": "Bearer"}
        api = client.ApiClient(configuration)
        api.user_agent = f"{AGENT}/0.1"
        return KubeClient(api)

    @contextlib.contextmanager
    def kubeconfig(self, token: str) -> Iterator[tuple[str, str]]:
        cluster: dict[str, str] = {"server": self.server.url}
        if self.server.ca_file:
            cluster["certificate-authority-data"] = base64.b64encode(
                Path(self.server.ca_file).read_bytes()
            ).decode()
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "caller", "cluster": cluster}],
            "users": [{"name": "caller", "user": {"token": token}}],
            "contexts": [{"name": "caller", "context": {"cluster": "caller", "user": "caller"}}],
            "current-context": "caller",
        }
        # The caller's token in a file only this process can read, removed afterwards.
        with private_file(yaml.safe_dump(document).encode(), ".kubeconfig") as path:
            yield str(path), "caller"
