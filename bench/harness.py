"""What every measurement uses: the control plane's client (`Bench`), a watch of the
Deployments' phases, the operator under test, and the workload it deploys."""

from __future__ import annotations

import contextlib
import json
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from alecton.local.controlplane import LocalControlPlane, free_port

REPO = Path(__file__).resolve().parents[1]
API = "alecton.dev/v1alpha1"


@dataclass
class Bench:
    kubeconfig: str
    bin: Path
    workdir: Path
    server: str = ""  # management API server URL, for fast direct reads
    pki: Path | None = None
    results: dict[str, Any] = field(default_factory=dict)

    def tls_context(self) -> ssl.SSLContext:
        """The management API server's CA and the admin's client certificate."""
        context = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))  # type: ignore[operator]
        context.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))  # type: ignore[operator]
        return context

    def _request(self, namespace: str, name: str, patch: dict[str, Any] | None = None) -> dict[str, Any]:
        """A direct HTTPS GET or merge PATCH of one Deployment (about 3 ms; kubectl ~60 ms)."""
        url = f"{self.server}/apis/alecton.dev/v1alpha1/namespaces/{namespace}/deployments/{name}"
        request = urllib.request.Request(url)  # noqa: S310
        if patch is not None:
            request = urllib.request.Request(  # noqa: S310
                url,
                data=json.dumps(patch).encode(),
                method="PATCH",
                headers={"Content-Type": "application/merge-patch+json"},
            )
        with urllib.request.urlopen(request, context=self.tls_context(), timeout=10) as response:  # noqa: S310
            return json.loads(response.read())

    def status(self, namespace: str, name: str) -> dict[str, Any]:
        return self._request(namespace, name).get("status") or {}

    def set_version(self, namespace: str, name: str, version: str) -> None:
        self._request(namespace, name, {"spec": {"version": version}})

    def kubectl(self, *args: str, stdin: str | None = None, context: str = "alecton-a") -> str:
        proc = subprocess.run(
            [str(self.bin / "kubectl"), "--kubeconfig", self.kubeconfig, "--context", context, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args[:3])}: {proc.stderr[-500:]}")
        return proc.stdout

    def apply(self, docs: list[dict[str, Any]], namespace: str) -> None:
        # Server-side apply in chunks: one kubectl call for hundreds of objects.
        for start in range(0, len(docs), 250):
            chunk = yaml.safe_dump_all(docs[start : start + 250])
            self.kubectl("apply", "--server-side", "-n", namespace, "-f", "-", stdin=chunk)

    def phases(self, namespace: str) -> dict[str, dict[str, Any]]:
        items = json.loads(self.kubectl("get", "deployments.alecton.dev", "-n", namespace, "-o", "json"))[
            "items"
        ]
        return {i["metadata"]["name"]: i.get("status") or {} for i in items}

    def watch_phases(self, namespace: str) -> ConditionWatch:
        """The `status.phase` of every alecton Deployment of `namespace`."""
        path = f"/apis/alecton.dev/v1alpha1/namespaces/{namespace}/deployments"
        return ConditionWatch(self, path, lambda obj: (obj.get("status") or {}).get("phase", ""))

    def wait(self, check: Callable[[], bool], timeout: float, interval: float = 0.5) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if check():
                return time.monotonic() - started
            time.sleep(interval)
        raise TimeoutError("benchmark condition not reached")


def _open_watch(url: str, bench: Bench, patience: float = 60.0) -> Any:
    """A watch, once the API server serves it: a collection whose CRD was just established
    answers 429 ("storage is (re)initializing") until its watch cache is ready."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return urllib.request.urlopen(url, context=bench.tls_context(), timeout=3600)  # noqa: S310
        except urllib.error.HTTPError as error:
            if error.code != 429 or time.monotonic() > deadline:
                raise
            time.sleep(float(error.headers.get("Retry-After") or 1))


class ConditionWatch:
    """A phase per object of one collection, from one watch (no polling: the observer must
    not steal the CPU it measures); `phase_of` reads it from each object."""

    def __init__(self, bench: Bench, path: str, phase_of: Callable[[dict[str, Any]], str]) -> None:
        self.phases: dict[str, str] = {}
        self.changed = threading.Condition()
        self.phase_of = phase_of
        self.closed = False
        self._bench, self._url = bench, f"{bench.server}{path}"
        self._response = _open_watch(f"{self._url}?watch=1&timeoutSeconds=3600", bench)
        threading.Thread(target=self._follow, daemon=True).start()

    def _follow(self) -> None:
        response = self._response
        while not self.closed:
            with contextlib.suppress(OSError, ValueError):
                for line in response:
                    event = json.loads(line)
                    if event.get("type") == "ERROR":  # our version is too old: list again
                        break
                    obj = event.get("object") or {}
                    name = (obj.get("metadata") or {}).get("name", "")
                    with self.changed:
                        if event.get("type") == "DELETED":
                            self.phases.pop(name, None)
                        else:
                            self.phases[name] = self.phase_of(obj)
                        self.changed.notify_all()
            if self.closed:
                return
            # The stream ended: the API server drops a watcher that falls behind (a wave of
            # 10,000 did) or ends it at its timeout. List once, then watch from that list's
            # version, so no change is missed (the 2026-12-04 10k run lost its observer here).
            print("  (the observer's watch ended: listing and watching again)", flush=True)
            try:
                response = self._relist()
            except (OSError, ValueError):
                time.sleep(1.0)

    def _relist(self) -> Any:
        with urllib.request.urlopen(self._url, context=self._bench.tls_context(), timeout=600) as answer:  # noqa: S310
            listing = json.loads(answer.read())
        with self.changed:
            self.phases = {
                item["metadata"]["name"]: self.phase_of(item) for item in listing.get("items") or []
            }
            self.changed.notify_all()
        version = (listing.get("metadata") or {}).get("resourceVersion", "")
        return _open_watch(f"{self._url}?watch=1&timeoutSeconds=3600&resourceVersion={version}", self._bench)

    def wait_count(self, phase: str, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.changed:
            # A line a minute on long waves, so a 10k run can be followed (the watch's own
            # counts: no extra request to the API server).
            while not self.changed.wait_for(
                lambda: sum(p == phase for p in self.phases.values()) >= count,
                min(60.0, max(0.0, deadline - time.monotonic())),
            ):
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"{count} Deployments {phase} not reached: {self.summary()}")
                print(f"  waiting for {count} {phase}: {self.summary()}", flush=True)

    def summary(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for phase in self.phases.values():
            counts[phase] = counts.get(phase, 0) + 1
        return counts

    def close(self) -> None:
        # Closing the response from here would wait on the reader thread's blocking TLS read;
        # the server ends the watch itself (timeoutSeconds) and the daemon thread with it.
        self.closed = True


def operator_command(bench: Bench, namespace: str, concurrency: int) -> list[str]:
    """`-m alecton operator run ...` for one namespace of the benchmark's control plane."""
    return [
        "-m", "alecton", "operator", "run",
        "--kubeconfig", bench.kubeconfig, "--context", "alecton-a", "--namespace", namespace,
        "--helm", str(bench.bin / "helm"), "--charts-dir", str(REPO / "charts"),
        "--helm-concurrency", str(concurrency), "--allow-context", f"{namespace}=alecton-b@operator",
        "--namespace-share", "1",
        # The bench's own loopback chart repository (plain http), also for the runs after
        # the pairs (restart, drift) on releases whose chart came from it.
        "--allow-insecure-repositories",
    ]  # fmt: skip


class Operator:
    def __init__(
        self,
        bench: Bench,
        concurrency: int,
        namespace: str,
        shard: str = "",
        extra: tuple[str, ...] = (),
        profiler: tuple[str, ...] = (),  # e.g. ("-m", "pyinstrument", ...): run the operator under it
    ) -> None:
        self.port = free_port()
        self.log = bench.workdir / f"operator-{namespace}-{concurrency}{shard}.log"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                *profiler,
                *operator_command(bench, namespace, concurrency),
                "--probe-address",
                f"127.0.0.1:{self.port}",
                *(["--shard", shard] if shard else []),
                *extra,
            ],
            stdout=open(self.log, "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=1).status == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("operator did not become ready")

    def metric(self, name: str, **labels: str) -> float:
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10).read().decode()
        total = 0.0
        for line in text.splitlines():
            is_sample = line.startswith((name + "{", name + " "))
            if is_sample and all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


# ----- workload ------------------------------------------------------------------------------


def image_doc(version: str) -> dict[str, Any]:
    """The Image `web-<version>` of the workload's image `web`."""
    return {
        "apiVersion": API,
        "kind": "Image",
        "metadata": {"name": f"web-{version}"},
        "spec": {"name": "web", "version": version, "image": f"r/web:{version}"},
    }


def workload(
    namespace: str,
    deployments: int,
    target_ns: str,
    version: str = "1",
    suspend: bool = False,
    health: bool = False,
    shards: int = 0,
    replicas: int = 1,
    repository: str = "",
) -> list[dict[str, Any]]:
    """Cluster, Applications (64 targets each), one Image, `deployments` Deployments.
    `health`: Deployed only once each release's pod is Ready on the kwok nodes.
    `shards`: label the Deployments alecton.dev/shard=s0, s1, ... round robin.
    `replicas`: the chart's replicaCount (0: no pods at all, as in Flux's benchmark).
    `repository`: the chart from this chart repository (version 1.0.0) instead of the
    operator's charts directory."""
    values: dict[str, Any] = {"config": {"message": "bench"}}
    if replicas != 1:
        values["replicaCount"] = replicas
    docs: list[dict[str, Any]] = [
        {"apiVersion": API, "kind": "Cluster", "metadata": {"name": "b"}, "spec": {"context": "alecton-b"}},
        image_doc(version),
    ]
    apps = (deployments + 63) // 64
    for a in range(apps):
        targets = [
            {"name": f"t{t}", "cluster": "b", "namespace": target_ns}
            for t in range(min(64, deployments - a * 64))
        ]
        app_spec: dict[str, Any] = {
            "chart": "webapp",
            "image": "web",
            "values": values,
            "health": "Check" if health else "None",
            "targets": targets,
        }
        if repository:
            app_spec |= {"repository": repository, "chartVersion": "1.0.0"}
        docs.append(
            {"apiVersion": API, "kind": "Application", "metadata": {"name": f"web{a}"}, "spec": app_spec}
        )
        for target in targets:
            spec: dict[str, Any] = {"application": f"web{a}", "target": target["name"], "version": version}
            if suspend:
                spec["suspend"] = True
            metadata: dict[str, Any] = {"name": f"web{a}-{target['name']}"}
            if shards:
                index = a * 64 + int(target["name"][1:])  # t0, t1, ... within the Application
                metadata["labels"] = {"alecton.dev/shard": f"s{index % shards}"}
            docs.append({"apiVersion": API, "kind": "Deployment", "metadata": metadata, "spec": spec})
    return docs


def new_namespace(bench: Bench, name: str) -> str:
    bench.kubectl("create", "namespace", name)
    return name


@contextlib.contextmanager
def quiet_bench(prefix: str) -> Iterator[Bench]:
    """A fresh local control plane with the CRDs, for the profiling scripts; gone after."""
    from alecton.local.tools import tools_bin

    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        workdir = Path(tmp)
        plane = LocalControlPlane(workdir / "plane", log=lambda m: None)
        state = plane.up()
        bench = Bench(state.kubeconfig, tools_bin(), workdir, state.servers["a"], workdir / "plane" / "pki")
        try:
            bench.kubectl("apply", "-k", str(REPO / "crds"))
            bench.kubectl("wait", "--for=condition=Established", "crd", "--all")
            yield bench
        finally:
            plane.down(quiet=True)
