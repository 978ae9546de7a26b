from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from alecton.reconcile.access import ContextPolicy, Impersonation, cluster_identity
from alecton.reconcile.grants import IN_CLUSTER, Grant
from alecton.reconcile.kubeconfig import KubeconfigRefusedError, TargetKubeconfig, check_kubeconfig

# --- ContextPolicy -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "grants"),
    [
        ("team-a=prod", [Grant("team-a", "prod", "*")]),
        ("team-a=prod-eu:team-a-*", [Grant("team-a", "prod-eu", "team-a-*")]),
        ("*=alecton-b", [Grant("*", "alecton-b", "*")]),
        (
            "team-b=in-cluster:team-b,staging:team-b-*",
            [Grant("team-b", IN_CLUSTER, "team-b"), Grant("team-b", "staging", "team-b-*")],
        ),
        (" team-a = prod : web , dev ", [Grant("team-a", "dev", "*"), Grant("team-a", "prod", "web")]),
        # The last `:` splits, so a context with `:` in its name needs an explicit glob...
        ("team-a=arn:aws:eks:eu:1:cluster/prod:*", [Grant("team-a", "arn:aws:eks:eu:1:cluster/prod", "*")]),
        # ...and without one, the part after the last `:` is read as the glob.
        ("team-a=arn:aws:eks:eu:1:cluster/prod", [Grant("team-a", "arn:aws:eks:eu:1", "cluster/prod")]),
        # Nothing after the last `:`: it belongs to the context name.
        ("team-a=odd:", [Grant("team-a", "odd:", "*")]),
        # Identities: a ServiceAccount name, or `operator` written out.
        ("team-a=prod@deployer", [Grant("team-a", "prod", "*", "deployer")]),
        ("team-a=prod:team-a-*@operator", [Grant("team-a", "prod", "team-a-*", "operator")]),
        ("team-a=prod:web", [Grant("team-a", "prod", "web", "")]),
        # A context with `@` in its name (kubeadm's) needs an explicit glob, as one with `:`.
        ("team-a=kubernetes-admin@kubernetes:*", [Grant("team-a", "kubernetes-admin@kubernetes", "*")]),
        (
            "team-a=kubernetes-admin@kubernetes:*@operator",
            [Grant("team-a", "kubernetes-admin@kubernetes", "*", "operator")],
        ),
    ],
)
def test_parse(entry: str, grants: list[Grant]) -> None:
    assert ContextPolicy.parse([entry]).grants == tuple(grants)


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("nonsense", "no '='"),
        ("=prod", "empty tenant"),
        ("  =prod", "empty tenant"),
        ("team-a=", "empty context"),
        ("team-a=prod,", "empty context"),
        ("team-a=prod,,dev", "empty context"),
        ("team-a=:team-a", "empty context"),
        ("team-*=prod", "neither a namespace name"),
        ("Team-A=prod", "neither a namespace name"),
        ("team-a=*", "not a context"),
        ("team-a=prod@", "empty identity"),
        ("team-a=prod:web@Not_A_Name", "neither a ServiceAccount name"),
    ],
)
def test_parse_errors_show_the_syntax(entry: str, why: str) -> None:
    with pytest.raises(
        ValueError, match=r"TENANT=CONTEXT\[:NAMESPACE-GLOB\]\[@IDENTITY\]\[,\.\.\.\]"
    ) as error:
        ContextPolicy.parse([entry])
    assert why in str(error.value)


@pytest.mark.parametrize(
    "entry",
    [
        "team-a=prod@operator",
        "team-a=prod:web-*@deployer",
        "team-a=kubernetes-admin@kubernetes:*",
        "team-a=kubernetes-admin@kubernetes:*@operator",
    ],
)
def test_entries_read_back(entry: str) -> None:
    policy = ContextPolicy.parse([entry])
    assert ContextPolicy.parse(policy.describe()) == policy


def test_a_named_context_impersonates_the_tenants_own_service_account_of_the_release_namespace() -> None:
    """Issue 23: a grant on a named context bounded only the release namespace; helm ran with
    the operator's cluster-wide credentials, so a chart could write anywhere in the cluster."""
    policy = ContextPolicy.parse(["team-a=prod:team-a-*"])
    who = policy.impersonation("team-a", "prod", "team-a-web")
    assert who == Impersonation("system:serviceaccount:team-a-web:alecton-team-a", False)


def test_two_tenants_granted_one_namespace_never_act_as_one_identity() -> None:
    """Red team, issue 23: with one `alecton-deployer` per release namespace, two tenants whose
    grants overlapped acted there as the same admin (one read the other's Secrets, rewrote
    its release's storage). Each tenant acts as its own ServiceAccount; only the tenants the
    platform team onboarded into a namespace have rights in it."""
    policy = ContextPolicy.parse(["*=prod:web-*", "team-b=prod:web-*"])
    a = policy.impersonation("team-a", "prod", "web-shop")
    b = policy.impersonation("team-b", "prod", "web-shop")
    assert isinstance(a, Impersonation) and isinstance(b, Impersonation)
    assert a.user == "system:serviceaccount:web-shop:alecton-team-a"
    assert b.user == "system:serviceaccount:web-shop:alecton-team-b"
    # One named ServiceAccount for every tenant would share it again: refused at start.
    with pytest.raises(ValueError, match="every tenant act as one ServiceAccount"):
        ContextPolicy.parse(["*=prod:web-*@deployer"])
    assert ContextPolicy.parse(["*=in-cluster:web-*@deployer"]).grants  # the tenant's own namespace


def test_the_operators_own_identity_must_be_written_out() -> None:
    policy = ContextPolicy.parse(["team-a=prod:team-a-*@operator", "team-b=prod"])
    assert policy.impersonation("team-a", "prod", "team-a-web") == Impersonation("", True)
    assert policy.operator_grants() == ["team-a=prod:team-a-*@operator"]
    assert policy.impersonation("team-b", "prod", "x").user.startswith("system:serviceaccount:x:")


def test_the_most_specific_grant_decides_who_acts() -> None:
    policy = ContextPolicy.parse(
        ["team-a=prod:team-a-*", "team-a=prod:team-a-infra@operator", "*=prod@operator"]
    )
    assert policy.impersonation("team-a", "prod", "team-a-infra") == Impersonation("", True)
    assert policy.impersonation("team-a", "prod", "team-a-web").user.endswith(":team-a-web:alecton-team-a")
    # Equal globs: the bounded identity wins over the operator's.
    policy = ContextPolicy.parse(["team-a=prod@operator", "team-a=prod"])
    assert policy.impersonation("team-a", "prod", "x").user


def test_in_cluster_acts_as_a_service_account_of_the_tenant_the_grant_names() -> None:
    """Issue 23: spec.serviceAccountName let a tenant name any ServiceAccount of its namespace."""
    policy = ContextPolicy.parse(["team-a=in-cluster:team-a-*"])
    who = policy.impersonation("team-a", IN_CLUSTER, "team-a-web", "alecton-deployer")
    assert who == Impersonation("system:serviceaccount:team-a:alecton-deployer", False)
    refused = policy.impersonation("team-a", IN_CLUSTER, "team-a-web", "ci-admin")
    assert isinstance(refused, str)
    assert "may not act as ServiceAccount 'ci-admin'" in refused
    assert refused.endswith("--allow-context team-a=in-cluster:team-a-web@ci-admin")
    allowed = ContextPolicy.parse([refused.rsplit("--allow-context ", 1)[1]])
    assert allowed.impersonation("team-a", IN_CLUSTER, "team-a-web", "ci-admin") == Impersonation(
        "system:serviceaccount:team-a:ci-admin", False
    )


def test_no_grant_is_no_identity() -> None:
    refused = ContextPolicy.parse(["team-a=prod:team-a-*"]).impersonation("team-a", "prod", "kube-system")
    assert isinstance(refused, str) and "--allow-context team-a=prod:kube-system" in refused


def test_entries_merge_and_duplicates_collapse() -> None:
    policy = ContextPolicy.parse(["team-a=prod", "team-a=prod:*,dev", "*=shared"])
    assert policy == ContextPolicy.parse(["*=shared", "team-a=dev,prod"])
    assert policy.describe() == ["*=shared", "team-a=dev", "team-a=prod"]


def test_describe_round_trips_through_parse() -> None:
    entries = ["team-a=prod-eu:team-a-*", "*=alecton-b", "team-b=in-cluster:team-b", "t=a:b:*", "t=odd:"]
    policy = ContextPolicy.parse(entries)
    assert policy.describe() == sorted(policy.describe())
    assert "t=a:b:*" in policy.describe() and "*=alecton-b" in policy.describe()
    assert ContextPolicy.parse(policy.describe()) == policy


@pytest.mark.parametrize(
    "policy", [ContextPolicy(), ContextPolicy.parse([])], ids=["default", "parsed-from-nothing"]
)
@pytest.mark.parametrize("context", ["prod", IN_CLUSTER, ""])
def test_deny_by_default(policy: ContextPolicy, context: str) -> None:
    assert not policy.allows("team-a", context, "team-a")
    assert policy.refusal("team-a", context, "team-a")
    assert policy.describe() == []


POLICY = ContextPolicy.parse(
    [
        "team-a=prod:team-a-*,staging",
        "team-b=in-cluster:team-b",
        "*=shared:shared-*",
    ]
)


@pytest.mark.parametrize(
    ("tenant", "context", "target", "allowed"),
    [
        ("team-a", "prod", "team-a-web", True),
        ("team-a", "prod", "team-a", False),  # `team-a-*` needs the dash
        ("team-a", "prod", "kube-system", False),
        ("team-a", "staging", "anything", True),  # no glob: any target namespace
        ("team-b", "prod", "team-a-web", False),  # another tenant's grant
        ("team-b", IN_CLUSTER, "team-b", True),
        ("team-b", IN_CLUSTER, "team-b-web", False),
        ("team-a", IN_CLUSTER, "team-a", False),
        ("team-c", "shared", "shared-c", True),  # `*` tenant
        ("team-a", "shared", "shared-a", True),  # `*` adds to a tenant's own grants
        ("team-c", "shared", "team-c", False),
        ("team-a", "PROD", "team-a-web", False),  # names are case-sensitive
        ("team-a", "prod", "TEAM-A-web", False),
        ("team-a", "prod", "", False),  # an empty target is not "any"
    ],
)
def test_allows(tenant: str, context: str, target: str, allowed: bool) -> None:
    assert POLICY.allows(tenant, context, target) is allowed
    assert (POLICY.refusal(tenant, context, target) is None) is allowed


def test_refusal_without_any_grant_names_the_grant_to_add() -> None:
    message = POLICY.refusal("team-a", "other", "x")
    assert message == (
        "namespace 'team-a' may not deploy to namespace 'x' through context 'other' (no grant); "
        "an administrator can add --allow-context team-a=other:x"
    )


def test_refusal_for_another_target_namespace_shows_what_is_granted() -> None:
    message = POLICY.refusal("team-a", "prod", "x")
    assert message is not None and "\n" not in message
    assert "(granted only for target namespaces team-a-*)" in message
    assert message.endswith("--allow-context team-a=prod:x")
    # Grants to `*` count as granted too.
    message = POLICY.refusal("team-c", "shared", "team-c")
    assert message is not None and "granted only for target namespaces shared-*" in message


@pytest.mark.parametrize(
    ("tenant", "context", "target"),
    [("team-a", "arn:aws:eks:eu:1:cluster/x", "web"), ("team-a", "prod", "we*b"), ("t", "c", "a?[b]")],
)
def test_suggested_grant_parses_back_to_exactly_the_refused_request(
    tenant: str, context: str, target: str
) -> None:
    message = ContextPolicy().refusal(tenant, context, target)
    assert message is not None
    suggested = ContextPolicy.parse([message.rsplit("--allow-context ", 1)[1]])
    assert suggested.allows(tenant, context, target)
    assert not suggested.allows(tenant, context, target + "x")
    assert not suggested.allows(tenant, context, "b")


# --- check_kubeconfig ------------------------------------------------------------------

TOKEN = "s3cr3t-t0ken-value"


def config(**changes: Any) -> dict[str, Any]:
    """A valid kubeconfig; `changes` replace top-level keys."""
    data: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "main",
        "clusters": [
            {"name": "c", "cluster": {"server": "https://k8s.example.com:6443"}},
            {"name": "other", "cluster": {"server": "https://other.example.com"}},
        ],
        "contexts": [
            {"name": "main", "context": {"cluster": "c", "user": "u"}},
            {"name": "second", "context": {"cluster": "other", "user": "u"}},
        ],
        "users": [{"name": "u", "user": {"token": TOKEN}}],
    }
    data.update(changes)
    return data


def dump(data: Any) -> bytes:
    return yaml.safe_dump(data).encode()


def with_cluster(**fields: Any) -> dict[str, Any]:
    data = config()
    data["clusters"][0]["cluster"].update(fields)
    return data


def with_user(**fields: Any) -> dict[str, Any]:
    data = config()
    data["users"][0]["user"].update(fields)
    return data


def with_context(**fields: Any) -> dict[str, Any]:
    data = config()
    data["contexts"][0]["context"].update(fields)
    return data


def test_happy_path_returns_context_and_server() -> None:
    raw = dump(config())
    assert check_kubeconfig(raw) == TargetKubeconfig("main", "https://k8s.example.com:6443")
    assert check_kubeconfig(raw, context="second") == TargetKubeconfig("second", "https://other.example.com")
    # Embedded credentials are fine, and so is a context without a user.
    embedded = with_user(**{"client-certificate-data": "eA==", "client-key-data": "eA=="})
    embedded["clusters"][0]["cluster"]["certificate-authority-data"] = "eA=="
    assert check_kubeconfig(dump(embedded)).context == "main"
    assert check_kubeconfig(dump(with_context(user=""))).context == "main"
    # An unused, empty section written as null by kubectl.
    assert check_kubeconfig(dump(with_context(user="") | {"users": None})).context == "main"


def test_json_kubeconfig_is_accepted() -> None:
    import json

    assert check_kubeconfig(json.dumps(config()).encode()).context == "main"


REFUSED = [
    pytest.param(b"\xff\xfe", "not UTF-8", id="not-utf8"),
    pytest.param(b"clusters: [", "not valid YAML", id="not-yaml"),
    pytest.param(b"", "null, not a mapping", id="empty"),
    pytest.param(b"- a\n- b\n", "a list, not a mapping", id="list"),
    pytest.param(b"just: a map", "no current-context", id="no-sections"),
    pytest.param(dump(config(clusters=[])), "clusters: none", id="no-clusters"),
    pytest.param(dump(config(clusters=None)), "clusters: none", id="clusters-null"),
    pytest.param(dump(with_cluster(server=None)), "has no server", id="server-null"),
    pytest.param(dump(with_cluster(server="")), "has no server", id="server-empty"),
    pytest.param(dump(with_cluster(server=443)), "has no server", id="server-number"),
    pytest.param(dump(with_cluster(server="http://k8s.example.com")), "not an https://", id="http"),
    pytest.param(dump(with_cluster(server="k8s.example.com")), "not an https://", id="no-scheme"),
    pytest.param(dump(with_cluster(server="https://")), "not an https://", id="no-host"),
    pytest.param(dump(with_cluster(server="https://[::1")), "not an https://", id="bad-ipv6"),
    pytest.param(
        dump(with_cluster(server=f"https://x:{TOKEN}@k8s.example.com")), "credentials", id="userinfo"
    ),
    pytest.param(
        dump(config(**{"current-context": "gone"})),
        "context 'gone' not found in the kubeconfig (contexts: main, second)",
        id="missing-current-context-entry",
    ),
    pytest.param(dump(config(**{"current-context": ""})), "no current-context", id="current-context-empty"),
    pytest.param(dump(config(**{"current-context": None})), "no current-context", id="current-context-null"),
    pytest.param(dump(config(**{"current-context": ["main"]})), "current-context", id="current-context-list"),
    pytest.param(dump(config(contexts=[])), "(contexts: none)", id="no-contexts"),
    pytest.param(
        dump(with_context(cluster="nope")), "names cluster 'nope', which is not in", id="no-cluster"
    ),
    pytest.param(dump(with_context(cluster=None)), "names no cluster", id="context-without-cluster"),
    pytest.param(dump(with_context(user="nope")), "names user 'nope', which is not in", id="no-user"),
    pytest.param(dump(with_context(user={"token": TOKEN})), "user as a mapping", id="user-not-a-name"),
    pytest.param(
        dump(config(users={"u": {"token": TOKEN}})), "'users' in the kubeconfig is a mapping", id="users-map"
    ),
    pytest.param(
        dump(config(clusters="c")), "'clusters' in the kubeconfig is a string", id="clusters-string"
    ),
    pytest.param(dump(config(users=[TOKEN])), "users[0] in the kubeconfig is a string", id="item-string"),
    pytest.param(dump(config(contexts=[None])), "contexts[0] in the kubeconfig is null", id="item-null"),
    pytest.param(
        dump(config(clusters=[{"name": "c", "cluster": None}])),
        "clusters[0] ('c') in the kubeconfig has 'cluster' as null",
        id="cluster-null",
    ),
    pytest.param(
        dump(config(users=[{"name": "u", "user": TOKEN}])),
        "users[0] ('u') in the kubeconfig has 'user' as a string",
        id="user-body-string",
    ),
    pytest.param(dump(config(contexts=[{"name": "main"}])), "'context' as null", id="context-body-missing"),
    pytest.param(
        dump(config(users=[{"user": {"token": TOKEN}}])),
        "users[0] in the kubeconfig has no name",
        id="no-name",
    ),
    pytest.param(
        dump(config(users=[{"name": 7, "user": {}}])),
        "users[0] in the kubeconfig has no name",
        id="name-number",
    ),
    pytest.param(
        dump(config(users=[{"name": "u", "user": {}}, {"name": "u", "user": {"token": TOKEN}}])),
        "two entries named 'u'",
        id="duplicate-name",
    ),
    pytest.param(
        dump(with_cluster(**{"insecure-skip-tls-verify": "yes please"})),
        "insecure-skip-tls-verify as a string",
        id="insecure-not-bool",
    ),
    pytest.param(
        b"current-context: main\ncurrent-context: main\n",
        "repeats a key in one mapping (line 2)",
        id="dup-key",
    ),
    pytest.param(b"users:\n- &u {name: u, user: {}}\n- *u\n", "YAML aliases", id="alias"),
    pytest.param(b"x: {<<: {a: 1}}\n", "merge keys", id="merge-key"),
]


@pytest.mark.parametrize(("raw", "why"), REFUSED)
@pytest.mark.parametrize("allow_insecure", [False, True], ids=["strict", "allow-insecure"])
def test_kubeconfig_refused(raw: bytes, why: str, allow_insecure: bool) -> None:
    """Shape, server and context rules hold even with allow_insecure."""
    with pytest.raises(KubeconfigRefusedError) as error:
        check_kubeconfig(raw, allow_insecure=allow_insecure)
    assert why in str(error.value)
    assert TOKEN not in str(error.value) and "\n" not in str(error.value)


def test_context_argument_overrides_current_context() -> None:
    assert check_kubeconfig(dump(config(**{"current-context": None})), context="main").context == "main"
    assert check_kubeconfig(dump(config(**{"current-context": "gone"})), context="second").context == "second"
    with pytest.raises(
        KubeconfigRefusedError, match=r"context 'gone' not found .*\(contexts: main, second\)"
    ):
        check_kubeconfig(dump(config()), context="gone")


def test_only_the_selected_context_must_resolve() -> None:
    data = config()
    data["contexts"][1]["context"]["cluster"] = "nope"
    assert check_kubeconfig(dump(data)).context == "main"
    with pytest.raises(KubeconfigRefusedError, match="names cluster 'nope'"):
        check_kubeconfig(dump(data), context="second")


INSECURE = [
    pytest.param(with_user(exec={"command": "/bin/sh"}), "exec", id="exec"),
    pytest.param(with_user(**{"auth-provider": {"name": "gcp"}}), "auth-provider", id="auth-provider"),
    pytest.param(with_user(tokenFile="/var/run/secrets/token"), "tokenFile", id="tokenFile"),
    pytest.param(
        with_user(**{"client-certificate": "/etc/cert"}), "client-certificate", id="client-certificate"
    ),
    pytest.param(with_user(**{"client-key": "/etc/key"}), "client-key", id="client-key"),
    pytest.param(
        with_cluster(**{"certificate-authority": "/etc/ca.crt"}), "certificate-authority", id="ca-file"
    ),
    pytest.param(
        with_cluster(**{"insecure-skip-tls-verify": True}), "insecure-skip-tls-verify", id="skip-tls"
    ),
    pytest.param(with_cluster(**{"proxy-url": "http://proxy:3128"}), "proxy-url", id="proxy-url"),
]


@pytest.mark.parametrize(("data", "field"), INSECURE)
def test_unsafe_fields_are_refused_unless_allow_insecure(data: dict[str, Any], field: str) -> None:
    raw = dump(data)
    with pytest.raises(KubeconfigRefusedError, match=f"\\({field}\\)|sets {field}") as error:
        check_kubeconfig(raw)
    assert TOKEN not in str(error.value)
    assert check_kubeconfig(raw, allow_insecure=True) == TargetKubeconfig(
        "main", "https://k8s.example.com:6443"
    )


def test_unsafe_fields_are_checked_on_every_entry_not_only_the_selected_one() -> None:
    data = config()
    data["users"].append({"name": "unused", "user": {"exec": {"command": "/bin/sh"}}})
    data["clusters"][1]["cluster"]["certificate-authority"] = "/etc/ca.crt"
    with pytest.raises(KubeconfigRefusedError, match="user 'unused'"):
        check_kubeconfig(dump(data))
    del data["users"][1]
    with pytest.raises(KubeconfigRefusedError, match="cluster 'other'"):
        check_kubeconfig(dump(data))


def test_tls_and_proxy_rules_apply_to_the_selected_cluster() -> None:
    data = config()
    data["clusters"][1]["cluster"].update({"insecure-skip-tls-verify": True, "proxy-url": "http://p"})
    assert check_kubeconfig(dump(data)).context == "main"
    with pytest.raises(KubeconfigRefusedError, match="insecure-skip-tls-verify"):
        check_kubeconfig(dump(data), context="second")


def test_false_and_empty_insecure_fields_are_fine() -> None:
    raw = dump(with_cluster(**{"insecure-skip-tls-verify": False, "proxy-url": ""}))
    assert check_kubeconfig(raw).context == "main"


def test_basic_auth_is_left_alone() -> None:
    assert check_kubeconfig(dump(with_user(username="admin", password=TOKEN))).context == "main"


def test_messages_never_contain_the_token() -> None:
    """Every refusal of a file holding the token (in a user, a name-less item, a broken
    line) keeps it out of the message: messages end up in status and events."""
    broken = [
        dump(config()).replace(b"token: ", b"token: [", 1),
        dump(config()).replace(TOKEN.encode(), TOKEN.encode() + b"\xff"),
        f"users:\n- {TOKEN}: x\n  {TOKEN}: y\n".encode(),
        f"clusters: {TOKEN}\n".encode(),
        f"{TOKEN}\n".encode(),
    ]
    for data in (copy.deepcopy(d.values[0]) for d in INSECURE):
        broken.append(dump(data))
    for raw in broken:
        with pytest.raises(KubeconfigRefusedError) as error:
            check_kubeconfig(raw)
        assert TOKEN not in str(error.value)


# --- cluster_identity ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("context", "server", "identity"),
    [
        (IN_CLUSTER, "", "in-cluster"),
        ("prod", "", "context:prod"),
        ("prod", "https://k8s.example.com:6443", "server:https://k8s.example.com:6443"),
        ("other-name", "https://k8s.example.com:6443/", "server:https://k8s.example.com:6443"),
        (IN_CLUSTER, "https://10.0.0.1", "server:https://10.0.0.1"),
    ],
)
def test_cluster_identity(context: str, server: str, identity: str) -> None:
    assert cluster_identity(context, server) == identity


def test_cluster_identity_needs_something() -> None:
    with pytest.raises(ValueError, match="context name or a server"):
        cluster_identity("")
