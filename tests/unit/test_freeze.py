"""Freezes (reconcile/freeze.py): parsing with clear errors, which freezes apply to a
Deployment and until when, when to look again, windows across DST, overrides, status."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from alecton.reconcile.freeze import (
    CLUSTER_FREEZE,
    ActiveFreeze,
    DeploymentFacts,
    Freeze,
    active_freezes,
    freeze_status,
    frozen_message,
    look_again,
    override_reason,
    override_value,
    released_at,
)

WEB_PROD = DeploymentFacts("team", "web", "prod", "us-east")


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def freeze(name: str = "quarter", kind: str = "Freeze", namespace: str = "team", **spec: Any) -> Freeze:
    spec.setdefault("reason", "quarter close")
    meta = {"name": name} if kind == CLUSTER_FREEZE else {"name": name, "namespace": namespace}
    return Freeze.parse({"kind": kind, "metadata": meta, "spec": spec})


# ----- parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ({}, "spec.reason: required"),
        ({"reason": "  "}, "spec.reason: required"),
        ({"reason": "x" * 600}, "spec.reason: at most 512"),
        ({"reason": "r", "windows": {"schedule": "0 9 * * *"}}, "spec.windows: must be a list"),
        ({"reason": "r", "windows": [{"schedule": "0 9 * *", "duration": "1h"}]}, "spec.windows[0].schedule"),
        (
            {
                "reason": "r",
                "windows": [{"schedule": "0 9 * * *", "duration": "1h", "timeZone": "Mars/Base"}],
            },
            "spec.windows[0].timeZone: unknown time zone",
        ),
        ({"reason": "r", "from": "yesterday"}, "spec.from: must be a date-time"),
        ({"reason": "r", "until": "2026-12-24T00:00:00"}, "spec.until: needs a time zone"),
        ({"reason": "r", "from": "2026-12-24T00:00:00Z", "until": "2026-12-23T00:00:00Z"}, "later than"),
        (
            {
                "reason": "r",
                "until": "2026-12-24T00:00:00Z",
                "windows": [{"schedule": "0 9 * * *", "duration": "1h"}],
            },
            "either windows or from/until",
        ),
        ({"reason": "r", "applications": "web"}, "spec.applications: must be a list"),
        ({"reason": "r", "namespaces": ["team"]}, "spec.namespaces: not a field of a Freeze"),
        ({"reason": "r", "untill": "2026-12-24T00:00:00Z"}, "spec.untill: not a field"),
    ],
)
def test_bad_freezes_are_refused_naming_the_field(spec: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error.replace("[", r"\[").replace("]", r"\]")):
        Freeze.parse({"kind": "Freeze", "metadata": {"name": "f", "namespace": "team"}, "spec": spec})


def test_a_cluster_freeze_takes_namespaces_and_has_no_namespace() -> None:
    cluster = freeze("stop", CLUSTER_FREEZE, namespaces=["team-*"])
    assert (cluster.namespace, cluster.namespaces) == ("", ("team-*",))


# ----- which freezes apply ---------------------------------------------------------------------------


def test_a_freeze_without_times_is_active_until_it_is_ended() -> None:
    active = active_freezes([freeze()], WEB_PROD, at(2026, 3, 1))
    assert active == [ActiveFreeze("Freeze", "team", "quarter", "quarter close", None)]
    assert released_at(active) is None


def test_from_and_until_bound_the_freeze() -> None:
    bounded = freeze(**{"from": "2026-03-01T10:00:00Z", "until": "2026-03-01T12:00:00+01:00"})
    assert active_freezes([bounded], WEB_PROD, at(2026, 3, 1, 9, 59)) == []
    [active] = active_freezes([bounded], WEB_PROD, at(2026, 3, 1, 10))
    assert active.until == at(2026, 3, 1, 11)
    assert active_freezes([bounded], WEB_PROD, at(2026, 3, 1, 11)) == []  # the end is outside
    assert look_again([bounded], WEB_PROD, at(2026, 3, 1, 9)) == at(2026, 3, 1, 10)
    assert look_again([bounded], WEB_PROD, at(2026, 3, 1, 10, 30)) == at(2026, 3, 1, 11)
    assert look_again([bounded], WEB_PROD, at(2026, 3, 1, 12)) is None


def test_selectors_match_names_and_globs_and_empty_matches_all() -> None:
    now = at(2026, 3, 1)
    cases = {
        "apps": freeze(applications=["web"]),
        "glob": freeze(targets=["prod*"]),
        "cluster": freeze(clusters=["us-*"]),
        "other-app": freeze(applications=["api"]),
        "other-cluster": freeze(clusters=["eu-*"]),
        "both": freeze(applications=["web"], targets=["staging"]),  # every selector must match
    }
    applying = {name for name, f in cases.items() if active_freezes([f], WEB_PROD, now)}
    assert applying == {"apps", "glob", "cluster"}


def test_a_freeze_never_reaches_another_namespace_but_a_cluster_freeze_does() -> None:
    now = at(2026, 3, 1)
    theirs = freeze("theirs", namespace="other")
    platform = freeze("stop", CLUSTER_FREEZE)
    only_team = freeze("teams", CLUSTER_FREEZE, namespaces=["team"])
    only_others = freeze("others", CLUSTER_FREEZE, namespaces=["other-*"])
    active = active_freezes([theirs, platform, only_team, only_others, freeze("ours")], WEB_PROD, now)
    assert [(f.kind, f.name) for f in active] == [
        ("ClusterFreeze", "stop"),
        ("ClusterFreeze", "teams"),
        ("Freeze", "ours"),
    ]


# ----- windows ------------------------------------------------------------------------------------


WEEKEND = {"schedule": "0 18 * * 5", "duration": "62h", "timeZone": "Europe/Berlin"}


def test_a_window_freeze_is_active_inside_its_windows_until_the_window_closes() -> None:
    weekend = freeze(windows=[WEEKEND])
    # Friday 2026-07-03 18:00 in Berlin (summer) is 16:00 UTC; 62h later is Monday 06:00 UTC.
    assert active_freezes([weekend], WEB_PROD, at(2026, 7, 3, 15, 59)) == []
    assert look_again([weekend], WEB_PROD, at(2026, 7, 3, 15)) == at(2026, 7, 3, 16)
    [active] = active_freezes([weekend], WEB_PROD, at(2026, 7, 4, 12))
    assert active.until == at(2026, 7, 6, 6)
    assert look_again([weekend], WEB_PROD, at(2026, 7, 4, 12)) == at(2026, 7, 6, 6)
    assert active_freezes([weekend], WEB_PROD, at(2026, 7, 6, 6)) == []


def test_a_window_freeze_follows_the_wall_clock_across_dst() -> None:
    nightly = freeze(windows=[{"schedule": "30 2 * * *", "duration": "1h", "timeZone": "Europe/Berlin"}])
    # 2026-03-29: clocks jump from 02:00 to 03:00 in Berlin; the 02:30 start happens at 03:00
    # local = 01:00 UTC, and the duration is elapsed time.
    [spring] = active_freezes([nightly], WEB_PROD, at(2026, 3, 29, 1, 10))
    assert spring.until == at(2026, 3, 29, 2)
    assert look_again([nightly], WEB_PROD, at(2026, 3, 28, 23)) == at(2026, 3, 29, 1)
    # 2026-10-25: 02:30 happens twice (00:30 and 01:30 UTC); the freeze is active in both.
    assert active_freezes([nightly], WEB_PROD, at(2026, 10, 25, 0, 45))
    assert active_freezes([nightly], WEB_PROD, at(2026, 10, 25, 1, 45))
    # Winter: 02:30 Berlin is 01:30 UTC.
    assert active_freezes([nightly], WEB_PROD, at(2026, 12, 1, 1, 29)) == []
    assert active_freezes([nightly], WEB_PROD, at(2026, 12, 1, 1, 30))


def test_overlapping_windows_end_with_the_latest() -> None:
    two = freeze(
        windows=[{"schedule": "0 9 * * *", "duration": "2h"}, {"schedule": "0 10 * * *", "duration": "2h"}]
    )
    [active] = active_freezes([two], WEB_PROD, at(2026, 3, 2, 10, 30))
    assert active.until == at(2026, 3, 2, 12)


# ----- messages, overrides, status ------------------------------------------------------------------


def test_the_message_names_the_freeze_its_reason_and_the_end() -> None:
    active = [ActiveFreeze("Freeze", "team", "quarter", "quarter close", at(2026, 3, 2))]
    message = frozen_message(active, "version 1.1 (running: 1.0)")
    assert message.startswith(
        'version 1.1 (running: 1.0) is frozen by Freeze quarter ("quarter close") until 2026-03-02T00:00:00Z'
    )
    assert "--override-freeze" in message


def test_an_override_holds_for_its_generation_only() -> None:
    value = override_value(4, " hotfix for INC-7 ")
    assert value == "4:hotfix for INC-7"
    assert override_reason(value, 4) == "hotfix for INC-7"
    assert override_reason(value, 5) == ""  # a later change is frozen again
    for bad in ("", "hotfix", "4:", "4:  ", "x:reason", None, 4):
        assert override_reason(bad, 4) == ""


def test_status_says_active_until_or_next_start() -> None:
    bounded = freeze(**{"from": "2026-03-01T10:00:00Z", "until": "2026-03-01T12:00:00Z"})
    assert freeze_status(bounded, at(2026, 3, 1, 9)) == {
        "active": False,
        "activeUntil": None,
        "nextStart": "2026-03-01T10:00:00Z",
        "message": "inactive; starts at 2026-03-01T10:00:00Z",
    }
    assert freeze_status(bounded, at(2026, 3, 1, 11)) == {
        "active": True,
        "activeUntil": "2026-03-01T12:00:00Z",
        "nextStart": None,
        "message": "active until 2026-03-01T12:00:00Z: quarter close",
    }
    assert freeze_status(bounded, at(2026, 3, 1, 13))["message"] == "ended"
    assert freeze_status(freeze(), at(2026, 3, 1))["message"] == "active until it is ended: quarter close"


def test_clusters_match_the_object_name_or_the_context_it_reaches() -> None:
    from alecton.reconcile.freeze import cluster_context

    spec = {"reason": "r", "clusters": ["prod", "in-cluster"]}
    platform = Freeze.parse({"kind": CLUSTER_FREEZE, "metadata": {"name": "p"}, "spec": spec})
    assert platform.applies_to(DeploymentFacts("t", "web", "prod", "eu", cluster_context("prod", False)))
    assert platform.applies_to(DeploymentFacts("t", "web", "prod", "home", cluster_context("", False)))
    assert not platform.applies_to(DeploymentFacts("t", "web", "prod", "x", cluster_context("prod", True)))
    assert platform.applies_to(DeploymentFacts("t", "web", "prod", "prod", ""))  # the object's own name


def test_a_freeze_reaches_its_namespace_and_a_cluster_freeze_the_namespaces_it_selects() -> None:
    from alecton.reconcile.freeze import reaches_namespace

    def cluster_freeze(**spec: Any) -> dict[str, Any]:
        return {"kind": CLUSTER_FREEZE, "metadata": {"name": "c"}, "spec": {"reason": "r", **spec}}

    assert reaches_namespace(cluster_freeze(), "team-a")
    assert reaches_namespace(cluster_freeze(namespaces=["team-*"]), "team-a")
    assert not reaches_namespace(cluster_freeze(namespaces=["team-b"]), "team-a")
    assert not reaches_namespace(cluster_freeze(namespaces=["team-b"], windows="bad"), "team-a")
    own = {"kind": "Freeze", "metadata": {"name": "f", "namespace": "team-a"}, "spec": {"reason": "r"}}
    assert reaches_namespace(own, "team-a") and not reaches_namespace(own, "team-b")
