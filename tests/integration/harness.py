"""Helpers the integration tests share: kubectl/helm runners, waiting, the operator process."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml
from alecton.local.chart_repository import chart_repository as local_chart_repository

REPO = Path(__file__).resolve().parents[2]
CHARTS = REPO / "charts"
TEST_CHARTS = REPO / "tests" / "charts"


class Cluster:
    """The local control plane as the tests see it: a kubeconfig and the pinned tools."""

    def __init__(
        self, kubeconfig: str, bin_dir: Path, state_dir: Path | None = None, plane: Any = None
    ) -> None:
        self.kubeconfig = kubeconfig
        self.bin = bin_dir
        self.state_dir = state_dir  # where the API servers write their audit logs
        self.plane = plane  # the LocalControlPlane, for outage tests

    def run(
        self, tool: str, *args: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.bin / tool), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env={**os.environ, "KUBECONFIG": self.kubeconfig},
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"{tool} {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def kubectl(
        self, *args: str, context: str = "alecton-a", check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.run("kubectl", "--context", context, *args, check=check, stdin=stdin)

    def apply(self, *docs: dict[str, Any], namespace: str, context: str = "alecton-a") -> None:
        self.kubectl("apply", "-n", namespace, "-f", "-", context=context, stdin=yaml.safe_dump_all(docs))

    def get(self, kind: str, name: str, namespace: str, context: str = "alecton-a") -> dict[str, Any] | None:
        proc = self.kubectl("get", kind, name, "-n", namespace, "-o", "json", context=context, check=False)
        if proc.returncode != 0:
            if "NotFound" in proc.stderr:
                return None
            raise AssertionError(proc.stderr)
        return json.loads(proc.stdout)

    def helm_json(self, helm: str, *args: str, context: str = "alecton-b") -> Any:
        proc = self.run(helm, *args, "--kube-context", context, "-o", "json")
        return json.loads(proc.stdout)

    def target_kubeconfig(self) -> dict[str, Any]:
        """The kubeconfig reduced to cluster b, credentials embedded: what a tenant stores."""
        full = yaml.safe_load(Path(self.kubeconfig).read_text())
        return {
            **full,
            "clusters": [c for c in full["clusters"] if c["name"] == "alecton-b"],
            "contexts": [c for c in full["contexts"] if c["name"] == "alecton-b"],
            "current-context": "alecton-b",
        }

    def patch_spec(self, namespace: str, name: str, spec: dict[str, Any]) -> None:
        """Merge-patch a Deployment's spec, as `kubectl patch --type=merge` does."""
        self.kubectl(
            "patch",
            "deployments.alecton.dev",
            name,
            "-n",
            namespace,
            "--type=merge",
            "-p",
            json.dumps({"spec": spec}),
        )

    def tenant_service_account(self, tenant: str, target_namespace: str) -> None:
        """What the platform team sets up for a tenant deploying to the management cluster
        (`in-cluster`): the target namespace and a ServiceAccount with rights there only."""
        self.kubectl("create", "namespace", target_namespace)
        self.kubectl("create", "serviceaccount", "alecton-deployer", "-n", tenant)
        # A Role of its own: the aggregated `admin` ClusterRole is empty without a
        # kube-controller-manager to aggregate it.
        everything = {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}
        role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "rules": [everything]}
        self.apply({**role, "metadata": {"name": "deployer"}}, namespace=target_namespace)
        self.kubectl(
            "create", "rolebinding", "deployer", "--role=deployer",
            f"--serviceaccount={tenant}:alecton-deployer", "-n", target_namespace,
        )  # fmt: skip

    def onboard(self, namespace: str, tenant: str, context: str = "alecton-b") -> None:
        """What a platform team applies before tenant `tenant`'s grant deploys into `namespace`
        of a named context (`alecton onboard NAMESPACE --tenant TENANT | kubectl apply -f -`):
        the ServiceAccount alecton-<tenant> with `admin` there; idempotent."""
        from alecton.cli.onboard import onboarding_manifests
        from alecton.reconcile.grants import tenant_service_account

        docs = onboarding_manifests(namespace, tenant_service_account(tenant))
        self.kubectl("apply", "-f", "-", context=context, stdin=yaml.safe_dump_all(docs))

    def namespaces(self) -> set[tuple[str, str]]:
        """(context, name) of every namespace in both clusters."""
        found: set[tuple[str, str]] = set()
        for context in ("alecton-a", "alecton-b"):
            out = self.kubectl("get", "namespaces", "-o", "name", context=context).stdout
            found |= {(context, line.removeprefix("namespace/")) for line in out.split()}
        return found

    def delete_namespaces_since(self, before: set[tuple[str, str]], timeout: float = 180.0) -> None:
        """Delete the namespaces made since `before` (tenants and their targets) and wait
        until the controllers (and an operator's finalizers) have removed them."""
        made = sorted(self.namespaces() - before)

        def delete(namespaces: list[tuple[str, str]]) -> None:
            for context, name in namespaces:
                self.kubectl("delete", "namespace", name, "--wait=false", context=context, check=False)

        def left() -> list[tuple[str, str]]:
            remaining = sorted(set(made) & self.namespaces())
            # A release being uninstalled may still recreate its namespace once: delete again.
            delete([(c, n) for c, n in remaining if not self._terminating(c, n)])
            return remaining

        delete(made)

        try:
            wait_for(lambda: not left(), timeout, "namespaces to be deleted", interval=1.0)
        except AssertionError:
            stuck = []
            for context, name in left():
                out = self.kubectl(
                    "get", "namespace", name, "-o", "json", context=context, check=False
                ).stdout
                conditions = (json.loads(out or "{}").get("status") or {}).get("conditions") or []
                why = [
                    f"{c.get('type')}: {c.get('message')}" for c in conditions if c.get("status") == "True"
                ]
                stuck.append(f"{context}/{name}: {'; '.join(why) or 'no condition'}")
            raise AssertionError("namespaces not deleted:\n" + "\n".join(stuck)) from None

    def _terminating(self, context: str, name: str) -> bool:
        out = self.kubectl(
            "get", "namespace", name, "-o", "jsonpath={.status.phase}", context=context, check=False
        )
        return out.stdout.strip() != "Active"

    def new_namespace(self, prefix: str, context: str = "alecton-a") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        self.kubectl("create", "namespace", name, context=context)
        return name


def wait_for(
    check: Callable[[], Any], timeout: float = 60.0, what: str = "condition", interval: float = 0.2
) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last value: {last!r}")


class OperatorProcess:
    """`alecton operator run` as a real child process, its log captured to a file."""

    def __init__(
        self,
        cluster: Cluster,
        helm: str,
        log_dir: Path,
        extra_args: tuple[str, ...] = (),
        kubeconfig: str | None = None,
        env: dict[str, str] | None = None,
        default_grant: bool = True,
    ) -> None:
        self.cluster = cluster
        self.kubeconfig = kubeconfig or cluster.kubeconfig
        self.env = env or {}
        self.helm = helm
        self.log_path = log_dir / f"operator-{Path(helm).name}-{uuid.uuid4().hex[:6]}.log"
        # Deny by default: an operator started without grants gets the usual one. Suites about
        # other things than tenancy run with the operator's own identity on cluster b (they
        # make namespaces there freely); tenancy tests grant bounded identities themselves.
        if default_grant and "--allow-context" not in extra_args:
            extra_args = ("--allow-context", "*=alecton-b@operator", *extra_args)
        if "--probe-address" in extra_args:
            self.metrics_port = int(extra_args[extra_args.index("--probe-address") + 1].rsplit(":", 1)[1])
        else:
            from alecton.local.controlplane import free_port

            self.metrics_port = free_port()
            extra_args = (*extra_args, "--probe-address", f"127.0.0.1:{self.metrics_port}")
        self.extra_args = extra_args
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 (kept open for the child)
        self._log_offset = self.log_path.stat().st_size
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "alecton",
                "operator",
                "run",
                "--kubeconfig",
                self.kubeconfig,
                "--context",
                "alecton-a",
                "--helm",
                str(self.cluster.bin / self.helm),
                "--charts-dir",
                str(CHARTS),
                "--helm-timeout",
                "60",
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **self.env},
            # Its own process group: kill_group() then takes helm down with it, as the
            # death of the operator's container would.
            start_new_session=True,
        )
        log.close()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill_group(self, sig: int = signal.SIGKILL) -> None:
        """Kill the operator and its helm children at once (a crashed container)."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=20)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def metric(self, name: str, **labels: str) -> float:
        """The sum of a Prometheus sample of this run of the operator (0 when the series has
        no sample yet). An endpoint that does not answer within 20 s fails the test: "no
        answer" must never read as "zero"."""
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
                ) as response:
                    text = response.read().decode()
                break
            except OSError as error:
                if time.monotonic() > deadline:
                    raise AssertionError(f"the operator's /metrics did not answer: {error}") from None
                time.sleep(0.2)
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name):
                continue
            head, _, value = line.rpartition(" ")
            if head.split("{", 1)[0] == name and all(f'{k}="{v}"' in head for k, v in labels.items()):
                total += float(value)
        return total

    def log_since_start(self) -> str:
        with open(self.log_path, "rb") as handle:
            handle.seek(self._log_offset)
            return handle.read().decode(errors="replace")

    def count(self, needle: str) -> int:
        return self.log_since_start().count(needle)


def events(cluster: Cluster, ns: str) -> list[dict[str, Any]]:
    """The Events of a namespace."""
    return json.loads(cluster.kubectl("get", "events", "-n", ns, "-o", "json").stdout)["items"]


def wait_phase(
    cluster: Cluster, namespace: str, name: str, phase: str, timeout: float = 60.0, **match: Any
) -> dict[str, Any]:
    """Wait until Deployment `name` reports `phase` for its current generation (and any
    extra status fields in `match`), and return it."""

    def check() -> dict[str, Any] | None:
        obj = cluster.get("deployments.alecton.dev", name, namespace)
        if not obj:
            return None
        status = obj.get("status") or {}
        if status.get("phase") != phase or status.get("observedGeneration") != obj["metadata"]["generation"]:
            return None
        if any(status.get(k) != v for k, v in match.items()):
            return None
        return obj

    try:
        return wait_for(check, timeout, f"Deployment {namespace}/{name} to be {phase}")
    except AssertionError:
        obj = cluster.get("deployments.alecton.dev", name, namespace)
        raise AssertionError(
            f"Deployment {namespace}/{name} never became {phase}; "
            f"now: {json.dumps((obj or {}).get('status'), indent=1)}"
        ) from None


@contextlib.contextmanager
def chart_repository(helm: Path, directory: Path, chart: str = "webapp") -> Iterator[str]:
    """A bundled chart packaged into a classic chart repository served over plain http on
    loopback (its URL): what `spec.repository: http://...` points at."""
    with local_chart_repository(helm, CHARTS / chart, directory) as url:
        yield url


class WebProcess:
    """`alecton dashboard` or `alecton web` as a real child process on a free port."""

    def __init__(self, args: list[str], port: int, log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_dir / f"web-{uuid.uuid4().hex[:6]}.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 (kept open for the child)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "alecton", *args, "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
        )
        log.close()

        def up() -> bool:
            assert self.proc.poll() is None, f"the web server exited: {self.log()}"
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as answer:
                    return bool(answer.status == 200)
            except OSError:
                return False

        wait_for(up, 30, "the web server to answer")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def namespaces_finalized(cluster: Cluster, log_dir: Path) -> Iterator[None]:
    """For modules whose operators watch one namespace each (and some end killed): at the
    end one cluster-wide operator finalizes what is left while the namespaces are deleted."""
    before = cluster.namespaces()
    yield
    finalizer = OperatorProcess(cluster, "helm", log_dir)
    finalizer.start()
    try:
        cluster.delete_namespaces_since(before)
    finally:
        finalizer.stop()


@contextlib.contextmanager
def module_operator(
    cluster: Cluster, helm: str, log_dir: Path, extra_args: tuple[str, ...] = ()
) -> Iterator[OperatorProcess]:
    """A module's own cluster-wide operator: started, and at the end the module's namespaces
    deleted while it still runs (so it uninstalls their releases), then stopped."""
    process = OperatorProcess(cluster, helm, log_dir, extra_args=extra_args)
    process.start()
    before = cluster.namespaces()
    try:
        yield process
        cluster.delete_namespaces_since(before)
    finally:
        process.stop()
