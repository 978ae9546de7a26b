"""Tenant input cannot stall the event loop (issue 23), on the real control plane: a tenant's
catastrophic version pattern and a chart failing with a megabyte of text are processed
while /healthz keeps answering within a second.

With Python's `re`, `^(a+)+$` against 48 "a"s and a "_" backtracks for days, and classifying a
`fail` message of repeated "did not finish within " took over a minute: the operator's one
event loop (and so /healthz) stopped answering.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration import resources as r
from tests.integration.harness import TEST_CHARTS, Cluster, OperatorProcess, wait_for

EVIL_PATTERN = "^(a+)+$"
EVIL_VERSION = "a" * 48 + "_"
# A chart `fail` of about 1 MB: the words a linear classifier must not trip over.
FAIL_WORD = "did not finish within "
FAIL_REPEAT = 48_000
PROBE_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def operator(crds: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    process = OperatorProcess(
        crds, "helm", tmp_path_factory.mktemp("bounds"), extra_args=("--charts-dir", str(TEST_CHARTS))
    )
    process.start()
    before = crds.namespaces()
    try:
        wait_for(
            lambda: healthz(process.metrics_port) is not None, 60, "the operator's /healthz", interval=0.5
        )
        yield process
        crds.delete_namespaces_since(before)
    finally:
        process.stop()


def healthz(port: int) -> float | None:
    """Seconds /healthz took to answer 200, None when it did not within PROBE_TIMEOUT."""
    started = time.monotonic()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=PROBE_TIMEOUT) as response:
            if response.status != 200:
                return None
    except OSError:
        return None
    return time.monotonic() - started


class Prober:
    """/healthz, again and again in a thread, every answer (or its absence) recorded."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.latencies: list[float | None] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.latencies.append(healthz(self.port))
            self._stop.wait(0.1)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2 * PROBE_TIMEOUT + 1)


def deployment_of(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    return cluster.get("deployments.alecton.dev", name, ns) or {}


def stalled_by_the_chart(cluster: Cluster, ns: str, name: str) -> dict[str, Any] | None:
    """The status once the operator classified helm's failure (Stalled: TemplateError)."""
    obj = deployment_of(cluster, ns, name)
    status = obj.get("status") or {}
    if status.get("observedGeneration") != obj.get("metadata", {}).get("generation"):
        return None
    stalled = [c for c in status.get("conditions") or [] if c.get("type") == "Stalled"]
    if status.get("phase") == "Failed" and stalled and stalled[0].get("status") == "True":
        return status
    return None


def test_a_tenants_evil_pattern_and_huge_helm_error_never_stall_healthz(operator: OperatorProcess) -> None:
    cluster = operator.cluster
    ns = cluster.new_namespace("bounds")
    app = r.application(
        "evil",
        f"{ns}-fail",
        image_name="evil",
        chart="bigfail",
        values={"word": FAIL_WORD, "repeat": FAIL_REPEAT},
        target="fail",
    )
    app["spec"]["targets"].append({"name": "promo", "cluster": "target-b", "namespace": f"{ns}-promo"})
    cluster.apply(r.cluster(), app, namespace=ns)

    with Prober(operator.metrics_port) as prober:
        # The tenant's inputs: an Image version the pattern backtracks on (and one it takes),
        # a Deployment following that pattern, and one deploying the failing chart.
        cluster.apply(
            r.image("evil", EVIL_VERSION, "r/evil:1", object_name="evil-backtracks"),
            r.image("evil", "aaa", "r/evil:2", object_name="evil-aaa"),
            r.image("evil", "1.0.0", "r/evil:3"),
            r.promoted("evil", {"versions": {"pattern": EVIL_PATTERN}}, target="promo"),
            r.deployment("evil", "1.0.0", target="fail"),
            namespace=ns,
        )
        # The operator matched the pattern against every Image (choosing "aaa"), and ran
        # helm and classified its megabyte of stderr.
        wait_for(
            lambda: deployment_of(cluster, ns, "evil-promo").get("spec", {}).get("version") == "aaa",
            120,
            "the promotion to choose version aaa",
        )
        status = wait_for(
            lambda: stalled_by_the_chart(cluster, ns, "evil-fail"), 120, "the failing chart to be classified"
        )
        wait_for(lambda: stalled_by_the_chart(cluster, ns, "evil-promo"), 120, "the promoted version to fail")

    answered = [seconds for seconds in prober.latencies if seconds is not None]
    missed = len(prober.latencies) - len(answered)
    assert len(prober.latencies) >= 3, prober.latencies  # it probed while the operator worked
    assert missed == 0, f"{missed} of {len(prober.latencies)} /healthz probes got no answer within 1 s"
    assert max(answered) < PROBE_TIMEOUT, max(answered)
    print(
        f"/healthz: {len(answered)} probes, max {max(answered) * 1000:.0f} ms, "
        f"median {sorted(answered)[len(answered) // 2] * 1000:.0f} ms"
    )

    # What the tenant sees: helm's words, classified, in a message of bounded size.
    (stalled,) = [c for c in status["conditions"] if c["type"] == "Stalled"]
    assert stalled["reason"] == "TemplateError", stalled
    assert "execution error at (bigfail/templates/fail.yaml" in status["message"]
    assert len(status["message"]) <= 1024
    assert len(json.dumps(status)) < 8 * 1024
    assert "did not finish within did not finish within" in status["message"]


def gzip_bomb(megabytes: int) -> bytes:
    """gzip of `megabytes` MiB of zeros, built a MiB at a time (about 1000:1)."""
    import zlib

    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    return b"".join(packer.compress(zeros) for _ in range(megabytes)) + packer.flush()


def conflict(cluster: Cluster, ns: str) -> dict[str, Any] | None:
    got = deployment_of(cluster, ns, "web-staging")
    status = got.get("status") or {}
    return got if status.get("phase") == "Conflict" else None


def test_a_gzip_bomb_in_helms_storage_never_stalls_healthz(operator: OperatorProcess) -> None:
    """helm's storage in a target namespace is whatever its writers put there: a release that
    expands to 512 MiB is refused (never "nobody's"), while /healthz keeps answering."""
    import base64

    cluster = operator.cluster
    ns = cluster.new_namespace("bomb")
    target_ns = f"{ns}-web"
    cluster.kubectl("create", "namespace", target_ns, context="alecton-b")
    payload = base64.b64encode(base64.b64encode(gzip_bomb(512))).decode()
    storage = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "helm.sh/release.v1",
        "metadata": {
            "name": "sh.helm.release.v1.web-staging.v1",
            "labels": {"owner": "helm", "name": "web-staging", "version": "1", "status": "deployed"},
        },
        "data": {"release": payload},
    }
    cluster.kubectl("create", "-n", target_ns, "-f", "-", context="alecton-b", stdin=json.dumps(storage))
    cluster.apply(
        r.cluster(),
        r.application("web", target_ns, chart="probe"),
        r.image("web", "1", "r/web:1"),
        namespace=ns,
    )
    with Prober(operator.metrics_port) as prober:
        cluster.apply(r.deployment("web", "1"), namespace=ns)
        obj = wait_for(lambda: conflict(cluster, ns), 120, "the owner check to refuse the release")
    assert "was not made by alecton" in obj["status"]["message"], obj["status"]["message"]
    answered = [seconds for seconds in prober.latencies if seconds is not None]
    assert prober.latencies and len(answered) == len(prober.latencies), prober.latencies
    assert max(answered) < PROBE_TIMEOUT, max(answered)
