"""The local test bed's real OCI registry (distribution v3, TLS from the local CA, basic
auth): oci:// charts pulled with the credentials of a Secret in the Application's namespace
(Helm 4 through helmd, Helm 3 through its CLI), and images recorded and deployed by digest."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import ssl
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from alecton.local.configuration import REGISTRY_USER
from alecton.local.controlplane import State
from alecton.reconcile.image_ref import parse_reference
from alecton.registry.digest import RegistryLogin, resolve_digest

from tests.integration import resources as r
from tests.integration.harness import REPO, Cluster, OperatorProcess, events, wait_for, wait_phase
from tests.integration.tenant import as_tenant
from tests.integration.test_cli import alecton
from tests.integration.test_redteam_issue26 import TenantServer

pytestmark = pytest.mark.local_plane("the OCI registry is part of `alecton local up`")

GOOD_1 = "ghcr.io/stefanprodan/podinfo:6.7.0"
GOOD_2 = "ghcr.io/stefanprodan/podinfo:6.8.0"
WRONG_PASSWORD = "not-the-registry-password-0123"


class Registry:
    """The control plane's registry as a tenant's admin sees it: host, login, CA."""

    def __init__(self, cluster: Cluster) -> None:
        assert cluster.state_dir is not None and cluster.plane is not None
        state = State.load(cluster.state_dir)
        assert state is not None and state.registry, "the control plane started no registry"
        self.host = state.registry
        self.password = cluster.plane.registry_password()
        self.ca_file = cluster.state_dir / "pki" / "ca.crt"

    def chart(self, name: str = "webapp") -> str:
        return f"oci://{self.host}/charts/{name}"

    def secret(self, name: str = "registry", password: str | None = None, ca: bool = True) -> dict[str, Any]:
        data = {"username": REGISTRY_USER, "password": password or self.password, "registry": self.host}
        encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
        if ca:
            encoded["ca.crt"] = base64.b64encode(self.ca_file.read_bytes()).decode()
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/basic-auth",
            "metadata": {"name": name},
            "data": encoded,
        }


def push_chart(
    cluster: Cluster,
    registry: Registry,
    work: Path,
    chart: Path = REPO / "charts" / "webapp",
    to: str = "charts",
) -> str:
    """`helm registry login` + `helm package` + `helm push` of `chart` to repository `to` of
    the registry, as a chart's author does (`work`: a directory of its own); the manifest
    digest its tag names then."""
    config = work / "registry.json"
    env = ["--registry-config", str(config)]
    cluster.run(
        "helm", "registry", "login", registry.host, "--username", REGISTRY_USER, "--password-stdin",
        "--ca-file", str(registry.ca_file), *env, stdin=registry.password,
    )  # fmt: skip
    cluster.run("helm", "package", str(chart), "--destination", str(work))
    package = next(work.glob("webapp-*.tgz"))
    target = f"oci://{registry.host}/{to}"
    cluster.run("helm", "push", str(package), target, "--ca-file", str(registry.ca_file), *env)
    login = RegistryLogin(REGISTRY_USER, registry.password, registry.ca_file)
    return resolve_digest(parse_reference(f"{registry.host}/{to}/webapp:1.0.0"), login)


@pytest.fixture(scope="module")
def registry(operator: OperatorProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    found = Registry(operator.cluster)
    push_chart(operator.cluster, found, tmp_path_factory.mktemp("oci-chart"))
    yield found


def oci_application(registry: Registry, target_ns: str, secret: str | None = "registry") -> dict[str, Any]:
    extra: dict[str, Any] = {"chartVersion": "1.0.0"}
    if secret:
        extra["repositorySecretRef"] = {"name": secret}
    return r.application("web", target_ns, chart=registry.chart(), **extra)


def test_an_oci_chart_deploys_with_its_namespaces_registry_secret(
    operator: OperatorProcess, registry: Registry
) -> None:
    cluster = operator.cluster
    ns = cluster.new_namespace("oci")
    target_ns = f"{ns}-web"
    cluster.apply(
        registry.secret(),
        r.cluster(),
        oci_application(registry, target_ns),
        r.image("web", "1.0.0", GOOD_1),
        r.image("web", "2.0.0", GOOD_2),
        r.deployment("web", "1.0.0"),
        namespace=ns,
    )
    deployed = wait_phase(cluster, ns, "web-staging", "Deployed", timeout=120)
    assert deployed["status"]["release"]["chart"] == "webapp-1.0.0", deployed["status"]
    release = cluster.helm_json(operator.helm, "list", "--namespace", target_ns)
    assert [(x["name"], x["chart"]) for x in release] == [("web-staging", "webapp-1.0.0")]

    # A diff pulls the chart with the same Secret, read with the caller's rights.
    diff = alecton(cluster, ns, "diff", "web", "staging", "2.0.0")
    assert diff.returncode == 1, diff.stdout + diff.stderr
    assert GOOD_2 in diff.stdout

    # An upgrade pulls again (helm's cache is per chart digest; the login is per run).
    cluster.patch_spec(ns, "web-staging", {"version": "2.0.0"})
    upgraded = wait_phase(cluster, ns, "web-staging", "Deployed", timeout=120)
    assert upgraded["status"]["release"]["revision"] == 2
    assert upgraded["status"]["release"]["image"] == GOOD_2
    text = json.dumps(cluster.get("Deployment", "web-staging", ns)) + json.dumps(events(cluster, ns))
    assert registry.password not in text


def test_a_registry_login_that_is_missing_wrong_or_another_namespaces_fails_clearly(
    operator: OperatorProcess, registry: Registry
) -> None:
    cluster = operator.cluster
    owner = cluster.new_namespace("oci-owner")  # holds the only good Secret
    cluster.apply(registry.secret(), namespace=owner)
    ns = cluster.new_namespace("oci-bad")
    target_ns = f"{ns}-web"
    cluster.apply(r.cluster(), r.image("web", "1.0.0", GOOD_1), namespace=ns)

    # The Secret named is another namespace's: it is never read there; the Deployment waits,
    # saying which Secret in its own namespace it needs.
    cluster.apply(oci_application(registry, target_ns), r.deployment("web", "1.0.0"), namespace=ns)
    waiting = wait_phase(cluster, ns, "web-staging", "Pending", timeout=60)
    ready = next(c for c in waiting["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "RepositorySecretNotFound", ready
    assert "Secret 'registry'" in ready["message"] and "create it in this namespace" in ready["message"]
    assert cluster.helm_json(operator.helm, "list", "--namespace", target_ns) == []

    # A wrong password: helm's refusal, the password nowhere.
    cluster.apply(registry.secret(password=WRONG_PASSWORD), namespace=ns)
    failed = wait_phase(cluster, ns, "web-staging", "Failed", timeout=120)
    message = failed["status"]["message"]
    assert "401" in message or "unauthorized" in message.lower() or "authentic" in message.lower(), message
    text = json.dumps(failed) + json.dumps(events(cluster, ns))
    assert WRONG_PASSWORD not in text and registry.password not in text

    # The same (good) login, with the chart pointed at another host: never sent there.
    cluster.apply(registry.secret(), namespace=ns)
    elsewhere = oci_application(registry, target_ns)
    elsewhere["spec"]["chart"] = "oci://127.0.0.1:9/charts/webapp"
    cluster.apply(elsewhere, namespace=ns)
    wait_for(
        lambda: (
            "never sent to another registry"
            in ((cluster.get("deployments.alecton.dev", "web-staging", ns) or {}).get("status") or {}).get(
                "message", ""
            )
        ),
        60,
        "the refusal to send a registry's login to another host",
    )

    # A Secret with the CA only: the registry refuses an anonymous pull (no login of the
    # operator's own helm home is ever borrowed). Without any Secret, TLS fails first.
    anonymous = cluster.new_namespace("oci-anon")
    ca_only = registry.secret(name="ca-only")
    del ca_only["data"]["username"], ca_only["data"]["password"]
    ca_only["type"] = "Opaque"
    cluster.apply(
        ca_only,
        r.cluster(),
        r.image("web", "1.0.0", GOOD_1),
        oci_application(registry, f"{anonymous}-web", secret="ca-only"),
        r.deployment("web", "1.0.0"),
        namespace=anonymous,
    )
    refused = wait_phase(cluster, anonymous, "web-staging", "Failed", timeout=120)
    assert "basic credential not found" in refused["status"]["message"], refused["status"]["message"]
    untrusted = oci_application(registry, f"{anonymous}-web", secret=None)
    cluster.apply(untrusted, namespace=anonymous)
    wait_for(
        lambda: (
            "certificate signed by unknown authority"
            in (cluster.get("deployments.alecton.dev", "web-staging", anonymous) or {})["status"]["message"]
        ),
        120,
        "helm's TLS refusal of a registry whose CA nobody gave",
    )


def test_a_registry_secret_is_for_oci_charts_only(operator: OperatorProcess) -> None:
    cluster = operator.cluster
    ns = cluster.new_namespace("oci-cel")
    app = r.application(
        "web", f"{ns}-web", repository="https://charts.example.com", repositorySecretRef={"name": "x"}
    )
    refused = cluster.kubectl("apply", "-n", ns, "-f", "-", check=False, stdin=json.dumps(app))
    assert refused.returncode != 0
    assert "repositorySecretRef is for oci:// charts" in refused.stderr, refused.stderr


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_manifest(
    registry: Registry,
    repository: str,
    tag: str,
    config: tuple[str, bytes],
    layer: tuple[str, bytes],
    annotations: dict[str, str] | None = None,
) -> str:
    """A one-layer OCI manifest (config and layer as (media type, bytes)) pushed with the
    registry's HTTP API, as any OCI client does; its digest."""
    base = f"https://{registry.host}/v2/{repository}"
    trust = ssl.create_default_context(cafile=str(registry.ca_file))
    with httpx.Client(verify=trust, auth=(REGISTRY_USER, registry.password), timeout=30) as web:
        for _, blob in (layer, config):
            started = web.post(f"{base}/blobs/uploads/")
            assert started.status_code == 202, started.text
            location = httpx.URL(base).join(started.headers["Location"])
            # The upload's own query (its state) stays; the digest is added to it.
            done = web.put(location.copy_merge_params({"digest": _sha(blob)}), content=blob,
                           headers={"Content-Type": "application/octet-stream"})  # fmt: skip
            assert done.status_code == 201, done.text
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": config[0], "digest": _sha(config[1]), "size": len(config[1])},
            "layers": [{"mediaType": layer[0], "digest": _sha(layer[1]), "size": len(layer[1])}],
            **({"annotations": annotations} if annotations else {}),
        }).encode()  # fmt: skip
        put = web.put(f"{base}/manifests/{tag}", content=manifest,
                      headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})  # fmt: skip
        assert put.status_code == 201, put.text
    return _sha(manifest)


def push_image(registry: Registry, repository: str, tag: str, marker: str) -> str:
    """A one-layer OCI image; its manifest's digest. `marker` goes into the layer, so each
    call makes another manifest."""
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as archive:
        data = marker.encode()
        info = tarfile.TarInfo("marker")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    layer = gzip.compress(tar.getvalue(), mtime=0)
    rootfs = {"type": "layers", "diff_ids": [_sha(tar.getvalue())]}
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": rootfs}).encode()
    return push_manifest(
        registry,
        repository,
        tag,
        ("application/vnd.oci.image.config.v1+json", config),
        ("application/vnd.oci.image.layer.v1.tar+gzip", layer),
    )


def test_images_are_recorded_and_deployed_by_digest(operator: OperatorProcess, registry: Registry) -> None:
    cluster = operator.cluster
    ns = cluster.new_namespace("digest")
    target_ns = f"{ns}-web"
    ref = f"{registry.host}/team/web:1.0.0"
    digest = push_image(registry, "team/web", "1.0.0", "build one")
    login = ["--ca-file", str(registry.ca_file), "--username", REGISTRY_USER, "--password-stdin"]

    # No login: the registry's refusal, said plainly; nothing recorded.
    anonymous = alecton(cluster, ns, "image", "create", "web", "1.0.0", ref, "--resolve-digest",
                        "--ca-file", str(registry.ca_file))  # fmt: skip
    assert anonymous.returncode == 1 and "asks for a login" in anonymous.stderr, anonymous.stderr
    missing = alecton(cluster, ns, "image", "create", "web", "1.0.0", ref.replace("1.0.0", "9.9.9"),
                      "--resolve-digest", *login, stdin=registry.password)  # fmt: skip
    assert missing.returncode == 1 and "9.9.9 does not exist" in missing.stderr, missing.stderr
    assert cluster.kubectl("get", "images.alecton.dev", "-n", ns, "-o", "name").stdout == ""

    created = alecton(cluster, ns, "image", "create", "web", "1.0.0", ref, "--resolve-digest", *login,
                      "-o", "json", stdin=registry.password)  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["spec"]["digest"] == digest

    # The tag moves (a re-tag, or a push over it): the Image keeps the build it recorded.
    moved = push_image(registry, "team/web", "1.0.0", "build two")
    assert moved != digest
    again = alecton(cluster, ns, "image", "create", "web", "1.0.0", ref, "--resolve-digest", *login,
                    stdin=registry.password)  # fmt: skip
    assert again.returncode == 4 and f"the digest {digest}" in again.stderr, again.stderr

    app = r.application("web", target_ns, pinImageDigest=True)
    cluster.apply(r.cluster(), app, r.deployment("web", "1.0.0"), namespace=ns)
    deployed = wait_phase(cluster, ns, "web-staging", "Deployed", timeout=120)
    assert deployed["status"]["release"]["image"] == f"{ref}@{digest}"
    workload = json.loads(cluster.kubectl("get", "deployment", "web-staging", "-n", target_ns, "-o", "json",
                                          context="alecton-b").stdout)  # fmt: skip
    assert workload["spec"]["template"]["spec"]["containers"][0]["image"] == f"{ref}@{digest}"
    # The audit trail (`alecton history`) names the digest that ran.
    history = alecton(cluster, ns, "history", "web", "staging", "-o", "json")
    assert f"{ref}@{digest}" in {record.get("image") for record in json.loads(history.stdout)}, history.stdout

    # A build recorded without a digest is refused where digests are pinned, saying how to fix it.
    cluster.apply(r.image("web", "2.0.0", f"{registry.host}/team/web:2.0.0"), namespace=ns)
    cluster.patch_spec(ns, "web-staging", {"version": "2.0.0"})
    refused = wait_phase(cluster, ns, "web-staging", "Failed", timeout=60)
    ready = next(c for c in refused["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "ImageDigestMissing" and "--resolve-digest" in ready["message"], ready
    history = cluster.helm_json(operator.helm, "history", "web-staging", "--namespace", target_ns)
    assert [h["revision"] for h in history] == [1]


# A tenant's registry answers 401 asking for Basic: a client holding a login for it sends it.
ASKS_FOR_A_LOGIN = 'Basic realm="tenant"'


def trusting(secret: dict[str, Any], also: bytes) -> dict[str, Any]:
    """`secret` whose ca.crt trusts `also` too: the tenant's registry is then trusted as a
    registry with a public certificate is by a Secret without ca.crt (system CAs)."""
    bundle = base64.b64decode(secret["data"]["ca.crt"]) + also
    return {**secret, "data": {**secret["data"], "ca.crt": base64.b64encode(bundle).decode()}}


def _shown_anywhere(operator: OperatorProcess, ns: str, password: str, received: list[str]) -> bool:
    """`password` is in the namespace's Deployments or Events, the operator's log, or one of
    the Authorization headers a tenant's registry `received` (or any Basic login reached it)."""
    cluster = operator.cluster
    written = cluster.kubectl("get", "deployments.alecton.dev", "-n", ns, "-o", "json").stdout
    text = written + json.dumps(events(cluster, ns)) + operator.log_since_start()
    return password in text or any(password in header or "Basic" in header for header in received)


def _status_message(cluster: Cluster, ns: str, name: str) -> str:
    status = ((cluster.get("deployments.alecton.dev", name, ns) or {}).get("status")) or {}
    return str(status.get("message", ""))


def test_a_tenant_never_gets_another_teams_registry_login(
    operator: OperatorProcess, registry: Registry, tmp_path: Path
) -> None:
    """Tenant B (the shipped deployer role in its namespace) names team A's registry Secret,
    with A's namespace in any field that might carry it, and points the chart at A's registry
    and at a registry of B's own: A's Secret is never read, and A's password reaches neither
    B's status, Events, the operator's log nor B's registry."""
    cluster = operator.cluster
    team_a = cluster.new_namespace("oci-team-a")
    tenant_registry = TenantServer(tmp_path, ASKS_FOR_A_LOGIN)
    try:
        cluster.apply(trusting(registry.secret(), tenant_registry.ca.cert_pem), namespace=team_a)
        team_b = cluster.new_namespace("oci-team-b")
        deployer = as_tenant(cluster, team_b, "alecton-deployer")
        assert not deployer.can("get", "secrets", namespace=team_a)
        # One chart on A's registry, one on B's own; both name A's Secret, A's namespace too.
        theirs = f"oci://127.0.0.1:{tenant_registry.server.server_port}/charts/webapp"
        apps = [oci_application(registry, f"{team_b}-web"), oci_application(registry, f"{team_b}-web")]
        apps[1]["metadata"]["name"], apps[1]["spec"]["chart"] = "mine", theirs
        for app in apps:
            app["spec"]["repositorySecretRef"]["namespace"] = team_a  # not in the schema: pruned
        docs = [r.cluster(), r.image("web", "1.0.0", GOOD_1), *apps]
        docs += [r.deployment("web", "1.0.0"), r.deployment("mine", "1.0.0")]
        deployer("apply", "--validate=false", "-f", "-", stdin=yaml.safe_dump_all(docs))
        for name in ("web", "mine"):
            stored = cluster.get("Application", name, team_b)
            assert stored is not None and stored["spec"]["repositorySecretRef"] == {"name": "registry"}
            waiting = wait_phase(cluster, team_b, f"{name}-staging", "Pending", timeout=60)
            ready = next(c for c in waiting["status"]["conditions"] if c["type"] == "Ready")
            assert ready["reason"] == "RepositorySecretNotFound", (name, ready)
        assert cluster.helm_json(operator.helm, "list", "--namespace", f"{team_b}-web") == []
        assert not _shown_anywhere(operator, team_b, registry.password, tenant_registry.authorizations)
    finally:
        tenant_registry.close()


def test_a_deployer_cannot_send_its_teams_registry_login_to_a_registry_of_its_own(
    operator: OperatorProcess, registry: Registry, tmp_path: Path
) -> None:
    """A deployer of the team (the shipped role: Applications, not Secrets) names the team's
    registry Secret and points the chart at a registry of its own that the Secret's CA trusts:
    refused before helm runs, and that registry receives no login. The same registry named with
    a Secret that holds a CA only is asked by helm (so the refusal, not TLS, kept the login)."""
    cluster = operator.cluster
    team = cluster.new_namespace("oci-deployer")
    tenant_registry = TenantServer(tmp_path, ASKS_FOR_A_LOGIN)
    try:
        team_login = trusting(registry.secret(), tenant_registry.ca.cert_pem)
        ca_only = trusting(registry.secret(name="ca-only"), tenant_registry.ca.cert_pem)
        del ca_only["data"]["username"], ca_only["data"]["password"], ca_only["data"]["registry"]
        ca_only["type"] = "Opaque"
        cluster.apply(team_login, ca_only, namespace=team)  # the team's admin
        deployer = as_tenant(cluster, team, "alecton-deployer")
        assert not deployer.can("get", "secrets")
        theirs = f"oci://127.0.0.1:{tenant_registry.server.server_port}/charts/webapp"
        login = r.application("web", f"{team}-web", chart=theirs, repositorySecretRef={"name": "registry"})
        probe = r.application("probe", f"{team}-probe", chart=theirs, repositorySecretRef={"name": "ca-only"})
        deployer.apply(
            r.cluster(),
            r.image("web", "1.0.0", GOOD_1),
            login,
            probe,
            r.deployment("web", "1.0.0"),
            r.deployment("probe", "1.0.0"),
        )
        refused = "never sent to another registry"
        wait_for(
            lambda: (
                refused in _status_message(cluster, team, "web-staging")
                or any("Basic" in header for header in tenant_registry.authorizations)
            ),
            60,
            "the refusal to send the team's login to the deployer's registry (or the login sent)",
        )
        wait_for(lambda: tenant_registry.authorizations, 120, "helm to ask the deployer's registry (CA only)")
        assert not _shown_anywhere(operator, team, registry.password, tenant_registry.authorizations)
        assert refused in _status_message(cluster, team, "web-staging")
    finally:
        tenant_registry.close()
