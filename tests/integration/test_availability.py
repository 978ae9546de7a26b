"""High availability and sharding (issue 15) on the real control plane.

- Two replicas with `--leader-elect`: one reconciles, the other stands by and takes over
  when the leader is killed with SIGKILL in the middle of a wave of upgrades; a guard
  around helm proves that no release ever had two helm processes at once.
- Two shards side by side: each reconciles only the Deployments labelled with its name;
  the unlabelled ones belong to the operator without `--shard`.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration import resources as r
from tests.integration.harness import (
    REPO,
    Cluster,
    OperatorProcess,
    namespaces_finalized,
    wait_for,
    wait_phase,
)

# Runs instead of helm: holds an exclusive lock per release while a mutating helm command
# runs, and records any second one that finds the lock taken. It forwards SIGTERM (the
# operator's death) to helm and releases the lock only when helm has exited.
GUARD = """#!{python}
import fcntl, os, signal, subprocess, sys, time
HELM, LOCKS = {helm!r}, {locks!r}
args = sys.argv[1:]
mutating = args and args[0] in ("upgrade", "rollback", "uninstall") and "--dry-run=server" not in args
release = args[args.index("--") + 1] if "--" in args else ""
lock = None
if mutating and release:
    lock = open(os.path.join(LOCKS, release + ".lock"), "a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        with open(os.path.join(LOCKS, "overlaps"), "a") as out:
            out.write(f"{{time.time():.3f}} {{release}} {{args[0]}}\\n")
        fcntl.flock(lock, fcntl.LOCK_EX)
    with open(os.path.join(LOCKS, "started"), "a") as out:
        out.write(f"{{time.time():.3f}} {{release}} {{args[0]}} {{os.getppid()}}\\n")
child = subprocess.Popen([HELM, *args])
signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
sys.exit(child.wait())
"""


@pytest.fixture
def operators(crds: Cluster, tmp_path: Path) -> Iterator:
    started: list[OperatorProcess] = []

    def start(namespace: str, *extra: str, helm: str = "helm") -> OperatorProcess:
        process = OperatorProcess(crds, helm, tmp_path, extra_args=("--namespace", namespace, *extra))
        process.start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture(scope="module", autouse=True)
def namespaces_cleaned(crds: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with namespaces_finalized(crds, tmp_path_factory.mktemp("cleanup")):
        yield


def lease_holder(cluster: Cluster, ns: str, name: str = "alecton-operator") -> str:
    found = cluster.kubectl("get", "lease", name, "-n", ns, "-o", "json", check=False)
    if found.returncode != 0:
        return ""
    return str(json.loads(found.stdout)["spec"].get("holderIdentity") or "")


def test_a_standby_takes_over_when_the_leader_is_killed(crds: Cluster, operators, tmp_path: Path) -> None:
    cluster = crds
    locks = tmp_path / "locks"
    locks.mkdir()
    guard = tmp_path / "helm-guard"
    guard.write_text(GUARD.format(python=sys.executable, helm=str(cluster.bin / "helm"), locks=str(locks)))
    guard.chmod(0o755)
    ns = cluster.new_namespace("ha")
    apps = [f"web{i}" for i in range(8)]
    cluster.apply(r.cluster(), *(r.image("web", v, f"r/web:{v}") for v in ("1", "2")), namespace=ns)
    cluster.apply(*(r.application(a, f"{ns}-{a}") for a in apps), namespace=ns)
    ha = ("--leader-elect", "--leader-election-namespace", ns, "--helm-timeout", "30", "--lock-grace", "5")
    first = operators(ns, *ha, helm=str(guard))
    wait_for(lambda: lease_holder(cluster, ns), 30, "a leader")
    second = operators(ns, *ha, helm=str(guard))
    wait_for(lambda: "standby: lease alecton-operator held by" in second.log_since_start(), 30, "a standby")
    cluster.apply(*(r.deployment(a, "1") for a in apps), namespace=ns)
    for app in apps:
        wait_phase(cluster, ns, f"{app}-staging", "Deployed", timeout=120)
    assert "leading:" not in second.log_since_start()  # only the leader reconciled

    # A wave of upgrades; the leader dies (SIGKILL, its process only) while helm runs.
    leader = lease_holder(cluster, ns)
    started = (locks / "started").read_text().count("\n")
    for app in apps:
        cluster.patch_spec(ns, f"{app}-staging", {"version": "2"})
    wait_for(lambda: (locks / "started").read_text().count("\n") > started, 60, "an upgrade to start")
    assert first.proc is not None
    os.kill(first.proc.pid, signal.SIGKILL)
    killed = time.monotonic()
    first.proc.wait(timeout=10)
    first.proc = None
    wait_for(lambda: lease_holder(cluster, ns) not in ("", leader), 30, "the standby to take the lease")
    takeover = time.monotonic() - killed
    assert takeover <= 15, f"took {takeover:.1f} s"
    wait_for(lambda: "leading:" in second.log_since_start(), 10, "the standby to lead")
    for app in apps:
        wait_phase(cluster, ns, f"{app}-staging", "Deployed", timeout=180)
        assert cluster.get("deployments.alecton.dev", f"{app}-staging", ns)["status"]["appliedVersion"] == "2"
    overlaps = locks / "overlaps"
    assert not overlaps.exists(), overlaps.read_text()
    print(f"takeover after SIGKILL of the leader: {takeover:.1f} s")


def test_a_clean_stop_hands_the_lease_over_at_once(crds: Cluster, operators) -> None:
    cluster = crds
    ns = cluster.new_namespace("ha-stop")
    ha = ("--leader-elect", "--leader-election-namespace", ns)
    first = operators(ns, *ha)
    wait_for(lambda: lease_holder(cluster, ns), 30, "a leader")
    second = operators(ns, *ha)
    wait_for(lambda: "standby:" in second.log_since_start(), 30, "a standby")
    stopped = time.monotonic()
    first.stop()
    wait_for(lambda: "leading:" in second.log_since_start(), 10, "the standby to lead")
    assert time.monotonic() - stopped < 10  # released, not expired


def test_shards_reconcile_only_their_own_deployments(crds: Cluster, operators) -> None:
    cluster = crds
    ns = cluster.new_namespace("shards")
    cluster.apply(r.cluster(), r.image("web", "1", "r/web:1"), namespace=ns)
    cluster.apply(*(r.application(a, f"{ns}-{a}") for a in ("alpha", "beta", "plain")), namespace=ns)
    shard_a = operators(ns, "--shard", "a")
    shard_b = operators(ns, "--shard", "b")
    alpha, beta = r.deployment("alpha", "1"), r.deployment("beta", "1")
    alpha["metadata"]["labels"] = {"alecton.dev/shard": "a"}
    beta["metadata"]["labels"] = {"alecton.dev/shard": "b"}
    cluster.apply(alpha, beta, namespace=ns)
    wait_phase(cluster, ns, "alpha-staging", "Deployed", timeout=120)
    wait_phase(cluster, ns, "beta-staging", "Deployed", timeout=120)
    # Unlabelled: the operator without --shard takes it.
    cluster.apply(r.deployment("plain", "1"), namespace=ns)
    unsharded = operators(ns)
    wait_phase(cluster, ns, "plain-staging", "Deployed", timeout=120)
    logs = {"a": shard_a.log_since_start(), "b": shard_b.log_since_start(), "": unsharded.log_since_start()}
    assert (
        "as alpha-staging" in logs["a"] and "as beta-staging" in logs["b"] and "as plain-staging" in logs[""]
    )
    for shard, log in logs.items():
        others = {"a": "alpha-staging", "b": "beta-staging", "": "plain-staging"}
        assert [name for key, name in others.items() if key != shard and name in log] == [], (
            shard,
            log[-3000:],
        )
    # Each shard uninstalls its own on deletion (the module's cleanup operator has no shard).
    cluster.kubectl("delete", "deployments.alecton.dev", "--all", "-n", ns, "--timeout=120s")
    assert cluster.helm_json("helm", "list", "--namespace", f"{ns}-alpha") == []
    assert cluster.helm_json("helm", "list", "--namespace", f"{ns}-beta") == []


def test_a_tenant_cannot_move_a_deployment_to_another_shard(crds: Cluster) -> None:
    """Issue 23: a tenant changing `alecton.dev/shard` while one operator runs helm for the
    release would hand it to a second operator at once. deploy/shard-label.yaml fixes the label
    at creation for everyone without the `reshard` right; the tenant (the shipped deployer
    role) is refused, the platform team (holding it) may move it."""
    from tests.integration.tenant import as_tenant

    cluster = crds
    cluster.kubectl("apply", "-f", str(REPO / "deploy" / "shard-label.yaml"))
    ns = cluster.new_namespace("reshard")
    tenant = as_tenant(cluster, ns, "alecton-deployer")
    deployment = r.deployment("web", "1")
    deployment["metadata"]["labels"] = {"alecton.dev/shard": "a"}
    tenant.apply(deployment)  # choosing a shard at creation is allowed
    moved = json.dumps({"metadata": {"labels": {"alecton.dev/shard": "b"}}})
    patch = ("patch", "deployments.alecton.dev", "web-staging", "-n", ns, "--type=merge", "-p", moved)

    def refused_dry_run() -> bool:
        # A server-side dry run passes admission without storing anything: wait on it until
        # the API server has loaded the policy, then try for real.
        proc = tenant(*patch, "--dry-run=server", check=False)
        return proc.returncode != 0 and "alecton.dev/shard" in proc.stderr

    wait_for(refused_dry_run, 30, "the shard policy to be in force")
    refusal = tenant(*patch, check=False)
    assert refusal.returncode != 0 and "needs the reshard right" in refusal.stderr, refusal.stderr
    assert tenant("get", "adep", "web-staging", "-o", "jsonpath={.metadata.labels}").stdout == (
        '{"alecton.dev/shard":"a"}'
    )
    # Unsetting it is a change too.
    unset = json.dumps({"metadata": {"labels": {"alecton.dev/shard": None}}})
    assert tenant("patch", "adep", "web-staging", "--type=merge", "-p", unset, check=False).returncode != 0
    # Other label changes stay free; the platform team may reshard.
    tenant("label", "adep", "web-staging", "team=web")
    cluster.kubectl(*patch)
    assert (
        cluster.get("deployments.alecton.dev", "web-staging", ns)["metadata"]["labels"]["alecton.dev/shard"]
        == "b"
    )
