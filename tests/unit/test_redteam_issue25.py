"""Red team, issue 25: the pure and local parts of the Notifier rows, attacked as a tenant.
Each test FAILS if the attack succeeds.

Held: numeric and mapped host forms, redirects, another namespace's Secret, secrets in
status. Broken (at the time of writing): IPv6 forms that embed an internal IPv4 address
(NAT64, 6to4, IPv4-compatible, SIIT), the platform's commit-status ClusterNotifier writing
a status another team's branch protection trusts, and per-Notifier metric series that
outlive their Notifier.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from alecton.handlers import notify_delivery
from alecton.handlers.indexes import Indexes
from alecton.handlers.notifiers import Notifiers
from alecton.metrics import Metrics
from alecton.reconcile.news import Kind, News, Severity
from alecton.reconcile.notify_address import AddressRefusedError, check_literal, refusal
from alecton.reconcile.notify_payloads import Credentials, Request, Source, request_for
from alecton.reconcile.notify_policy import CLUSTER_NOTIFIER, parse_notifier


class Kube:
    def __init__(self) -> None:
        self.statuses: list[tuple[str, str, dict[str, Any]]] = []
        self.secrets: dict[tuple[str, str], dict[str, bytes]] = {}
        self.secret_reads: list[tuple[str, str]] = []

    async def read_secret(self, namespace: str, name: str) -> dict[str, bytes] | None:
        self.secret_reads.append((namespace, name))
        return self.secrets.get((namespace, name))

    async def patch_status(
        self, kind: str, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        self.statuses.append((namespace, name, status))
        return {}

    async def patch_cluster_status(self, kind: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        self.statuses.append(("", name, status))
        return {}


def news(namespace: str = "team-a", version: str = "1.0.0", kind: Kind = Kind.DEPLOYED) -> News:
    return News(
        kind=kind,
        severity=Severity.INFO,
        namespace=namespace,
        deployment="web-prod",
        application="web",
        target="prod",
        time="2026-12-03T06:00:00Z",
        version=version,
    )


def notifier(namespace: str, name: str = "hook", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "generation": 1},
        "spec": {"provider": "webhook", **spec},
    }


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def receiver(host: str = "127.0.0.1", redirect_to: str = "") -> tuple[web.AppRunner, int, list[str]]:
    hits: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        hits.append(request.path)
        if redirect_to:
            return web.Response(status=307, headers={"Location": redirect_to})
        return web.Response(status=200)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    return runner, runner.addresses[0][1], hits


def hub(kube: Kube, allowed: Any = ()) -> Notifiers:
    return Notifiers(kube, Indexes(), Metrics().notifier_metrics(), allowed, "alecton-system")  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notify_delivery, "BACKOFF_BASE", 0.01)
    monkeypatch.setattr(notify_delivery, "STATUS_INTERVAL", 0.05)


# ----- SSRF --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "2130706433",  # decimal 127.0.0.1
        "0x7f000001",  # hex
        "0177.0.0.1",  # octal
        "127.1",  # short form
        "0",  # 0.0.0.0 (reaches local listeners)
        "[::ffff:127.0.0.1]",  # IPv4-mapped
        "[::ffff:7f00:1]",
        "[0:0:0:0:0:ffff:7f00:1]",
        "localhost",
        "LOCALHOST",
    ],
)
def test_odd_forms_of_loopback_are_never_connected_to(host: str) -> None:
    """held: literals are judged by ipaddress, everything else by the resolver hook."""

    async def scenario() -> None:
        runner, port, hits = await receiver("0.0.0.0")
        kube = Kube()
        notifiers = hub(kube)
        await notifiers.changed(notifier("team-a", address=f"http://{host}:{port}/x"), "Notifier")
        notifiers.publish([news()])
        delivery = notifiers.deliveries[("Notifier", "team-a", "hook")]
        await until(lambda: delivery.state.last is not None)
        assert hits == [], f"BROKEN: {host} reached a loopback receiver"
        last = delivery.state.last
        # refused by the resolver hook, or (decimal, octal, short forms) by yarl as a
        # non-canonical IPv4 address before any connection
        assert last is not None and last.result in ("refused", "failure"), last
        await notifiers.stop()
        await runner.cleanup()

    asyncio.run(scenario())


@pytest.mark.parametrize("host", ["\uff11\uff12\uff17.\uff10.\uff10.\uff11", "127\u30020\u30020\u30021"])
def test_unicode_forms_of_an_ip_literal_are_judged_as_the_ip_they_become(host: str) -> None:
    """BROKEN: `parse_target` reads the host with urllib (fullwidth digits, ideographic full
    stops: not an IP, "a name, judged when it resolves"), but aiohttp's yarl normalises it
    (IDNA/NFKC) to `127.0.0.1`, an IP literal, and aiohttp connects to IP literals without
    calling the resolver: the guard is never asked.
    `http://\uff11\uff16\uff19.\uff12\uff15\uff14.\uff11\uff16\uff19.\uff12\uff15\uff14/`
    is the cloud metadata service over plain http."""

    async def scenario() -> None:
        runner, port, hits = await receiver("0.0.0.0")
        kube = Kube()
        notifiers = hub(kube)  # nothing internal allowed
        await notifiers.changed(notifier("team-a", address=f"http://{host}:{port}/x"), "Notifier")
        notifiers.publish([news()])
        delivery = notifiers.deliveries[("Notifier", "team-a", "hook")]
        await until(lambda: delivery.state.last is not None)
        await notifiers.stop()
        await runner.cleanup()
        assert hits == [], f"BROKEN: http://{host}:{port}/ reached a loopback receiver: {delivery.state.last}"

    asyncio.run(scenario())


def test_a_redirect_from_an_allowed_receiver_to_an_internal_one_is_not_followed() -> None:
    """held: allow_redirects=False; the 3xx is a failure, the internal receiver sees nothing."""

    async def scenario() -> None:
        inner, inner_port, inner_hits = await receiver("127.0.0.2")
        outer, outer_port, outer_hits = await receiver(
            "127.0.0.1", redirect_to=f"http://127.0.0.2:{inner_port}/meta"
        )
        from alecton.reconcile.notify_address import parse_networks

        kube = Kube()
        notifiers = hub(kube, allowed=parse_networks(["127.0.0.1/32"]))
        await notifiers.changed(notifier("team-a", address=f"http://127.0.0.1:{outer_port}/"), "Notifier")
        notifiers.publish([news()])
        delivery = notifiers.deliveries[("Notifier", "team-a", "hook")]
        await until(lambda: delivery.state.last is not None)
        assert outer_hits == ["/"]
        assert inner_hits == [], "BROKEN: the redirect was followed to an address that is not allowed"
        await notifiers.stop()
        await outer.cleanup()
        await inner.cleanup()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::a9fe:a9fe",  # NAT64 (RFC 6052) of 169.254.169.254: IPv6-only clusters (EKS, GKE) route it
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1: the VPC's private network through the NAT64 gateway
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
        "::a9fe:a9fe",  # IPv4-compatible 169.254.169.254
        "::127.0.0.1",  # IPv4-compatible loopback
        "::ffff:0:a9fe:a9fe",  # SIIT IPv4-translated 169.254.169.254
    ],
)
def test_ipv6_forms_that_embed_an_internal_ipv4_address_are_refused(address: str) -> None:
    """BROKEN: Python 3.11's is_global says True for these; `refusal` unwraps only
    ::ffff:0:0/96. Where the network translates them (NAT64 on IPv6-only clusters), the
    operator reaches the metadata service or the VPC."""
    assert refusal(address, (), False) is not None, f"BROKEN: {address} is not refused"
    with pytest.raises(AddressRefusedError):
        check_literal(f"https://[{address}]/hook", ())


# ----- Secrets -----------------------------------------------------------------------------


def test_a_secret_ref_never_reads_another_namespaces_secret() -> None:
    """held: the Secret is read from the Notifier's own namespace, whatever secretRef says."""

    async def scenario() -> None:
        runner, port, hits = await receiver()
        from alecton.reconcile.notify_address import parse_networks

        kube = Kube()
        kube.secrets[("team-b", "slack")] = {"address": f"http://127.0.0.1:{port}/T0/B0/stolen".encode()}
        notifiers = hub(kube, allowed=parse_networks(["127.0.0.0/8"]))
        body = notifier("team-a", secretRef={"name": "slack", "namespace": "team-b"})
        await notifiers.changed(body, "Notifier")
        notifiers.publish([news()])
        delivery = notifiers.deliveries[("Notifier", "team-a", "hook")]
        await until(lambda: delivery.state.last is not None)
        assert kube.secret_reads and all(ns == "team-a" for ns, _ in kube.secret_reads), kube.secret_reads
        assert hits == []
        await notifiers.stop()
        await runner.cleanup()

    asyncio.run(scenario())


def test_no_token_hmac_key_or_secret_address_in_status_or_body() -> None:
    """held: errors are scrubbed, bodies carry the News only, the key only signs."""

    async def scenario() -> None:
        from alecton.reconcile.notify_address import parse_networks

        got: list[tuple[dict[str, str], bytes]] = []

        async def handle(request: web.Request) -> web.Response:
            got.append((dict(request.headers), await request.read()))
            return web.Response(status=500, text="echo")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        kube = Kube()
        token, key, path = "tok-S3CRET-9f8e", "hmac-K3Y-77aa", "/T000/B000/XXXXpathsecret"
        kube.secrets[("team-a", "hook")] = {
            "address": f"http://127.0.0.1:{port}{path}".encode(),
            "token": token.encode(),
            "hmacKey": key.encode(),
        }
        notifiers = hub(kube, allowed=parse_networks(["127.0.0.0/8"]))
        await notifiers.changed(notifier("team-a", secretRef={"name": "hook"}), "Notifier")
        notifiers.publish([news()])
        await until(lambda: len(got) >= 2 and len(kube.statuses) >= 2)
        # a second Notifier pointing at a closed port: the connection error names the URL
        kube.secrets[("team-a", "dead")] = {
            "address": f"http://127.0.0.1:1{path}".encode(),
            "token": token.encode(),
        }
        await notifiers.changed(notifier("team-a", "dead", secretRef={"name": "dead"}), "Notifier")
        notifiers.publish([news(version="2.0.0")])
        dead = notifiers.deliveries[("Notifier", "team-a", "dead")]
        await until(lambda: dead.state.failures >= 1)
        await until(lambda: any(s[1] == "dead" and s[2].get("lastError") for s in kube.statuses))
        for secret in (token, key, path.strip("/")):
            assert secret not in json.dumps(kube.statuses), f"BROKEN: {secret} in status"
            assert all(secret.encode() not in body for _, body in got), f"BROKEN: {secret} in a body"
        await notifiers.stop()
        await runner.cleanup()

    asyncio.run(scenario())


# ----- commit statuses ---------------------------------------------------------------------


def test_a_tenants_image_cannot_make_the_platforms_cluster_notifier_vouch_for_another_teams_commit() -> None:
    """BROKEN: a ClusterNotifier (the platform's GitHub token, every namespace) posts the commit
    status to whatever repository the tenant's own Image `spec.source` names, with context
    `alecton/<target>`. Team A records Image `web 6.6.6` with team B's repository and a
    commit of B's, deploys it to its own `prod`, and the platform writes `alecton/prod:
    success` on B's commit: exactly the check B's branch protection requires."""
    platform = parse_notifier(
        {
            "metadata": {"name": "github", "generation": 1},
            "spec": {"provider": "github", "secretRef": {"name": "github-app"}},
        },
        CLUSTER_NOTIFIER,
    )
    forged = Source("https://github.com/team-b/payments.git", "0123456789abcdef0123456789abcdef01234567")
    request = request_for(
        platform, news("team-a", "6.6.6", Kind.HEALTHY), Credentials(token="platform"), forged
    )
    if isinstance(request, Request):
        context = json.loads(request.body)["context"]
        assert "team-a" in context, (
            f"BROKEN: team-a's deploy writes {context!r}={json.loads(request.body)['state']} "
            f"to {request.url}, indistinguishable from team-b's own deploys"
        )


# ----- metrics -----------------------------------------------------------------------------


def test_notifiers_made_and_deleted_in_a_loop_leave_no_metric_series() -> None:
    """BROKEN: `NotifierMetrics.forget` removes the queue gauge only; the deliveries and dropped
    counters keep one series per Notifier name ever seen, so a tenant creating Notifiers with
    fresh names grows /metrics (and Prometheus) without bound."""

    async def scenario() -> None:
        from alecton.reconcile.notify_address import parse_networks

        runner, port, hits = await receiver()
        kube = Kube()
        metrics = Metrics()
        notifiers = Notifiers(
            kube, Indexes(), metrics.notifier_metrics(), parse_networks(["127.0.0.0/8"]), "x"
        )  # type: ignore[arg-type]
        for i in range(20):
            await notifiers.changed(
                notifier("team-a", f"n{i}", address=f"http://127.0.0.1:{port}/"), "Notifier"
            )
            notifiers.publish([news(version=f"1.0.{i}")])
            await until(lambda i=i: len(hits) > i)
            await notifiers.deleted(("Notifier", "team-a", f"n{i}"))
        series = [
            sample.labels["notifier"]
            for family in metrics.registry.collect()
            for sample in family.samples
            if "notifier" in sample.labels
        ]
        assert not series, f"BROKEN: {len(series)} series remain for {len(set(series))} deleted Notifiers"
        await runner.cleanup()

    asyncio.run(scenario())


# ----- freezes -----------------------------------------------------------------------------


def test_a_deploy_released_by_an_override_says_so_in_its_news_and_record() -> None:
    """BROKEN: news.py imports FREEZE_OVERRIDE_ANNOTATION but never uses it. A release that
    went out during a freeze because of an override makes the same News (and so the same
    ReleaseRecord, audit line and webhook) as any other: the override's reason is on the
    Deployment only until the next override replaces it, and `requestedBy` names whoever last
    changed the spec, not whoever wrote the override (a metadata-only write keeps it)."""
    from alecton.reconcile.news import CHANGED_BY_ANNOTATION, FREEZE_OVERRIDE_ANNOTATION

    from tests.unit.test_news import released
    from tests.unit.test_summary import summary, upgrade

    body, step = upgrade()
    generation = int(body["metadata"].get("generation") or 1)
    body["metadata"]["generation"] = generation
    body["metadata"]["annotations"] = {
        CHANGED_BY_ANNOTATION: "system:serviceaccount:team:alice",
        FREEZE_OVERRIDE_ANNOTATION: f"{generation}:mallory-was-here",
    }
    news_items = summary(body, step, released()).news
    assert news_items
    text = json.dumps([n.as_dict() for n in news_items])
    assert "mallory-was-here" in text, f"BROKEN: the override is in no News/ReleaseRecord: {text}"


def test_a_platform_freeze_of_a_cluster_is_not_dodged_by_renaming_the_tenants_cluster_object() -> None:
    """BROKEN (design): ClusterFreeze `spec.clusters` matches the *name of the tenant's own
    Cluster object* (namespaced, chosen by the tenant), not the place it reaches. The platform
    freezes `clusters: [prod]`; a tenant whose grant reaches the same context names its Cluster
    object `prod-eu` (or anything) and deploys without an override and without a trace."""
    from datetime import UTC, datetime

    from alecton.reconcile.freeze import DeploymentFacts, Freeze, active_freezes

    platform = Freeze.parse(
        {
            "kind": "ClusterFreeze",
            "metadata": {"name": "prod-freeze"},
            "spec": {"reason": "black friday", "clusters": ["prod"]},
        }
    )
    now = datetime(2026, 12, 3, 7, 0, tzinfo=UTC)
    # The facts carry the place a Cluster object reaches (`context`, as the platform names it
    # in `--allow-context`): without it a renamed object cannot be told from another cluster.
    honest = DeploymentFacts("team-a", "web", "prod", cluster="prod", context="prod")
    renamed = DeploymentFacts("team-a", "web", "prod", cluster="definitely-not-prod", context="prod")
    elsewhere = DeploymentFacts("team-a", "web", "prod", cluster="staging", context="staging")
    assert active_freezes([platform], honest, now)
    assert active_freezes([platform], renamed, now), (
        "BROKEN: the same context, reached through a Cluster object of another name, is not frozen"
    )
    assert not active_freezes([platform], elsewhere, now)


def test_the_freeze_list_of_a_namespace_shows_no_platform_freeze_scoped_to_another_namespace() -> None:
    """BROKEN (low: ClusterFreezes are readable by everyone signed in, as documented):
    `GET /v1/freezes?namespace=team-a` and the dashboard's banner list every active
    ClusterFreeze, also one whose `namespaces` selects only team-b, with team-b's reason, as
    a "Platform freeze" of team-a's page (which it does not hold)."""
    from alecton.service.freezes import freeze_rows

    class Client:
        async def list(self, kind: str, namespace: str | None) -> list[dict[str, Any]]:
            if kind == "ClusterFreeze":
                return [
                    {
                        "kind": "ClusterFreeze",
                        "metadata": {"name": "incident-b"},
                        "spec": {
                            "reason": "team-b breach INC-991, credentials rotated",
                            "namespaces": ["team-b"],
                        },
                    }
                ]
            return []

    rows = asyncio.run(freeze_rows(Client(), "team-a"))  # type: ignore[arg-type]
    leaked = [row for row in rows if "team-b" in row["reason"]]
    assert not leaked, f"BROKEN: team-a's freeze list shows {leaked}"


# ----- DORA metrics ------------------------------------------------------------------------


def test_one_deployment_moving_between_targets_does_not_grow_the_dora_series() -> None:
    """BROKEN: the DORA series are keyed (namespace, application, target) and removed only on
    an Uninstalled News of that key. Deployment `spec.target` (and `spec.application`) is
    mutable, and the tenant writes its Application's target list: one Deployment moved
    through fresh target names, one deploy each, leaves a series set per name ever used
    ("bounded by the Deployments" does not hold)."""
    from alecton.handlers.dora_metrics import DoraMetrics

    metrics = Metrics()
    sink = DoraMetrics(metrics.dora, Indexes())
    for i in range(50):
        sink.publish(
            [
                News(
                    Kind.DEPLOYED,
                    Severity.INFO,
                    "team-a",
                    "web-x",
                    "web",
                    f"t{i}",
                    f"2026-12-03T06:{i:02d}:00Z",
                    version="1.0",
                    revision=i + 1,
                )
            ]
        )
    targets = {
        sample.labels["target"]
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.labels.get("namespace") == "team-a"
    }
    assert len(targets) <= 1, f"BROKEN: one Deployment holds series for {len(targets)} targets"


# ----- the audit trail ---------------------------------------------------------------------


def test_one_tenants_unwritable_records_do_not_delay_or_drop_another_tenants_failure() -> None:
    """BROKEN: one writer task drains one queue for every namespace, and retries a failing
    record for up to 20 attempts (about 15 minutes at the 60 s cap) before the next one. A
    namespace whose records the API server refuses with 403 (a platform's ResourceQuota
    `count/releaserecords.alecton.dev` the tenant filled with its own transitions) holds the
    writer: team-b's `Failed` record waits behind it, and once 2000 are queued new records
    are dropped: team-b's failure is missing from the trail."""
    from alecton.handlers.audit import AuditTrail
    from alecton.kube.client import ApiException

    written: list[str] = []

    class Client:
        async def create(self, kind: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
            if namespace == "team-a":
                raise ApiException(status=403, reason="exceeded quota: count/releaserecords.alecton.dev")
            written.append(namespace)
            return body

    async def scenario() -> float:
        # Real backoff (1 s, 2 s, 4 s, ... per attempt): one shared writer would hold team-b's
        # record behind 3 x 20 attempts of team-a's; a writer per namespace writes it at once.
        trail = AuditTrail(Client(), lambda news: None, queue_size=3)  # type: ignore[arg-type]
        trail.start()
        started = asyncio.get_running_loop().time()
        flood = [news("team-a", f"1.0.{i}") for i in range(5)]  # 2 over team-a's queue: dropped
        at = "2026-12-03T06:00:00Z"
        victim = News(Kind.FAILED, Severity.ERROR, "team-b", "pay-prod", "pay", "prod", at,
                      version="2.0.0", reason="HealthCheckFailed")  # fmt: skip
        trail.publish([*flood, victim])
        await until(lambda: "team-b" in written, 10)
        waited = asyncio.get_running_loop().time() - started
        assert trail.dropped == 2  # team-a's own, not team-b's
        await trail.stop(drain=0)
        return waited

    waited = asyncio.run(scenario())
    assert waited < 1, f"BROKEN: team-b's Failed record waited {waited:.1f} s behind team-a's retries"


def test_a_tenants_failure_message_cannot_ping_or_phish_the_platforms_slack_channel() -> None:
    """BROKEN: Slack mrkdwn is built from tenant text (a chart's `fail` message, which helm
    returns as the Failed News's message; application and version names) without escaping
    `&`, `<` and `>`. Through the platform's ClusterNotifier, team A posts `<!channel>` and a
    link that reads as alecton's own (`<https://evil.example|Open in alecton>`) into the shared
    channel."""
    from alecton.reconcile.notify_policy import parse_notifier as parse

    platform = parse(
        {
            "metadata": {"name": "slack", "generation": 1},
            "spec": {"provider": "slack", "address": "https://hooks.slack.com/services/T/B/X"},
        },
        CLUSTER_NOTIFIER,
    )
    evil = News(
        Kind.FAILED,
        Severity.ERROR,
        "team-a",
        "web-prod",
        "web",
        "prod",
        "2026-12-03T06:00:00Z",
        version="1.0.0",
        message="<!channel> rollout blocked: <https://evil.example/sso|Open in alecton> to approve",
    )
    request = request_for(platform, evil, Credentials())
    assert isinstance(request, Request)
    body = request.body.decode()
    assert "<!channel>" not in body and "<https://evil.example" not in body, f"BROKEN: {body}"
