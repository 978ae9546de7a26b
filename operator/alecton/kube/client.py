"""The small Kubernetes API client shared by the operator and the CLI.

Built on kubernetes_asyncio; every call the project makes to the API server
(custom objects, their status, Events, kubeconfig Secrets) goes through here.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from alecton.api.models import CLUSTER_SCOPED, GROUP, PLURALS, VERSION

__all__ = ["ApiException", "KubeClient", "api_error_message", "deadline", "load_configuration"]

_VERSION = "0.1"

# Every API call has a deadline: a server that accepts connections and never answers
# must not hold a worker forever (kubernetes_asyncio's default is no timeout at all).
CONNECT_TIMEOUT = 5.0
CALL_TIMEOUT = 30.0


def api_error_message(error: ApiException) -> str:
    """The API server's own words for a refused request (its Status message)."""
    try:
        return str(json.loads(error.body).get("message") or error.reason)
    except (TypeError, ValueError, AttributeError):
        return f"{error.status} {error.reason}"


def deadline(total: float = CALL_TIMEOUT, connect: float = CONNECT_TIMEOUT) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=total, sock_connect=connect)


def kubeconfig_path(explicit: str | None = None) -> str | None:
    """kubectl's rules: an explicit file, else $KUBECONFIG (its first file), else
    ~/.kube/config if it exists; None means in-cluster configuration."""
    if explicit:
        return explicit
    if env := os.environ.get("KUBECONFIG"):
        return env.split(os.pathsep)[0]
    default = os.path.expanduser("~/.kube/config")
    return default if os.path.exists(default) else None


async def load_configuration(kubeconfig: str | None, context: str | None) -> client.Configuration:
    configuration = client.Configuration()
    path = kubeconfig_path(kubeconfig)
    if path:
        await config.load_kube_config(
            config_file=path, context=context or None, client_configuration=configuration
        )
    else:
        config.load_incluster_config(client_configuration=configuration)
    return configuration


def current_context(kubeconfig: str | None) -> str | None:
    """The kubeconfig's current-context (None without a kubeconfig: in-cluster)."""
    if not kubeconfig:
        return None
    try:
        loader = config.kube_config._get_kube_config_loader(filename=kubeconfig)
        return str(loader.current_context["name"]) or None
    except Exception:  # unreadable or without contexts: loading it later says why
        return None


def current_namespace(kubeconfig: str | None, context: str | None) -> str:
    """The namespace kubectl would use: the context's, else `default`."""
    try:
        loader = config.kube_config._get_kube_config_loader(
            filename=kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config"),
            active_context=context or None,
        )
        return str(loader.current_context["context"].get("namespace") or "default")
    except Exception:  # no kubeconfig: in-cluster or unset
        return "default"


@dataclass
class KubeClient:
    api: client.ApiClient
    timeout: aiohttp.ClientTimeout = field(default_factory=deadline)

    @classmethod
    async def connect(
        cls, kubeconfig: str | None = None, context: str | None = None, agent: str = "alecton-operator"
    ) -> KubeClient:
        """`agent` is the User-Agent, which the API server also takes as the field manager
        of writes that name none: managedFields then say who changed spec.version (the CLI,
        kubectl or the operator), and a promotion hold can say so."""
        api = client.ApiClient(await load_configuration(kubeconfig, context))
        api.user_agent = f"{agent}/{_VERSION}"
        return cls(api)

    async def close(self) -> None:
        await self.api.close()

    @property
    def _custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    @property
    def _core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    # ----- custom objects -------------------------------------------------------------

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        if kind in CLUSTER_SCOPED:
            return await self._custom.get_cluster_custom_object(
                GROUP, VERSION, PLURALS[kind], name, _request_timeout=self.timeout
            )
        return await self._custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURALS[kind], name, _request_timeout=self.timeout
        )

    async def delete(self, kind: str, namespace: str, name: str) -> None:
        if kind in CLUSTER_SCOPED:
            await self._custom.delete_cluster_custom_object(
                GROUP, VERSION, PLURALS[kind], name, _request_timeout=self.timeout
            )
            return
        await self._custom.delete_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURALS[kind], name, _request_timeout=self.timeout
        )

    async def list(
        self, kind: str, namespace: str | None, field_selector: str = "", label_selector: str = ""
    ) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"_request_timeout": self.timeout}
        if field_selector:
            kwargs["field_selector"] = field_selector
        if label_selector:
            kwargs["label_selector"] = label_selector
        if namespace and kind not in CLUSTER_SCOPED:
            result = await self._custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURALS[kind], **kwargs
            )
        else:
            result = await self._custom.list_cluster_custom_object(GROUP, VERSION, PLURALS[kind], **kwargs)
        return list(result.get("items", []))

    async def list_page(
        self, kind: str, namespace: str | None, limit: int, continue_token: str = "", label_selector: str = ""
    ) -> tuple[list[dict[str, Any]], str]:
        """One page of a list (the API server's `limit`/`continue`): the items and the token
        of the next page ("" after the last)."""
        kwargs: dict[str, Any] = {"_request_timeout": self.timeout, "limit": limit}
        if continue_token:
            kwargs["_continue"] = continue_token
        if label_selector:
            kwargs["label_selector"] = label_selector
        if namespace:
            result = await self._custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURALS[kind], **kwargs
            )
        else:
            result = await self._custom.list_cluster_custom_object(GROUP, VERSION, PLURALS[kind], **kwargs)
        return list(result.get("items", [])), str((result.get("metadata") or {}).get("continue") or "")

    async def create(self, kind: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        if kind in CLUSTER_SCOPED:
            return await self._custom.create_cluster_custom_object(
                GROUP, VERSION, PLURALS[kind], body, _request_timeout=self.timeout
            )
        return await self._custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURALS[kind], body, _request_timeout=self.timeout
        )

    async def replace(self, kind: str, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._custom.replace_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURALS[kind], name, body, _request_timeout=self.timeout
        )

    async def patch(
        self, kind: str, namespace: str, name: str, patch: dict[str, Any], field_manager: str = ""
    ) -> dict[str, Any]:
        """A JSON merge patch of the object (spec or metadata); `metadata.resourceVersion` in
        the patch makes it apply only to that version (409 otherwise). `field_manager`
        names the writer in managedFields (default: the User-Agent)."""
        kwargs: dict[str, Any] = {"field_manager": field_manager} if field_manager else {}
        return await self._custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURALS[kind],
            name,
            patch,
            _content_type="application/merge-patch+json",
            _request_timeout=self.timeout,
            **kwargs,
        )

    async def apply(
        self,
        kind: str,
        namespace: str,
        name: str,
        fields: dict[str, Any],
        field_manager: str,
        resource_version: str = "",
    ) -> dict[str, Any]:
        """Server-side apply of `fields` (spec parts) as `field_manager`: the API server
        records who set each field (managedFields), which is how a change by someone else
        is told apart from ours. `resource_version`: apply only to that version of the
        object (409 otherwise)."""
        metadata: dict[str, Any] = {"name": name}
        if resource_version:
            metadata["resourceVersion"] = resource_version
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": metadata, **fields}
        return await self._custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURALS[kind],
            name,
            body,
            field_manager=field_manager,
            force=True,
            _content_type="application/apply-patch+yaml",
            _request_timeout=self.timeout,
        )

    async def patch_status(
        self, kind: str, namespace: str, name: str, status: dict[str, Any], resource_version: str = ""
    ) -> dict[str, Any]:
        """A JSON merge patch of status; `resource_version`: only onto that version of the
        object (409 otherwise), for a status several writers read, change and write."""
        body: dict[str, Any] = {"status": status}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        if kind in CLUSTER_SCOPED:
            return await self._custom.patch_cluster_custom_object_status(
                GROUP,
                VERSION,
                PLURALS[kind],
                name,
                body,
                _content_type="application/merge-patch+json",
                _request_timeout=self.timeout,
            )
        return await self._custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            namespace,
            PLURALS[kind],
            name,
            body,
            _content_type="application/merge-patch+json",
            _request_timeout=self.timeout,
        )

    # ----- core -----------------------------------------------------------------------

    async def read_secret(self, namespace: str, name: str) -> dict[str, bytes] | None:
        """Every key of a Secret, decoded; None when it does not exist. Read by name (the
        operator may `get` Secrets, never list them)."""
        try:
            secret = await self._core.read_namespaced_secret(name, namespace, _request_timeout=self.timeout)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return {key: base64.b64decode(raw) for key, raw in (secret.data or {}).items()}

    async def read_secret_key(self, namespace: str, name: str, key: str) -> bytes | None:
        """One key of a Secret, decoded; None when the Secret or key does not exist."""
        try:
            secret = await self._core.read_namespaced_secret(name, namespace, _request_timeout=self.timeout)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        raw = (secret.data or {}).get(key)
        return base64.b64decode(raw) if raw is not None else None

    async def read_or_create_secret_key(
        self, namespace: str, name: str, key: str, make: Callable[[], bytes]
    ) -> bytes:
        """One key of a Secret, which is created holding `make()` when it does not exist.

        Replicas starting together race to create it: the loser's create answers 409 and it
        reads the winner's value. A Secret that exists without the key is an error (it is
        never overwritten: whoever made it meant something by it).
        """
        value = await self.read_secret_key(namespace, name, key)
        if value is not None:
            return value
        made = make()
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {"app.kubernetes.io/part-of": "alecton"},
            },
            "type": "Opaque",
            "data": {key: base64.b64encode(made).decode()},
        }
        try:
            await self._core.create_namespaced_secret(namespace, body, _request_timeout=self.timeout)
        except ApiException as error:
            if error.status != 409:
                raise
        else:
            return made
        value = await self.read_secret_key(namespace, name, key)
        if value is None:
            raise LookupError(f"Secret {namespace}/{name} exists but has no key {key!r}")
        return value

    async def read_config_map_key(self, namespace: str, name: str, key: str) -> str | None:
        """One key of a ConfigMap; None when the ConfigMap or key does not exist."""
        try:
            config_map = await self._core.read_namespaced_config_map(
                name, namespace, _request_timeout=self.timeout
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return (config_map.data or {}).get(key)

    async def post_event(
        self,
        involved: dict[str, Any],
        event_type: str,
        reason: str,
        message: str,
        component: str = "alecton",
    ) -> None:
        meta = involved.get("metadata") or {}
        timestamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        # A plain dict, not a CoreV1Event model: the client would serialise the model field by
        # field on every Event (measurable at a thousand deploys).
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta.get('name', 'object')}.{uuid.uuid4().hex[:12]}",
                "namespace": meta.get("namespace"),
            },
            "involvedObject": {
                "apiVersion": involved.get("apiVersion"),
                "kind": involved.get("kind"),
                "name": meta.get("name"),
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": event_type,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": component},
            "reportingComponent": component,
            "reportingInstance": os.environ.get("HOSTNAME", component),
            "firstTimestamp": timestamp,
            "lastTimestamp": timestamp,
            "count": 1,
        }
        # The answer is not parsed into a model either: only its status matters.
        response = await self._core.create_namespaced_event(
            meta.get("namespace"), event, _request_timeout=self.timeout, _preload_content=False
        )
        try:
            if not 200 <= response.status <= 299:
                raise ApiException(status=response.status, reason=response.reason)
        finally:
            response.release()
