"""Notifiers on the real control plane (issue 25): local HTTP receivers started here get the
News of real deploys. A webhook receiver checks the HMAC signature; a receiver that is down
and then up gets every News exactly once; a receiver that hangs does not slow a wave of
deploys; Slack, commit-status and CloudEvents receivers see the right paths, headers and
bodies; tenants' Notifiers never see another tenant's News, never reach an internal address
the operator does not allow, and no Secret value ever reaches a receiver.

One operator for the module, allowed to reach 127.0.0.0/8 (--notify-allow-cidr), so the
receivers on 127.0.0.1 are reachable and 0.0.0.0 or 169.254.169.254 are not.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.integration import resources as r
from tests.integration.harness import REPO, Cluster, OperatorProcess, module_operator, wait_for, wait_phase
from tests.integration.tenant import Tenant, as_tenant

API = "alecton.dev/v1alpha1"
HMAC_KEY = f"hmac-{uuid.uuid4().hex}"
TOKEN = f"token-{uuid.uuid4().hex}"
MARKER = f"VALUE-SECRET-{uuid.uuid4().hex}"


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    answered: int

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """An HTTP receiver on 127.0.0.1 that records every request. `fail_first`: answer 503 to
    that many requests first; `hang`: never answer (until closed)."""

    def __init__(self, fail_first: int = 0, hang: bool = False) -> None:
        self.requests: list[Received] = []
        self.fail_first = fail_first
        self.hang = hang
        self.lock = threading.Lock()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if receiver.hang:
                    receiver.record(self, body, 0)
                    receiver.release.wait(120)
                    return
                with receiver.lock:
                    failing = receiver.fail_first > 0
                    receiver.fail_first -= 1 if failing else 0
                code = 503 if failing else 201
                receiver.record(self, body, code)
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def record(self, handler: BaseHTTPRequestHandler, body: bytes, code: int) -> None:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self.lock:
            self.requests.append(Received(handler.command, handler.path, headers, body, code))

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def accepted(self) -> list[Received]:
        with self.lock:
            return [request for request in self.requests if 200 <= request.answered < 300]

    def all(self) -> list[Received]:
        with self.lock:
            return list(self.requests)

    def kinds(self) -> set[str]:
        return {request.headers.get("x-alecton-event", "") for request in self.accepted()}

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for receiver in made:
        receiver.close()


def receiver(made: list[Receiver], **options: Any) -> Receiver:
    made.append(Receiver(**options))
    return made[-1]


@pytest.fixture(scope="module")
def notifying(crds: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    allow = ("--notify-allow-cidr", "127.0.0.0/8")
    with module_operator(crds, "helm", tmp_path_factory.mktemp("operator"), allow) as process:
        yield process
    log = process.log_since_start() if process.log_path.exists() else ""
    for secret in (HMAC_KEY, TOKEN):  # never logged, whatever happened
        assert secret not in log


def secret(name: str, **data: str) -> dict[str, Any]:
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": encoded}


def notifier(name: str, provider: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Notifier",
        "metadata": {"name": name},
        "spec": {"provider": provider, **spec},
    }


def notifier_status(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    return (cluster.get("notifiers.alecton.dev", name, ns) or {}).get("status") or {}


def ready_condition(status: dict[str, Any]) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})


def deploy(cluster: Cluster, ns: str, app: str = "web", version: str = "1.0.0", **values: Any) -> None:
    cluster.apply(
        r.cluster(),
        r.application(app, f"{ns}-{app}", values=values),
        r.image(app, version, "r/web:1"),
        r.deployment(app, version),
        namespace=ns,
    )


def test_a_signed_webhook_gets_deploy_started_and_deployed(
    notifying: OperatorProcess, receivers: list[Receiver]
) -> None:
    cluster = notifying.cluster
    ns = cluster.new_namespace("notify-hook")
    hook = receiver(receivers)
    cluster.apply(
        secret("hook", hmacKey=HMAC_KEY),
        notifier("hook", "webhook", address=f"{hook.url}/in", secretRef={"name": "hook"}),
        namespace=ns,
    )
    wait_for(
        lambda: ready_condition(notifier_status(cluster, ns, "hook")).get("status") == "True", 30, "Ready"
    )
    deploy(cluster, ns)
    wait_phase(cluster, ns, "web-staging", "Deployed")
    wait_for(lambda: {"DeployStarted", "Deployed"} <= hook.kinds(), 30, "DeployStarted and Deployed")
    for request in hook.accepted():
        expected = hmac.new(HMAC_KEY.encode(), request.body, hashlib.sha256).hexdigest()
        assert request.headers["x-alecton-signature"] == f"sha256={expected}"
        news = request.json()
        assert request.path == "/in" and request.headers["content-type"] == "application/json"
        assert news["key"] == request.headers["x-alecton-key"]
        assert (news["namespace"], news["application"], news["target"]) == (ns, "web", "staging")
    deployed = next(r.json() for r in hook.accepted() if r.headers["x-alecton-event"] == "Deployed")
    assert deployed["version"] == "1.0.0" and deployed["revision"] == 1
    status = wait_for(
        lambda: (s := notifier_status(cluster, ns, "hook")).get("lastDelivery") and s, 30, "status"
    )
    assert status["lastDelivery"]["result"] == "success" and status["failures"] == 0
    assert (
        notifying.metric("alecton_notification_deliveries_total", notifier=f"{ns}/hook", result="success")
        >= 2
    )


def test_a_receiver_down_then_up_gets_every_news_exactly_once(
    notifying: OperatorProcess, receivers: list[Receiver]
) -> None:
    cluster = notifying.cluster
    ns = cluster.new_namespace("notify-flaky")
    flaky = receiver(receivers, fail_first=3)
    cluster.apply(notifier("flaky", "webhook", address=flaky.url), namespace=ns)
    wait_for(lambda: notifier_status(cluster, ns, "flaky").get("conditions"), 30, "the Notifier's status")
    deploy(cluster, ns)
    wait_phase(cluster, ns, "web-staging", "Deployed")
    cluster.apply(r.image("web", "1.0.1", "r/web:2"), namespace=ns)
    cluster.patch_spec(ns, "web-staging", {"version": "1.0.1"})
    wait_phase(cluster, ns, "web-staging", "Deployed", appliedVersion="1.0.1")
    wait_for(
        lambda: (
            {("Deployed", "1.0.1")} <= {(r.json()["kind"], r.json().get("version")) for r in flaky.accepted()}
        ),
        60,
        "the second deploy's news after the retries",
    )
    refused = [request for request in flaky.all() if request.answered == 503]
    assert len(refused) == 3, "the first three attempts were refused and retried"
    keys = Counter(request.headers["x-alecton-key"] for request in flaky.accepted())
    assert keys and all(count == 1 for count in keys.values()), keys
    # every refused News came back and was accepted
    assert {r.headers["x-alecton-key"] for r in refused} <= set(keys)
    assert {"DeployStarted", "Deployed"} <= flaky.kinds()

    def recovered() -> dict[str, Any] | None:
        status = notifier_status(cluster, ns, "flaky")
        return status if ready_condition(status).get("status") == "True" and status.get("failures") else None

    status = wait_for(recovered, 30, "Ready again after the failures")
    assert status["failures"] == 3 and status["lastError"] == "HTTP 503"


def _wave(cluster: Cluster, ns: str, count: int) -> float:
    docs: list[dict[str, Any]] = [r.cluster()]
    for i in range(count):
        docs += [r.application(f"w{i}", f"{ns}-w{i}", image_name="web"), r.deployment(f"w{i}", "1.0.0")]
    docs.append(r.image("web", "1.0.0", "r/web:1"))
    started = time.monotonic()
    cluster.apply(*docs, namespace=ns)

    def all_deployed() -> bool:
        items = json.loads(cluster.kubectl("get", "deployments.alecton.dev", "-n", ns, "-o", "json").stdout)[
            "items"
        ]
        done = [
            d for d in items
            if (d.get("status") or {}).get("phase") == "Deployed"
            and d["status"].get("observedGeneration") == d["metadata"]["generation"]
        ]  # fmt: skip
        return len(done) == count

    wait_for(all_deployed, 600, f"{count} deploys in {ns}", interval=0.5)
    return time.monotonic() - started


def test_a_hanging_receiver_does_not_slow_a_wave_of_deploys(
    notifying: OperatorProcess, receivers: list[Receiver]
) -> None:
    cluster = notifying.cluster
    quiet = cluster.new_namespace("notify-quiet")
    alone = _wave(cluster, quiet, 20)
    ns = cluster.new_namespace("notify-hung")
    hung = receiver(receivers, hang=True)
    cluster.apply(notifier("hung", "webhook", address=hung.url), namespace=ns)
    wait_for(lambda: notifier_status(cluster, ns, "hung").get("conditions"), 30, "the Notifier's status")
    with_hung = _wave(cluster, ns, 20)
    print(f"20 deploys: {alone:.1f} s without a Notifier, {with_hung:.1f} s with a hung one")
    assert hung.all(), "the hung receiver was called (and never answered)"
    assert with_hung < 1.5 * alone + 10, f"with a hung receiver {with_hung:.1f} s, without {alone:.1f} s"
    depth = notifying.metric("alecton_notification_queue_depth", notifier=f"{ns}/hung")
    assert depth > 0, "the News wait in the hung Notifier's queue"


def test_slack_commit_status_and_cloudevents_receivers(
    notifying: OperatorProcess, receivers: list[Receiver]
) -> None:
    cluster = notifying.cluster
    ns = cluster.new_namespace("notify-shapes")
    chat, forge, events = receiver(receivers), receiver(receivers), receiver(receivers)
    slack_url = f"{chat.url}/services/T0/B0/{uuid.uuid4().hex}"
    cluster.apply(
        secret("slack", address=slack_url),
        secret("forge", token=TOKEN),
        notifier("slack", "slack", secretRef={"name": "slack"}, dashboardURL="https://alecton.example.com"),
        notifier("github", "github", secretRef={"name": "forge"}, apiURL=f"{forge.url}/api/v3"),
        notifier("gitlab", "gitlab", secretRef={"name": "forge"}, apiURL=f"{forge.url}/api/v4"),
        namespace=ns,
    )
    cluster_notifier = {
        "apiVersion": API,
        "kind": "ClusterNotifier",
        "metadata": {"name": ns},
        "spec": {"provider": "cloudevents", "address": events.url, "namespaces": [ns]},
    }
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(cluster_notifier))
    image = r.image("web", "1.0.0", "r/web:1")
    image["spec"]["source"] = {"repository": "https://github.com/acme/web", "revision": "abc1234"}
    cluster.apply(
        r.cluster(), r.application("web", f"{ns}-web"), image, r.deployment("web", "1.0.0"), namespace=ns
    )
    wait_phase(cluster, ns, "web-staging", "Deployed")

    wait_for(lambda: {"DeployStarted", "Deployed"} <= chat.kinds(), 30, "Slack messages")
    message = next(r for r in chat.accepted() if r.headers["x-alecton-event"] == "Deployed")
    assert message.path == slack_url.removeprefix(chat.url)
    body = message.json()
    assert body["text"].startswith(":white_check_mark: Deployed web/staging 1.0.0")
    assert any("alecton.example.com" in json.dumps(block) for block in body["blocks"])

    wait_for(lambda: {"DeployStarted", "Deployed"} <= events.kinds(), 30, "CloudEvents")
    event = next(r for r in events.accepted() if r.headers["x-alecton-event"] == "Deployed")
    assert event.headers["content-type"].startswith("application/cloudevents+json")
    assert (
        event.json()["type"] == "dev.alecton.Deployed"
        and event.json()["id"] == event.headers["x-alecton-key"]
    )

    wait_for(lambda: len(forge.accepted()) >= 2, 30, "commit statuses")
    github = [r for r in forge.accepted() if r.path.startswith("/api/v3/")]
    gitlab = [r for r in forge.accepted() if r.path.startswith("/api/v4/")]
    assert github[0].path == "/api/v3/repos/acme/web/statuses/abc1234"
    assert github[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert github[0].json()["context"] == "alecton/staging"
    assert gitlab[0].path == "/api/v4/projects/acme%2Fweb/statuses/abc1234"
    assert gitlab[0].headers["private-token"] == TOKEN and gitlab[0].json()["name"] == "alecton/staging"
    assert {r.json()["state"] for r in github} <= {"pending", "success"}
    cluster.kubectl("delete", "clusternotifiers.alecton.dev", ns)


# ----- tenants --------------------------------------------------------------------------------


def team(cluster: Cluster, ns: str) -> Tenant:
    """A person of tenant `ns`: the shipped alecton-deployer role plus `edit` (its Secrets)."""
    tenant = as_tenant(cluster, ns, "alecton-deployer")
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": f"{tenant.account}-edit"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"kind": "ServiceAccount", "name": tenant.account, "namespace": ns}],
    }
    cluster.apply(binding, namespace=ns)
    wait_for(lambda: tenant.can("create", "secrets"), 30, "the tenant's edit binding")
    return tenant


def test_tenants_get_only_their_own_news_and_no_internal_address_or_secret(
    notifying: OperatorProcess, receivers: list[Receiver], tmp_path: Path
) -> None:
    cluster = notifying.cluster
    ns_a, ns_b = cluster.new_namespace("notify-ta"), cluster.new_namespace("notify-tb")
    alice, bob = team(cluster, ns_a), team(cluster, ns_b)
    hook_a, hook_b, internal = receiver(receivers), receiver(receivers), receiver(receivers)
    # Alice's Notifier asks for everything (globs everywhere); Bob's gets his own news.
    alice.apply(
        secret("hook", hmacKey=HMAC_KEY, token=TOKEN),
        notifier(
            "all",
            "webhook",
            address=hook_a.url,
            secretRef={"name": "hook"},
            applications=["*"],
            targets=["*"],
        ),
        # The operator's own machine, spelled 0.0.0.0 (reaches 127.0.0.1 on Linux), and the
        # cloud metadata address: neither is allowed by --notify-allow-cidr 127.0.0.0/8.
        notifier("inside", "webhook", address=f"http://0.0.0.0:{internal.port}/"),
        notifier("metadata", "webhook", address="http://169.254.169.254/latest/meta-data/"),
    )
    bob.apply(secret("hook", hmacKey=HMAC_KEY), notifier("own", "cloudevents", address=hook_b.url))
    # Nobody but cluster administrators writes ClusterNotifiers (they see every namespace).
    alice.forbidden("create", "-f", "-", stdin=json.dumps({
        "apiVersion": API, "kind": "ClusterNotifier", "metadata": {"name": f"spy-{ns_a}"},
        "spec": {"provider": "webhook", "address": hook_a.url},
    }))  # fmt: skip
    assert not alice.can("list", "clusternotifiers.alecton.dev")

    for name, needle in (("inside", "unspecified"), ("metadata", "link-local")):
        status = wait_for(
            lambda n=name: (
                ready_condition(notifier_status(cluster, ns_a, n)).get("reason") == "AddressRefused"
                and notifier_status(cluster, ns_a, n)
            ),
            30,
            f"{name} refused",
        )
        assert needle in ready_condition(status)["message"]

    for tenant, ns in ((alice, ns_a), (bob, ns_b)):
        tenant.apply(
            r.cluster(),
            r.application("web", f"{ns}-web", values={"password": MARKER}, target_values={"token": MARKER}),
            r.image("web", "1.0.0", "r/web:1"),
            r.deployment("web", "1.0.0"),
        )
    for ns in (ns_a, ns_b):
        wait_phase(cluster, ns, "web-staging", "Deployed")
    wait_for(lambda: {"DeployStarted", "Deployed"} <= hook_a.kinds(), 30, "Alice's news")
    wait_for(lambda: {"DeployStarted", "Deployed"} <= hook_b.kinds(), 30, "Bob's news")
    # Both refused Notifiers had their chance at the same News: they reported, sent nothing.
    status = wait_for(
        lambda: (s := notifier_status(cluster, ns_a, "inside")).get("lastDelivery") and s, 30, "the refusal"
    )
    assert status["lastDelivery"]["result"] == "refused"
    assert internal.all() == [], "no request reached the internal address"

    assert {r.json()["namespace"] for r in hook_a.accepted()} == {ns_a}
    assert {r.json()["data"]["namespace"] for r in hook_b.accepted()} == {ns_b}
    for request in [*hook_a.all(), *hook_b.all()]:
        for value in (MARKER, HMAC_KEY, TOKEN):
            assert value.encode() not in request.body
        assert TOKEN not in json.dumps({k: v for k, v in request.headers.items() if k != "authorization"})
    for ns, name in ((ns_a, "all"), (ns_a, "inside"), (ns_b, "own")):
        shown = json.dumps(cluster.get("notifiers.alecton.dev", name, ns))
        assert MARKER not in shown and HMAC_KEY not in shown and TOKEN not in shown


def test_the_readme_notifier_examples_are_accepted(notifying: OperatorProcess) -> None:
    """The README's Slack and GitHub examples, pasted as they are, pass the API server."""
    cluster = notifying.cluster
    ns = cluster.new_namespace("notify-readme")
    text = (REPO / "README.md").read_text()
    for name in ("notify-slack", "notify-github"):
        match = re.search(rf"<!-- {name}:start -->\s*```yaml\n(.*?)```\s*<!-- {name}:end -->", text, re.S)
        assert match, f"the README lost its {name} block"
        cluster.kubectl("apply", "--dry-run=server", "-n", ns, "-f", "-", stdin=match.group(1))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"provider": "email", "address": "https://x.example.com"}, 'Unsupported value: "email"'),
        ({"provider": "webhook"}, "needs spec.address or a secretRef"),
        ({"provider": "github"}, "needs spec.secretRef"),
        ({"provider": "slack", "address": "ftp://x"}, "must be an https:// URL"),
        ({"provider": "webhook", "address": "https://u:p@x.example.com"}, "must not carry credentials"),
        ({"provider": "slack", "address": "https://x.example.com", "apiURL": "https://a"}, "apiURL is for"),
        ({"provider": "webhook", "address": "https://x.example.com", "kinds": ["Boom"]}, "Unsupported value"),
        ({"provider": "webhook", "address": "https://x.example.com", "minSeverity": "fatal"}, "Unsupported"),
    ],
)
def test_bad_notifiers_are_refused_by_the_api_server(
    crds: Cluster, spec: dict[str, Any], message: str
) -> None:
    body = json.dumps({"apiVersion": API, "kind": "Notifier", "metadata": {"name": "bad"}, "spec": spec})
    proc = crds.kubectl("apply", "--dry-run=server", "-n", "default", "-f", "-", stdin=body, check=False)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr
