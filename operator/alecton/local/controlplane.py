"""The embedded local control plane: one etcd and two clusters on loopback.

`alecton local up` and the integration-test fixture share this code. Cluster `a`
is the management cluster (CRs and the operator), `b` a second target cluster;
both store their data in the same etcd under different prefixes. Each cluster has
its own kube-apiserver, kube-controller-manager and kube-scheduler, and a kwok that
plays the kubelet of a few simulated nodes (see kwok-stages.yaml): Deployments become
Available, Jobs complete and namespaces finish deleting, with no container runtime.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from alecton.local import pki
from alecton.local.tools import tools_bin

CLUSTERS = ("a", "b")
CONTEXT_PREFIX = "alecton-"
STATE_FILE = "state.json"
DEFAULT_NODES = 2
KWOK_STAGES = Path(__file__).with_name("kwok-stages.yaml")
# Controllers that make workloads run. The node lifecycle controller stays off: kwok's
# nodes are Ready once and send no heartbeats, which it would answer with evictions.
CONTROLLERS = "*,-nodelifecycle"

# Requests made by service accounts are audited (metadata only), so tests can compare
# the verbs an operator identity used with the RBAC rules it was granted.
AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  - level: None
"""


def default_state_dir() -> Path:
    if env := os.environ.get("ALECTON_LOCAL_DIR"):
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "alecton" / "local"


def context_name(cluster: str) -> str:
    return f"{CONTEXT_PREFIX}{cluster}"


class ControlPlaneError(RuntimeError):
    pass


@dataclass
class ProcessInfo:
    name: str
    pid: int
    log: str
    args: list[str] = field(default_factory=list)


@dataclass
class State:
    """What `up` started; `status` and `down` read it back from state.json."""

    state_dir: str
    kubeconfig: str
    etcd_url: str
    servers: dict[str, str] = field(default_factory=dict)  # cluster -> https URL
    processes: list[ProcessInfo] = field(default_factory=list)
    startup_seconds: float = 0.0
    nodes: int = 0  # simulated nodes per cluster

    def save(self) -> None:
        Path(self.state_dir, STATE_FILE).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, state_dir: Path) -> State | None:
        path = state_dir / STATE_FILE
        if not path.exists():
            return None
        raw = json.loads(path.read_text())
        raw["processes"] = [ProcessInfo(**p) for p in raw.get("processes", [])]
        return cls(**raw)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of this process still answers kill(0); reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _kubeconfig(ca_pem: bytes, admin: pki.KeyPair, servers: dict[str, str]) -> dict:
    import base64

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": context_name(c),
                "cluster": {"server": url, "certificate-authority-data": b64(ca_pem)},
            }
            for c, url in servers.items()
        ],
        "users": [
            {
                "name": "alecton-admin",
                "user": {
                    "client-certificate-data": b64(admin.cert_pem),
                    "client-key-data": b64(admin.key_pem),
                },
            }
        ],
        "contexts": [
            {
                "name": context_name(c),
                "context": {"cluster": context_name(c), "user": "alecton-admin"},
            }
            for c in servers
        ],
        "current-context": context_name(CLUSTERS[0]),
    }


class LocalControlPlane:
    def __init__(self, state_dir: Path | None = None, log: Callable[[str], None] = print) -> None:
        self.state_dir = (state_dir or default_state_dir()).resolve()
        self._log = log

    # ----- lifecycle -------------------------------------------------------------------

    def up(self, timeout: float = 90.0, nodes: int = DEFAULT_NODES) -> State:
        existing = State.load(self.state_dir)
        if existing and all(pid_alive(p.pid) for p in existing.processes):
            self._log(f"already running (state in {self.state_dir})")
            return existing
        if existing:
            self.down(quiet=True)
        started = time.monotonic()
        bin_dir = tools_bin(
            ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
            if nodes
            else ("etcd", "kube-apiserver")
        )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o700)
        pki_dir = self.state_dir / "pki"
        pki_dir.mkdir(exist_ok=True)

        ca = pki.CertificateAuthority()
        ca_file = pki_dir / "ca.crt"
        ca_file.write_bytes(ca.cert_pem)
        serving = ca.serving("kube-apiserver")
        pki.write_private(pki_dir / "apiserver.crt", serving.cert_pem)
        pki.write_private(pki_dir / "apiserver.key", serving.key_pem)
        admin = ca.client("alecton-admin", "system:masters")
        pki.write_private(pki_dir / "admin.crt", admin.cert_pem)
        pki.write_private(pki_dir / "admin.key", admin.key_pem)
        sa_keys = pki.service_account_keys()
        pki.write_private(pki_dir / "sa.key", sa_keys.key_pem)
        (pki_dir / "sa.pub").write_bytes(sa_keys.cert_pem)
        (self.state_dir / "audit-policy.yaml").write_text(AUDIT_POLICY)

        etcd_port, peer_port = free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        state = State(
            state_dir=str(self.state_dir),
            kubeconfig=str(self.state_dir / "kubeconfig"),
            etcd_url=etcd_url,
            nodes=nodes,
        )
        try:
            self._log(f"starting etcd on {etcd_url}")
            state.processes.append(
                self._spawn(
                    "etcd",
                    [
                        str(bin_dir / "etcd"),
                        "--name=alecton",
                        f"--data-dir={self.state_dir / 'etcd'}",
                        f"--listen-client-urls={etcd_url}",
                        f"--advertise-client-urls={etcd_url}",
                        f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                        f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                        f"--initial-cluster=alecton=http://127.0.0.1:{peer_port}",
                        "--unsafe-no-fsync",
                        "--log-level=warn",
                    ],
                )
            )
            state.save()
            self._wait(lambda: self._http_ok(f"{etcd_url}/health"), timeout, "etcd /health")

            for cluster in CLUSTERS:
                port = free_port()
                url = f"https://127.0.0.1:{port}"
                state.servers[cluster] = url
                self._log(f"starting kube-apiserver {context_name(cluster)} on {url}")
                state.processes.append(
                    self._spawn(
                        f"kube-apiserver-{cluster}",
                        self._apiserver_args(bin_dir, cluster, port, etcd_url, pki_dir),
                    )
                )
                state.save()
            for cluster, url in state.servers.items():
                self._wait(
                    lambda url=url: self._https_ok(f"{url}/readyz", pki_dir),
                    timeout,
                    f"kube-apiserver {context_name(cluster)} /readyz",
                )
            pki.write_private(
                Path(state.kubeconfig),
                yaml.safe_dump(_kubeconfig(ca.cert_pem, admin, state.servers)).encode(),
            )
            if nodes:
                self._start_workload_plane(state, bin_dir, pki_dir, ca.cert_pem, admin, timeout)
        except BaseException:
            state.save()
            self.down(quiet=True)
            raise
        state.startup_seconds = round(time.monotonic() - started, 2)
        state.save()
        self._log(f"ready in {state.startup_seconds:.1f} s")
        return state

    def _start_workload_plane(
        self,
        state: State,
        bin_dir: Path,
        pki_dir: Path,
        ca_pem: bytes,
        admin: pki.KeyPair,
        timeout: float,
    ) -> None:
        """Per cluster: controller-manager, scheduler, kwok, and `state.nodes` Nodes."""
        for cluster, url in state.servers.items():
            kubeconfig = self.state_dir / f"kubeconfig-{cluster}"
            config = _kubeconfig(ca_pem, admin, {cluster: url})
            config["current-context"] = context_name(cluster)
            pki.write_private(kubeconfig, yaml.safe_dump(config).encode())
            self._log(f"starting controller-manager, scheduler and kwok for {context_name(cluster)}")
            for name, args in self._workload_args(bin_dir, cluster, kubeconfig, pki_dir).items():
                state.processes.append(self._spawn(f"{name}-{cluster}", args))
            state.save()
            for number in range(state.nodes):
                self._create_node(url, pki_dir, f"kwok-{cluster}-{number}")
        for cluster, url in state.servers.items():
            self._wait(
                lambda url=url: self._nodes_ready(url, pki_dir) >= state.nodes,
                timeout,
                f"{state.nodes} Ready nodes in {context_name(cluster)}",
            )

    def _workload_args(
        self, bin_dir: Path, cluster: str, kubeconfig: Path, pki_dir: Path
    ) -> dict[str, list[str]]:
        return {
            "kube-controller-manager": [
                str(bin_dir / "kube-controller-manager"),
                f"--kubeconfig={kubeconfig}",
                f"--controllers={CONTROLLERS}",
                f"--service-account-private-key-file={pki_dir / 'sa.key'}",
                f"--root-ca-file={pki_dir / 'ca.crt'}",
                "--use-service-account-credentials=false",
                "--leader-elect=false",
                "--secure-port=0",
                # Quick garbage collection and namespace deletion for tests.
                "--concurrent-gc-syncs=10",
                "--concurrent-namespace-syncs=5",
                "--v=1",
            ],
            "kube-scheduler": [
                str(bin_dir / "kube-scheduler"),
                f"--kubeconfig={kubeconfig}",
                "--leader-elect=false",
                "--secure-port=0",
                "--v=1",
            ],
            "kwok": [
                str(bin_dir / "kwok"),
                f"--kubeconfig={kubeconfig}",
                "--manage-all-nodes=true",
                f"--config={KWOK_STAGES}",
                "--cidr=10.240.0.0/16",
                "--node-ip=10.239.0.1",
            ],
        }

    def _create_node(self, url: str, pki_dir: Path, name: str) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "annotations": {"kwok.x-k8s.io/node": "fake"},
                "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "type": "kwok"},
            },
        }
        self._api(url, pki_dir, "POST", "/api/v1/nodes", body)

    def _nodes_ready(self, url: str, pki_dir: Path) -> int:
        try:
            nodes = self._api(url, pki_dir, "GET", "/api/v1/nodes")
        except (OSError, urllib.error.URLError, ValueError):
            return 0
        return sum(
            1
            for node in nodes.get("items") or []
            for condition in (node.get("status") or {}).get("conditions") or []
            if condition.get("type") == "Ready" and condition.get("status") == "True"
        )

    @staticmethod
    def _api(url: str, pki_dir: Path, method: str, path: str, body: dict | None = None) -> dict:
        context = ssl.create_default_context(cafile=str(pki_dir / "ca.crt"))
        context.load_cert_chain(str(pki_dir / "admin.crt"), str(pki_dir / "admin.key"))
        request = urllib.request.Request(  # noqa: S310 (loopback)
            url + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5, context=context) as response:  # noqa: S310
            return dict(json.loads(response.read() or b"{}"))

    def down(self, quiet: bool = False) -> bool:
        """Stop every process `up` started and remove the state directory."""
        state = State.load(self.state_dir)
        if state is None:
            if not quiet:
                self._log(f"nothing running (no state in {self.state_dir})")
            return False
        # API servers first, so they do not log etcd connection errors on the way out.
        for proc in reversed(state.processes):
            self._stop(proc)
        import shutil

        shutil.rmtree(self.state_dir, ignore_errors=True)
        if not quiet:
            self._log(f"stopped {len(state.processes)} processes, removed {self.state_dir}")
        return True

    def stop_process(self, name: str) -> None:
        """Stop one process (for fault tests: an API server outage)."""
        state = self._require_state()
        self._stop(next(p for p in state.processes if p.name == name))

    def start_process(self, name: str, timeout: float = 60.0) -> None:
        """Start a stopped process again with its original arguments and wait until ready."""
        state = self._require_state()
        index = next(i for i, p in enumerate(state.processes) if p.name == name)
        state.processes[index] = self._spawn(name, state.processes[index].args)
        state.save()
        cluster = name.removeprefix("kube-apiserver-")
        if cluster in state.servers:
            url = state.servers[cluster]
            self._wait(
                lambda: self._https_ok(f"{url}/readyz", self.state_dir / "pki"), timeout, f"{name} /readyz"
            )

    def _require_state(self) -> State:
        state = State.load(self.state_dir)
        if state is None:
            raise ControlPlaneError(f"no control plane state in {self.state_dir}")
        return state

    def status(self) -> dict:
        state = State.load(self.state_dir)
        if state is None:
            return {"running": False, "stateDir": str(self.state_dir)}
        pki_dir = self.state_dir / "pki"
        return {
            "running": all(pid_alive(p.pid) for p in state.processes),
            "stateDir": state.state_dir,
            "kubeconfig": state.kubeconfig,
            "etcd": state.etcd_url,
            "startupSeconds": state.startup_seconds,
            "clusters": {
                context_name(c): {
                    "server": url,
                    "ready": self._https_ok(f"{url}/readyz", pki_dir),
                }
                for c, url in state.servers.items()
            },
            "processes": [
                {"name": p.name, "pid": p.pid, "alive": pid_alive(p.pid), "log": p.log}
                for p in state.processes
            ],
        }

    def audit_log(self, cluster: str) -> Path:
        return self.state_dir / f"audit-{cluster}.log"

    # ----- process plumbing -----------------------------------------------------------

    def _apiserver_args(
        self, bin_dir: Path, cluster: str, port: int, etcd_url: str, pki_dir: Path
    ) -> list[str]:
        return [
            str(bin_dir / "kube-apiserver"),
            f"--etcd-servers={etcd_url}",
            f"--etcd-prefix=/registry-{cluster}",
            f"--secure-port={port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            # envtest does the same: the endpoint reconciler refuses loopback addresses.
            "--endpoint-reconciler-type=none",
            f"--tls-cert-file={pki_dir / 'apiserver.crt'}",
            f"--tls-private-key-file={pki_dir / 'apiserver.key'}",
            f"--client-ca-file={pki_dir / 'ca.crt'}",
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={pki_dir / 'sa.pub'}",
            f"--service-account-signing-key-file={pki_dir / 'sa.key'}",
            # Room for thousands of Services: benchmarks install hundreds of releases.
            "--service-cluster-ip-range=10.0.0.0/16",
            "--allow-privileged=true",
            # Pods need no ServiceAccount token here (kwok runs no containers); without the
            # plugin a pod in a brand-new namespace does not wait for its default account.
            # New nodes get no not-ready taint: the node lifecycle controller that would
            # lift it is off (kwok's nodes send no heartbeats).
            "--disable-admission-plugins=ServiceAccount,TaintNodesByCondition",
            f"--cert-dir={pki_dir / ('certs-' + cluster)}",
            "--profiling=false",
            f"--audit-policy-file={self.state_dir / 'audit-policy.yaml'}",
            f"--audit-log-path={self.audit_log(cluster)}",
            "--audit-log-mode=batch",
            "--audit-log-batch-max-wait=1s",
            "--v=1",
        ]

    def _spawn(self, name: str, args: list[str]) -> ProcessInfo:
        log_path = self.state_dir / f"{name}.log"
        with open(log_path, "ab") as log_file:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=self.state_dir,
                start_new_session=True,  # survives `alecton local up` returning
            )
        return ProcessInfo(name=name, pid=proc.pid, log=str(log_path), args=args)

    def _stop(self, proc: ProcessInfo, grace: float = 10.0) -> None:
        if not pid_alive(proc.pid):
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and pid_alive(proc.pid):
            time.sleep(0.05)
        if pid_alive(proc.pid):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                return
            while pid_alive(proc.pid):
                time.sleep(0.05)

    def _wait(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            state = State.load(self.state_dir)
            for proc in state.processes if state else []:
                if not pid_alive(proc.pid):
                    tail = Path(proc.log).read_text(errors="replace")[-2000:]
                    raise ControlPlaneError(f"{proc.name} exited; last log lines:\n{tail}")
            time.sleep(0.1)
        raise ControlPlaneError(f"timed out after {timeout:.0f} s waiting for {what}")

    @staticmethod
    def _http_ok(url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    @staticmethod
    def _https_ok(url: str, pki_dir: Path) -> bool:
        context = ssl.create_default_context(cafile=str(pki_dir / "ca.crt"))
        context.load_cert_chain(str(pki_dir / "admin.crt"), str(pki_dir / "admin.key"))
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as response:  # noqa: S310
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False
