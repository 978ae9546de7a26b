"""What deploying would change, before it happens (`alecton diff`, GET /v1/diff).

Runs with the caller's own kubeconfig and rights (never the operator's): it reads the
Application, Cluster, Images and valuesFrom like the operator would, resolves them with
the operator's own `reconcile.plan.resolve` and `desired_release`, renders the release
with helm's server-side dry run using the same values file and flags as the operator's
upgrade, and compares the result with the live objects (`reconcile/diff.py`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client as k8s

from alecton.api.models import Application, Cluster, Deployment, Image, ObjectRef
from alecton.api.objects import ObjectKey
from alecton.helm.actions import HelmActionError, HelmActions
from alecton.helm.runner import HelmRunner
from alecton.kube.access import KubeAccess, private_file
from alecton.kube.client import KubeClient, kubeconfig_path, load_configuration
from alecton.kube.informers import read_objects
from alecton.kube.releases import owner_labels
from alecton.kube.values_sources import fetch_values_sources
from alecton.local.tools import ToolsMissingError, tool
from alecton.reconcile.chart import ChartPolicy, ChartRefusedError
from alecton.reconcile.diff import DiffResult, diff_release, key_of, parse_manifest
from alecton.reconcile.kubeconfig import check_kubeconfig
from alecton.reconcile.plan import DesiredRelease, Missing, ValuesRefusedError, desired_release, resolve
from alecton.reconcile.release import owner_description
from alecton.registry.signatures import ImageVerifier
from alecton.service.deployments import find_deployment
from alecton.service.errors import InvalidRequestError, NotFoundError
from alecton.service.resources import field_selector
from alecton.service.session import Target

_WAITING_ADVICE = "; create it ("


def default_helm() -> str:
    with contextlib.suppress(ToolsMissingError):
        return str(tool("helm"))
    return shutil.which("helm") or "helm"


def default_charts_dir() -> Path | None:
    """Bundled charts: $ALECTON_CHARTS_DIR, else a `charts/` of the checkout."""
    if env := os.environ.get("ALECTON_CHARTS_DIR"):
        return Path(env)
    for start in (Path.cwd(), Path(__file__).resolve()):
        for parent in (start, *start.parents):
            if (parent / "charts").is_dir() and (parent / "operator" / "alecton").is_dir():
                return parent / "charts"
    return None


@dataclass(frozen=True)
class DiffTools:
    """What a diff renders with: helm (its server-side dry run) and the bundled charts."""

    actions: HelmActions
    charts: ChartPolicy

    @classmethod
    def of(cls, helm: str, charts: ChartPolicy) -> DiffTools:
        """The given helm binary and chart policy (its charts directory, else the default)."""
        return cls(
            HelmActions(HelmRunner(helm or default_helm(), timeout=120)),
            replace(charts, charts_dir=charts.charts_dir or default_charts_dir()),
        )


async def desired_for(
    kube: KubeClient, namespace: str, application: str, target: str, version: str | None, charts: ChartPolicy
) -> tuple[DesiredRelease, str]:
    """What the operator would deploy, and the Deployment's name (for the owner labels).

    A missing Application or Cluster is the API server's 404; without VERSION, the
    Deployment's version is compared."""
    app = Application.parse(await kube.get("Application", namespace, application))
    target_spec = app.target(target)
    clusters: dict[str, Cluster] = {}
    images: list[Image] = []
    existing: dict[str, Any] | None = None
    if target_spec is not None:  # else `resolve` says which targets there are
        existing = await find_deployment(kube, namespace, application, target)
        version = version or ((existing or {}).get("spec") or {}).get("version")
        if not version:
            raise NotFoundError(
                f"no Deployment of {application!r} to {target!r} yet: name the VERSION to compare"
            )
        clusters[target_spec.cluster] = Cluster.parse(
            await kube.get("Cluster", namespace, target_spec.cluster)
        )
        selector = field_selector(**{"spec.name": app.image, "spec.version": version})
        images = [Image.parse(i) for i in await kube.list("Image", namespace, field_selector=selector)]
    name = (existing or {}).get("metadata", {}).get("name") or f"{application}-{target}"
    deployment = Deployment(ObjectRef(namespace, name), "", 0, "", application, target, version or "")
    resolution = resolve(deployment, app, clusters.get, images)
    if isinstance(resolution, Missing):
        # What is missing, in the operator's words, without its advice to a Deployment that
        # waits for an Image (`; create it (...) and the deployment proceeds`): a diff waits for nothing.
        raise NotFoundError(resolution.message.partition(_WAITING_ADVICE)[0])
    try:
        sources = await fetch_values_sources(kube, resolution)
        sources = await ImageVerifier().with_verdict(resolution, sources, charts)
        return desired_release(resolution, deployment, charts, sources), name
    except (ChartRefusedError, ValuesRefusedError, ValueError) as error:
        raise InvalidRequestError(str(error)) from None


@contextlib.asynccontextmanager
async def caller_access(kube: KubeClient, cluster: Cluster, where: Target) -> AsyncIterator[KubeAccess]:
    """The target cluster as the caller reaches it: the Cluster's Secret (read with the
    caller's rights), else the context of that name in the caller's kubeconfig, else (the
    operator's own cluster) the caller's current context."""
    own = kubeconfig_path(where.kubeconfig) or ""
    if cluster.kubeconfig_secret is not None:
        secret = cluster.kubeconfig_secret
        raw = await kube.read_secret_key(cluster.ref.namespace, secret.name, secret.key)
        if raw is None:
            raise NotFoundError(f"Secret {secret.name!r} with key {secret.key!r} does not exist")
        try:
            checked = check_kubeconfig(raw, cluster.context, allow_insecure=False)
        except ValueError as error:
            raise InvalidRequestError(f"Cluster {cluster.ref.name!r}: kubeconfig refused: {error}") from None
        with private_file(raw, ".kubeconfig") as path:
            yield KubeAccess(str(path), checked.context, tenant_secret=True)
        return
    yield KubeAccess(own, cluster.context or where.context or "")


async def live_objects(access: KubeAccess, keys: list[ObjectKey]) -> dict[ObjectKey, dict[str, Any] | None]:
    api = k8s.ApiClient(await load_configuration(access.kubeconfig or None, access.context or None))
    try:
        return await read_objects(api, keys)
    finally:
        await api.close()


async def render_diff(
    kube: KubeClient, where: Target, application: str, target: str, version: str | None, tools: DiffTools
) -> tuple[DiffResult, DesiredRelease]:
    """Render what the operator would deploy and compare it with the live objects."""
    desired, owner = await desired_for(kube, where.namespace, application, target, version, tools.charts)
    async with caller_access(kube, desired.cluster, where) as access:
        try:
            rendered = await tools.actions.render(
                desired.name,
                desired.namespace,
                desired.chart,
                desired.values,
                access,
                owner_description(desired.version, f"{where.namespace}/{owner}"),
                owner_labels(where.namespace, owner),
            )
            deployed = await tools.actions.manifest(desired.name, desired.namespace, access)
        except HelmActionError as error:
            raise InvalidRequestError(desired.redactor.redact(str(error))) from None
        wanted = parse_manifest(rendered, desired.namespace)
        previous = parse_manifest(deployed or "", desired.namespace)
        keys = list(dict.fromkeys(key_of(o, desired.namespace) for o in [*wanted, *previous]))
        live = await live_objects(access, keys)
    return diff_release(wanted, live, previous), desired


def diff_view(result: DiffResult, desired: DesiredRelease) -> dict[str, Any]:
    """The diff as data (-o json|yaml, the HTTP API)."""
    redact = desired.redactor.redact  # strings from valuesFrom Secrets, wherever they ended up
    return {
        "changed": result.changed,
        "summary": result.summary,
        "release": desired.name,
        "namespace": desired.namespace,
        "version": desired.version,
        "objects": [{**o.as_status(), "diff": redact(o.diff)} for o in result.objects if o.diff or o.fields],
    }
