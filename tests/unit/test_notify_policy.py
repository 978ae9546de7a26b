"""Notifier settings, which News a Notifier gets, backoff, the rate limit, dedup and the queue."""

from __future__ import annotations

from typing import Any

import pytest
from alecton.reconcile.news import Kind, News, Severity
from alecton.reconcile.notify_policy import (
    CLUSTER_NOTIFIER,
    BoundedQueue,
    InvalidNotifierError,
    Provider,
    RecentKeys,
    TokenBucket,
    backoff_seconds,
    matches,
    parse_notifier,
    retry_after_seconds,
)


def body(namespace: str = "team-a", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "chat", "namespace": namespace, "generation": 3},
        "spec": {"provider": "webhook", "address": "https://hooks.example.com/x", **spec},
    }


def news(namespace: str = "team-a", **fields: Any) -> News:
    base: dict[str, Any] = {
        "kind": Kind.DEPLOYED,
        "severity": Severity.INFO,
        "namespace": namespace,
        "deployment": "web-staging",
        "application": "web",
        "target": "staging",
        "time": "2026-12-03T06:00:00Z",
        "version": "1.0.0",
    }
    return News(**{**base, **fields})


def test_a_full_spec_parses_into_typed_settings() -> None:
    settings = parse_notifier(
        body(
            applications=["web", "api-*"],
            targets=["prod*"],
            kinds=["Failed", "RolledBack"],
            minSeverity="warning",
            secretRef={"name": "hook"},
            dashboardURL="https://alecton.example.com",
        )
    )
    assert settings.provider is Provider.WEBHOOK
    assert settings.key == ("Notifier", "team-a", "chat")
    assert settings.generation == 3
    assert settings.applications == ("web", "api-*")
    assert settings.kinds == {Kind.FAILED, Kind.ROLLED_BACK}
    assert settings.min_severity is Severity.WARNING
    assert settings.secret_name == "hook"
    assert settings.label == "team-a/chat"
    assert not settings.cluster_scoped


def test_a_cluster_notifier_has_no_namespace_and_may_name_namespaces() -> None:
    settings = parse_notifier(body(namespaces=["team-*"]), CLUSTER_NOTIFIER)
    assert settings.namespace == "" and settings.namespaces == ("team-*",)
    assert settings.label == "cluster/chat" and settings.cluster_scoped


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"provider": "email"}, "spec.provider 'email' is not one of webhook"),
        ({"kinds": ["Exploded"]}, "spec.kinds"),
        ({"minSeverity": "fatal"}, "spec.minSeverity must be info, warning or error"),
        ({"address": "ftp://x"}, "spec.address must be an https:// URL"),
        ({"applications": "web"}, "spec.applications must be a list"),
        ({"provider": "github", "address": None}, "a github notifier needs spec.secretRef"),
        ({"address": None}, "spec.address (or a secretRef with the key `address`) is required"),
    ],
)
def test_bad_specs_are_refused_naming_the_field(spec: dict[str, Any], message: str) -> None:
    raw = body(**spec)
    raw["spec"] = {k: v for k, v in raw["spec"].items() if v is not None}
    with pytest.raises(InvalidNotifierError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_notifier(raw)


def test_a_namespaced_notifier_never_sees_another_namespace() -> None:
    mine = parse_notifier(body("team-a"))
    assert matches(mine, news("team-a"))
    assert not matches(mine, news("team-b"))
    # No filter can widen it: globs apply to applications and targets, never namespaces.
    wide = parse_notifier(body("team-a", applications=["*"], targets=["*"]))
    assert not matches(wide, news("team-b"))


def test_a_cluster_notifier_sees_every_namespace_or_those_it_names() -> None:
    everyone = parse_notifier(body(), CLUSTER_NOTIFIER)
    assert matches(everyone, news("team-a")) and matches(everyone, news("team-b"))
    some = parse_notifier(body(namespaces=["team-a*"]), CLUSTER_NOTIFIER)
    assert matches(some, news("team-a1")) and not matches(some, news("team-b"))


def test_filters_by_application_target_kind_and_severity() -> None:
    settings = parse_notifier(
        body(applications=["web*"], targets=["prod"], kinds=["Failed"], minSeverity="warning")
    )
    failed = news(kind=Kind.FAILED, severity=Severity.ERROR, target="prod")
    assert matches(settings, failed)
    assert not matches(settings, news(kind=Kind.DEPLOYED, target="prod"))
    assert not matches(settings, news(kind=Kind.FAILED, severity=Severity.ERROR, target="staging"))
    assert not matches(
        settings, news(kind=Kind.FAILED, severity=Severity.ERROR, target="prod", application="api")
    )
    quiet = parse_notifier(body(minSeverity="error"))
    assert not matches(quiet, news(kind=Kind.DEGRADED, severity=Severity.WARNING))


def test_a_suspended_notifier_gets_nothing() -> None:
    assert not matches(parse_notifier(body(suspend=True)), news())


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_seconds(n) for n in range(0, 5)] == [0, 1, 2, 4, 8]
    assert backoff_seconds(30, cap=120) == 120
    assert backoff_seconds(10_000, cap=60) == 60


def test_retry_after_is_honoured_in_seconds_only_and_capped() -> None:
    assert retry_after_seconds("5") == 5
    assert retry_after_seconds("9999", cap=120) == 120
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert retry_after_seconds(None) is None


def test_the_token_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=2, burst=3, now=0)
    assert [bucket.take(0) for _ in range(4)] == [True, True, True, False]
    assert bucket.wait_time(0) == pytest.approx(0.5)
    assert bucket.take(0.5) and not bucket.take(0.5)
    assert bucket.take(10) and bucket.tokens == pytest.approx(2)  # refilled to the burst, not beyond


def test_recent_keys_dedupe_and_forget_the_oldest() -> None:
    keys = RecentKeys(size=2)
    assert keys.first_time("a") and not keys.first_time("a")
    assert keys.first_time("b") and keys.first_time("c")
    assert keys.first_time("a")  # forgotten: only the last two are kept


def test_the_bounded_queue_drops_the_oldest_and_counts_it() -> None:
    queue = BoundedQueue(size=2)
    items = [news(version=str(v)) for v in range(3)]
    assert queue.put(items[0]) and queue.put(items[1])
    assert not queue.put(items[2])
    assert queue.dropped == 1 and len(queue) == 2
    assert queue.pop() == items[1] and queue.peek() == items[2]
