"""The request each provider gets: paths, headers and bodies, and that no Secret value ever
lands in a body."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from alecton.reconcile.news import Kind, News, Severity
from alecton.reconcile.notify_payloads import (
    KEY_HEADER,
    SIGNATURE_HEADER,
    Credentials,
    Request,
    Skipped,
    Source,
    commit_state,
    repository_path,
    request_for,
    scrub,
)
from alecton.reconcile.notify_policy import NotifierSettings, Provider, parse_notifier

CREDS = Credentials(
    address="https://hooks.slack.com/services/T0/B0/SECRETPATH", token="tok-123", hmac_key=b"k3y"
)
SOURCE = Source("https://github.com/acme/web.git", "0123abcd")


def settings(provider: str, **spec: Any) -> NotifierSettings:
    raw = {"provider": provider, "secretRef": {"name": "s"}, **spec}
    return parse_notifier({"metadata": {"name": "n", "namespace": "team"}, "spec": raw})


def news(**fields: Any) -> News:
    base: dict[str, Any] = {
        "kind": Kind.DEPLOYED,
        "severity": Severity.INFO,
        "namespace": "team",
        "deployment": "web-prod",
        "application": "web",
        "target": "prod",
        "time": "2026-12-03T06:00:00Z",
        "version": "1.2.0",
        "previous_version": "1.1.0",
        "revision": 4,
        "message": "deployed",
    }
    return News(**{**base, **fields})


def sent(result: Request | Skipped) -> Request:
    assert isinstance(result, Request), result
    return result


def test_webhook_posts_the_news_signed_with_the_hmac_key() -> None:
    creds = Credentials(token="tok-123", hmac_key=b"k3y")
    request = sent(request_for(settings("webhook", address="https://h.example.com/in"), news(), creds))
    assert request.url == "https://h.example.com/in"
    assert json.loads(request.body) == news().as_dict()
    expected = hmac.new(b"k3y", request.body, hashlib.sha256).hexdigest()
    assert request.headers[SIGNATURE_HEADER] == f"sha256={expected}"
    assert request.headers[KEY_HEADER] == news().key
    assert request.headers["Authorization"] == "Bearer tok-123"


def test_the_secret_address_wins_and_no_secret_is_in_any_body() -> None:
    for provider in ("webhook", "slack", "teams", "cloudevents"):
        request = sent(request_for(settings(provider, address="https://public.example.com/"), news(), CREDS))
        assert request.url == CREDS.address  # a Slack URL is a credential: it lives in the Secret
        for value in CREDS.values():
            assert value.encode() not in request.body, provider


def test_webhook_without_a_key_is_unsigned() -> None:
    request = sent(request_for(settings("webhook", address="https://h.example.com/"), news(), Credentials()))
    assert SIGNATURE_HEADER not in request.headers and "Authorization" not in request.headers


def test_slack_has_readable_text_blocks_and_a_dashboard_link() -> None:
    s = settings("slack", dashboardURL="https://alecton.example.com/")
    body = json.loads(sent(request_for(s, news(kind=Kind.FAILED, severity=Severity.ERROR), CREDS)).body)
    assert body["text"].startswith(":x: Failed web/prod 1.2.0 (team): deployed")
    assert body["blocks"][0]["type"] == "section"
    assert "*Version:* 1.2.0" in body["blocks"][1]["elements"][0]["text"]
    link = body["blocks"][2]["text"]["text"]
    assert link == "<https://alecton.example.com/?namespace=team&application=web&target=prod|Open in alecton>"


def test_teams_gets_a_message_card() -> None:
    card = json.loads(sent(request_for(settings("teams"), news(), CREDS)).body)
    assert card["@type"] == "MessageCard" and card["title"] == "Deployed web/prod 1.2.0 (team)"
    assert {"name": "Previous", "value": "1.1.0"} in card["sections"][0]["facts"]


def test_cloudevents_structured_mode() -> None:
    request = sent(request_for(settings("cloudevents"), news(), CREDS))
    assert request.headers["Content-Type"].startswith("application/cloudevents+json")
    event = json.loads(request.body)
    assert event["specversion"] == "1.0" and event["id"] == news().key
    assert event["type"] == "dev.alecton.Deployed"
    assert event["source"] == "/apis/alecton.dev/namespaces/team/deployments/web-prod"
    assert event["data"] == news().as_dict()


def test_github_commit_status() -> None:
    s = settings("github", dashboardURL="https://a.example.com")
    request = sent(request_for(s, news(kind=Kind.HEALTHY), CREDS, SOURCE))
    assert request.url == "https://api.github.com/repos/acme/web/statuses/0123abcd"
    assert request.headers["Authorization"] == "Bearer tok-123"
    body = json.loads(request.body)
    assert body["state"] == "success" and body["context"] == "alecton/prod"
    assert body["target_url"].startswith("https://a.example.com/?")


def test_gitlab_commit_status_on_a_self_hosted_server() -> None:
    s = settings("gitlab", apiURL="https://git.example.com/api/v4/")
    source = Source("git@git.example.com:group/sub/web.git", "feed")
    request = sent(request_for(s, news(kind=Kind.DEPLOY_STARTED), CREDS, source))
    assert request.url == "https://git.example.com/api/v4/projects/group%2Fsub%2Fweb/statuses/feed"
    assert request.headers["PRIVATE-TOKEN"] == "tok-123" and "Authorization" not in request.headers
    body = json.loads(request.body)
    assert body == {"state": "pending", "name": "alecton/prod", "description": "DeployStarted: deployed"}


@pytest.mark.parametrize(
    ("kind", "extra", "github", "gitlab"),
    [
        (Kind.DEPLOY_STARTED, {}, "pending", "pending"),
        (Kind.DEPLOYED, {"verifying": True}, "pending", "running"),
        (Kind.DEPLOYED, {}, "success", "success"),
        (Kind.HEALTHY, {}, "success", "success"),
        (Kind.FAILED, {}, "failure", "failed"),
        (Kind.ROLLED_BACK, {"cause": "automatic"}, "failure", "failed"),
        (Kind.ROLLED_BACK, {"cause": "rollback"}, None, None),
        (Kind.DRIFT_DETECTED, {}, None, None),
    ],
)
def test_commit_states(kind: Kind, extra: dict[str, Any], github: str | None, gitlab: str | None) -> None:
    assert commit_state(Provider.GITHUB, news(kind=kind, **extra)) == github
    assert commit_state(Provider.GITLAB, news(kind=kind, **extra)) == gitlab


def test_commit_statuses_need_a_source_and_a_token() -> None:
    skipped = request_for(settings("github"), news(), CREDS, None)
    assert isinstance(skipped, Skipped) and "records no source" in skipped.reason
    no_token = request_for(settings("github"), news(), Credentials(), SOURCE)
    assert isinstance(no_token, Skipped) and "token" in no_token.reason
    drift = request_for(settings("gitlab"), news(kind=Kind.DRIFT_DETECTED), CREDS, SOURCE)
    assert isinstance(drift, Skipped) and "makes no commit status" in drift.reason


def test_repository_paths() -> None:
    assert repository_path("https://github.com/acme/web.git") == "acme/web"
    assert repository_path("acme/web") == "acme/web"
    assert repository_path("git@github.com:acme/web.git") == "acme/web"
    assert repository_path("https://gitlab.example.com/a/b/c/") == "a/b/c"


def test_credentials_never_show_in_repr_and_are_scrubbed_from_errors() -> None:
    assert "tok-123" not in repr(CREDS) and "SECRETPATH" not in repr(CREDS)
    error = f"Cannot connect to {CREDS.address} with tok-123"
    assert scrub(error, CREDS) == "Cannot connect to <secret> with <secret>"
    assert "tok-123" not in repr(sent(request_for(settings("webhook"), news(), CREDS)))


def cluster_settings(provider: str, **spec: Any) -> NotifierSettings:
    raw = {"provider": provider, "secretRef": {"name": "s"}, **spec}
    return parse_notifier({"metadata": {"name": "platform"}, "spec": raw}, "ClusterNotifier")


def test_a_cluster_notifiers_commit_status_names_the_namespace_the_deploy_came_from() -> None:
    """The platform's token writes where a tenant's Image points: team `team`'s deploy to
    `prod` is `alecton/team/prod`, never the `alecton/prod` another team's branch protection
    may require. A namespaced Notifier (the team's own token) keeps `alecton/<target>`."""
    healthy = news(kind=Kind.HEALTHY)
    github = json.loads(sent(request_for(cluster_settings("github"), healthy, CREDS, SOURCE)).body)
    gitlab = json.loads(sent(request_for(cluster_settings("gitlab"), healthy, CREDS, SOURCE)).body)
    assert github["context"] == "alecton/team/prod" and gitlab["name"] == "alecton/team/prod"
    assert (
        json.loads(sent(request_for(settings("github"), healthy, CREDS, SOURCE)).body)["context"]
        == "alecton/prod"
    )


def test_commit_statuses_only_on_the_repositories_listed() -> None:
    only_acme = cluster_settings("github", repositories=["ACME/*"])
    assert isinstance(request_for(only_acme, news(), CREDS, SOURCE), Request)
    other = Source("https://github.com/team-b/payments.git", "0123abcd")
    skipped = request_for(only_acme, news(), CREDS, other)
    assert isinstance(skipped, Skipped) and "team-b/payments is not in spec.repositories" in skipped.reason
    # what is checked is what the request names: no `..` for the HTTP client to resolve
    for sneaky in (Source("https://github.com/acme/../team-b", "0123abcd"), Source("acme/web", "..")):
        assert isinstance(request_for(only_acme, news(), CREDS, sneaky), Skipped), sneaky
    gitlab = cluster_settings("gitlab", repositories=["acme/*"])
    assert isinstance(request_for(gitlab, news(), CREDS, Source("acme/sub/../../team-b/x", "f")), Skipped)


def test_tenant_text_cannot_mention_or_link_in_slack_or_teams() -> None:
    evil = news(
        kind=Kind.FAILED,
        severity=Severity.ERROR,
        application="web<!here>",
        message="<!channel> see <https://evil.example|Open in alecton> & [docs](https://evil.example)",
    )
    slack = sent(
        request_for(settings("slack", dashboardURL="https://a.example.com"), evil, CREDS)
    ).body.decode()
    assert "<!channel>" not in slack and "<!here>" not in slack and "<https://evil" not in slack
    assert "&lt;!channel&gt;" in slack and "&amp;" in slack
    assert "<https://a.example.com/?" in slack  # the platform's own link is still a link
    card = json.loads(sent(request_for(settings("teams"), evil, CREDS)).body)
    rendered = json.dumps([card["title"], card["text"], card["sections"]])  # `summary` is plain text
    assert "<!channel>" not in rendered and "[docs]" not in rendered and "<!here>" not in rendered
