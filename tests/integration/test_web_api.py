"""The HTTP API (issue 14) on the real control plane, as two users with different RBAC.

`alecton web` runs in proxy mode, as in a cluster: it has the API server's address and CA
and no credentials of its own; every request carries a ServiceAccount token of its caller.
alice may deploy in team-a only; bob may only read there. Every seed path is called as
both; what bob may not do is a 403 that changes nothing.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from alecton.local.controlplane import free_port

from tests.integration import resources as r
from tests.integration.harness import Cluster, OperatorProcess, WebProcess, wait_for

GOOD = "ghcr.io/stefanprodan/podinfo:6.7.0"
ALECTON = {"apiGroups": ["alecton.dev"], "resources": ["*"]}
READ = ["get", "list", "watch"]
WRITE = [*READ, "create", "update", "patch"]


def role(name: str, verbs: list[str]) -> dict[str, Any]:
    rbac = "rbac.authorization.k8s.io/v1"
    return {
        "apiVersion": rbac,
        "kind": "Role",
        "metadata": {"name": name},
        "rules": [{**ALECTON, "verbs": verbs}],
    }


def user(cluster: Cluster, users_ns: str, name: str, grants: dict[str, list[str]]) -> str:
    """A ServiceAccount with `verbs` on alecton.dev in each namespace; its token."""
    cluster.kubectl("create", "serviceaccount", name, "-n", users_ns)
    for namespace, verbs in grants.items():
        cluster.apply(role(f"{name}-alecton", verbs), namespace=namespace)
        cluster.kubectl(
            "create", "rolebinding", f"{name}-alecton", f"--role={name}-alecton",
            f"--serviceaccount={users_ns}:{name}", "-n", namespace,
        )  # fmt: skip
    return cluster.kubectl("create", "token", name, "-n", users_ns, "--duration=1h").stdout.strip()


def api_server(cluster: Cluster, ca_file: Path) -> str:
    config = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    (entry,) = [c for c in config["clusters"] if c["name"] == "alecton-a"]
    ca_file.write_bytes(base64.b64decode(entry["cluster"]["certificate-authority-data"]))
    return str(entry["cluster"]["server"])


def proxy_web(cluster: Cluster, tmp: Path, env: dict[str, str] | None = None) -> WebProcess:
    """`alecton web` in front of cluster a's API server: each caller with their own token."""
    server = api_server(cluster, tmp / "ca.crt")
    return WebProcess(
        ["web", "--server", server, "--certificate-authority", str(tmp / "ca.crt"), "--listen", "127.0.0.1"],
        free_port(),
        tmp,
        env,
    )


@pytest.fixture(scope="module")
def web(operator: OperatorProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebProcess]:
    process = proxy_web(operator.cluster, tmp_path_factory.mktemp("web"))
    try:
        yield process
    finally:
        process.stop()


class Caller:
    def __init__(self, web: WebProcess, token: str, namespace: str) -> None:
        self.http = httpx.Client(
            base_url=web.url, headers={"Authorization": f"Bearer {token}"}, params={"namespace": namespace},
            timeout=150,
        )  # fmt: skip

    def __getattr__(self, method: str) -> Any:
        return getattr(self.http, method)


def expect(answer: httpx.Response, code: int, reason: str = "") -> Any:
    assert answer.status_code == code, f"{answer.request.method} {answer.request.url}: {answer.text}"
    body = answer.json()
    if reason:
        assert body["reason"] == reason and body["code"] == code and body["error"], body
    return body


@pytest.mark.parametrize("operator", ["helm"], indirect=True)
def test_every_seed_path_as_a_deployer_and_a_reader(operator: OperatorProcess, web: WebProcess) -> None:
    cluster = operator.cluster
    team_a, team_b, users = (cluster.new_namespace(p) for p in ("team-a", "team-b", "users"))
    alice_token = user(cluster, users, "alice", {team_a: WRITE})
    bob_token = user(cluster, users, "bob", {team_a: READ, team_b: WRITE})
    alice, bob = Caller(web, alice_token, team_a), Caller(web, bob_token, team_a)
    alice_in_b = Caller(web, alice_token, team_b)
    cluster.apply(r.cluster(), namespace=team_a)
    staging = f"{team_a}-staging"

    # No token, no access; a token the API server does not know is its 401.
    expect(httpx.get(f"{web.url}/v1/images", params={"namespace": team_a}), 401, "Unauthorized")
    expect(Caller(web, "not-a-token", team_a).get("/v1/images"), 401, "Unauthorized")

    # Who they are and what they may do, as the API server says.
    me = expect(alice.get("/v1/whoami"), 200)
    assert me["user"] == f"system:serviceaccount:{users}:alice" and me["mode"] == "proxy"
    assert me["can"] == {"deploy": True, "approve": True, "createImages": True, "editApplications": True}
    assert expect(bob.get("/v1/whoami"), 200)["can"]["deploy"] is False

    # CreateImage / ListImages.
    image = {"name": "web", "version": "1.0.0", "image": GOOD}
    assert expect(alice.post("/v1/images", json=image), 201) == image
    assert expect(alice.post("/v1/images", json=image), 200) == image  # a CI retry: same answer
    conflict = expect(alice.post("/v1/images", json={**image, "image": GOOD + "-other"}), 409, "Conflict")
    assert "immutable" in conflict["error"]
    expect(bob.post("/v1/images", json={**image, "version": "9.9.9"}), 403, "Forbidden")
    expect(alice_in_b.post("/v1/images", json=image), 403, "Forbidden")
    expect(alice.post("/v1/images", json={"name": "web"}), 422, "Invalid")
    # An Image may say where its code came from (issue 25); the CRD checks the fields.
    commit = "4f2c1e9a0b7d"
    source = {"repository": "github.com/org/web", "revision": commit, "committedAt": "2026-12-01T09:30:00Z",
              "url": f"https://github.com/org/web/commit/{commit}"}  # fmt: skip
    bad = {**image, "version": "1.1.0", "source": {"revision": "main"}}
    expect(alice.post("/v1/images", json=bad), 422, "Invalid")
    expect(alice.post("/v1/images", json={**image, "version": "1.1.0", "image": GOOD, "source": source}), 201)
    assert expect(bob.get("/v1/images", params={"name": "web", "version": "1.1.0"}), 200) == {
        "images": [{**image, "version": "1.1.0", "source": source}]
    }
    assert len(expect(bob.get("/v1/images"), 200)["images"]) == 2  # bob's attempt left nothing

    # CreateApplication / UpdateApplication (full replace) / ListApplications.
    application = {
        "name": "web",
        "chart": "webapp",
        "image": "web",
        "values": {"config": {"message": "hello"}},
        "targets": [
            {"name": "staging", "cluster": "target-b", "namespace": staging, "values": {"replicaCount": 1}}
        ],
    }
    expect(bob.post("/v1/applications", json=application), 403, "Forbidden")
    assert expect(alice.post("/v1/applications", json=application), 201)["chart"] == "webapp"
    expect(alice.post("/v1/applications", json=application), 409, "AlreadyExists")
    replaced = {key: value for key, value in application.items() if key != "values"}  # no merge: values go
    expect(bob.put("/v1/applications", json=replaced), 403, "Forbidden")
    assert "values" in cluster.get("applications.alecton.dev", "web", team_a)["spec"]  # bob changed nothing
    assert "values" not in expect(alice.put("/v1/applications", json=replaced), 200)
    assert "values" not in cluster.get("applications.alecton.dev", "web", team_a)["spec"]
    expect(alice.put("/v1/applications", json={**replaced, "name": "nope"}), 404, "NotFound")
    invalid = expect(alice.put("/v1/applications", json={**replaced, "chart": ""}), 422, "Invalid")
    assert "chart" in invalid["error"]  # the API server's own words
    listed = expect(bob.get("/v1/applications", params={"image": "web"}), 200)["applications"]
    assert [a["name"] for a in listed] == ["web"] and listed[0]["targets"][0]["namespace"] == staging
    assert expect(bob.get("/v1/applications", params={"chart": "other"}), 200) == {"applications": []}

    # DeployApplication: bob may not; an unknown application or target writes nothing.
    deploy = {"application": "web", "target": "staging", "version": "1.0.0"}
    expect(bob.post("/v1/applications/deploy", json=deploy), 403, "Forbidden")
    assert cluster.get("deployments.alecton.dev", "web-staging", team_a) is None
    missing = expect(alice.post("/v1/applications/deploy", json={**deploy, "application": "nope"}), 404)
    assert missing["error"] == f"Application 'nope' does not exist in namespace '{team_a}'"
    expect(alice.post("/v1/applications/deploy", json={**deploy, "target": "prod"}), 404, "NotFound")
    assert cluster.get("deployments.alecton.dev", "nope-staging", team_a) is None
    first = expect(alice.post("/v1/applications/deploy", params={"wait": 120}, json=deploy), 200)
    assert first["outcome"]["ok"] and first["deployment"]["phase"] == "Deployed"
    assert first["release"]["revision"] == 1 and first["release"]["image"] == GOOD
    accepted = expect(alice.post("/v1/applications/deploy", json={**deploy, "version": "1.1.0"}), 202)
    assert accepted["outcome"]["done"] is False  # written; the operator acts on it
    wait_for(
        lambda: expect(bob.get("/v1/releases/web/staging"), 200)["releases"][0]["revision"] == 2,
        120,
        "revision 2",
    )

    # RollbackApplication (the seed's `version` is the revision) and ListReleases.
    rollback = {"application": "web", "target": "staging", "version": 1}
    expect(bob.post("/v1/applications/rollback", json=rollback), 403, "Forbidden")
    assert "rollback" not in cluster.get("deployments.alecton.dev", "web-staging", team_a)["spec"]
    rolled = expect(alice.post("/v1/applications/rollback", params={"wait": 120}, json=rollback), 200)
    assert rolled["outcome"]["ok"] and rolled["release"]["revision"] == 3
    releases = expect(bob.get("/v1/releases/web/staging"), 200)["releases"]
    assert [(x["revision"], x["version"], x["cause"]) for x in releases] == [
        (3, "1.0.0", "rollback"),
        (2, "1.1.0", "deploy"),
        (1, "1.0.0", "deploy"),
    ]
    assert releases[0]["status"] == "deployed" and releases[0]["image"] == GOOD
    assert releases[1]["source"] == source and "source" not in releases[0]  # 1.1.0 says its commit
    expect(bob.get("/v1/releases/web/prod"), 404, "NotFound")
    expect(Caller(web, bob_token, team_b).get("/v1/releases/web/staging"), 404)  # not bob's team-a view

    # The dashboard's views, as the reader.
    overview = expect(bob.get("/v1/overview"), 200)
    (row,) = overview["rows"]
    assert (row["application"], row["target"], row["running"], row["image"]) == (
        "web",
        "staging",
        "1.0.0",
        GOOD,
    )
    assert overview["images"] == [
        {"image": "web", "clusters": {"target-b": [{"version": "1.0.0", "targets": ["staging"]}]}}
    ]
    details = expect(bob.get("/v1/deployments/web/staging"), 200)
    assert details["deployment"]["phase"] == "RolledBack" and len(details["releases"]) == 3

    # Errors keep the Kubernetes reason; limits hold.
    huge = b"x" * (1024 * 1024 + 1)
    too_large = alice.post("/v1/images", content=huge, headers={"content-type": "application/json"})
    expect(too_large, 413, "RequestEntityTooLarge")
    expect(alice.post("/v1/applications/rollback", json={**rollback, "version": 0}), 422, "Invalid")
    spec = httpx.get(f"{web.url}/openapi.json").json()
    seed_paths = {"/v1/images", "/v1/applications", "/v1/applications/deploy", "/v1/applications/rollback",
                  "/v1/releases/{application}/{target}"}  # fmt: skip
    assert seed_paths <= set(spec["paths"])


@pytest.mark.parametrize("operator", ["helm"], indirect=True)
def test_live_updates_reach_a_reader_through_its_own_watch(
    operator: OperatorProcess, web: WebProcess
) -> None:
    cluster = operator.cluster
    team, users = cluster.new_namespace("team-live"), cluster.new_namespace("users")
    reader = Caller(web, user(cluster, users, "reader", {team: READ}), team)
    stranger = Caller(web, user(cluster, users, "stranger", {}), team)
    events: list[tuple[str, dict[str, Any]]] = []
    ready, image_changed = threading.Event(), threading.Event()

    def listen(caller: Caller) -> None:
        with caller.stream("GET", "/v1/events", timeout=httpx.Timeout(60, read=60)) as stream:
            kind = ""
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    events.append((kind, json.loads(line.removeprefix("data: "))))
                    ready.set() if kind == "ready" else None
                    if kind == "change" and events[-1][1]["kind"] == "Image":
                        image_changed.set()
                        return

    listener = threading.Thread(target=listen, args=(reader,), daemon=True)
    listener.start()
    assert ready.wait(30), events
    assert events[0] == ("ready", {"namespace": team, "errors": []})
    cluster.apply(r.image("web", "2.0.0", GOOD), namespace=team)
    assert image_changed.wait(30), events
    listener.join(5)

    # Someone without rights gets the API server's refusal in `ready`, and no data.
    with stranger.stream("GET", "/v1/events", timeout=30) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                refused = json.loads(line.removeprefix("data: "))
                break
    assert refused["errors"] and all("403" in e for e in refused["errors"]), refused


@pytest.mark.parametrize("operator", ["helm"], indirect=True)
def test_the_servers_diff_of_a_plain_http_repository_takes_the_operators_switch(
    operator: OperatorProcess, web: WebProcess, http_chart_repository: str, tmp_path: Path
) -> None:
    """Issue 27: `alecton web` fetches the chart of a diff itself, so it takes the operator's
    switch for http:// repositories (here its environment variable); without it, the refusal
    says which switch applies where."""
    cluster = operator.cluster
    team, users = cluster.new_namespace("team-http"), cluster.new_namespace("users")
    target_ns = f"{team}-web"
    cluster.kubectl("create", "namespace", target_ns)
    token = user(cluster, users, "differ", {team: READ})
    # A diff renders and reads the release with the caller's own rights where it would go.
    cluster.kubectl(
        "create", "rolebinding", "differ-admin", "--clusterrole=admin",
        f"--serviceaccount={users}:differ", "-n", target_ns,
    )  # fmt: skip
    app = r.application("web", target_ns, repository=http_chart_repository, chartVersion="1.0.0")
    # No context: the cluster the server fronts, reached as the caller.
    cluster.apply(r.cluster(context=""), app, r.image("web", "1.0.0", GOOD), namespace=team)
    diff = ("/v1/diff/web/staging", {"version": "1.0.0"})

    refused = expect(Caller(web, token, team).get(diff[0], params=diff[1]), 400, "BadRequest")
    assert "which `alecton web` refuses" in refused["error"], refused
    assert "--allow-insecure-repositories (ALECTON_ALLOW_INSECURE_REPOSITORIES)" in refused["error"]
    assert "on the operator" in refused["error"]

    allowed_web = proxy_web(cluster, tmp_path, env={"ALECTON_ALLOW_INSECURE_REPOSITORIES": "true"})
    try:
        shown = expect(Caller(allowed_web, token, team).get(diff[0], params=diff[1]), 200)
    finally:
        allowed_web.stop()
    assert shown["changed"] is True and shown["version"] == "1.0.0", shown
    assert "Deployment" in {o["kind"] for o in shown["objects"]}
