"""Grants: which tenant may deploy through which context into which namespaces, as who.

Read from the operator's `--allow-context` entries; `ContextPolicy` (`access.py`) documents
their syntax and decides with them. Everything here is pure.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

IN_CLUSTER = "in-cluster"  # the grant name of the cluster the operator runs in

_ENTRY_SYNTAX = "TENANT=CONTEXT[:NAMESPACE-GLOB][@IDENTITY][,...]"
# The identity of a grant that hands a tenant the operator's own credentials on that
# cluster. It must be written out: never a default.
OPERATOR_IDENTITY = "operator"
# A grant that names no identity acts as the tenant's own ServiceAccount: on a named context
# `alecton-<tenant>` of the release namespace (one per tenant, so that two tenants whose
# grants cover the same namespace never act as one identity there: only the tenants the
# platform team onboarded into a namespace have rights in it), on `in-cluster` the
# ServiceAccount `alecton-deployer` of the tenant's own namespace.
DEFAULT_IDENTITY = ""
IN_CLUSTER_SERVICE_ACCOUNT = "alecton-deployer"
TENANT_SERVICE_ACCOUNT_PREFIX = "alecton-"


def tenant_service_account(tenant: str) -> str:
    """The ServiceAccount of a release namespace that a grant without `@IDENTITY` acts as for
    `tenant` on a named context (what `alecton onboard NS --tenant TENANT` creates)."""
    return TENANT_SERVICE_ACCOUNT_PREFIX + tenant


# A ServiceAccount name (RFC 1123 subdomain).
_SERVICE_ACCOUNT_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
# A Kubernetes namespace name (RFC 1123 label). Tenants are checked against it so a
# typo such as `team-*=prod` fails at start-up instead of silently granting nothing.
_NAMESPACE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
ANY = "*"


@dataclass(frozen=True, order=True)
class Grant:
    """`tenant` (a namespace, or `*` for every one) may deploy through `context` into
    target namespaces matching `namespace_glob`, acting as `identity`: a ServiceAccount
    name (impersonated), or `operator` for the operator's own credentials there."""

    tenant: str
    context: str
    namespace_glob: str = ANY
    identity: str = DEFAULT_IDENTITY

    def covers(self, context: str, target_namespace: str) -> bool:
        # fnmatchcase, not fnmatch: namespace names are case-sensitive on every OS.
        return self.context == context and fnmatch.fnmatchcase(target_namespace, self.namespace_glob)

    @property
    def as_operator(self) -> bool:
        return self.identity == OPERATOR_IDENTITY

    def entry(self) -> str:
        """This grant in `--allow-context` syntax; `ContextPolicy.parse` reads it back."""
        return f"{self.tenant}={context_item(self.context, self.namespace_glob, self.identity)}"

    def specificity(self) -> tuple[int, int, int]:
        """How narrowly this grant names its namespaces: a literal name beats a glob, a
        longer glob a shorter one; between equals, a ServiceAccount beats the operator."""
        literal = not any(c in self.namespace_glob for c in "*?[")
        return (int(literal), len(self.namespace_glob), int(not self.as_operator))


def context_item(context: str, namespace_glob: str, identity: str = DEFAULT_IDENTITY) -> str:
    """What follows `TENANT=` in an `--allow-context` entry for this context, glob and identity."""
    # The glob may be left out only when parsing would not split the context name.
    suffix = "" if identity == DEFAULT_IDENTITY else f"@{identity}"
    if namespace_glob == ANY and ":" not in context and "@" not in context:
        return context + suffix
    return f"{context}:{namespace_glob}{suffix}"


def parse_entry(entry: str) -> list[Grant]:
    """The grants of one `--allow-context` entry; ValueError (one line) if it is malformed."""

    def malformed(why: str) -> ValueError:
        return ValueError(f"--allow-context {entry!r}: {why}; expected {_ENTRY_SYNTAX}")

    tenant, sep, items = entry.partition("=")
    tenant = tenant.strip()
    if not sep:
        raise malformed("no '='")
    if not tenant:
        raise malformed("empty tenant")
    if tenant != ANY and not _NAMESPACE_NAME.fullmatch(tenant):
        raise malformed(f"tenant {tenant!r} is neither a namespace name nor '*'")
    grants = []
    for item in items.split(","):
        context, sep, glob = item.strip().rpartition(":")
        if not sep or not glob.strip():
            # No `:`, or nothing after the last one: it all belongs to the context name,
            # save an `@IDENTITY` at its end.
            context, glob = item.strip(), ANY
            head, at, identity = context.rpartition("@")
            if at:
                context, glob = head, f"{ANY}@{identity}"
        glob, at, identity = glob.partition("@")
        context, glob, identity = context.strip(), glob.strip() or ANY, identity.strip()
        if at and not identity:
            raise malformed("empty identity after '@'")
        if identity and identity != OPERATOR_IDENTITY and not _SERVICE_ACCOUNT_NAME.fullmatch(identity):
            raise malformed(f"identity {identity!r} is neither a ServiceAccount name nor 'operator'")
        if not context:
            raise malformed("empty context")
        if context == ANY:
            # Granting every context at once would include ones added to the operator's
            # kubeconfig later; each has to be named.
            raise malformed("'*' is not a context; name each context")
        if tenant == ANY and context != IN_CLUSTER and identity not in (DEFAULT_IDENTITY, OPERATOR_IDENTITY):
            # One ServiceAccount of the release namespace for every tenant: any tenant could
            # read and write what another deployed there.
            raise malformed(
                f"'*' with @{identity} would make every tenant act as one ServiceAccount; leave the "
                "identity out (each tenant acts as its own alecton-<tenant>) or name the tenant"
            )
        grants.append(Grant(tenant, context, glob, identity))
    return grants
