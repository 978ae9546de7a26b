"""The HTTP API and dashboard with thousands of Deployments (issue 26, point 7), on the real
control plane: 2000 Deployments (suspended, so no operator and no helm are needed) with a
realistic status, in 20 namespaces.

- `GET /v1/overview?allNamespaces=true` answers from each caller's own watch-fed view; the
  server's time (its Server-Timing header) is printed, cold (the first answer lists) and
  warm, and held to the goal of 300 ms warm.
- A caller who may read everything sees 2000 rows; a tenant bound in its own namespace
  sees that namespace only, never another tenant's, and loses it when its RoleBinding is
  deleted. Interleaved callers are never served with each other's client (proxy mode
  keeps one per caller).
- A status change of one Deployment reaches the live stream as that Deployment's row.

- In Chromium, with 2000 rows on the page, a change of one Deployment (status or spec)
  reaches its row without the rest being rendered again; the time from the PATCH to the
  row showing it is printed.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import statistics
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from alecton.kube.client import KubeClient
from alecton.local.controlplane import free_port
from alecton.service.server_settings import ApiServer
from alecton.web.identity import BearerIdentity
from playwright.sync_api import Browser, expect, sync_playwright

from tests.integration import resources as r
from tests.integration.harness import Cluster, WebProcess, wait_for
from tests.integration.tenant import as_tenant
from tests.integration.test_web_api import api_server, proxy_web

NAMESPACES, APPLICATIONS, TARGETS = 20, 10, 10  # 20 x 10 x 10 = 2000 Deployments
GOAL_MS = 300.0


def fleet_objects(namespace: str) -> list[dict[str, Any]]:
    """10 Applications of 10 targets each and a suspended Deployment per target."""
    docs: list[dict[str, Any]] = []
    for a in range(APPLICATIONS):
        app = r.application(f"app{a}", f"{namespace}-t0", image_name=f"app{a}", target="t0")
        app["spec"]["targets"] = [
            {"name": f"t{t}", "cluster": "target-b", "namespace": f"{namespace}-t{t}", "values": {}}
            for t in range(TARGETS)
        ]
        docs.append(app)
        docs.append(r.image(f"app{a}", "1.0.0", f"registry.example.com/app{a}:1.0.0"))
        docs += [r.deployment(f"app{a}", "1.0.0", target=f"t{t}", suspend=True) for t in range(TARGETS)]
    return docs


def deployed_status(namespace: str, name: str, phase: str = "Deployed") -> dict[str, Any]:
    """A status as the operator writes it after three releases."""
    history = [
        {"revision": rev, "status": "deployed" if rev == 3 else "superseded", "version": "1.0.0",
         "chart": "webapp-0.1.0", "appVersion": "1.0", "updated": "2026-12-01T09:00:00Z",
         "description": "Upgrade complete", "cause": "deploy"}
        for rev in (3, 2, 1)
    ]  # fmt: skip
    return {
        "phase": phase,
        "message": f"release {name} at revision 3",
        "observedGeneration": 1,
        "health": {"state": "Healthy", "message": "all objects ready"},
        "release": {
            "name": name,
            "namespace": f"{namespace}-target",
            "cluster": "target-b",
            "revision": 3,
            "status": "deployed",
            "chart": "webapp-0.1.0",
            "version": "1.0.0",
            "lastDeployed": "2026-12-01T09:00:00Z",
        },
        "history": history,
    }


async def write_statuses(kubeconfig: str, names: list[tuple[str, str]]) -> None:
    kube = await KubeClient.connect(kubeconfig, "alecton-a", agent="alecton-test")
    slots = asyncio.Semaphore(16)

    async def one(namespace: str, name: str) -> None:
        async with slots:
            await kube.patch_status("Deployment", namespace, name, deployed_status(namespace, name))

    try:
        await asyncio.gather(*(one(ns, name) for ns, name in names))
    finally:
        await kube.close()


def patch_phase(kubeconfig: str, namespace: str, name: str, phase: str) -> float:
    """Set one Deployment's phase; the wall-clock time just before the request was sent."""

    async def patch() -> float:
        kube = await KubeClient.connect(kubeconfig, "alecton-a", agent="alecton-test")
        try:
            await kube.get("Deployment", namespace, name)  # connected before the clock starts
            sent = time.time()
            await kube.patch_status(
                "Deployment", namespace, name, {"phase": phase, "message": f"now {phase}"}
            )
            return sent
        finally:
            await kube.close()

    return in_a_thread(patch)


def in_a_thread(run: Callable[[], Coroutine[Any, Any, float]]) -> float:
    """asyncio.run in a thread of its own (Playwright's sync API holds this thread's loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(run())).result()


class Fleet:
    def __init__(self, cluster: Cluster, namespaces: list[str]) -> None:
        self.cluster, self.namespaces = cluster, namespaces


@pytest.fixture(scope="module")
def fleet(crds: Cluster) -> Iterator[Fleet]:
    before = crds.namespaces()
    started = time.monotonic()
    namespaces = [crds.new_namespace(f"fleet{i:02d}") for i in range(NAMESPACES)]
    names = []
    for ns in namespaces:
        crds.kubectl("apply", "-n", ns, "-f", "-", stdin=yaml.safe_dump_all(fleet_objects(ns)))
        names += [(ns, f"app{a}-t{t}") for a in range(APPLICATIONS) for t in range(TARGETS)]
    asyncio.run(write_statuses(crds.kubeconfig, names))
    print(
        f"\n[scale] {len(names)} Deployments in {NAMESPACES} namespaces in {time.monotonic() - started:.1f} s"
    )
    try:
        yield Fleet(crds, namespaces)
    finally:
        crds.delete_namespaces_since(before)


def fleet_reader_token(cluster: Cluster, users_ns: str) -> str:
    """A ServiceAccount that may read every alecton kind in every namespace."""
    cluster.kubectl("apply", "-f", str(Path(__file__).resolve().parents[2] / "deploy" / "tenant-roles.yaml"))
    cluster.kubectl("create", "serviceaccount", "fleet-reader", "-n", users_ns)
    cluster.kubectl(
        "create", "clusterrolebinding", f"fleet-reader-{users_ns}", "--clusterrole=alecton-viewer",
        f"--serviceaccount={users_ns}:fleet-reader",
    )  # fmt: skip
    return cluster.kubectl("create", "token", "fleet-reader", "-n", users_ns, "--duration=1h").stdout.strip()


@pytest.fixture(scope="module")
def web(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebProcess]:
    process = proxy_web(fleet.cluster, tmp_path_factory.mktemp("web-scale"))
    try:
        yield process
    finally:
        process.stop()


def resident_kib(web: WebProcess) -> int:
    status = Path(f"/proc/{web.proc.pid}/status").read_text().splitlines()
    (line,) = [x for x in status if x.startswith("VmRSS")]
    return int(line.split()[1])


def server_ms(answer: httpx.Response) -> float:
    timing = answer.headers["server-timing"]  # app;dur=12.3
    return float(timing.split("dur=")[1])


def overview(http: httpx.Client, **params: Any) -> tuple[dict[str, Any], float]:
    answer = http.get("/v1/overview", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json(), server_ms(answer)


def test_all_namespaces_overview_of_2000_deployments_within_300_ms(fleet: Fleet, web: WebProcess) -> None:
    cluster = fleet.cluster
    users = cluster.new_namespace("fleet-users")
    token = fleet_reader_token(cluster, users)
    http = httpx.Client(base_url=web.url, headers={"Authorization": f"Bearer {token}"}, timeout=120)

    at_start = resident_kib(web)
    started = time.monotonic()
    first, cold_ms = overview(http, allNamespaces="true")
    cold_wall = (time.monotonic() - started) * 1000
    assert first["allNamespaces"] is True and first["errors"] == []
    assert set(fleet.namespaces) <= set(first["namespaces"])
    ours = [row for row in first["rows"] if row["namespace"] in fleet.namespaces]
    assert len(ours) == NAMESPACES * APPLICATIONS * TARGETS
    assert {row["phase"] for row in ours} == {"Deployed"}
    assert all(row["image"].startswith("registry.example.com/") for row in ours)

    warm = [overview(http, allNamespaces="true")[1] for _ in range(20)]
    one_namespace = [overview(http, namespace=fleet.namespaces[0])[1] for _ in range(10)]
    size = len(http.get("/v1/overview", params={"allNamespaces": "true"}).content)
    print(
        f"\n[scale] overview of {len(first['rows'])} rows in {len(first['namespaces'])} namespaces"
        f" ({size >> 10} KiB):"
        f" cold {cold_ms:.0f} ms server ({cold_wall:.0f} ms wall); warm server median"
        f" {statistics.median(warm):.1f} ms, max {max(warm):.1f} ms; one namespace median"
        f" {statistics.median(one_namespace):.1f} ms"
    )
    assert statistics.median(warm) <= GOAL_MS, warm
    memory = f"{at_start >> 10} MiB, with this view {resident_kib(web) >> 10} MiB"
    print(f"[scale] the web server's resident memory: {memory}")

    # A change shows in the next answer once the watch brought it (no re-list per request).
    target_ns = fleet.namespaces[3]
    patch_phase(cluster.kubeconfig, target_ns, "app4-t7", "Failed")

    def changed() -> bool:
        rows = overview(http, allNamespaces="true")[0]["rows"]
        return any(
            row["namespace"] == target_ns and row["deployment"] == "app4-t7" and row["phase"] == "Failed"
            for row in rows
        )

    wait_for(changed, 30, "the changed phase in the overview")
    patch_phase(cluster.kubeconfig, target_ns, "app4-t7", "Deployed")


def test_a_pooled_client_per_caller_saves_the_handshake(fleet: Fleet, tmp_path: Path) -> None:
    """Proxy mode's identity, in this process: a fresh client per request (a TLS handshake
    each, as before issue 26) against the caller's pooled one; printed, not asserted."""
    cluster = fleet.cluster
    token = fleet_reader_token(cluster, cluster.new_namespace("fleet-users"))
    identity = BearerIdentity(ApiServer(api_server(cluster, tmp_path / "ca.crt"), str(tmp_path / "ca.crt")))
    ns = fleet.namespaces[0]

    async def measure() -> tuple[list[float], list[float], int]:
        fresh, pooled = [], []
        for _ in range(20):
            started = time.perf_counter()
            kube = await identity.client(token)
            await kube.get("Deployment", ns, "app0-t0")
            await kube.close()
            fresh.append(time.perf_counter() - started)
        for _ in range(20):
            started = time.perf_counter()
            async with identity.lease(token) as kube:
                await kube.get("Deployment", ns, "app0-t0")
            pooled.append(time.perf_counter() - started)
        kept = len(identity.pool)
        await identity.close()
        return fresh, pooled, kept

    fresh, pooled, kept = asyncio.run(measure())
    assert kept == 1  # one client for the caller, reused by all 20 requests
    print(
        f"\n[scale] one GET as a proxy-mode caller: new client each {statistics.median(fresh) * 1000:.1f} ms,"
        f" pooled {statistics.median(pooled[1:]) * 1000:.1f} ms (medians of 20)"
    )


def test_a_tenant_sees_its_own_namespace_only_and_loses_it_with_its_binding(
    fleet: Fleet, web: WebProcess
) -> None:
    cluster = fleet.cluster
    mine, theirs = fleet.namespaces[0], fleet.namespaces[1]
    tenant = as_tenant(cluster, mine, "alecton-viewer", account="scale-tenant")
    token = cluster.kubectl("create", "token", tenant.account, "-n", mine, "--duration=1h").stdout.strip()
    http = httpx.Client(base_url=web.url, headers={"Authorization": f"Bearer {token}"}, timeout=120)
    # The fleet reader, interleaved: the pool keeps a client per caller, never shared.
    users = cluster.new_namespace("fleet-users")
    reader = httpx.Client(
        base_url=web.url,
        headers={"Authorization": f"Bearer {fleet_reader_token(cluster, users)}"},
        timeout=120,
    )

    for _ in range(5):
        seen, _ms = overview(http, allNamespaces="true")
        assert seen["namespaces"] == [mine], seen["namespaces"]
        assert {row["namespace"] for row in seen["rows"]} == {mine}
        assert len(seen["rows"]) == APPLICATIONS * TARGETS
        assert all(image["namespace"] == mine for image in seen["images"])
        everything, _ms = overview(reader, allNamespaces="true")
        assert theirs in everything["namespaces"]
        assert http.get("/v1/whoami").json()["user"] == tenant.user
        assert reader.get("/v1/whoami").json()["user"] == f"system:serviceaccount:{users}:fleet-reader"
    # Another tenant's namespace, asked for by name: the API server's refusal, no rows.
    refused, _ms = overview(http, namespace=theirs)
    assert refused["rows"] == [] and refused["errors"], refused
    events = first_stream_event(web, token, {"allNamespaces": "true"})
    assert events == ("ready", {"namespace": "", "errors": [], "allNamespaces": True})

    # Rights taken away: the cached view stops showing the namespace (re-checked by review).
    cluster.kubectl("delete", "rolebinding", "scale-tenant", "-n", mine)
    wait_for(lambda: overview(http, allNamespaces="true")[0]["rows"] == [], 30, "the namespace to be hidden")
    assert overview(http, namespace=mine)[0]["rows"] == []


def first_stream_event(web: WebProcess, token: str, params: dict[str, str]) -> tuple[str, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.stream("GET", f"{web.url}/v1/events", params=params, headers=headers, timeout=60) as stream:
        kind = ""
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                return kind, json.loads(line.removeprefix("data: "))
    raise AssertionError("the stream ended without an event")


def test_the_live_stream_sends_the_changed_row(fleet: Fleet, web: WebProcess) -> None:
    cluster = fleet.cluster
    users = cluster.new_namespace("fleet-users")
    token = fleet_reader_token(cluster, users)
    rows: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    ready, seen = threading.Event(), threading.Event()
    ns = fleet.namespaces[5]

    def listen() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{web.url}/v1/events"
        with httpx.stream(
            "GET", url, params={"allNamespaces": "true"}, headers=headers, timeout=90
        ) as stream:
            kind = ""
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    data = json.loads(line.removeprefix("data: "))
                    if kind == "ready":
                        ready.set()
                    elif kind == "row":
                        rows.append(data)
                        if data["namespace"] == ns and data["phase"] == "Degraded":
                            seen.set()
                            return
                    else:
                        changes.append(data)

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert ready.wait(60)
    patch_phase(cluster.kubeconfig, ns, "app2-t3", "Degraded")
    assert seen.wait(30), (rows, changes)
    (row,) = [row for row in rows if row["namespace"] == ns and row["phase"] == "Degraded"]
    assert (row["application"], row["target"], row["deployment"]) == ("app2", "t3", "app2-t3")
    assert row["image"] == "registry.example.com/app2:1.0.0" and row["cluster"] == "target-b"
    assert changes == []  # a status change is its row, not a full refresh
    listener.join(5)


# ---------------------------------------------------------------------------
# The dashboard in Chromium with 2000 rows

SEEN_SCRIPT = """([ns, app, target, field, text]) => {
  window.rowSeen = 0;
  const body = document.querySelector('#rows tbody');
  const row = `tr[data-namespace="${ns}"][data-app="${app}"][data-target="${target}"]`;
  const selector = `${row} [data-field="${field}"]`;
  const observer = new MutationObserver(() => {
    const cell = body.querySelector(selector);
    if (cell && cell.textContent.includes(text)) {
      window.rowSeen = Date.now();
      observer.disconnect();
    }
  });
  observer.observe(body, { childList: true, subtree: true, characterData: true });
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium is needed (.ci/run installs it)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])  # root in CI
        try:
            yield launched
        finally:
            launched.close()


def patch_version(kubeconfig: str, namespace: str, name: str, version: str) -> float:
    async def patch() -> float:
        kube = await KubeClient.connect(kubeconfig, "alecton-a", agent="alecton-test")
        try:
            await kube.get("Deployment", namespace, name)
            sent = time.time()
            await kube.patch("Deployment", namespace, name, {"spec": {"version": version}})
            return sent
        finally:
            await kube.close()

    return in_a_thread(patch)


def test_a_change_reaches_its_row_among_2000_in_chromium(
    fleet: Fleet, browser: Browser, tmp_path: Path
) -> None:
    cluster = fleet.cluster
    token = secrets.token_urlsafe(32)
    dashboard = WebProcess(
        ["dashboard", "--no-browser", "--kubeconfig", cluster.kubeconfig, "--context", "alecton-a",
         "-n", fleet.namespaces[0]],
        free_port(), tmp_path, env={"ALECTON_DASHBOARD_TOKEN": token},
    )  # fmt: skip
    problems: list[str] = []
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        started = time.monotonic()
        page.goto(f"{dashboard.url}/?allNamespaces=true#token={token}")
        rows = page.locator("#rows tbody tr[data-app]")
        expect(rows).to_have_count(NAMESPACES * APPLICATIONS * TARGETS, timeout=60_000)
        shown = time.monotonic() - started
        expect(page.locator("#live")).to_have_text("live", timeout=30_000)
        renders = page.evaluate("document.body.dataset.renders")

        latencies = []
        for i, ns in enumerate(fleet.namespaces[10:15]):
            phase = ("Failed", "Degraded", "Verifying", "Deploying", "RolledBack")[i]
            page.evaluate(SEEN_SCRIPT, [ns, "app1", "t1", "phase", phase])
            sent = patch_phase(cluster.kubeconfig, ns, "app1-t1", phase)
            wait_for(lambda: page.evaluate("window.rowSeen") > 0, 10, "the row to change", interval=0.01)
            latencies.append(page.evaluate("window.rowSeen") / 1000 - sent)
        ns = fleet.namespaces[16]
        page.evaluate(SEEN_SCRIPT, [ns, "app8", "t2", "version", "1.1.0"])
        sent = patch_version(cluster.kubeconfig, ns, "app8-t2", "1.1.0")
        wait_for(lambda: page.evaluate("window.rowSeen") > 0, 10, "the row to change", interval=0.01)
        spec_latency = page.evaluate("window.rowSeen") / 1000 - sent

        # Each change patched its row only: the 2000 rows were not rendered again.
        assert page.evaluate("document.body.dataset.renders") == renders
        assert int(page.evaluate("document.body.dataset.rowUpdates")) >= 6
        expect(rows).to_have_count(NAMESPACES * APPLICATIONS * TARGETS)
        print(
            f"\n[scale] Chromium: 2000 rows shown {shown:.1f} s after opening; status change to row:"
            f" {', '.join(f'{x * 1000:.0f}' for x in latencies)} ms (median"
            f" {statistics.median(latencies) * 1000:.0f} ms); spec change to row {spec_latency * 1000:.0f} ms"
        )
        assert problems == []
    finally:
        context.close()
        dashboard.stop()
