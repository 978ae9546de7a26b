"""`alecton onboard`: what a platform team applies to a target cluster before a tenant's
grant can deploy into a namespace there.

A grant on a named context acts as the tenant's own ServiceAccount of the release namespace
(`alecton-<tenant>`, or the one the grant names after `@`), so a tenant's charts reach that
namespace and nothing else of the cluster, and two tenants never act as one identity. This
prints the namespace, that ServiceAccount and a RoleBinding to the built-in `admin`
ClusterRole in that namespace only, for `kubectl apply -f -`.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
import yaml

from alecton.reconcile.grants import OPERATOR_IDENTITY, tenant_service_account

PART_OF = {"app.kubernetes.io/part-of": "alecton"}


def onboarding_manifests(namespace: str, service_account: str) -> list[dict[str, Any]]:
    """The objects that let a grant acting as `service_account` deploy into `namespace`."""
    meta = {"name": service_account, "namespace": namespace, "labels": PART_OF}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": PART_OF}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            # `admin` bound by a RoleBinding: everything inside this namespace (helm's storage
            # Secrets included), nothing cluster-scoped, no other namespace.
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
            "subjects": [{"kind": "ServiceAccount", "name": service_account, "namespace": namespace}],
        },
    ]


def onboard(
    namespaces: Annotated[list[str], typer.Argument(metavar="NAMESPACE...", help="Release namespaces.")],
    tenant: Annotated[
        str,
        typer.Option(
            "--tenant",
            metavar="<namespace>",
            help="The tenant namespace (of the management cluster) that deploys here: its grant "
            "acts as the ServiceAccount alecton-<tenant>.",
        ),
    ] = "",
    identity: Annotated[
        str,
        typer.Option(
            "--identity",
            metavar="<service-account>",
            help="Instead of --tenant: the ServiceAccount a grant names after `@`.",
        ),
    ] = "",
) -> None:
    """Print what a target cluster needs before a tenant's grant can deploy into NAMESPACE.

    A grant `--allow-context TEAM=CONTEXT:GLOB` on a named context runs every helm command
    and API call of tenant TEAM as the ServiceAccount alecton-TEAM of the release namespace,
    which the platform team creates when it onboards the namespace for that tenant:

        alecton onboard web-staging --tenant default | kubectl --context alecton-b apply -f -

    The output is YAML: the Namespace, the ServiceAccount and a RoleBinding to the built-in
    `admin` ClusterRole in that namespace only. Onboard a namespace for one tenant: two
    tenants onboarded into one namespace can read each other's Secrets there.
    """
    if bool(tenant) == bool(identity):
        raise typer.BadParameter("give either --tenant or --identity")
    if identity == OPERATOR_IDENTITY:
        raise typer.BadParameter("`operator` is the operator's own identity: there is nothing to create")
    account = identity or tenant_service_account(tenant)
    documents = [doc for namespace in namespaces for doc in onboarding_manifests(namespace, account)]
    typer.echo(yaml.safe_dump_all(documents, sort_keys=False).rstrip())
