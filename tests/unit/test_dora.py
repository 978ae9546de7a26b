"""DORA figures from release news (reconcile/dora.py): pure, no cluster."""

from __future__ import annotations

import random
from typing import Any

import pytest
from alecton.reconcile.dora import (
    DAY,
    Deploy,
    LeadTime,
    Record,
    Restore,
    StreamState,
    advance,
    dora_figures,
    percentile,
    period_seconds,
)
from alecton.reconcile.news import Kind, News, Severity
from alecton.reconcile.times import epoch

T0 = epoch("2026-11-01T00:00:00Z")


def at(seconds: float) -> str:
    from alecton.reconcile.dora import rfc3339

    return rfc3339(T0 + seconds)


def news(kind: Kind, seconds: float, version: str = "1.0", revision: int = 1, **fields: Any) -> News:
    defaults: dict[str, Any] = {
        "severity": Severity.INFO,
        "namespace": "team",
        "deployment": "web-prod",
        "application": "web",
        "target": "prod",
    }
    return News(kind=kind, time=at(seconds), version=version, revision=revision, **{**defaults, **fields})


def record(kind: Kind, seconds: float, version: str = "1.0", revision: int = 1,
           committed: float | None = None, image: float | None = None, **fields: Any) -> Record:  # fmt: skip
    return Record(
        news(kind, seconds, version, revision, **fields),
        committed_at=at(committed) if committed is not None else "",
        image_created_at=at(image) if image is not None else "",
    )


def deploy(
    seconds: float, version: str, revision: int, healthy_after: float = 10, **origin: Any
) -> list[Record]:
    """A verified deploy that becomes healthy."""
    return [
        record(Kind.DEPLOY_STARTED, seconds - 1, version, revision - 1, **origin),
        record(Kind.DEPLOYED, seconds, version, revision, verifying=True, **origin),
        record(Kind.HEALTHY, seconds + healthy_after, version, revision),
    ]


def figures(records: list[Record], since: float = 0, until: float = 30 * DAY) -> Any:
    found = dora_figures(records, T0 + since, T0 + until)
    assert len(found) == 1, found
    return found[0]


# ----- empty and unreadable data --------------------------------------------------------------
def test_no_records_no_figures() -> None:
    assert dora_figures([], T0, T0 + DAY) == []


def test_a_stream_with_only_started_news_has_zero_figures_and_none_for_undefined_ones() -> None:
    result = figures([record(Kind.DEPLOY_STARTED, 100)])
    assert result.deploys == 0
    assert result.deployment_frequency == 0
    assert result.change_failure_rate is None
    assert result.lead_time_median is None and result.lead_time_p90 is None
    assert result.time_to_restore_median is None
    data = result.as_dict()
    assert data["changeFailureRate"] is None and data["leadTimeSeconds"]["median"] is None


def test_records_without_a_readable_time_are_ignored() -> None:
    broken = Record(
        News(Kind.DEPLOYED, Severity.INFO, "team", "web-prod", "web", "prod", "yesterday", version="1")
    )
    assert dora_figures([broken], T0, T0 + DAY) == []


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"kind": "NoSuchKind", "severity": "info"},
        {"kind": "Deployed"},
        {"kind": "Deployed", "severity": "?"},
    ],
)
def test_an_unreadable_spec_is_no_record(spec: dict[str, Any]) -> None:
    assert Record.from_spec(spec) is None


def test_from_spec_reads_the_news_and_both_origins() -> None:
    spec = {
        **news(Kind.DEPLOYED, 50, "2.0", 3, verifying=True).as_dict(),
        "source": {"repository": "https://git.example/web", "revision": "abc", "committedAt": at(-600)},
        "imageCreatedAt": at(-300),
    }
    parsed = Record.from_spec(spec)
    assert parsed is not None
    assert parsed.news.version == "2.0" and parsed.news.verifying
    assert parsed.origin == (T0 - 600, "commit")
    assert Record.from_spec({**spec, "source": "junk"}).origin == (T0 - 300, "image")  # type: ignore[union-attr]


# ----- deployment frequency ---------------------------------------------------------------------
def test_a_verified_deploy_counts_when_healthy_not_when_deployed() -> None:
    state, found = advance(StreamState(), record(Kind.DEPLOYED, 0, "1.0", 2, verifying=True), T0)
    assert found == [] and state.pending == ("1.0", 2)
    state, found = advance(state, record(Kind.HEALTHY, 30, "1.0", 2), T0 + 30)
    assert found == [Deploy("1.0", 2, True, T0 + 30)]
    assert state.pending is None


def test_a_deploy_without_health_checks_counts_at_once() -> None:
    result = figures(
        [record(Kind.DEPLOYED, 100, "1.0", 1), record(Kind.DEPLOYED, 200, "1.1", 2)], until=2 * DAY
    )
    assert result.deploys == 2 and result.change_failures == 0
    assert result.deployment_frequency == pytest.approx(1.0)


def test_frequency_is_successful_deploys_per_day_of_the_period() -> None:
    records = [r for i in range(6) for r in deploy(i * 3600 + 100, f"1.{i}", i + 2)]
    records += [record(Kind.DEPLOYED, 9 * 3600, "2.0", 20, verifying=True),
                record(Kind.FAILED, 9 * 3600 + 60, "2.0", 20, reason="HealthCheckFailed")]  # fmt: skip
    result = figures(records, until=3 * DAY)
    assert result.deploys == 7 and result.change_failures == 1
    assert result.deployment_frequency == pytest.approx(6 / 3)


def test_the_same_revision_healthy_twice_counts_once() -> None:
    records = [*deploy(100, "1.0", 2), record(Kind.HEALTHY, 500, "1.0", 2, generation=9)]
    assert figures(records).deploys == 1


def test_a_healthy_after_a_recovery_or_a_manual_rollback_is_no_deploy() -> None:
    records = [
        *deploy(100, "1.0", 2),
        record(Kind.DEGRADED, 1000, "1.0", 2),
        record(Kind.HEALTHY, 1100, "1.0", 2),
        record(Kind.ROLLED_BACK, 2000, "0.9", 3, cause="rollback"),
        record(Kind.HEALTHY, 2010, "0.9", 3),
    ]
    assert figures(records).deploys == 1


def test_a_verifying_deploy_superseded_before_its_verdict_is_not_counted() -> None:
    records = [record(Kind.DEPLOYED, 100, "1.0", 2, verifying=True), *deploy(200, "1.1", 3)]
    result = figures(records)
    assert result.deploys == 1 and [lead.version for lead in result.lead_times] == []


def test_a_healthy_news_for_another_version_than_the_pending_one_is_no_deploy() -> None:
    records = [record(Kind.DEPLOYED, 100, "1.0", 2, verifying=True), record(Kind.HEALTHY, 110, "0.9", 1)]
    assert figures(records).deploys == 0


def test_duplicates_by_key_count_once() -> None:
    once = deploy(100, "1.0", 2)
    assert figures(once + once + once).deploys == 1


def test_news_with_the_key_of_earlier_news_is_a_duplicate_even_later() -> None:
    # The same Degraded stored twice (two records of one transition) opens one incident.
    records = [
        *deploy(100, "1.0", 2),
        record(Kind.DEGRADED, 1000, "1.0", 2),
        record(Kind.HEALTHY, 1100, "1.0", 2, generation=2),
        record(Kind.DEGRADED, 1200, "1.0", 2),
    ]
    result = figures(records)
    assert [r.seconds for r in result.restores] == [100] and result.open_incident_since is None


def test_streams_are_per_namespace_application_and_target() -> None:
    records = [
        *deploy(100, "1.0", 2),
        *[
            Record(n)
            for n in (news(Kind.DEPLOYED, 100, "1.0", 2, target="staging", deployment="web-staging"),)
        ],
        *[Record(n) for n in (news(Kind.DEPLOYED, 100, "1.0", 2, namespace="other"),)],
        *[Record(n) for n in (news(Kind.DEPLOYED, 100, "1.0", 2, application="api", deployment="api-prod"),)],
    ]
    found = dora_figures(records, T0, T0 + DAY)
    assert [(f.namespace, f.application, f.target, f.deploys) for f in found] == [
        ("other", "web", "prod", 1),
        ("team", "api", "prod", 1),
        ("team", "web", "prod", 1),
        ("team", "web", "staging", 1),
    ]


# ----- clock order --------------------------------------------------------------------------------
def test_records_in_any_order_give_the_same_figures() -> None:
    records = [
        *deploy(100, "1.0", 2, committed=-3600),
        record(Kind.DEPLOYED, 1000, "1.1", 3, verifying=True, image=500),
        record(Kind.ROLLED_BACK, 1100, "1.0", 4, cause="automatic", previous_version="1.1"),
        record(Kind.HEALTHY, 1120, "1.0", 4),
        *deploy(5000, "1.2", 5, image=4000),
    ]
    expected = figures(records).as_dict()
    shuffled = list(records)
    for seed in range(20):
        random.Random(seed).shuffle(shuffled)
        assert figures(shuffled).as_dict() == expected


def test_news_in_the_same_second_is_ordered_as_a_release_makes_it() -> None:
    # Deployed and Healthy in one second (kwok pods are ready at once), listed backwards.
    records = [record(Kind.HEALTHY, 100, "1.0", 2), record(Kind.DEPLOYED, 100, "1.0", 2, verifying=True)]
    assert figures(records).deploys == 1


def test_a_negative_lead_time_from_skewed_clocks_is_not_measured() -> None:
    records = deploy(100, "1.0", 2, image=500)  # the Image claims to be younger than its deploy
    result = figures(records)
    assert result.deploys == 1 and result.lead_times == ()


# ----- lead time ------------------------------------------------------------------------------------
def test_lead_time_runs_from_the_commit_when_known_else_the_image() -> None:
    records = [*deploy(1000, "1.0", 2, committed=100, image=400), *deploy(5000, "1.1", 3, image=4000)]
    result = figures(records)
    assert [(lead.version, lead.seconds, lead.origin) for lead in result.lead_times] == [
        ("1.0", 1010 - 100, "commit"),
        ("1.1", 5010 - 4000, "image"),
    ]


def test_lead_time_uses_the_origin_of_any_record_of_the_version() -> None:
    # Only the DeployStarted record carries the origin; the healthy one does not.
    records = [
        record(Kind.DEPLOY_STARTED, 900, "1.0", 1, committed=0),
        record(Kind.DEPLOYED, 1000, "1.0", 2, verifying=True),
        record(Kind.HEALTHY, 1060, "1.0", 2),
    ]
    assert [lead.seconds for lead in figures(records).lead_times] == [1060]


def test_lead_time_is_to_the_first_healthy_deploy_of_the_version_only() -> None:
    records = [
        *deploy(1000, "1.0", 2, image=0),
        *deploy(2000, "1.1", 3, image=1500),
        *deploy(3000, "1.0", 4, image=0),  # 1.0 again after 1.1: a deploy, no second lead time
    ]
    result = figures(records)
    assert result.deploys == 3
    assert [(lead.version, lead.seconds) for lead in result.lead_times] == [("1.0", 1010), ("1.1", 510)]


def test_a_failed_version_has_no_lead_time_until_it_is_healthy() -> None:
    records = [
        record(Kind.DEPLOYED, 1000, "1.0", 2, verifying=True, image=0),
        record(Kind.FAILED, 1300, "1.0", 2, reason="HealthCheckFailed"),
        *deploy(5000, "1.0", 3),  # a retry that works
    ]
    result = figures(records)
    assert [(lead.version, lead.seconds) for lead in result.lead_times] == [("1.0", 5010)]
    assert (result.deploys, result.change_failures) == (2, 1)


def test_median_and_p90_of_lead_times() -> None:
    records = [r for i in range(10) for r in deploy(10_000 * (i + 1), f"1.{i}", i + 2, healthy_after=0,
                                                      image=10_000 * (i + 1) - 60 * (i + 1))]  # fmt: skip
    result = figures(records)
    assert sorted(lead.seconds for lead in result.lead_times) == [60.0 * n for n in range(1, 11)]
    assert result.lead_time_median == 300 and result.lead_time_p90 == 540


def test_percentile_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([7.0], 50) == 7 and percentile([7.0], 90) == 7
    assert percentile([1.0, 2.0], 50) == 1 and percentile([1.0, 2.0], 90) == 2
    assert percentile([float(n) for n in range(1, 101)], 90) == 90


# ----- change failure rate ----------------------------------------------------------------------------
def test_health_check_failures_and_automatic_rollbacks_are_change_failures() -> None:
    records = [
        *deploy(100, "1.0", 2),
        record(Kind.DEPLOYED, 1000, "1.1", 3, verifying=True),
        record(Kind.FAILED, 1200, "1.1", 3, reason="HealthCheckFailed"),
        record(Kind.DEPLOYED, 2000, "1.2", 4, verifying=True),
        record(Kind.ROLLED_BACK, 2200, "1.0", 5, cause="automatic", previous_version="1.2"),
        record(Kind.HEALTHY, 2230, "1.0", 5),
    ]
    result = figures(records)
    assert (result.deploys, result.change_failures) == (3, 2)
    assert result.change_failure_rate == pytest.approx(2 / 3)


def test_a_helm_failure_is_no_deploy_but_starts_an_incident() -> None:
    records = [
        *deploy(100, "1.0", 2),
        record(Kind.FAILED, 1000, "1.1", 2, reason="TemplateError"),
        record(Kind.FAILED, 1010, "1.1", 2, reason="UpgradeFailed"),
        *deploy(2000, "1.2", 3),
    ]
    result = figures(records)
    assert (result.deploys, result.change_failures) == (2, 0)
    assert [(r.started, r.at) for r in result.restores] == [(T0 + 1000, T0 + 2010)]


def test_a_health_failure_then_its_failed_automatic_rollback_counts_once() -> None:
    records = [
        record(Kind.DEPLOYED, 1000, "1.1", 3, verifying=True),
        record(Kind.FAILED, 1200, "1.1", 3, reason="HealthCheckFailed"),
        record(Kind.FAILED, 1201, "1.1", 3, reason="HealthCheckFailed", generation=4),
    ]
    assert (figures(records).deploys, figures(records).change_failures) == (1, 1)


def test_an_automatic_rollback_without_its_deploy_news_still_counts_the_failed_version() -> None:
    # The live sink after a restart: the verifying Deployed came before it started.
    state, found = advance(
        StreamState(),
        record(Kind.ROLLED_BACK, 10, "1.0", 5, cause="automatic", previous_version="1.1"),
        T0 + 10,
    )
    assert found == [Deploy("1.1", 0, False, T0 + 10)]
    assert state.incident_since == T0 + 10


def test_uninstall_failures_and_uninstalls_are_neither_deploys_nor_incidents() -> None:
    records = [
        *deploy(100, "1.0", 2),
        record(Kind.FAILED, 1000, "1.0", 2, reason="UninstallFailed"),
        record(Kind.DEGRADED, 1100, "1.0", 2),
        record(Kind.UNINSTALLED, 1200, "1.0", 2),
    ]
    result = figures(records)
    assert result.deploys == 1 and result.restores == () and result.open_incident_since is None


# ----- time to restore ------------------------------------------------------------------------------
def test_restore_runs_from_the_first_failure_to_the_next_healthy() -> None:
    records = [
        *deploy(100, "1.0", 2),
        record(Kind.DEGRADED, 1000, "1.0", 2),
        record(Kind.FAILED, 1100, "1.1", 2, reason="UpgradeFailed"),  # still the same incident
        record(Kind.DEPLOYED, 1500, "1.2", 3),  # no health checks: deployed is restored
    ]
    result = figures(records)
    assert [r.seconds for r in result.restores] == [500]
    assert result.time_to_restore_median == 500


def test_an_automatic_rollback_is_restored_by_the_healthy_rollback() -> None:
    records = [
        *deploy(100, "1.0", 2),
        record(Kind.DEPLOYED, 1000, "1.1", 3, verifying=True),
        record(Kind.ROLLED_BACK, 1300, "1.0", 4, cause="automatic", previous_version="1.1"),
        record(Kind.HEALTHY, 1340, "1.0", 4),
    ]
    result = figures(records)
    assert [(r.started, r.seconds) for r in result.restores] == [(T0 + 1300, 40)]


def test_a_verifying_deploy_does_not_restore_until_healthy() -> None:
    records = [
        record(Kind.DEGRADED, 1000, "1.0", 2),
        record(Kind.DEPLOYED, 1100, "1.1", 3, verifying=True),
        record(Kind.HEALTHY, 1400, "1.1", 3),
    ]
    assert [r.seconds for r in figures(records).restores] == [400]


def test_an_open_incident_is_reported_not_measured() -> None:
    records = [*deploy(100, "1.0", 2), record(Kind.DEGRADED, 1000, "1.0", 2)]
    result = figures(records)
    assert result.restores == () and result.time_to_restore_median is None
    assert result.open_incident_since == T0 + 1000
    assert result.as_dict()["openIncidentSince"] == at(1000)


def test_median_time_to_restore() -> None:
    records = [*deploy(100, "1.0", 2)]
    for i, outage in enumerate([60, 600, 120]):
        start = 10_000 * (i + 1)
        # Each episode is other news (a piece of news with the same key is the same news).
        records += [
            record(Kind.DEGRADED, start, "1.0", 2, generation=i),
            record(Kind.HEALTHY, start + outage, "1.0", 2, generation=i),
        ]
    assert figures(records).time_to_restore_median == 120


# ----- the period ------------------------------------------------------------------------------------
def test_only_what_completes_inside_the_period_counts_but_earlier_news_sets_the_state() -> None:
    records = [
        *deploy(100, "1.0", 2),  # before the period
        record(Kind.DEGRADED, DAY - 100, "1.0", 2),  # the incident starts before the period...
        record(Kind.HEALTHY, DAY + 100, "1.0", 2, generation=2),  # ...ends inside: measured in full
        *deploy(DAY + 1000, "1.1", 3, image=500),
        *deploy(3 * DAY, "1.2", 4),  # after the period
    ]
    result = figures(records, since=DAY, until=2 * DAY)
    assert result.deploys == 1
    assert [r.seconds for r in result.restores] == [200]
    assert [lead.version for lead in result.lead_times] == ["1.1"]
    assert result.days == pytest.approx(1.0)


def test_daily_counts_cover_every_day_of_the_period() -> None:
    records = [
        *deploy(100, "1.0", 2),
        *deploy(200, "1.1", 3),
        record(Kind.DEPLOYED, 2 * DAY + 50, "1.2", 4, verifying=True),
        record(Kind.FAILED, 2 * DAY + 90, "1.2", 4, reason="HealthCheckFailed"),
    ]
    daily = figures(records, until=3 * DAY - 1).daily
    assert [(d.date, d.successes, d.failures) for d in daily] == [
        ("2026-11-01", 2, 0),
        ("2026-11-02", 0, 0),
        ("2026-11-03", 0, 1),
    ]


def test_daily_counts_are_bounded_for_long_periods() -> None:
    assert len(figures(deploy(100, "1.0", 2), since=-3000 * DAY, until=DAY).daily) == 366


def test_findings_in_the_live_order_match_the_batch() -> None:
    records = [
        *deploy(100, "1.0", 2, image=0),
        record(Kind.DEPLOYED, 1000, "1.1", 3, verifying=True),
        record(Kind.FAILED, 1100, "1.1", 3, reason="HealthCheckFailed"),
        *deploy(2000, "1.2", 4, committed=1500),
    ]
    state, found = StreamState(), []
    for r in records:
        state, new = advance(state, r, epoch(r.news.time))
        found += new
    assert found == [
        Deploy("1.0", 2, True, T0 + 110),
        LeadTime("1.0", 110, T0 + 110, "image"),
        Deploy("1.1", 3, False, T0 + 1100),
        Deploy("1.2", 4, True, T0 + 2010),
        LeadTime("1.2", 510, T0 + 2010, "commit"),
        Restore(T0 + 1100, T0 + 2010),
    ]


def test_memory_per_stream_is_bounded() -> None:
    state = StreamState()
    for i in range(1000):
        state, _ = advance(state, record(Kind.DEPLOYED, i, f"v{i}", i + 1), T0 + i)
    assert len(state.counted) <= 128 and len(state.healthy_versions) <= 128
    state, _ = advance(state, record(Kind.DEPLOY_STARTED, 5, "x", image=0), T0)
    for i in range(300):
        state, _ = advance(state, record(Kind.DEPLOY_STARTED, i, f"w{i}", image=0), T0 + i)
    assert len(state.origins) <= 128


@pytest.mark.parametrize(
    ("text", "seconds"), [("30d", 30 * DAY), ("2w", 14 * DAY), ("12h", 43200), ("1d12h", 1.5 * DAY)]
)
def test_period_seconds(text: str, seconds: float) -> None:
    assert period_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "d", "-1d", "0d", "30days", "1d 2h", "99999d"])
def test_bad_periods_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="period"):
        period_seconds(text)


def test_of_two_copies_of_one_piece_of_news_the_earliest_counts_whatever_the_listing_order() -> None:
    degraded_late = record(Kind.DEGRADED, 1500, "1.0", 2)
    degraded_early = record(Kind.DEGRADED, 1000, "1.0", 2)
    records = [
        degraded_late,
        *deploy(100, "1.0", 2),
        degraded_early,
        record(Kind.HEALTHY, 2000, "1.0", 2, generation=2),
    ]
    assert [r.seconds for r in figures(records).restores] == [1000]
