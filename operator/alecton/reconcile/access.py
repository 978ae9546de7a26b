"""Which clusters a tenant namespace may reach, and which kubeconfigs are safe to use.

A namespace is a tenant. It may deploy through a context of the operator's own
kubeconfig (or the cluster the operator runs in) only when an operator flag grants
it, and through a kubeconfig from its own Secret only when that kubeconfig names a
real https cluster and cannot make the operator run programs or read its files (the
same stance as Flux's insecure-kubeconfig flags). `grants.py` reads the grants,
`kubeconfig.py` checks a tenant's kubeconfig.

Everything here is pure: no I/O, so callers decide what to read and what to log.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from alecton.reconcile.grants import (
    ANY,
    IN_CLUSTER,
    IN_CLUSTER_SERVICE_ACCOUNT,
    Grant,
    context_item,
    parse_entry,
    tenant_service_account,
)


@dataclass(frozen=True)
class Impersonation:
    """Who helm and every API call act as for one release: `user` is the
    Kubernetes user name to impersonate, empty for the operator's own credentials."""

    user: str
    create_namespace: bool

    @classmethod
    def service_account(cls, namespace: str, name: str) -> Impersonation:
        return cls(f"system:serviceaccount:{namespace}:{name}", False)


def _literal_glob(name: str) -> str:
    """A glob matching exactly `name`, so a suggested grant never grants more than asked."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


@dataclass(frozen=True)
class ContextPolicy:
    """Which tenant may deploy through which context into which target namespaces.

    Deny by default: with no grants, every request is refused. Grants come from
    `--allow-context` entries, `TENANT=CONTEXT[:NAMESPACE-GLOB][,...]`:

    - TENANT is a namespace name, or `*` for every tenant namespace;
    - CONTEXT is a context name of the operator's kubeconfig, or `in-cluster`;
    - NAMESPACE-GLOB is an fnmatch-style glob (`*`, `?`, `[...]`) on the namespace the
      release goes to in the target cluster; without it, any target namespace;
    - IDENTITY is who every helm run and API call for the tenant acts as there: an
      impersonated ServiceAccount unless it says `operator`. Without it, on a named
      context the tenant's own `alecton-<tenant>` of the release namespace (the platform
      team creates and binds it when it onboards the namespace for that tenant), on
      `in-cluster` `alecton-deployer` of the tenant's namespace. A name picks another
      ServiceAccount there (never with TENANT `*` on a named context: every tenant would
      share it). `@operator` hands the tenant the operator's own credentials on that
      cluster (and lets helm create namespaces): it must be written out and is logged.

    For example `team-a=prod-eu:team-a-*`, `*=alecton-b`,
    `team-b=in-cluster:team-b,staging:team-b-*@deployer` or `ops=alecton-b@operator`.

    The context and the glob are split at the LAST `:`, and only when something
    follows it; the identity follows the last `@` after that. A context whose name
    contains `:` or `@` (an EKS ARN, `kubernetes-admin@kubernetes`) therefore needs an
    explicit glob: `team-a=arn:aws:eks:eu-west-1:1234:cluster/prod:*`. A trailing `:`
    with nothing after it stays part of the context name.
    """

    grants: tuple[Grant, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> ContextPolicy:
        grants: set[Grant] = set()
        for entry in entries:
            grants.update(parse_entry(entry))
        # Sorted and de-duplicated, so equal configurations give equal policies.
        return cls(tuple(sorted(grants)))

    def refusal(self, tenant: str, context: str, target_namespace: str) -> str | None:
        """None when a grant lets `tenant` deploy through `context` into
        `target_namespace`; otherwise one line saying which grant would allow it."""
        if not context:
            return f"namespace {tenant!r} named no context to deploy through"
        if not target_namespace:
            # An empty name would match `*`; refuse it so a caller's mistake cannot
            # pass as "any namespace".
            return f"namespace {tenant!r} named no target namespace to deploy to"
        relevant = [g for g in self.grants if g.tenant in (tenant, ANY) and g.context == context]
        if any(g.covers(context, target_namespace) for g in relevant):
            return None
        if relevant:
            globs = ", ".join(sorted({g.namespace_glob for g in relevant}))
            why = f"granted only for target namespaces {globs}"
        else:
            why = "no grant"
        wanted = context_item(context, _literal_glob(target_namespace))
        return (
            f"namespace {tenant!r} may not deploy to namespace {target_namespace!r} through "
            f"context {context!r} ({why}); an administrator can add --allow-context {tenant}={wanted}"
        )

    def allows(self, tenant: str, context: str, target_namespace: str) -> bool:
        return self.refusal(tenant, context, target_namespace) is None

    def impersonation(
        self, tenant: str, context: str, target_namespace: str, service_account: str = ""
    ) -> Impersonation | str:
        """Who acts for `tenant` at this place, or one line saying why nobody may.

        `service_account` is what the tenant asked for (a Cluster's serviceAccountName,
        only for `in-cluster`): it must be the identity a covering grant names, since the
        tenant does not choose which of its ServiceAccounts the operator acts as."""
        refusal = self.refusal(tenant, context, target_namespace)
        if refusal:
            return refusal
        covering = [
            g for g in self.grants if g.tenant in (tenant, ANY) and g.covers(context, target_namespace)
        ]
        if service_account and context == IN_CLUSTER:
            chosen = [g for g in covering if (g.identity or IN_CLUSTER_SERVICE_ACCOUNT) == service_account]
            if not chosen:
                allowed = ", ".join(sorted({g.identity or IN_CLUSTER_SERVICE_ACCOUNT for g in covering}))
                wanted = context_item(context, _literal_glob(target_namespace), service_account)
                return (
                    f"namespace {tenant!r} may not act as ServiceAccount {service_account!r} on "
                    f"context {context!r} (its grants allow {allowed}); an administrator can add "
                    f"--allow-context {tenant}={wanted}"
                )
            covering = chosen
        grant = max(covering, key=Grant.specificity)
        if grant.as_operator:
            return Impersonation("", True)
        # On the operator's own cluster the ServiceAccount is the tenant's; on a named
        # context it belongs to the namespace the release goes to.
        if context == IN_CLUSTER:
            return Impersonation.service_account(tenant, grant.identity or IN_CLUSTER_SERVICE_ACCOUNT)
        account = grant.identity or tenant_service_account(tenant)
        return Impersonation.service_account(target_namespace, account)

    def operator_grants(self) -> list[str]:
        """The grants that hand tenants the operator's own credentials (logged at start)."""
        return sorted(g.entry() for g in self.grants if g.as_operator)

    def describe(self) -> list[str]:
        """The grants in `--allow-context` syntax, sorted, one per grant."""
        return sorted(grant.entry() for grant in self.grants)


def cluster_identity(context: str, server: str = "") -> str:
    """A short, stable name for "which cluster", to record and compare: the server URL
    when it is known (the same cluster through two context names is one cluster),
    otherwise the context name."""
    if server:
        # A trailing slash does not make another cluster.
        return f"server:{server.rstrip('/')}"
    if context == IN_CLUSTER:
        return IN_CLUSTER
    if not context:
        # "" would make every unnamed cluster look the same; callers pass IN_CLUSTER.
        raise ValueError("cluster_identity needs a context name or a server")
    return f"context:{context}"
