"""Turning a Cluster into the kubeconfig and context helm runs with."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from alecton.api.models import Cluster
from alecton.handlers.config import OperatorConfig
from alecton.helm.actions import KubeAccess, private_file
from alecton.kube.client import KubeClient
from alecton.reconcile.access import check_kubeconfig

IN_CLUSTER = "in-cluster"  # the policy name of "the cluster the operator runs in"


class ClusterAccessError(Exception):
    """The Cluster cannot be used as it is; the message says what to change."""


@contextlib.asynccontextmanager
async def cluster_access(
    cluster: Cluster, config: OperatorConfig, kube: KubeClient
) -> AsyncIterator[KubeAccess]:
    """Yield how to reach `cluster`. A Secret-held kubeconfig lives in a 0600 temporary
    file only for the duration of the block."""
    namespace = cluster.ref.namespace
    secret = cluster.kubeconfig_secret
    if secret is None:
        # No context: the cluster the operator itself runs against (its kubeconfig and
        # context, or in-cluster credentials when it has no kubeconfig).
        context = cluster.context or config.context or ""
        policy_name = context or IN_CLUSTER
        if not config.context_policy.allows(namespace, policy_name):
            raise ClusterAccessError(
                f"Cluster {cluster.ref.name!r} uses context {policy_name!r}, which the "
                f"operator does not grant to namespace {namespace!r} (ask an administrator to add "
                f"--allow-context {namespace}={policy_name})"
            )
        kubeconfig = config.target_kubeconfig_path if cluster.context else config.kubeconfig_path
        yield KubeAccess(kubeconfig or "", context)
        return
    raw = await kube.read_secret_key(namespace, secret.name, secret.key)
    if raw is None:
        raise ClusterAccessError(
            f"Cluster {cluster.ref.name!r}: Secret {secret.name!r} with key {secret.key!r} "
            f"does not exist in namespace {namespace!r}"
        )
    try:
        check_kubeconfig(raw, config.allow_insecure_kubeconfig)
    except ValueError as error:
        raise ClusterAccessError(
            f"Cluster {cluster.ref.name!r}: kubeconfig in Secret {secret.name!r} refused: {error}"
        ) from None
    with private_file(raw, ".kubeconfig") as path:
        yield KubeAccess(str(path), cluster.context, tenant_secret=True)
