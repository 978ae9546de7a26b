"""CreateApplication, UpdateApplication (a full replace, no merge) and ListApplications.

Each face makes the Application object from its own input (the CLI from a YAML file, the
HTTP API from the seed's message); the schema and CEL rules of the CRD judge its spec.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alecton.kube.client import KubeClient
from alecton.service.resources import field_selector


async def create_application(client: KubeClient, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    return await client.create("Application", namespace, body)


async def replace_application(
    client: KubeClient,
    namespace: str,
    name: str,
    replacement: Callable[[dict[str, Any]], dict[str, Any]],
) -> dict[str, Any]:
    """Replace Application `name` with `replacement(the current object)`, which carries its
    resourceVersion: a replace that raced another change fails (409) instead of undoing it.
    A missing Application is the API server's 404."""
    current = await client.get("Application", namespace, name)
    return await client.replace("Application", namespace, name, replacement(current))


async def list_applications(
    client: KubeClient,
    namespace: str,
    name: str | None = None,
    chart: str | None = None,
    image: str | None = None,
) -> list[dict[str, Any]]:
    """ListApplications, by name."""
    selector = field_selector(**{"metadata.name": name, "spec.chart": chart, "spec.image": image})
    found = await client.list("Application", namespace, field_selector=selector)
    return sorted(found, key=lambda a: str((a.get("metadata") or {}).get("name") or ""))
