"""`alecton diff APP TARGET [VERSION]`: what deploying would change, before it happens.

Runs with the caller's own kubeconfig and rights (never the operator's): it reads the
Application, Cluster, Images and valuesFrom like the operator would, renders the release
with helm's server-side dry run using the same values file and flags as the operator's
upgrade, and compares the result with the live objects (`reconcile/diff.py`). Exit codes
follow `kubectl diff`: 0 nothing would change, 1 something would, 2 or more an error.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import typer
from kubernetes_asyncio import client as k8s
from rich.console import Console
from rich.syntax import Syntax

from alecton.api.models import Application, Cluster, Deployment, Image, ObjectRef
from alecton.api.objects import ObjectKey
from alecton.cli.deploy import find_deployment
from alecton.cli.logic import field_selector
from alecton.cli.output import OutputFormat, emit
from alecton.cli.session import (
    ChartsDirOption,
    CliError,
    ContextOption,
    HelmOption,
    KubeconfigOption,
    NamespaceOption,
    OutputOption,
    Target,
    run_api,
)
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
from alecton.reconcile.plan import DesiredRelease, Resolved, ValuesRefusedError, desired_release, pick_image
from alecton.reconcile.release import owner_description

EXIT_CHANGES = 1
EXIT_DIFF_ERROR = 2


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


async def desired_for(
    kube: KubeClient, namespace: str, application: str, target: str, version: str | None, charts: ChartPolicy
) -> tuple[DesiredRelease, str]:
    """What the operator would deploy, and the Deployment's name (for the owner labels)."""
    app = Application.parse(await kube.get("Application", namespace, application))
    target_spec = app.target(target)
    if target_spec is None:
        known = ", ".join(t.name for t in app.targets) or "none"
        raise CliError(f"Application {application!r} has no target {target!r} (targets: {known})", 3)
    existing = await find_deployment(kube, namespace, application, target)
    version = version or ((existing or {}).get("spec") or {}).get("version")
    if not version:
        raise CliError(f"no Deployment of {application!r} to {target!r} yet: name the VERSION to compare", 3)
    cluster = Cluster.parse(await kube.get("Cluster", namespace, target_spec.cluster))
    selector = field_selector(**{"spec.name": app.image, "spec.version": version})
    image = pick_image(Image.parse(i) for i in await kube.list("Image", namespace, field_selector=selector))
    if image is None:
        raise CliError(
            f"no Image with name {app.image!r} and version {version!r} in namespace {namespace!r}", 3
        )
    resolved = Resolved(app, target_spec, cluster, image)
    name = (existing or {}).get("metadata", {}).get("name") or f"{application}-{target}"
    deployment = Deployment(ObjectRef(namespace, name), "", 0, "", application, target, version)
    try:
        sources = await fetch_values_sources(kube, resolved)
        return desired_release(resolved, deployment, charts, sources), name
    except (ChartRefusedError, ValuesRefusedError, ValueError) as error:
        raise CliError(str(error), EXIT_DIFF_ERROR) from None


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
            raise CliError(f"Secret {secret.name!r} with key {secret.key!r} does not exist", 3)
        try:
            checked = check_kubeconfig(raw, cluster.context, allow_insecure=False)
        except ValueError as error:
            raise CliError(
                f"Cluster {cluster.ref.name!r}: kubeconfig refused: {error}", EXIT_DIFF_ERROR
            ) from None
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


async def compute(
    kube: KubeClient,
    where: Target,
    application: str,
    target: str,
    version: str | None,
    actions: HelmActions,
    charts: ChartPolicy,
) -> tuple[DiffResult, DesiredRelease]:
    """Render what the operator would deploy and compare it with the live objects."""
    desired, owner = await desired_for(kube, where.namespace, application, target, version, charts)
    async with caller_access(kube, desired.cluster, where) as access:
        try:
            rendered = await actions.render(
                desired.name,
                desired.namespace,
                desired.chart,
                desired.values,
                access,
                owner_description(desired.version, f"{where.namespace}/{owner}"),
                owner_labels(where.namespace, owner),
            )
            deployed = await actions.manifest(desired.name, desired.namespace, access)
        except HelmActionError as error:
            raise CliError(desired.redactor.redact(str(error)), EXIT_DIFF_ERROR) from None
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


def show(result: DiffResult, desired: DesiredRelease, output: OutputFormat) -> None:
    redact = desired.redactor.redact
    if output is not OutputFormat.table:
        emit(diff_view(result, desired), output)
        return
    text = redact(result.text())
    if text and sys.stdout.isatty():
        Console(soft_wrap=True).print(Syntax(text, "diff", theme="ansi_dark", background_color="default"))
    elif text:
        typer.echo(text, nl=False)  # plain for pipes and files, like `kubectl diff`
    Console(stderr=True).print(
        f"{desired.name} in {desired.namespace}, version {desired.version}: {result.summary}"
    )


def diff_of(
    where: Target, application: str, target: str, version: str | None, helm: str, charts_dir: Path | None
) -> tuple[DiffResult, DesiredRelease]:
    charts = ChartPolicy(charts_dir or default_charts_dir())
    actions = HelmActions(HelmRunner(helm or default_helm(), timeout=120))

    async def run(kube: KubeClient) -> tuple[DiffResult, DesiredRelease]:
        with Console(stderr=True).status(f"Rendering {application} for {target}..."):
            return await compute(kube, where, application, target, version, actions, charts)

    return run_api(run, where, error_floor=EXIT_DIFF_ERROR)


def diff(
    application: Annotated[str, typer.Argument(help="The Application's name.")],
    target: Annotated[str, typer.Argument(help="One of its targets.")],
    version: Annotated[
        str | None, typer.Argument(help="The Image version to compare (default: the Deployment's).")
    ] = None,
    helm: HelmOption = "",
    charts_dir: ChartsDirOption = None,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """What deploying VERSION of APPLICATION to TARGET would change in the target cluster,
    with today's Application, Cluster and Images, as a unified diff (Secrets only as
    hashes). Exit 0: nothing would change; 1: something would; 2 or more: an error."""
    where = Target.of(kubeconfig, context, namespace)
    result, desired = diff_of(where, application, target, version, helm, charts_dir)
    show(result, desired, output)
    if result.changed:
        raise typer.Exit(EXIT_CHANGES)
