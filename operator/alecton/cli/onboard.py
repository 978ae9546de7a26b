"""`alecton onboard`: what a platform team applies to a target cluster before a tenant's
grant can deploy into a namespace there.

A grant on a named context acts as a ServiceAccount of the release namespace (default
`alecton-deployer`), so a tenant's charts reach that namespace and nothing else of the
cluster. This prints the namespace, that ServiceAccount and a RoleBinding to the
built-in `admin` ClusterRole in that namespace only, for `kubectl apply -f -`.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
import yaml

from alecton.reconcile.access import DEFAULT_IDENTITY, OPERATOR_IDENTITY

PART_OF = {"app.kubernetes.io/part-of": "alecton"}


def onboarding_manifests(namespace: str, identity: str = DEFAULT_IDENTITY) -> list[dict[str, Any]]:
    """The objects that let a grant with `@identity` deploy into `namespace`."""
    meta = {"name": identity, "namespace": namespace, "labels": PART_OF}
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
            "subjects": [{"kind": "ServiceAccount", "name": identity, "namespace": namespace}],
        },
    ]


def onboard(
    namespaces: Annotated[list[str], typer.Argument(metavar="NAMESPACE...", help="Release namespaces.")],
    identity: Annotated[
        str,
        typer.Option(
            "--identity",
            metavar="<service-account>",
            help="The ServiceAccount the grant names (`@IDENTITY`; default alecton-deployer).",
        ),
    ] = DEFAULT_IDENTITY,
) -> None:
    """Print what a target cluster needs before a grant can deploy into NAMESPACE.

    A grant `--allow-context TEAM=CONTEXT:GLOB@IDENTITY` on a named context runs every
    helm command and API call as the ServiceAccount IDENTITY of the release namespace,
    which the platform team creates when it onboards the namespace:

        alecton onboard web-staging | kubectl --context alecton-b apply -f -

    The output is YAML: the Namespace, the ServiceAccount and a RoleBinding to the built-in
    `admin` ClusterRole in that namespace only.
    """
    if identity == OPERATOR_IDENTITY:
        raise typer.BadParameter("`operator` is the operator's own identity: there is nothing to create")
    documents = [doc for namespace in namespaces for doc in onboarding_manifests(namespace, identity)]
    typer.echo(yaml.safe_dump_all(documents, sort_keys=False).rstrip())
