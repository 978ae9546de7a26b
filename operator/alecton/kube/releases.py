"""A cheap "does this Helm release exist?" for target clusters, read from helm's own
storage (Secrets labelled owner=helm,name=<release>) instead of starting a helm process.

Used only for contexts of the operator's own kubeconfig: their credentials are already
in the operator's memory. Secret-held tenant kubeconfigs keep going through helm, so no
client for them (and no certificate files of theirs) outlives a reconcile.
"""

from __future__ import annotations

from kubernetes_asyncio import client

from alecton.kube.client import load_configuration


class ReleaseStorage:
    def __init__(self) -> None:
        self._clients: dict[tuple[str, str], client.ApiClient] = {}

    async def _client(self, kubeconfig: str, context: str) -> client.ApiClient:
        key = (kubeconfig, context)
        if key not in self._clients:
            self._clients[key] = client.ApiClient(
                await load_configuration(kubeconfig or None, context or None)
            )
        return self._clients[key]

    async def exists(self, kubeconfig: str, context: str, release: str, namespace: str) -> bool | None:
        """True or False from one API list; None when it cannot tell (then ask helm)."""
        try:
            api = client.CoreV1Api(await self._client(kubeconfig, context))
            secrets = await api.list_namespaced_secret(
                namespace, label_selector=f"owner=helm,name={release}", limit=1
            )
        except Exception:  # unreachable, forbidden, no such context: let helm say it
            return None
        return bool(secrets.items)

    async def close(self) -> None:
        for api in self._clients.values():
            await api.close()
        self._clients.clear()
