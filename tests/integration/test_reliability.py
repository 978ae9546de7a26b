"""Faults: the operator killed mid-helm, helm killed or timing out, the management API
server restarted, an unreachable target cluster, SIGTERM during helm. Each ends at the
desired state with nothing lost. See docs/reliability.md.

ALECTON_FAULT_LOOPS sets the length of the SIGKILL loop (CI runs a bounded 4)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration import resources as r
from tests.integration.harness import (
    Cluster,
    OperatorProcess,
    events,
    namespaces_finalized,
    wait_for,
    wait_phase,
)

FAULT_LOOPS = int(os.environ.get("ALECTON_FAULT_LOOPS", "4"))


# A hook Job whose pod never gets Ready on the kwok nodes: it keeps helm busy until its timeout.
NEVER_READY = "busybox:1-unready"


@pytest.fixture(scope="module", autouse=True)
def namespaces_cleaned(crds: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The tests' own operators watch one namespace each and some end killed: at the end
    one cluster-wide operator finalizes what is left while the namespaces are deleted."""
    with namespaces_finalized(crds, tmp_path_factory.mktemp("cleanup")):
        yield


@pytest.fixture
def start_operator(crds: Cluster, tmp_path: Path) -> Iterator:
    """Start operators watching one namespace only; all are stopped at the end."""
    started: list[OperatorProcess] = []

    def start(namespace: str, *extra: str, env: dict[str, str] | None = None) -> OperatorProcess:
        process = OperatorProcess(
            crds, "helm", tmp_path, extra_args=("--namespace", namespace, *extra), env=env
        )
        process.start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def latest(cluster: Cluster, release: str, namespace: str) -> dict:
    history = cluster.helm_json("helm", "history", release, "--namespace", namespace)
    return max(history, key=lambda h: h["revision"])


def set_migration(cluster: Cluster, ns: str, target_ns: str, enabled: bool) -> None:
    cluster.apply(
        r.application("web", target_ns, values={"migration": {"enabled": enabled, "image": NEVER_READY}}),
        namespace=ns,
    )


def deployed_web(
    cluster: Cluster,
    start_operator,
    prefix: str,
    versions: tuple[str, ...] = ("1",),
    *args: str,
) -> tuple[str, str, OperatorProcess]:
    """A namespace with web deployed at versions[0] (Images for every version) by its own
    operator; returns (namespace, target namespace, operator)."""
    ns = cluster.new_namespace(prefix)
    target_ns = f"{ns}-web"
    images = [r.image("web", v, f"r/web:{v}") for v in versions]
    cluster.apply(
        r.cluster(), r.application("web", target_ns), *images, r.deployment("web", versions[0]), namespace=ns
    )
    operator = start_operator(ns, *args)
    wait_phase(cluster, ns, "web-staging", "Deployed")
    return ns, target_ns, operator


def wait_pending_upgrade(cluster: Cluster, target_ns: str) -> None:
    wait_for(
        lambda: latest(cluster, "web-staging", target_ns)["status"] == "pending-upgrade",
        30,
        "pending-upgrade",
    )


@dataclass
class MigrationWeb:
    """The web Application on several targets of one namespace, whose migration hook Job (when
    enabled) has a pod no kwok node makes Ready: it keeps helm busy, mid-upgrade."""

    cluster: Cluster
    ns: str
    targets: list[str]

    @property
    def target_ns(self) -> str:
        return f"{self.ns}-web"

    def app(self, migration: bool) -> dict:
        body = r.application(
            "web", self.target_ns, values={"migration": {"enabled": migration, "image": NEVER_READY}}
        )
        body["spec"]["targets"] = [
            {"name": t, "cluster": "target-b", "namespace": self.target_ns} for t in self.targets
        ]
        return body

    @classmethod
    def applied(cls, cluster: Cluster, prefix: str, count: int) -> MigrationWeb:
        web = cls(cluster, cluster.new_namespace(prefix), [f"t{i}" for i in range(count)])
        cluster.apply(
            r.cluster(),
            web.app(False),
            r.image("web", "0", "r/web:0"),
            *[r.deployment("web", "0", target=t) for t in web.targets],
            namespace=web.ns,
        )
        return web

    def wait_deployed(self, version: str = "0") -> None:
        for t in self.targets:
            obj = wait_phase(self.cluster, self.ns, f"web-{t}", "Deployed", timeout=120)
            assert obj["spec"]["version"] == version and obj["status"]["release"]["version"] == version
        if version == "0":
            return
        for t in self.targets:
            top = latest(self.cluster, f"web-{t}", self.target_ns)
            assert top["status"] == "deployed", top
            values = self.cluster.helm_json("helm", "get", "values", f"web-{t}", "-n", self.target_ns)
            assert values["image"] == f"r/web:{version}"

    def upgrade_behind_the_hook(self, operator: OperatorProcess, version: str) -> None:
        """Deploy `version` with the hook on; return once helm runs and has written its
        pending revision."""
        self.cluster.apply(self.app(True), r.image("web", version, f"r/web:{version}"), namespace=self.ns)
        for t in self.targets:
            self.cluster.patch_spec(self.ns, f"web-{t}", {"version": version})
        wait_for(
            lambda: (
                operator.metric("alecton_helm_in_flight") >= 1
                and any(
                    latest(self.cluster, f"web-{t}", self.target_ns)["status"] == "pending-upgrade"
                    for t in self.targets
                )
            ),
            30,
            "helm to be running with a pending revision",
        )

    def repairs(self) -> list[dict]:
        return [e for e in events(self.cluster, self.ns) if e["reason"] == "ReleaseRepaired"]


@pytest.mark.local_plane(reason="a hook pod that never gets Ready (kwok's `-unready` image stage)")
def test_sigkill_loop_during_upgrades_converges(crds: Cluster, start_operator) -> None:
    web = MigrationWeb.applied(crds, "sigkill", 4)
    # A short helm timeout and no lock grace: a killed helm's pending revision is stale
    # (repairable) five seconds after it was written.
    operator = start_operator(web.ns, "--helm-timeout", "5", "--lock-grace", "0", "--namespace-share", "1")
    web.wait_deployed()
    for loop in range(1, FAULT_LOOPS + 1):
        # The hook keeps helm busy: the kill always lands mid-helm.
        web.upgrade_behind_the_hook(operator, str(loop))
        operator.kill_group(signal.SIGKILL)
        operator.start()
    crds.apply(web.app(False), namespace=web.ns)
    web.wait_deployed(str(FAULT_LOOPS))
    repairs = web.repairs()
    assert repairs, "a kill mid-helm leaves a pending release: at least one repair over the loop"
    print(f"SIGKILL loop: {FAULT_LOOPS} kills, {len(repairs)} releases repaired")


def helmd_pids(operator: OperatorProcess) -> set[int]:
    """The operator's helmd processes (its children named helmd)."""
    assert operator.proc is not None
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            if name == "helmd" and ppid == operator.proc.pid:
                found.add(int(entry.name))
    return found


@pytest.mark.local_plane(reason="a hook pod that never gets Ready (kwok's `-unready` image stage)")
def test_a_helmd_that_dies_mid_action_is_restarted_and_its_releases_converge(
    crds: Cluster, start_operator
) -> None:
    """helmd cannot recover a panic in a goroutine Helm's SDK starts: the process ends with
    every action it was serving. The operator lives on: those actions answer like a killed
    helm, the release helm left pending is repaired, helmd starts again and all converge."""
    web = MigrationWeb.applied(crds, "helmd-dies", 3)
    operator = start_operator(
        web.ns, "--helm-driver=server", "--helm-timeout=20", "--lock-grace=0", "--namespace-share=1"
    )
    web.wait_deployed()
    first = helmd_pids(operator)
    assert len(first) == 1, first
    web.upgrade_behind_the_hook(operator, "1")
    os.kill(next(iter(first)), signal.SIGKILL)  # as a panic outside a request's goroutine ends it
    crds.apply(web.app(False), namespace=web.ns)
    web.wait_deployed("1")
    assert operator.proc is not None and operator.proc.poll() is None, "the operator itself lives on"
    again = helmd_pids(operator)
    assert len(again) == 1 and again.isdisjoint(first), (first, again)
    assert web.repairs(), "the upgrade helmd was serving left a pending revision, repaired"
    assert "helmd exited" in operator.log_since_start()


def test_release_stuck_pending_is_repaired(crds: Cluster, start_operator) -> None:
    cluster = crds
    ns, target_ns, operator = deployed_web(
        cluster, start_operator, "pending", ("1", "2"), "--helm-timeout", "10", "--lock-grace", "0"
    )
    # A migration hook that never finishes (no nodes run it) keeps helm busy; kill it all.
    set_migration(cluster, ns, target_ns, True)
    wait_pending_upgrade(cluster, target_ns)
    operator.kill_group(signal.SIGKILL)
    assert latest(cluster, "web-staging", target_ns)["status"] == "pending-upgrade"

    set_migration(cluster, ns, target_ns, False)
    cluster.patch_spec(ns, "web-staging", {"version": "2"})
    operator.start()
    obj = wait_phase(cluster, ns, "web-staging", "Deployed")
    assert "stuck in pending-upgrade: rolled back to revision 1" in obj["status"]["message"]
    history = cluster.helm_json("helm", "history", "web-staging", "--namespace", target_ns)
    assert latest(cluster, "web-staging", target_ns)["status"] == "deployed"
    # Helm never rewrites old revisions: the stuck one stays listed, but it is not the
    # latest any more, so nothing is locked.
    by_revision = {h["revision"]: h["status"] for h in history}
    assert by_revision[2] == "pending-upgrade" and max(by_revision) > 2
    assert any(e["reason"] == "ReleaseRepaired" for e in events(cluster, ns))


@pytest.mark.local_plane(reason="a hook pod that never gets Ready (kwok's `-unready` image stage)")
def test_pending_install_without_good_revision_is_uninstalled(crds: Cluster, start_operator) -> None:
    cluster = crds
    ns = cluster.new_namespace("pendinst")
    target_ns = f"{ns}-web"
    cluster.apply(
        r.cluster(),
        r.application("web", target_ns, values={"migration": {"enabled": True, "image": NEVER_READY}}),
        r.image("web", "1", "r/web:1"),
        r.deployment("web", "1"),
        namespace=ns,
    )
    operator = start_operator(ns, "--helm-timeout", "10", "--lock-grace", "0")
    wait_for(
        lambda: (
            cluster.run(
                "helm",
                "history",
                "web-staging",
                "--kube-context",
                "alecton-b",
                "-n",
                target_ns,
                "-o",
                "json",
                check=False,
            ).stdout.count("pending-install")
            == 1
        ),
        30,
        "pending-install",
    )
    operator.kill_group(signal.SIGKILL)
    set_migration(cluster, ns, target_ns, False)
    operator.start()
    obj = wait_phase(cluster, ns, "web-staging", "Deployed")
    assert "stuck in pending-install with no good revision: uninstalled it" in obj["status"]["message"]
    assert latest(cluster, "web-staging", target_ns)["status"] == "deployed"


def test_sigterm_during_helm_marks_release_failed_not_pending(crds: Cluster, start_operator) -> None:
    cluster = crds
    ns, target_ns, operator = deployed_web(cluster, start_operator, "sigterm")
    set_migration(cluster, ns, target_ns, True)
    wait_pending_upgrade(cluster, target_ns)  # helm is running
    started = time.monotonic()
    assert operator.proc is not None
    operator.proc.send_signal(signal.SIGTERM)  # the operator only, as kubelet does
    operator.proc.wait(timeout=30)
    assert time.monotonic() - started < 30
    assert latest(cluster, "web-staging", target_ns)["status"] == "failed"


def test_helm_timeout_fails_with_backoff_then_next_change_deploys(crds: Cluster, start_operator) -> None:
    cluster = crds
    ns, target_ns, _ = deployed_web(cluster, start_operator, "timeout", ("1",), "--helm-timeout", "5")
    set_migration(cluster, ns, target_ns, True)
    obj = wait_phase(cluster, ns, "web-staging", "Failed", timeout=40)
    assert obj["status"]["failures"] >= 1 and "retrying in" in obj["status"]["message"]
    assert "helm upgrade failed" in obj["status"]["message"] or "did not finish" in obj["status"]["message"]
    set_migration(cluster, ns, target_ns, False)
    obj = wait_phase(cluster, ns, "web-staging", "Deployed", timeout=40)
    assert obj["status"]["failures"] == 0


def until_accepted(write: Callable[[], object], what: str) -> None:
    """Retry a kubectl write the API server answers 503 while it loads its CRDs."""

    def attempt() -> bool:
        try:
            write()
        except AssertionError as error:
            if "ServiceUnavailable" not in str(error):
                raise
            return False
        return True

    wait_for(attempt, 120, what)


@pytest.mark.local_plane(reason="stops and restarts the local management API server")
def test_management_apiserver_restart(crds: Cluster, start_operator) -> None:
    cluster = crds
    ns, target_ns, operator = deployed_web(
        cluster, start_operator, "apirestart", ("1", "2"), "--helm-timeout", "8"
    )
    # helm runs against cluster b (a migration hook keeps it busy until its timeout)...
    set_migration(cluster, ns, target_ns, True)
    wait_pending_upgrade(cluster, target_ns)
    cluster.plane.stop_process("kube-apiserver-a")
    try:
        # ... and finishes while the management API server is down: its status write fails.
        wait_for(
            lambda: (
                operator.metric("alecton_helm_invocations_total", action="upgrade", outcome="failure") >= 1
            ),
            60,
            "helm to give up during the outage",
        )
        wait_for(
            lambda: operator.metric("alecton_reconciles_total", result="error") >= 1, 30, "a failed write"
        )
    finally:
        cluster.plane.start_process("kube-apiserver-a")
    # /readyz comes before every CRD's kind takes writes again: a write can answer 503
    # ("Resource kind ... not found") for a while, even after reads succeed.
    until_accepted(lambda: set_migration(cluster, ns, target_ns, False), "the Application write")
    until_accepted(lambda: cluster.patch_spec(ns, "web-staging", {"version": "2"}), "the Deployment write")
    obj = wait_phase(cluster, ns, "web-staging", "Deployed", timeout=90)
    assert obj["status"]["release"]["version"] == "2"
    assert latest(cluster, "web-staging", target_ns)["status"] == "deployed"


class TcpGate:
    """A loopback port that first swallows connections (a black-holed cluster) and can
    then forward them to a real API server (the cluster is back)."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.target: tuple[str, int] | None = None
        self._held: list[socket.socket] = []
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            if self.target is None:
                self._held.append(conn)  # never answered
                continue
            upstream = socket.create_connection(self.target)
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stop = True
        self.listener.close()
        for conn in self._held:
            conn.close()


def test_unreachable_cluster_does_not_block_others_and_recovers(crds: Cluster, start_operator) -> None:
    cluster = crds
    ns = cluster.new_namespace("unreach")
    target_ns = f"{ns}-web"
    gate = TcpGate()
    try:
        via_gate = cluster.target_kubeconfig()
        real_server = via_gate["clusters"][0]["cluster"]["server"]
        host, port = real_server.removeprefix("https://").split(":")
        via_gate["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{gate.port}"
        secret = r.kubeconfig_secret("gated", via_gate)
        app = r.application("web", target_ns)
        app["spec"]["targets"] = [
            {"name": f"far{i}", "cluster": "gated", "namespace": target_ns} for i in range(2)
        ]
        app["spec"]["targets"] += [
            {"name": f"near{i}", "cluster": "target-b", "namespace": target_ns} for i in range(4)
        ]
        cluster.apply(
            secret,
            r.cluster(),
            r.cluster(name="gated", context="", secret="gated"),
            app,
            r.image("web", "1", "r/web:1"),
            namespace=ns,
        )
        operator = start_operator(
            ns, "--helm-concurrency", "2", "--helm-timeout", "10", "--namespace-share", "1"
        )
        cluster.apply(r.deployment("web", "1", target="far0"), namespace=ns)
        wait_phase(cluster, ns, "web-far0", "Failed", timeout=60)  # the cluster is now known dead
        started = time.monotonic()
        cluster.apply(
            r.deployment("web", "1", target="far1"),
            *[r.deployment("web", "1", target=f"near{i}") for i in range(4)],
            namespace=ns,
        )
        for i in range(4):
            wait_phase(cluster, ns, f"web-near{i}", "Deployed", timeout=30)
        near_seconds = time.monotonic() - started
        assert near_seconds < 10, near_seconds  # not stuck behind the dead cluster's timeout
        # The two Deployments on the dead cluster take turns at its single slot.
        wait_for(
            lambda: operator.metric("alecton_reconciles_total", result="throttled") >= 1, 60, "a throttle"
        )
        far = wait_phase(cluster, ns, "web-far1", "Failed", timeout=60)
        ready = next(c for c in far["status"]["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "False" and "retrying in" in far["status"]["message"]
        # The cluster comes back: the next retries deploy.
        gate.target = (host, int(port))
        for i in range(2):
            wait_phase(cluster, ns, f"web-far{i}", "Deployed", timeout=120)
    finally:
        gate.close()
