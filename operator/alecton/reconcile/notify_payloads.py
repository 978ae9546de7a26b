"""The HTTP request each provider gets for one News. Pure: the delivery loop sends it.

Every request carries the News key (`X-Alecton-Key`, the CloudEvents id) so a receiver can
drop a repeat: delivery is at least once. Bodies are built from the News alone (which holds
no Secret values); credentials only ever go into headers or the URL the Secret names.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from alecton.reconcile.news import Kind, News, Severity
from alecton.reconcile.notify_policy import NotifierSettings, Provider, repository_allowed

KEY_HEADER = "X-Alecton-Key"
SIGNATURE_HEADER = "X-Alecton-Signature"
EVENT_HEADER = "X-Alecton-Event"
USER_AGENT = "alecton-notifier/0.1"


@dataclass(frozen=True)
class Credentials:
    """What the Notifier's Secret holds. `repr` shows which keys are set, never their values."""

    address: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    hmac_key: bytes = field(default=b"", repr=False)

    @classmethod
    def from_secret(cls, data: dict[str, bytes]) -> Credentials:
        return cls(
            address=data.get("address", b"").decode(errors="replace").strip(),
            token=data.get("token", b"").decode(errors="replace").strip(),
            hmac_key=data.get("hmacKey", b""),
        )

    def values(self) -> list[str]:
        """The secret strings, for scrubbing error texts."""
        return [v for v in (self.address, self.token, self.hmac_key.decode(errors="replace")) if v]


@dataclass(frozen=True)
class Source:
    """Where an Image's code came from (Image spec.source)."""

    repository: str
    revision: str


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: dict[str, str] = field(repr=False)
    body: bytes = field(repr=False)


@dataclass(frozen=True)
class Skipped:
    """No request for this News, and why (shown in the Notifier's status)."""

    reason: str


def _json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signature(body: bytes, key: bytes) -> str:
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def title(news: News) -> str:
    where = f"{news.application}/{news.target}"
    version = f" {news.version}" if news.version else ""
    return f"{news.kind} {where}{version} ({news.namespace})"


def dashboard_link(settings: NotifierSettings, news: News) -> str:
    if not settings.dashboard_url:
        return ""
    query = urlencode({"namespace": news.namespace, "application": news.application, "target": news.target})
    return f"{settings.dashboard_url.rstrip('/')}/?{query}"


def _base_headers(news: News, content_type: str = "application/json") -> dict[str, str]:
    return {
        "Content-Type": content_type,
        "User-Agent": USER_AGENT,
        KEY_HEADER: news.key,
        EVENT_HEADER: str(news.kind),
    }


def webhook(settings: NotifierSettings, news: News, creds: Credentials) -> Request:
    body = _json(news.as_dict())
    headers = _base_headers(news)
    if creds.hmac_key:
        headers[SIGNATURE_HEADER] = signature(body, creds.hmac_key)
    if creds.token:
        headers["Authorization"] = f"Bearer {creds.token}"
    return Request("POST", creds.address or settings.address, headers, body)


def _facts(news: News) -> list[tuple[str, str]]:
    pairs = [
        ("Application", news.application),
        ("Target", news.target),
        ("Version", news.version),
        ("Previous", news.previous_version),
        ("Revision", str(news.revision) if news.revision else ""),
        ("Cluster", news.cluster),
        ("Reason", news.reason),
        ("Cause", news.cause),
        ("By", news.requested_by),
    ]
    return [(k, v) for k, v in pairs if v]


def slack_escape(text: str) -> str:
    """Tenant text as Slack mrkdwn shows it literally: `<...>` would be a mention
    (`<!channel>`) or a link with any label, so the three control characters become entities
    (what Slack itself asks for)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def teams_escape(text: str) -> str:
    """Tenant text as a MessageCard shows it literally: its text fields take HTML and
    markdown, so HTML's control characters and markdown's link brackets become entities."""
    return slack_escape(text).replace("[", "&#91;").replace("]", "&#93;")


_EMOJI = {Severity.INFO: ":white_check_mark:", Severity.WARNING: ":warning:", Severity.ERROR: ":x:"}
_COLOUR = {Severity.INFO: "2EB67D", Severity.WARNING: "ECB22E", Severity.ERROR: "E01E5A"}


def slack(settings: NotifierSettings, news: News, creds: Credentials) -> Request:
    # Every tenant-written string (names, versions, a chart's failure message) is escaped: the
    # platform's ClusterNotifier posts into a channel the tenant must not ping or phish.
    said = f": {news.message}" if news.message else ""
    text = f"{_EMOJI[news.severity]} {slack_escape(title(news) + said)}"
    link = dashboard_link(settings, news)
    facts = " · ".join(f"*{k}:* {slack_escape(v)}" for k, v in _facts(news))
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": facts[:2900] or news.kind}]},
    ]
    if link:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"<{link}|Open in alecton>"}})
    body = _json({"text": text[:3000], "blocks": blocks})
    return Request("POST", creds.address or settings.address, _base_headers(news), body)


def teams(settings: NotifierSettings, news: News, creds: Credentials) -> Request:
    card: dict[str, Any] = {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": title(news),  # plain text (the notification preview), not rendered
        "themeColor": _COLOUR[news.severity],
        "title": teams_escape(title(news)),
        "text": teams_escape(news.message or str(news.kind)),
        "sections": [{"facts": [{"name": k, "value": teams_escape(v)} for k, v in _facts(news)]}],
    }
    link = dashboard_link(settings, news)
    if link:
        card["potentialAction"] = [
            {"@type": "OpenUri", "name": "Open in alecton", "targets": [{"os": "default", "uri": link}]}
        ]
    return Request("POST", creds.address or settings.address, _base_headers(news), _json(card))


def cloudevent(settings: NotifierSettings, news: News, creds: Credentials) -> Request:
    event = {
        "specversion": "1.0",
        "id": news.key,
        "source": f"/apis/alecton.dev/namespaces/{news.namespace}/deployments/{news.deployment}",
        "type": f"dev.alecton.{news.kind}",
        "subject": f"{news.application}/{news.target}",
        "time": news.time,
        "datacontenttype": "application/json",
        "data": news.as_dict(),
    }
    headers = _base_headers(news, "application/cloudevents+json; charset=utf-8")
    if creds.token:
        headers["Authorization"] = f"Bearer {creds.token}"
    return Request("POST", creds.address or settings.address, headers, _json(event))


# Commit states: what each kind says about the revision. Kinds missing here make no status.
_GITHUB_STATES = {
    Kind.DEPLOY_STARTED: "pending",
    Kind.HEALTHY: "success",
    Kind.FAILED: "failure",
    Kind.DEGRADED: "failure",
    Kind.ROLLED_BACK: "failure",
}
_GITLAB_STATES = {
    Kind.DEPLOY_STARTED: "pending",
    Kind.HEALTHY: "success",
    Kind.FAILED: "failed",
    Kind.DEGRADED: "failed",
    Kind.ROLLED_BACK: "failed",
}


def commit_state(provider: Provider, news: News) -> str | None:
    if news.kind is Kind.DEPLOYED:  # health checks follow: still running; none: done
        if news.verifying:
            return "pending" if provider is Provider.GITHUB else "running"
        return "success"
    if news.kind is Kind.ROLLED_BACK and news.cause == "rollback":
        return None  # asked for: says nothing about the code of that revision
    table = _GITHUB_STATES if provider is Provider.GITHUB else _GITLAB_STATES
    return table.get(news.kind)


def repository_path(repository: str) -> str:
    """`owner/repo` (or `group/sub/project`) from a repository URL or path."""
    text = repository.strip()
    if text.startswith("git@") and ":" in text:
        text = text.split(":", 1)[1]
    elif "://" in text:
        text = urlsplit(text).path
    text = text.strip("/")
    return text.removesuffix(".git")


def _description(news: News) -> str:
    text = f"{news.kind}: {news.message}" if news.message else str(news.kind)
    return text[:137] + "..." if len(text) > 140 else text


def status_context(settings: NotifierSettings, news: News) -> str:
    """The status's context (GitHub) or name (GitLab), which branch protection may require.

    A namespaced Notifier posts with its own team's token: `alecton/<target>`. A
    ClusterNotifier posts with the platform's token for every namespace, on whatever repository
    a tenant's Image names as its source, so its context names the namespace the deploy came
    from: team A's deploy can never write the `alecton/team-b/prod` that team B's branch
    protection requires (a namespace name has no `/`, so the first segment is always it)."""
    if settings.cluster_scoped:
        return f"alecton/{news.namespace}/{news.target}"
    return f"alecton/{news.target}"


def commit_status(
    settings: NotifierSettings, news: News, creds: Credentials, source: Source | None
) -> Request | Skipped:
    state = commit_state(settings.provider, news)
    if state is None:
        return Skipped(f"{news.kind} makes no commit status")
    if source is None or not source.repository or not source.revision:
        return Skipped(
            f"the Image of {news.application} {news.version} records no source repository and revision"
        )
    path = repository_path(source.repository)
    if settings.provider is Provider.GITHUB:
        path = "/".join(path.split("/")[:2])  # owner/repo: what the request names
    parts = path.split("/")
    # `.`/`..` would be resolved by the HTTP client: the request would name another resource
    # than the one `spec.repositories` was asked about.
    if len(parts) < 2 or any(part in ("", ".", "..") for part in parts) or source.revision in (".", ".."):
        return Skipped(f"cannot tell the repository path from {source.repository!r}")
    if not repository_allowed(settings, path):
        return Skipped(f"{path} is not in spec.repositories")
    base = settings.base_api_url()
    context = status_context(settings, news)
    link = dashboard_link(settings, news)
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, KEY_HEADER: news.key}
    sha = quote(source.revision, safe="")
    if settings.provider is Provider.GITHUB:
        headers["Authorization"] = f"Bearer {creds.token}"
        headers["Accept"] = "application/vnd.github+json"
        body: dict[str, Any] = {"state": state, "context": context, "description": _description(news)}
        if link:
            body["target_url"] = link
        owner_repo = "/".join(quote(part, safe="") for part in parts)
        return Request("POST", f"{base}/repos/{owner_repo}/statuses/{sha}", headers, _json(body))
    headers["PRIVATE-TOKEN"] = creds.token
    body = {"state": state, "name": context, "description": _description(news)}
    if link:
        body["target_url"] = link
    project = quote(path, safe="")
    return Request("POST", f"{base}/projects/{project}/statuses/{sha}", headers, _json(body))


def request_for(
    settings: NotifierSettings, news: News, creds: Credentials, source: Source | None = None
) -> Request | Skipped:
    """The request that tells `settings`' receiver about `news`, or why there is none."""
    if settings.commit_status:
        if not creds.token:
            return Skipped("the Secret has no `token` key")
        return commit_status(settings, news, creds, source)
    if not (creds.address or settings.address):
        return Skipped("no address: set spec.address or the Secret's `address` key")
    if settings.provider is Provider.WEBHOOK:
        return webhook(settings, news, creds)
    if settings.provider is Provider.SLACK:
        return slack(settings, news, creds)
    if settings.provider is Provider.TEAMS:
        return teams(settings, news, creds)
    return cloudevent(settings, news, creds)


def scrub(text: str, creds: Credentials) -> str:
    """An error text without the Secret's values (an aiohttp error names the URL, and a Slack
    URL is a credential)."""
    for value in creds.values():
        text = text.replace(value, "<secret>")
    return text
