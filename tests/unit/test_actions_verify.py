"""Verify (handlers/actions/verify.py): following the health of a release through the
health monitor (faked: no watches), after a helm action and for a release in place."""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from alecton.handlers.actions.verify import start_verifying, stop_following, track, verdict
from alecton.handlers.health_monitor import TrackError
from alecton.kube.access import KubeAccess
from alecton.reconcile.decide import Do, HealthSeen, Step
from alecton.reconcile.health import release_health
from alecton.reconcile.outcomes import Done, Tracked
from alecton.reconcile.plan import Plan
from alecton.reconcile.times import epoch

from tests.unit.fakes import (
    CLUSTER,
    CONTEXT,
    NS,
    REF,
    RELEASE,
    RELEASE_NAMESPACE,
    Fakes,
    application,
    deployment_body,
    entry,
    fakes,
    operator_config,
    plan_of,
    released_status,
    request,
    run,
)

LOGGER = logging.LoggerAdapter(logging.getLogger("test"), {})
ACCESS = KubeAccess("", CONTEXT, identity=f"context:{CONTEXT}")


def in_place(revision: int = 4, **app_spec: Any) -> tuple[dict[str, Any], Plan]:
    body = deployment_body(released_status(revision, phase="Verifying"))
    return body, plan_of(body, app=application(**app_spec))


def track_of(f: Fakes, revision: int = 4) -> Tracked:
    body, plan = in_place(revision)
    return run(track(f.ctx, request(body, Step(Do.TRACK, plan))))


# ----- track: the release in place ----------------------------------------------------------------


def test_track_follows_the_recorded_revision_and_gives_the_share_back() -> None:
    f = fakes()
    assert track_of(f, revision=4) == Tracked()
    following = f.monitor.following[REF]
    assert (following.cluster, following.context) == (CLUSTER.ref, CONTEXT)
    assert (following.release, following.namespace, following.revision) == (RELEASE, RELEASE_NAMESPACE, 4)
    assert f.monitor.listed == [True]  # a release in place: from the namespace's one list
    assert f.slots.tracked == 0


def test_track_with_a_busy_share_is_throttled_and_reads_nothing() -> None:
    f = fakes(per_namespace=1)
    f.slots.try_acquire(NS, CLUSTER.ref)
    assert track_of(f) == Tracked(result="throttled", wait=1.0)
    assert f.monitor.track_calls == []
    assert f.slots.in_flight(NS) == 1


def test_track_that_cannot_read_the_manifest_looks_again_in_30_seconds() -> None:
    f = fakes()
    f.monitor.error = TrackError("cannot read the manifest of web-staging revision 4: 403 Forbidden")
    assert track_of(f) == Tracked(result="verifying", wait=30.0)
    assert f.monitor.track_calls == [(REF, 4)]
    assert f.slots.tracked == 0


def test_track_on_a_cluster_without_a_grant_looks_again_in_30_seconds() -> None:
    f = fakes(config=operator_config(grants=()))
    assert track_of(f) == Tracked(result="verifying", wait=30.0)
    assert f.monitor.track_calls == []
    assert f.slots.tracked == 0


# ----- start_verifying: after a helm action -------------------------------------------------------


def test_start_verifying_follows_the_new_revision_until_the_health_timeout() -> None:
    f = fakes()
    body, plan = in_place(4, healthTimeout="2m")
    deployment = request(body, Step(Do.RELEASE, plan)).deployment
    before = time.time()
    until = run(start_verifying(f.ctx, deployment, plan, ACCESS, [entry(5, "deployed"), entry(4)], LOGGER))
    assert until is not None
    assert dt.datetime.strptime(until, "%Y-%m-%dT%H:%M:%SZ")  # RFC 3339, seconds, UTC
    # About healthTimeout from now (the text has whole seconds).
    assert before + 120 <= epoch(until) <= time.time() + 120 + 1  # whole seconds, rounded up
    assert f.monitor.following[REF].revision == 5
    assert f.monitor.listed == [False]  # the revision helm just made: read on its own
    assert f.monitor.untracked == []


def test_start_verifying_that_cannot_follow_yet_still_gives_a_deadline() -> None:
    f = fakes()
    f.monitor.error = TrackError("cannot read the manifest of web-staging revision 5: timeout")
    body, plan = in_place(4)
    deployment = request(body, Step(Do.RELEASE, plan)).deployment
    until = run(start_verifying(f.ctx, deployment, plan, ACCESS, [entry(5, "deployed")], LOGGER))
    assert until is not None and epoch(until) > time.time() + 250  # the default timeout is 5m
    assert f.monitor.track_calls == [(REF, 5)] and REF not in f.monitor.following


def test_start_verifying_with_checks_off_untracks_and_gives_no_deadline() -> None:
    f = fakes()
    body, plan = in_place(4, health="None")
    deployment = request(body, Step(Do.RELEASE, plan)).deployment
    run(f.monitor.track(REF, CLUSTER.ref, ACCESS, RELEASE, RELEASE_NAMESPACE, 4))  # an earlier revision
    until = run(start_verifying(f.ctx, deployment, plan, ACCESS, [entry(5, "deployed")], LOGGER))
    assert until is None
    assert f.monitor.untracked == [REF] and REF not in f.monitor.following
    assert f.monitor.track_calls == [(REF, 4)]  # only the earlier one


def test_start_verifying_without_a_history_gives_no_deadline() -> None:
    f = fakes()
    body, plan = in_place(4)
    deployment = request(body, Step(Do.RELEASE, plan)).deployment
    assert run(start_verifying(f.ctx, deployment, plan, ACCESS, [], LOGGER)) is None
    assert f.monitor.untracked == [REF] and f.monitor.track_calls == []


# ----- stop following, the verdict ----------------------------------------------------------------


def test_stop_following_untracks() -> None:
    f = fakes()
    assert track_of(f) == Tracked()
    body, plan = in_place(4)
    assert run(stop_following(f.ctx, request(body, Step(Do.SETTLE, plan)))) == Done()
    assert f.monitor.untracked == [REF] and not f.monitor.tracked(REF, 4)


def test_the_verdict_was_read_when_observing_so_verify_runs_nothing() -> None:
    f = fakes()
    body, plan = in_place(4)
    assert run(verdict(f.ctx, request(body, Step(Do.VERIFY, plan)))) == Done()
    assert f.monitor.track_calls == [] and f.monitor.untracked == [] and f.slots.tracked == 0


def test_verify_tells_the_monitor_which_verdict_was_acted_on() -> None:
    f = fakes()
    body, plan = in_place(4)
    healthy = release_health([])
    run(verdict(f.ctx, request(body, Step(Do.VERIFY, plan), health=HealthSeen(True, healthy))))
    assert f.monitor.seen_verdicts == [(REF, healthy)]  # only a different verdict wakes it again


def test_the_health_deadline_never_gives_less_than_the_timeout() -> None:
    """Status keeps whole seconds: the deadline is rounded up, never cut (a cut fraction
    failed a 6 s healthTimeout after 5.8 s in CI)."""
    import datetime as dt

    from alecton.handlers.actions.verify import health_deadline

    now = dt.datetime(2026, 12, 3, 11, 24, 12, 990000, tzinfo=dt.UTC)
    assert health_deadline(now, 6) == "2026-12-03T11:24:19Z"
    assert health_deadline(now.replace(microsecond=0), 6) == "2026-12-03T11:24:18Z"
