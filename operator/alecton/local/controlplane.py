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
from alecton.local.configuration import (
    AUDIT_POLICY,
    CLUSTERS,
    DEFAULT_NODES,
    REGISTRY_ENV,
    REGISTRY_USER,
    admin_kubeconfig,
    apiserver_args,
    audit_log_path,
    context_name,
    default_state_dir,
    etcd_args,
    registry_args,
    workload_args,
    write_certificates,
    write_registry,
)
from alecton.local.tools import tools_bin

STATE_FILE = "state.json"


class ControlPlaneError(RuntimeError):
    pass


@dataclass
class ProcessInfo:
    name: str
    pid: int
    log: str
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # over the environment of `up`


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
    registry: str = ""  # the OCI registry's host:port (TLS from the local CA, one user)

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
            ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "registry")
            if nodes
            else ("etcd", "kube-apiserver")
        )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o700)
        pki_dir = self.state_dir / "pki"
        pki_dir.mkdir(exist_ok=True)

        ca, admin = write_certificates(pki_dir)
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
                self._spawn("etcd", etcd_args(bin_dir, self.state_dir, etcd_url, peer_port))
            )
            state.save()
            self._wait(lambda: _http_ok(f"{etcd_url}/health"), timeout, "etcd /health")
            self._start_apiservers(state, bin_dir, pki_dir, timeout)
            pki.write_private(
                Path(state.kubeconfig),
                yaml.safe_dump(admin_kubeconfig(ca.cert_pem, admin, state.servers)).encode(),
            )
            if nodes:
                self._start_workload_plane(state, bin_dir, pki_dir, ca.cert_pem, admin, timeout)
                self._start_registry(state, bin_dir, ca, timeout)
        except BaseException:
            state.save()
            self.down(quiet=True)
            raise
        state.startup_seconds = round(time.monotonic() - started, 2)
        state.save()
        self._log(f"ready in {state.startup_seconds:.1f} s")
        return state

    def _start_apiservers(self, state: State, bin_dir: Path, pki_dir: Path, timeout: float) -> None:
        """One kube-apiserver per cluster, on its own etcd prefix; waits until each is ready."""
        for cluster in CLUSTERS:
            port = free_port()
            url = f"https://127.0.0.1:{port}"
            state.servers[cluster] = url
            self._log(f"starting kube-apiserver {context_name(cluster)} on {url}")
            state.processes.append(
                self._spawn(
                    f"kube-apiserver-{cluster}",
                    apiserver_args(bin_dir, self.state_dir, cluster, port, state.etcd_url, pki_dir),
                )
            )
            state.save()
        for cluster, url in state.servers.items():
            self._wait(
                lambda url=url: _https_ok(f"{url}/readyz", pki_dir),
                timeout,
                f"kube-apiserver {context_name(cluster)} /readyz",
            )

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
            config = admin_kubeconfig(ca_pem, admin, {cluster: url})
            config["current-context"] = context_name(cluster)
            pki.write_private(kubeconfig, yaml.safe_dump(config).encode())
            self._log(f"starting controller-manager, scheduler and kwok for {context_name(cluster)}")
            for name, args in workload_args(bin_dir, kubeconfig, pki_dir).items():
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

    def _start_registry(
        self, state: State, bin_dir: Path, ca: pki.CertificateAuthority, timeout: float
    ) -> None:
        """The OCI registry for charts and images (`oci://127.0.0.1:PORT/...`)."""
        port = free_port()
        state.registry = f"127.0.0.1:{port}"
        self._log(f"starting the OCI registry on https://{state.registry} (user {REGISTRY_USER})")
        config = write_registry(self.state_dir, ca, port)
        state.processes.append(self._spawn("registry", registry_args(bin_dir, config), REGISTRY_ENV))
        state.save()
        self._wait(lambda: _registry_ok(state.registry, self.state_dir / "pki"), timeout, "the OCI registry")

    def registry_password(self) -> str:
        """The local registry's password (user `alecton`)."""
        return (self.state_dir / "registry" / "password").read_text()

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
        _api(url, pki_dir, "POST", "/api/v1/nodes", body)

    def _nodes_ready(self, url: str, pki_dir: Path) -> int:
        try:
            nodes = _api(url, pki_dir, "GET", "/api/v1/nodes")
        except (OSError, urllib.error.URLError, ValueError):
            return 0
        return sum(
            1
            for node in nodes.get("items") or []
            for condition in (node.get("status") or {}).get("conditions") or []
            if condition.get("type") == "Ready" and condition.get("status") == "True"
        )

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
        state.processes[index] = self._spawn(name, state.processes[index].args, state.processes[index].env)
        state.save()
        cluster = name.removeprefix("kube-apiserver-")
        if cluster in state.servers:
            url = state.servers[cluster]
            self._wait(lambda: _https_ok(f"{url}/readyz", self.state_dir / "pki"), timeout, f"{name} /readyz")

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
            "registry": {
                "host": state.registry,
                "user": REGISTRY_USER,
                "passwordFile": str(self.state_dir / "registry" / "password"),
                "caFile": str(pki_dir / "ca.crt"),
            }
            if state.registry
            else None,
            "clusters": {
                context_name(c): {
                    "server": url,
                    "ready": _https_ok(f"{url}/readyz", pki_dir),
                }
                for c, url in state.servers.items()
            },
            "processes": [
                {"name": p.name, "pid": p.pid, "alive": pid_alive(p.pid), "log": p.log}
                for p in state.processes
            ],
        }

    def audit_log(self, cluster: str) -> Path:
        return audit_log_path(self.state_dir, cluster)

    # ----- process plumbing -----------------------------------------------------------

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> ProcessInfo:
        log_path = self.state_dir / f"{name}.log"
        with open(log_path, "ab") as log_file:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=self.state_dir,
                env=os.environ | env if env else None,
                start_new_session=True,  # survives `alecton local up` returning
            )
        return ProcessInfo(name=name, pid=proc.pid, log=str(log_path), args=args, env=env or {})

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


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _https_ok(url: str, pki_dir: Path) -> bool:
    context = ssl.create_default_context(cafile=str(pki_dir / "ca.crt"))
    context.load_cert_chain(str(pki_dir / "admin.crt"), str(pki_dir / "admin.key"))
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:  # noqa: S310
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _registry_ok(host: str, pki_dir: Path) -> bool:
    """The registry answers /v2/ over TLS (401 without a login: it is up)."""
    context = ssl.create_default_context(cafile=str(pki_dir / "ca.crt"))
    try:
        with urllib.request.urlopen(f"https://{host}/v2/", timeout=2, context=context):
            return True
    except urllib.error.HTTPError as error:
        return error.code == 401
    except (OSError, urllib.error.URLError):
        return False
