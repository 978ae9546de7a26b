"""Turning a Cluster into the kubeconfig, context and identity helm runs with.

Deny by default: a tenant namespace reaches a context of the operator's kubeconfig (or
the operator's own cluster, `in-cluster`) only through an `--allow-context` grant, and
only for the target namespaces the grant names, and acting as the identity the grant
names: a ServiceAccount of the tenant namespace on the operator's own cluster, of the
release namespace on a named context; the operator's own identity only where a grant
says `@operator`.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator

from alecton.api.models import Cluster
from alecton.handlers.config import OperatorConfig
from alecton.kube.access import KubeAccess, private_file
from alecton.kube.client import KubeClient
from alecton.reconcile.access import Impersonation, cluster_identity
from alecton.reconcile.grants import IN_CLUSTER
from alecton.reconcile.kubeconfig import check_kubeconfig


class ClusterAccessError(Exception):
    """The Cluster cannot be used as it is; the message says what to change."""


def granted_identity(
    cluster: Cluster, config: OperatorConfig, grant_name: str, target_namespace: str
) -> Impersonation:
    """Who acts for the tenant at this place, as its grant says; refused without a grant."""
    asked = cluster.service_account if grant_name == IN_CLUSTER else ""
    found = config.context_policy.impersonation(cluster.ref.namespace, grant_name, target_namespace, asked)
    if isinstance(found, str):
        raise ClusterAccessError(f"Cluster {cluster.ref.name!r}: {found}")
    return found


@contextlib.asynccontextmanager
async def cluster_access(
    cluster: Cluster, target_namespace: str, config: OperatorConfig, kube: KubeClient
) -> AsyncIterator[KubeAccess]:
    """Yield how to reach `cluster` for a release in `target_namespace`. A Secret-held
    kubeconfig lives in a 0600 temporary file only for the duration of the block."""
    namespace = cluster.ref.namespace
    secret = cluster.kubeconfig_secret
    if secret is None:
        if cluster.in_cluster:
            # The operator's own cluster: its kubeconfig and context (or in-cluster
            # credentials), acting as the tenant's ServiceAccount the grant names.
            who = granted_identity(cluster, config, IN_CLUSTER, target_namespace)
            yield KubeAccess(
                config.kubeconfig_path or "",
                config.context or "",
                identity=cluster_identity(IN_CLUSTER),
                impersonate=who.user,
            )
            return
        # A named context of the operator's kubeconfig holds the operator's own (cluster-wide)
        # credentials there: the tenant's work runs as the identity its grant names, by
        # default a ServiceAccount of the release namespace, never as the operator unless
        # the grant says `@operator`.
        who = granted_identity(cluster, config, cluster.context, target_namespace)
        yield KubeAccess(
            config.target_kubeconfig_path or "",
            cluster.context,
            identity=cluster_identity(cluster.context),
            impersonate=who.user,
        )
        return
    raw = await kube.read_secret_key(namespace, secret.name, secret.key)
    if raw is None:
        raise ClusterAccessError(
            f"Cluster {cluster.ref.name!r}: Secret {secret.name!r} with key {secret.key!r} "
            f"does not exist in namespace {namespace!r}"
        )
    try:
        target = check_kubeconfig(raw, cluster.context, config.allow_insecure_kubeconfig)
    except ValueError as error:
        raise ClusterAccessError(
            f"Cluster {cluster.ref.name!r}: kubeconfig in Secret {secret.name!r} refused: {error}"
        ) from None
    with private_file(target.checked, ".kubeconfig") as path:  # what was checked, as JSON
        yield KubeAccess(
            str(path),
            target.context,
            tenant_secret=True,
            identity=cluster_identity(target.context, target.server),
            credentials=hashlib.sha256(target.checked).hexdigest()[:16],
        )
