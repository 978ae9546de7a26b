"""Which clusters a tenant namespace may reach, and which kubeconfigs are safe to use.

A namespace is a tenant. It may deploy through a context of the operator's own
kubeconfig (or the cluster the operator runs in) only when an operator flag grants
it, and through a kubeconfig from its own Secret only when that kubeconfig names a
real https cluster and cannot make the operator run programs or read its files (the
same stance as Flux's insecure-kubeconfig flags).

Everything here is pure: no I/O, so callers decide what to read and what to log.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import yaml

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
_ANY = "*"


@dataclass(frozen=True, order=True)
class Grant:
    """`tenant` (a namespace, or `*` for every one) may deploy through `context` into
    target namespaces matching `namespace_glob`, acting as `identity`: a ServiceAccount
    name (impersonated), or `operator` for the operator's own credentials there."""

    tenant: str
    context: str
    namespace_glob: str = _ANY
    identity: str = DEFAULT_IDENTITY

    def covers(self, context: str, target_namespace: str) -> bool:
        # fnmatchcase, not fnmatch: namespace names are case-sensitive on every OS.
        return self.context == context and fnmatch.fnmatchcase(target_namespace, self.namespace_glob)

    @property
    def as_operator(self) -> bool:
        return self.identity == OPERATOR_IDENTITY

    def entry(self) -> str:
        """This grant in `--allow-context` syntax; `ContextPolicy.parse` reads it back."""
        return f"{self.tenant}={_context_item(self.context, self.namespace_glob, self.identity)}"

    def specificity(self) -> tuple[int, int, int]:
        """How narrowly this grant names its namespaces: a literal name beats a glob, a
        longer glob a shorter one; between equals, a ServiceAccount beats the operator."""
        literal = not any(c in self.namespace_glob for c in "*?[")
        return (int(literal), len(self.namespace_glob), int(not self.as_operator))


def _context_item(context: str, namespace_glob: str, identity: str = DEFAULT_IDENTITY) -> str:
    # The glob may be left out only when parsing would not split the context name.
    suffix = "" if identity == DEFAULT_IDENTITY else f"@{identity}"
    if namespace_glob == _ANY and ":" not in context and "@" not in context:
        return context + suffix
    return f"{context}:{namespace_glob}{suffix}"


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
            grants.update(_parse_entry(entry))
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
        relevant = [g for g in self.grants if g.tenant in (tenant, _ANY) and g.context == context]
        if any(g.covers(context, target_namespace) for g in relevant):
            return None
        if relevant:
            globs = ", ".join(sorted({g.namespace_glob for g in relevant}))
            why = f"granted only for target namespaces {globs}"
        else:
            why = "no grant"
        wanted = _context_item(context, _literal_glob(target_namespace))
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
            g for g in self.grants if g.tenant in (tenant, _ANY) and g.covers(context, target_namespace)
        ]
        if service_account and context == IN_CLUSTER:
            chosen = [g for g in covering if (g.identity or IN_CLUSTER_SERVICE_ACCOUNT) == service_account]
            if not chosen:
                allowed = ", ".join(sorted({g.identity or IN_CLUSTER_SERVICE_ACCOUNT for g in covering}))
                wanted = _context_item(context, _literal_glob(target_namespace), service_account)
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


def _parse_entry(entry: str) -> list[Grant]:
    def malformed(why: str) -> ValueError:
        return ValueError(f"--allow-context {entry!r}: {why}; expected {_ENTRY_SYNTAX}")

    tenant, sep, items = entry.partition("=")
    tenant = tenant.strip()
    if not sep:
        raise malformed("no '='")
    if not tenant:
        raise malformed("empty tenant")
    if tenant != _ANY and not _NAMESPACE_NAME.fullmatch(tenant):
        raise malformed(f"tenant {tenant!r} is neither a namespace name nor '*'")
    grants = []
    for item in items.split(","):
        context, sep, glob = item.strip().rpartition(":")
        if not sep or not glob.strip():
            # No `:`, or nothing after the last one: it all belongs to the context name,
            # save an `@IDENTITY` at its end.
            context, glob = item.strip(), _ANY
            head, at, identity = context.rpartition("@")
            if at:
                context, glob = head, f"{_ANY}@{identity}"
        glob, at, identity = glob.partition("@")
        context, glob, identity = context.strip(), glob.strip() or _ANY, identity.strip()
        if at and not identity:
            raise malformed("empty identity after '@'")
        if identity and identity != OPERATOR_IDENTITY and not _SERVICE_ACCOUNT_NAME.fullmatch(identity):
            raise malformed(f"identity {identity!r} is neither a ServiceAccount name nor 'operator'")
        if not context:
            raise malformed("empty context")
        if context == _ANY:
            # Granting every context at once would include ones added to the operator's
            # kubeconfig later; each has to be named.
            raise malformed("'*' is not a context; name each context")
        if tenant == _ANY and context != IN_CLUSTER and identity not in (DEFAULT_IDENTITY, OPERATOR_IDENTITY):
            # One ServiceAccount of the release namespace for every tenant: any tenant could
            # read and write what another deployed there.
            raise malformed(
                f"'*' with @{identity} would make every tenant act as one ServiceAccount; leave the "
                "identity out (each tenant acts as its own alecton-<tenant>) or name the tenant"
            )
        grants.append(Grant(tenant, context, glob, identity))
    return grants


# User fields that run a program or read the operator's filesystem, checked on every
# entry: what the file holds, not just what one context uses, is what may be loaded.
_UNSAFE_USER_FIELDS = {
    "exec": "an exec credential plugin (it would run a program inside the operator)",
    "auth-provider": "an auth-provider plugin",
    "tokenFile": "a token file path on the operator's filesystem",
    "client-certificate": "a client certificate path on the operator's filesystem",
    "client-key": "a client key path on the operator's filesystem",
}
_UNSAFE_CLUSTER_FIELDS = {
    "certificate-authority": "a CA file path on the operator's filesystem",
}
_EMBED_HINT = {
    "user": "embed credentials as data (token, client-certificate-data, ...) instead",
    "cluster": "embed the CA as certificate-authority-data instead",
}
_SECTIONS = (("clusters", "cluster"), ("contexts", "context"), ("users", "user"))


class KubeconfigRefusedError(ValueError):
    """A tenant's kubeconfig cannot be used. The message says why and what to change,
    and never quotes the file's content beyond entry names: it holds credentials."""


@dataclass(frozen=True)
class TargetKubeconfig:
    """What a checked kubeconfig points at: the context helm will use and its server."""

    context: str
    server: str


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader minus the YAML features a kubeconfig never needs and that a YAML
    parser other than client-go's could read differently: duplicate keys (which value
    wins?), aliases and merge keys. Refusing them keeps what is checked here the same
    as what helm loads, and aliases cannot blow up memory."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise KubeconfigRefusedError("the kubeconfig uses YAML aliases (*name), which are not accepted")
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen = []
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise KubeconfigRefusedError(
                    "the kubeconfig uses YAML merge keys (<<), which are not accepted"
                )
            key = self.construct_object(key_node, deep=True)
            if key in seen:  # a list: keys may be unhashable, which SafeLoader refuses below
                # The line, not the key: a key is content too.
                raise KubeconfigRefusedError(
                    f"the kubeconfig repeats a key in one mapping (line {key_node.start_mark.line + 1})"
                )
            seen.append(key)
        return super().construct_mapping(node, deep=deep)


def _quote(name: str) -> str:
    """An entry name for a message, cut short: names are echoed, never other values."""
    text = repr(name)
    return text if len(text) <= 80 else text[:76] + "...'"


def _kind(value: object) -> str:
    """The YAML word for a value's shape, for messages that must not show the value."""
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__


def _load(raw: bytes) -> Mapping[Any, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise KubeconfigRefusedError("the kubeconfig is not UTF-8 text (UnicodeDecodeError)") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        # Only the error's type and position: its message would quote the file.
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise KubeconfigRefusedError(
            f"the kubeconfig is not valid YAML ({type(error).__name__}{where})"
        ) from None
    if not isinstance(data, Mapping):
        raise KubeconfigRefusedError(f"the kubeconfig is {_kind(data)}, not a mapping")
    return data


def _entries(data: Mapping[Any, Any], section: str, body_key: str) -> dict[str, Mapping[Any, Any]]:
    """`section` as name -> body, refusing every shape client-go would not read as
    intended: a wrong shape must never be quietly skipped, since what is skipped here
    would not be checked."""
    items = data.get(section)
    if items is None:  # absent, or `users: null` as kubectl writes an empty list
        return {}
    if not isinstance(items, list):
        raise KubeconfigRefusedError(f"'{section}' in the kubeconfig is {_kind(items)}, not a list")
    entries: dict[str, Mapping[Any, Any]] = {}
    for index, item in enumerate(items):
        where = f"{section}[{index}]"
        if not isinstance(item, Mapping):
            raise KubeconfigRefusedError(f"{where} in the kubeconfig is {_kind(item)}, not a mapping")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise KubeconfigRefusedError(f"{where} in the kubeconfig has no name (a non-empty string)")
        body = item.get(body_key)
        if not isinstance(body, Mapping):
            raise KubeconfigRefusedError(
                f"{where} ({_quote(name)}) in the kubeconfig has '{body_key}' as {_kind(body)}, not a mapping"
            )
        if name in entries:
            # Which one would client-go use? Refuse rather than check the other.
            raise KubeconfigRefusedError(f"{section} in the kubeconfig has two entries named {_quote(name)}")
        entries[name] = body
    return entries


def _names(entries: Mapping[str, Any]) -> str:
    # Quoted only when needed, so that a name with a line break keeps the message on one line.
    names = [name if name.isprintable() else _quote(name) for name in entries]
    shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
    return shown or "none"


def _refuse_unsafe_fields(
    clusters: Mapping[str, Mapping[Any, Any]], users: Mapping[str, Mapping[Any, Any]]
) -> None:
    for section, entries, fields in (
        ("user", users, _UNSAFE_USER_FIELDS),
        ("cluster", clusters, _UNSAFE_CLUSTER_FIELDS),
    ):
        for name, body in entries.items():
            for unsafe, what in fields.items():
                if unsafe in body:
                    raise KubeconfigRefusedError(
                        f"{section} {_quote(name)} in the kubeconfig uses {what} ({unsafe}); "
                        f"{_EMBED_HINT[section]}"
                    )


def _check_server(name: str, body: Mapping[Any, Any]) -> str:
    server = body.get("server")
    if not isinstance(server, str) or not server:
        # Without a server, helm and client-go fall back to the operator's own
        # in-cluster identity: the tenant would act as the operator.
        raise KubeconfigRefusedError(
            f"cluster {_quote(name)} in the kubeconfig has no server (an https:// URL)"
        )
    try:
        parts = urlsplit(server)
        host = parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        parts, host = None, None
    if parts is None or not host or not server.lower().startswith("https://"):
        # The value itself is not shown: a malformed URL may be a pasted token.
        raise KubeconfigRefusedError(
            f"cluster {_quote(name)} in the kubeconfig has a server that is not an https:// URL "
            "with a host (plain http would send the credentials unencrypted)"
        )
    if "@" in parts.netloc:
        # The server URL is recorded as the cluster's identity: it must hold no secret.
        raise KubeconfigRefusedError(
            f"cluster {_quote(name)} in the kubeconfig has credentials in its server URL; "
            "put them in the user entry instead"
        )
    return server


def check_kubeconfig(raw: bytes, context: str = "", allow_insecure: bool = False) -> TargetKubeconfig:
    """Check a tenant's kubeconfig before helm uses it, through `context` (empty: the
    file's current-context), and say which context and server it reaches.

    Strict on purpose: when a kubeconfig is incomplete, helm and client-go fall back to
    the operator's own in-cluster identity, so whatever is not clearly a complete
    https cluster is refused. `allow_insecure` (the administrator's opt-out) lets
    through file paths, plugins, insecure-skip-tls-verify and proxy-url, never a
    malformed file, a missing context or a non-https server.
    """
    data = _load(raw)
    clusters, contexts, users = (_entries(data, section, key) for section, key in _SECTIONS)
    current = data.get("current-context")
    if current is not None and not isinstance(current, str):
        raise KubeconfigRefusedError(f"current-context in the kubeconfig is {_kind(current)}, not a string")
    if not allow_insecure:
        _refuse_unsafe_fields(clusters, users)

    selected = context or current or ""
    if not selected:
        raise KubeconfigRefusedError(
            "the kubeconfig has no current-context and the Cluster names no context; set one of them"
        )
    if selected not in contexts:
        raise KubeconfigRefusedError(
            f"context {_quote(selected)} not found in the kubeconfig (contexts: {_names(contexts)})"
        )
    body = contexts[selected]

    cluster_name = body.get("cluster")
    if not isinstance(cluster_name, str) or not cluster_name:
        raise KubeconfigRefusedError(f"context {_quote(selected)} in the kubeconfig names no cluster")
    if cluster_name not in clusters:
        raise KubeconfigRefusedError(
            f"context {_quote(selected)} names cluster {_quote(cluster_name)}, which is not in the "
            f"kubeconfig (clusters: {_names(clusters)})"
        )
    cluster = clusters[cluster_name]
    server = _check_server(cluster_name, cluster)
    insecure = cluster.get("insecure-skip-tls-verify")
    if insecure is not None and not isinstance(insecure, bool):
        raise KubeconfigRefusedError(
            f"cluster {_quote(cluster_name)} in the kubeconfig has insecure-skip-tls-verify as "
            f"{_kind(insecure)}, not true or false"
        )
    if insecure and not allow_insecure:
        raise KubeconfigRefusedError(
            f"cluster {_quote(cluster_name)} in the kubeconfig sets insecure-skip-tls-verify; "
            "give its CA as certificate-authority-data instead"
        )
    if cluster.get("proxy-url") not in (None, "") and not allow_insecure:
        # The operator's network position is not the tenant's: a proxy of their choice
        # would receive the credentials and reach what the operator can reach.
        raise KubeconfigRefusedError(
            f"cluster {_quote(cluster_name)} in the kubeconfig sets proxy-url, which is not accepted"
        )

    user_name = body.get("user")
    if user_name is not None and not isinstance(user_name, str):
        raise KubeconfigRefusedError(
            f"context {_quote(selected)} in the kubeconfig has user as {_kind(user_name)}, not a string"
        )
    if user_name and user_name not in users:
        raise KubeconfigRefusedError(
            f"context {_quote(selected)} names user {_quote(user_name)}, which is not in the "
            f"kubeconfig (users: {_names(users)})"
        )
    return TargetKubeconfig(selected, server)


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
