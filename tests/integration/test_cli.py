"""The `alecton` CLI against the real control plane with the operator running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.integration import resources as r
from tests.integration.harness import Cluster, OperatorProcess


def alecton(
    cluster: Cluster,
    namespace: str,
    *args: str,
    timeout: float = 180,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alecton", *args, "--context", "alecton-a", "-n", namespace],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, "KUBECONFIG": cluster.kubeconfig, **(env or {})},
        timeout=timeout,
    )


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr}"
    return proc.stdout


def release_image(cluster: Cluster, helm: str, namespace: str) -> tuple[int, str]:
    history = cluster.helm_json(helm, "history", "web-staging", "--namespace", namespace)
    values = cluster.helm_json(helm, "get", "values", "web-staging", "--namespace", namespace)
    return max(h["revision"] for h in history), values["image"]


def setup(cluster: Cluster, prefix: str, tmp_path: Path) -> tuple[str, str]:
    ns = cluster.new_namespace(prefix)
    target_ns = f"{ns}-web"
    cluster.apply(r.cluster(), namespace=ns)
    app_file = tmp_path / "app.yaml"
    app_file.write_text(yaml.safe_dump(r.application("web", target_ns)))
    ok(alecton(cluster, ns, "app", "create", "-f", str(app_file)))
    return ns, target_ns


@pytest.mark.e2e
def test_ci_flow(operator: OperatorProcess, tmp_path: Path) -> None:
    cluster, helm = operator.cluster, operator.helm
    ns, target_ns = setup(cluster, "cli", tmp_path)

    ok(alecton(cluster, ns, "image", "create", "web", "1.0.0", "registry.example.com/web:1.0.0"))
    out = ok(alecton(cluster, ns, "deploy", "web", "staging", "1.0.0", "--wait", "--timeout", "60"))
    assert "revision 1" in out
    assert release_image(cluster, helm, target_ns) == (1, "registry.example.com/web:1.0.0")

    ok(alecton(cluster, ns, "image", "create", "web", "1.1.0", "registry.example.com/web:1.1.0"))
    out = ok(
        alecton(cluster, ns, "deploy", "web", "staging", "1.1.0", "--wait", "--timeout", "60", "-o", "json")
    )
    deployed = json.loads(out)
    assert deployed["status"]["phase"] == "Deployed" and deployed["status"]["release"]["revision"] == 2
    assert release_image(cluster, helm, target_ns) == (2, "registry.example.com/web:1.1.0")

    history = json.loads(ok(alecton(cluster, ns, "releases", "web", "staging", "-o", "json")))
    assert [(h["revision"], h["version"]) for h in history] == [(2, "1.1.0"), (1, "1.0.0")]

    out = ok(alecton(cluster, ns, "rollback", "web", "staging", "1", "--wait", "--timeout", "60"))
    assert "rolled back" in out
    assert release_image(cluster, helm, target_ns) == (3, "registry.example.com/web:1.0.0")
    history = json.loads(ok(alecton(cluster, ns, "releases", "web", "staging", "-o", "json")))
    assert [h["revision"] for h in history] == [3, 2, 1]
    table = ok(alecton(cluster, ns, "releases", "web", "staging"))
    assert "Rollback to 1" in table and "REVISION" in table

    rows = json.loads(ok(alecton(cluster, ns, "status", "-o", "json")))
    assert [
        (row["application"], row["target"], row["phase"], row["revision"], row["version"]) for row in rows
    ] == [("web", "staging", "RolledBack", 3, "1.1.0")]
    # A second rollback to the same revision is a new request and runs again.
    ok(alecton(cluster, ns, "rollback", "web", "staging", "1", "--wait", "--timeout", "60"))
    assert release_image(cluster, helm, target_ns)[0] == 4
    # The rollback holds; deploying (even the version it was rolled back from) ends it.
    ok(alecton(cluster, ns, "deploy", "web", "staging", "1.1.0", "--wait", "--timeout", "60"))
    assert release_image(cluster, helm, target_ns) == (5, "registry.example.com/web:1.1.0")


@pytest.mark.e2e
def test_images_are_immutable_and_idempotent(operator: OperatorProcess) -> None:
    cluster = operator.cluster
    ns = cluster.new_namespace("immutable")
    ok(alecton(cluster, ns, "image", "create", "web", "1.0.0", "r/web:1"))
    again = alecton(cluster, ns, "image", "create", "web", "1.0.0", "r/web:1")
    assert again.returncode == 0 and "unchanged" in again.stdout  # a CI retry
    changed = alecton(cluster, ns, "image", "create", "web", "1.0.0", "r/web:other")
    assert changed.returncode == 4
    assert "images are immutable" in changed.stderr and "Traceback" not in changed.stderr
    assert len(changed.stderr.strip().splitlines()) == 1
    # The API server itself refuses a changed spec too (CEL), whatever the client.
    proc = cluster.kubectl(
        "patch",
        "images.alecton.dev",
        "web-1.0.0",
        "-n",
        ns,
        "--type=merge",
        "-p",
        '{"spec":{"image":"x"}}',
        check=False,
    )
    assert proc.returncode != 0 and "images are immutable" in proc.stderr

    # Where the code came from (issue 25): recorded, checked by the CRD, immutable too.
    sha = "4f2c1e9a0b7d3c5e8f1a2b3c4d5e6f7a8b9c0d1e"
    source = ["--source-repository", "github.com/org/web", "--source-revision", sha,
              "--source-url", f"https://github.com/org/web/commit/{sha}", "--source-committed-at",
              "2026-12-01T09:30:00Z"]  # fmt: skip
    ok(alecton(cluster, ns, "image", "create", "web", "1.1.0", "r/web:1.1", *source))
    recorded = cluster.get("images.alecton.dev", "web-1.1.0", ns)["spec"]["source"]
    assert recorded == {
        "repository": "github.com/org/web", "revision": sha, "url": f"https://github.com/org/web/commit/{sha}",
        "committedAt": "2026-12-01T09:30:00Z",
    }  # fmt: skip
    assert sha[:12] in ok(alecton(cluster, ns, "image", "list", "--version", "1.1.0"))
    bad = alecton(cluster, ns, "image", "create", "web", "1.2.0", "r/web:1.2", "--source-revision", "main;rm")
    assert bad.returncode != 0 and "spec.source.revision" in bad.stderr, bad.stderr
    link = alecton(
        cluster, ns, "image", "create", "web", "1.2.0", "r/web:1.2", "--source-url", "javascript:x"
    )
    assert link.returncode != 0 and "spec.source.url" in link.stderr, link.stderr
    proc = cluster.kubectl("patch", "images.alecton.dev", "web-1.1.0", "-n", ns, "--type=merge",
                           "-p", '{"spec":{"source":{"revision":"0000000"}}}', check=False)  # fmt: skip
    assert proc.returncode != 0 and "images are immutable" in proc.stderr


def test_wait_on_a_failing_deploy_exits_non_zero_in_time(operator: OperatorProcess, tmp_path: Path) -> None:
    cluster = operator.cluster
    ns = cluster.new_namespace("clifail")
    cluster.apply(
        r.cluster(), r.application("web", f"{ns}-web", chart="oci://127.0.0.1:1/charts/missing"), namespace=ns
    )
    ok(alecton(cluster, ns, "image", "create", "web", "1.0.0", "r/web:1"))
    started = time.monotonic()
    proc = alecton(cluster, ns, "deploy", "web", "staging", "1.0.0", "--wait", "--timeout", "60")
    assert proc.returncode == 1, proc.stderr
    assert time.monotonic() - started < 30
    assert "127.0.0.1:1" in proc.stdout + proc.stderr  # helm's message is shown
    # A registry that refuses connections may come back: retried on a timer, not Stalled.
    status = cluster.get("deployments.alecton.dev", "web-staging", ns)["status"]
    assert "retrying in" in status["message"] and status["retryAfter"]
    assert {c["type"]: c["status"] for c in status["conditions"]}["Stalled"] == "False"
    # A deploy that cannot finish in time (no such image version) exits 5.
    proc = alecton(cluster, ns, "deploy", "web", "staging", "7.7.7", "--wait", "--timeout", "3")
    assert (
        proc.returncode == 5
        and "timed out" in proc.stderr
        and "ImageNotFound" not in proc.stderr.split("Pending")[0]
    )


def test_list_filters_return_exactly_the_matching_objects(operator: OperatorProcess) -> None:
    cluster = operator.cluster
    ns = cluster.new_namespace("filters")
    for name, version in [("web", "1"), ("web", "2"), ("api", "1")]:
        ok(alecton(cluster, ns, "image", "create", name, version, f"r/{name}:{version}"))
    cluster.apply(
        r.application("web", "x"),
        r.application("api", "x", image_name="api", chart="oci://example.com/api"),
        namespace=ns,
    )

    def names(*args: str) -> list[tuple[str, str]]:
        items = json.loads(ok(alecton(cluster, ns, *args, "-o", "json")))
        return sorted(
            (i["spec"].get("name") or i["metadata"]["name"], i["spec"].get("version", "")) for i in items
        )

    assert names("image", "list", "--name", "web") == [("web", "1"), ("web", "2")]
    assert names("image", "list", "--version", "1") == [("api", "1"), ("web", "1")]
    assert names("image", "list", "--name", "web", "--version", "2") == [("web", "2")]
    assert names("image", "list", "--name", "nope") == []
    assert names("app", "list", "--chart", "webapp") == [("web", "")]
    assert names("app", "list", "--image", "api") == [("api", "")]
    assert names("app", "list", "--name", "api") == [("api", "")]
    assert len(names("app", "list")) == 2


@pytest.mark.e2e
def test_app_update_is_a_full_replace(operator: OperatorProcess, tmp_path: Path) -> None:
    cluster = operator.cluster
    ns, target_ns = setup(cluster, "replace", tmp_path)
    replacement = r.application("web", target_ns)
    replacement["spec"]["values"] = {}
    replacement["spec"]["chartVersion"] = "1.0.0"
    path = tmp_path / "app2.yaml"
    path.write_text(yaml.safe_dump(replacement))
    ok(alecton(cluster, ns, "app", "update", "-f", str(path)))
    app = cluster.get("applications.alecton.dev", "web", ns)
    assert app["spec"]["chartVersion"] == "1.0.0" and app["spec"]["values"] == {}
    missing = tmp_path / "missing.yaml"
    missing.write_text(yaml.safe_dump({**replacement, "metadata": {"name": "nope"}}))
    proc = alecton(cluster, ns, "app", "update", "-f", str(missing))
    assert proc.returncode == 3 and "does not exist" in proc.stderr


@pytest.mark.e2e
def test_deploying_an_unknown_application_or_target_fails_and_writes_nothing(
    crds: Cluster, tmp_path: Path
) -> None:
    """Issue 16: `alecton deploy nope qa 1.0.0` exited 0 and left a Pending Deployment."""
    ns, _ = setup(crds, "cli-unknown", tmp_path)
    proc = alecton(crds, ns, "deploy", "nope", "qa", "1.0.0")
    assert proc.returncode == 3, proc
    assert proc.stderr.strip() == f"error: Application 'nope' does not exist in namespace '{ns}'"
    proc = alecton(crds, ns, "deploy", "web", "qa", "1.0.0")
    assert proc.returncode == 3, proc
    assert "Application 'web' has no target 'qa' (targets: staging)" in proc.stderr
    listed = crds.kubectl("get", "deployments.alecton.dev", "-n", ns, "-o", "json").stdout
    assert json.loads(listed)["items"] == []
    # GitOps-style ordering: the Deployment may be created ahead of its Application on request.
    ok(alecton(crds, ns, "deploy", "nope", "qa", "1.0.0", "--allow-missing-application"))
    crds.kubectl("get", "deployments.alecton.dev", "nope-qa", "-n", ns)
