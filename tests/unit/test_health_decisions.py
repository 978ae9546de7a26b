"""Health decisions: the verdict, the status each outcome writes, the health recorded per
revision, the health policy of a target, and what plan/CLI make of a failed health check."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest
from alecton.api.models import Application, HealthPolicy, HealthSettings, InvalidResourceError
from alecton.reconcile import conditions as st
from alecton.reconcile import status as fields
from alecton.reconcile.decide import health_failure
from alecton.reconcile.health import ObjectHealth, ReleaseHealth, State, release_health
from alecton.reconcile.history import carry_recorded, history_from_status, mark_health, newest_healthy
from alecton.reconcile.plan import Action, DesiredRelease, RecordedStatus, rolled_back_fingerprint
from alecton.reconcile.release import HistoryEntry
from alecton.reconcile.verdict import Outcome, Verdict, health_outcome
from alecton.service.outcomes import WaitOutcome, deploy_outcome, rollback_outcome

from tests.unit.test_cli_logic import dep
from tests.unit.test_health import key_of
from tests.unit.test_plan import APP_SPEC, HERE, NS, deployment, plan_for

CURRENT, IN_PROGRESS, FAILED, NOT_FOUND = State.CURRENT, State.IN_PROGRESS, State.FAILED, State.NOT_FOUND

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
TODAY = "2026-01-01T00:00:00Z"
UNTIL = "2026-01-01T00:05:00Z"
RETRY_HINT = f"alecton retry web staging -n {NS}"
HELM_SUCCEEDED = ("True", "UpgradeSucceeded")  # the Released condition after the upgrade

# What each state of a Deployment object says about itself (as health.assess words it).
STATE_MESSAGES = {
    CURRENT: "1 replica available",
    IN_PROGRESS: "0/1 replicas available",
    FAILED: "pod web-7d9 CrashLoopBackOff, 3 restarts",
    NOT_FOUND: "not found",
}


# ---------------------------------------------------------------------------
# Builders


def health_of(*states: State) -> ReleaseHealth:
    """A release of one Deployment per state, named web-0, web-1, ... in manifest order."""
    return release_health(
        ObjectHealth(key_of("Deployment", f"web-{index}"), state, STATE_MESSAGES[state])
        for index, state in enumerate(states)
    )


def entry(revision: int, status: str = "superseded", healthy: bool | None = None) -> HistoryEntry:
    return HistoryEntry(revision, status, "webapp-1.0.0", "1.0", f"t{revision}", "", f"0.{revision}", healthy)


# Revision 2 (version 1.0, what the Deployment asks for) was just made; revision 1 runs 0.9.
HISTORY = [
    HistoryEntry(2, "deployed", "webapp-1.0.0", "1.0", "t2", "", "1.0"),
    HistoryEntry(1, "superseded", "webapp-1.0.0", "1.0", "t1", "", "0.9"),
]


def desired() -> DesiredRelease:
    release = plan_for(deployment()).desired
    assert release is not None
    return release


def ctx(previous: dict[str, Any] | None = None) -> st.StatusContext:
    return st.StatusContext(1, previous or {}, TODAY)


def succeeded(action: Action = Action.UPGRADE, **options: Any) -> dict[str, Any]:
    """The status after a successful helm action on HISTORY (options: verify_until, rollback...)."""
    return st.succeeded_status(ctx(), action, desired(), HISTORY, lambda v: f"r/web:{v}", HERE, **options)


def merged(status: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """`patch` applied to `status` as a JSON merge patch (RFC 7386), as the API server does."""
    result = dict(status)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def history_health(status: dict[str, Any]) -> dict[int, bool | None]:
    return {e["revision"]: e.get("healthy") for e in status["history"]}


def application(app: dict[str, Any] | None = None, target: dict[str, Any] | None = None) -> Application:
    """APP_SPEC with health settings added at the spec level and on its only target."""
    targets = [{**APP_SPEC["targets"][0], **(target or {})}]
    return Application.parse(
        {
            "metadata": {"namespace": NS, "name": "web"},
            "spec": {**APP_SPEC, **(app or {}), "targets": targets},
        }
    )


# ---------------------------------------------------------------------------
# verdict.health_outcome


@pytest.mark.parametrize(
    ("phase", "health", "deadline", "expected"),
    [
        # Verifying: healthy, failed early, still progressing, or out of time.
        ("Verifying", health_of(CURRENT, CURRENT), NOW + 60, Verdict(Outcome.HEALTHY)),
        ("Verifying", health_of(CURRENT), NOW - 1, Verdict(Outcome.HEALTHY)),
        ("Verifying", health_of(CURRENT, FAILED), NOW + 60, Verdict(Outcome.FAILED)),
        ("Verifying", health_of(FAILED), NOW - 1, Verdict(Outcome.FAILED)),  # failed, not timed out
        ("Verifying", health_of(CURRENT, IN_PROGRESS), NOW + 60, Verdict(Outcome.PROGRESS, wake_in=60)),
        ("Verifying", health_of(NOT_FOUND), NOW + 0.5, Verdict(Outcome.PROGRESS, wake_in=0.5)),
        ("Verifying", health_of(IN_PROGRESS), NOW, Verdict(Outcome.FAILED, timed_out=True)),
        ("Verifying", health_of(IN_PROGRESS), NOW - 60, Verdict(Outcome.FAILED, timed_out=True)),
        ("Verifying", None, NOW + 60, Verdict(Outcome.WAIT, wake_in=60)),
        ("Verifying", None, NOW, Verdict(Outcome.FAILED, timed_out=True)),
        ("Verifying", None, NOW - 60, Verdict(Outcome.FAILED, timed_out=True)),
        # No readable deadline (epoch() gives 0): there is no time left to wait.
        ("Verifying", health_of(IN_PROGRESS), 0.0, Verdict(Outcome.FAILED, timed_out=True)),
        # Settled phases: the deadline plays no part.
        ("Deployed", health_of(CURRENT), NOW + 60, Verdict(Outcome.WAIT)),
        ("RolledBack", health_of(CURRENT), NOW - 60, Verdict(Outcome.WAIT)),
        ("Degraded", health_of(CURRENT, CURRENT), NOW - 60, Verdict(Outcome.HEALTHY)),
        ("Deployed", health_of(CURRENT, IN_PROGRESS), NOW - 60, Verdict(Outcome.DEGRADED)),
        ("Deployed", health_of(FAILED), NOW + 60, Verdict(Outcome.DEGRADED)),
        ("RolledBack", health_of(IN_PROGRESS), NOW + 60, Verdict(Outcome.DEGRADED)),
        ("RolledBack", health_of(FAILED), NOW - 60, Verdict(Outcome.DEGRADED)),
        ("Degraded", health_of(FAILED), NOW - 60, Verdict(Outcome.DEGRADED)),
        ("Deployed", None, NOW - 60, Verdict(Outcome.WAIT)),
        ("RolledBack", None, NOW + 60, Verdict(Outcome.WAIT)),
        ("Degraded", None, NOW - 60, Verdict(Outcome.WAIT)),
    ],
)
def test_health_outcome(phase: str, health: ReleaseHealth | None, deadline: float, expected: Verdict) -> None:
    assert health_outcome(phase, health, NOW, deadline) == expected


# ---------------------------------------------------------------------------
# status: after helm, Verifying or settled


@pytest.mark.parametrize(
    ("action", "options", "settled"),
    [
        (Action.UPGRADE, {}, "Deployed"),
        (Action.ROLLBACK, {"rollback": {"revision": 1, "requestId": "r"}}, "RolledBack"),
        (Action.ROLLBACK, {"rolled_back_to": 1}, "RolledBack"),
    ],
)
def test_succeeded_with_a_deadline_is_verifying(action: Action, options: dict, settled: str) -> None:
    status = succeeded(action, verify_until=UNTIL, **options)
    assert status["phase"] == "Verifying" and status["settledPhase"] == settled
    assert conditions(status) == {
        "Ready": ("Unknown", "Verifying"),
        "Released": ("True", f"{action.value}Succeeded"),
        "Reconciling": ("True", "Verifying"),
        "Stalled": ("False", "Succeeded"),
    }
    assert status["message"].endswith(f"; verifying health until {UNTIL}")
    assert status["health"] == {
        "state": "Progressing",
        "message": "waiting for the first assessment",
        "progressing": [],
        "deadline": UNTIL,
        "revision": 2,
    }


def test_succeeded_without_a_deadline_is_deployed_with_health_unknown() -> None:
    status = succeeded()
    assert status["phase"] == status["settledPhase"] == "Deployed"
    assert status["message"] == "deployed version 1.0 as web-staging revision 2"
    assert conditions(status)["Ready"] == ("True", "Succeeded")
    assert conditions(status)["Reconciling"] == ("False", "Succeeded")
    assert status["health"]["state"] == "Unknown" and status["health"]["deadline"] is None
    assert status["health"]["revision"] == 2


def test_succeeded_upgrade_under_verification_says_applied() -> None:
    status = succeeded(verify_until=UNTIL)
    assert (
        status["message"] == f"applied version 1.0 as web-staging revision 2; verifying health until {UNTIL}"
    )
    assert status["appliedFingerprint"] == desired().fingerprint


def test_health_checks_off_clears_what_verifying_recorded() -> None:
    verifying = succeeded(verify_until=UNTIL)
    waiting = merged(verifying, st.verifying_progress(ctx(verifying), health_of(IN_PROGRESS), 2, UNTIL))
    health = merged(waiting, succeeded())["health"]  # the next upgrade, with health: None
    assert health["state"] == "Unknown"
    assert not health.get("deadline") and not health.get("progressing")


def test_automatic_rollback_says_so() -> None:
    status = succeeded(Action.ROLLBACK, rolled_back_to=1, verify_until=UNTIL)
    assert status["message"].startswith(
        "rolled back web-staging automatically to revision 1 (now revision 2, version 1.0)"
    )
    assert status["appliedFingerprint"] == rolled_back_fingerprint(desired().fingerprint)
    assert "lastRollback" not in status  # nobody asked for it in spec.rollback
    requested = succeeded(Action.ROLLBACK, rollback={"revision": 1, "requestId": "r"})
    assert requested["message"].startswith("rolled back web-staging to revision 1 (now revision 2")
    assert requested["lastRollback"] == {"revision": 1, "requestId": "r"}


# ---------------------------------------------------------------------------
# status: the health outcomes


def test_healthy_status_settles_a_verified_upgrade() -> None:
    verifying = succeeded(verify_until=UNTIL)
    status = st.healthy_status(ctx(verifying), health_of(CURRENT, CURRENT), 2)
    assert status["phase"] == "Deployed"
    assert status["message"] == (
        "deployed version 1.0 as web-staging revision 2; revision 2 is healthy: all 2 objects healthy"
    )
    assert conditions(status) == {
        "Ready": ("True", "Healthy"),
        "Released": HELM_SUCCEEDED,  # what helm did stays as it was
        "Reconciling": ("False", "Healthy"),
        "Stalled": ("False", "Healthy"),
    }
    assert status["health"] == {
        "state": "Healthy",
        "message": "all 2 objects healthy",
        "progressing": [],
        "revision": 2,
        "deadline": None,  # a merge patch: removes the verifying deadline
    }
    assert history_health(status) == {2: True, 1: None}


def test_a_failed_version_that_is_healthy_now_is_no_longer_a_failed_version() -> None:
    """`alecton retry` is the way back for a version that failed its health check: once it
    is healthy, promotion may offer it again."""
    verifying = succeeded(verify_until=UNTIL)
    version = verifying["history"][0]["version"]
    failed = [
        fields.failed_version_entry(version, 1, "crashed", UNTIL),
        fields.failed_version_entry("0.9", 1, "x", UNTIL),
    ]
    status = st.healthy_status(ctx({**verifying, "failedVersions": failed}), health_of(CURRENT), 2)
    assert [e["version"] for e in status["failedVersions"]] == ["0.9"]
    assert "failedVersions" not in st.healthy_status(ctx(verifying), health_of(CURRENT), 2)


def test_healthy_status_settles_an_automatic_rollback_as_rolled_back() -> None:
    verifying = succeeded(Action.ROLLBACK, rolled_back_to=1, verify_until=UNTIL)
    status = st.healthy_status(ctx(verifying), health_of(CURRENT), 2)
    assert status["phase"] == "RolledBack"
    assert status["message"] == (
        "rolled back web-staging automatically to revision 1 (now revision 2, version 1.0); "
        "revision 2 is healthy: 1 object healthy"
    )


def test_healthy_status_without_a_recorded_message_or_settled_phase() -> None:
    status = st.healthy_status(ctx({"phase": "Verifying"}), health_of(CURRENT), 3)
    assert status["phase"] == "Deployed"
    assert status["message"] == "revision 3 is healthy: 1 object healthy"
    assert status["history"] == []


def test_verifying_progress_keeps_the_helm_message_and_records_what_waits() -> None:
    verifying = succeeded(verify_until=UNTIL)
    health = health_of(CURRENT, IN_PROGRESS, NOT_FOUND)
    status = st.verifying_progress(ctx(verifying), health, 2, UNTIL)
    assert status["phase"] == "Verifying" and status["message"] == verifying["message"]
    waiting = "waiting for Deployment web-1: 0/1 replicas available, and 1 more"
    assert status["health"] == {
        "state": "Progressing",
        "message": waiting,
        "progressing": ["Deployment web-1: 0/1 replicas available", "Deployment web-2: not found"],
        "revision": 2,
        "deadline": UNTIL,
    }
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("Unknown", "Verifying")
    assert ready["message"] == f"verifying revision 2 until {UNTIL}: {waiting}"
    assert conditions(status)["Reconciling"] == ("True", "Verifying")
    assert "history" not in status  # nothing is known about the revision yet


def test_verifying_progress_lists_at_most_ten_objects() -> None:
    status = st.verifying_progress(ctx(), health_of(*[IN_PROGRESS] * 12), 2, UNTIL)
    assert len(status["health"]["progressing"]) == 10
    assert status["message"].startswith("verifying revision 2 until")  # no helm message to keep


def test_degraded_and_healthy_again() -> None:
    verifying = succeeded(verify_until=UNTIL)
    deployed = merged(verifying, st.healthy_status(ctx(verifying), health_of(CURRENT, CURRENT), 2))
    degraded = st.degraded_status(ctx(deployed), health_of(CURRENT, FAILED), 2)
    assert degraded["phase"] == "Degraded"
    assert (
        degraded["message"]
        == "revision 2 is unhealthy: Deployment web-1: pod web-7d9 CrashLoopBackOff, 3 restarts"
    )
    assert conditions(degraded) == {
        "Ready": ("False", "Degraded"),
        "Released": HELM_SUCCEEDED,  # what helm did stays as it was
        "Reconciling": ("False", "Degraded"),
        "Stalled": ("False", "Degraded"),
    }
    assert degraded["health"]["state"] == "Unhealthy" and "settledPhase" not in degraded
    recovered = st.healthy_status(ctx(merged(deployed, degraded)), health_of(CURRENT, CURRENT), 2)
    assert recovered["phase"] == "Deployed"
    assert recovered["message"] == "healthy again: all 2 objects healthy"
    assert conditions(recovered)["Ready"] == ("True", "Healthy")


def test_a_degraded_rollback_recovers_as_rolled_back() -> None:
    previous = {"phase": "Degraded", "settledPhase": "RolledBack", "message": "revision 2 is unhealthy: x"}
    degraded = st.degraded_status(ctx(previous), health_of(IN_PROGRESS), 2)
    assert degraded["health"]["state"] == "Progressing"
    recovered = st.healthy_status(ctx(previous), health_of(CURRENT), 2)
    assert recovered["phase"] == "RolledBack" and recovered["message"].startswith("healthy again: ")


@pytest.mark.parametrize(
    ("health", "timed_out", "why"),
    [
        (health_of(CURRENT, FAILED), False, "Deployment web-1: pod web-7d9 CrashLoopBackOff, 3 restarts"),
        (
            health_of(IN_PROGRESS),
            True,
            "not healthy within the health timeout: waiting for Deployment web-0: 0/1 replicas available",
        ),
        (release_health([]), True, "not healthy within the health timeout: no objects to assess"),
    ],
)
def test_health_failure_wording(health: ReleaseHealth, timed_out: bool, why: str) -> None:
    assert (
        health_failure(health, 4, "2.0", timed_out)
        == f"version 2.0 (revision 4) failed its health check: {why}"
    )


def failed_after(previous: dict[str, Any], version: str = "1.0", **options: Any) -> dict[str, Any]:
    """health_failed_status for revision 2 of `version`, failed by a crashing object."""
    failure = health_failure(health_of(FAILED), 2, version, False)
    return st.health_failed_status(ctx(previous), failure, 2, version, "sha256:bad", RETRY_HINT, **options)


def test_health_failed_status() -> None:
    verifying = succeeded(verify_until=UNTIL)
    health = health_of(FAILED)
    failure = health_failure(health, 2, "1.0", False)
    status = failed_after(verifying, health=health)
    assert status["phase"] == "Failed"
    assert status["message"] == f"{failure}; change the inputs or run `{RETRY_HINT}`"
    assert conditions(status) == {
        "Ready": ("False", "HealthCheckFailed"),
        "Released": HELM_SUCCEEDED,  # what helm did stays as it was
        "Reconciling": ("False", "HealthCheckFailed"),
        "Stalled": ("True", "HealthCheckFailed"),
    }
    assert status["unhealthyFingerprint"] == "sha256:bad"
    assert status["failedVersions"] == [
        {"version": "1.0", "revision": 2, "reason": failure, "failedAt": TODAY}
    ]
    assert history_health(status) == {2: False, 1: None}
    assert status["health"]["state"] == "Unhealthy" and status["health"]["revision"] == 2


def test_health_failed_status_says_why_nothing_was_rolled_back() -> None:
    status = failed_after({}, no_rollback="no earlier revision became healthy")
    assert "health" not in status  # no assessment given: the recorded one stays
    assert re.fullmatch(
        r"version 1\.0 \(revision 2\) failed its health check: .+; no earlier revision became healthy; "
        r"change the inputs or run `alecton retry web staging -n team`",
        status["message"],
    )
    assert status["failedVersions"][0]["reason"].endswith("CrashLoopBackOff, 3 restarts")  # without the hint


def test_failed_versions_are_newest_first_one_per_version() -> None:
    older = {"version": "0.9", "revision": 1, "reason": "old", "failedAt": "2025-12-01T00:00:00Z"}
    same = {"version": "1.0", "revision": 1, "reason": "first try", "failedAt": "2025-12-02T00:00:00Z"}
    status = failed_after({"failedVersions": [same, older]})
    assert [(e["version"], e["revision"], e["failedAt"]) for e in status["failedVersions"]] == [
        ("1.0", 2, TODAY),
        ("0.9", 1, "2025-12-01T00:00:00Z"),
    ]


def test_failed_versions_keep_at_most_twenty() -> None:
    previous = [
        {"version": f"0.{n}", "revision": n, "reason": "x", "failedAt": TODAY} for n in range(20, 0, -1)
    ]
    versions = [e["version"] for e in failed_after({"failedVersions": previous})["failedVersions"]]
    assert versions == ["1.0", *[f"0.{n}" for n in range(20, 1, -1)]]  # the oldest (0.1) is dropped


# ---------------------------------------------------------------------------
# helm.release: health per revision


def test_carry_recorded_keeps_what_status_recorded_per_revision() -> None:
    helm = [entry(4, "deployed"), entry(3), entry(2)]  # helm knows nothing of health
    recorded = [entry(3, healthy=True), entry(2, healthy=False), entry(1, healthy=True)]
    assert [e.healthy for e in carry_recorded(helm, recorded)] == [None, True, False]
    assert [e.revision for e in carry_recorded(helm, recorded)] == [4, 3, 2]  # helm's list, not status'
    assert carry_recorded(helm, []) == helm


def test_mark_health_changes_only_that_revision() -> None:
    history = [entry(3, "deployed"), entry(2, healthy=True), entry(1)]
    assert [e.healthy for e in mark_health(history, 3, False)] == [False, True, None]
    assert [e.healthy for e in mark_health(history, 2, False)] == [None, False, None]
    assert mark_health(history, 9, True) == history


@pytest.mark.parametrize(
    ("history", "below", "expected"),
    [
        ([entry(3, "deployed"), entry(2, healthy=True), entry(1, healthy=True)], 3, 2),
        # Healthy wins over a newer revision that was never checked.
        ([entry(3, "deployed"), entry(2), entry(1, healthy=True)], 3, 1),
        # Nothing was checked (revisions from before health checks): the newest superseded one.
        ([entry(3, "deployed"), entry(2), entry(1)], 3, 2),
        # Never a revision found unhealthy, nor one helm did not supersede cleanly.
        ([entry(3, "deployed"), entry(2, healthy=False), entry(1)], 3, 1),
        ([entry(3, "deployed"), entry(2, "failed"), entry(1)], 3, 1),
        ([entry(3, "deployed"), entry(2, "failed"), entry(1, healthy=False)], 3, None),
        ([entry(3, "deployed"), entry(2, healthy=False), entry(1, healthy=False)], 3, None),
        # Only revisions older than the failed one count.
        ([entry(5, healthy=True), entry(4, "deployed"), entry(3)], 4, 3),
        ([entry(3, "deployed", healthy=True)], 3, None),
        ([], 3, None),
    ],
)
def test_newest_healthy(history: list[HistoryEntry], below: int, expected: int | None) -> None:
    found = newest_healthy(history, below)
    assert (found.revision if found else None) == expected


def test_history_round_trips_healthy_through_status() -> None:
    history = [entry(3, "deployed", healthy=None), entry(2, healthy=False), entry(1, healthy=True)]
    recorded = [e.as_status() for e in history]
    assert "healthy" not in recorded[0] and recorded[1]["healthy"] is False and recorded[2]["healthy"] is True
    assert history_from_status(recorded) == history
    # Anything but a boolean reads as "not checked".
    assert history_from_status([{**recorded[2], "healthy": "true"}])[0].healthy is None


# ---------------------------------------------------------------------------
# api.models: health settings and the effective policy


def test_health_settings_are_read_at_spec_level_and_per_target() -> None:
    app = application(
        {"health": "Check", "healthTimeout": "90s", "onFailure": "Rollback"},
        {"health": "None", "healthTimeout": "2m", "onFailure": "None"},
    )
    assert app.health == HealthSettings(check=True, timeout="90s", rollback_on_failure=True)
    assert app.targets[0].health == HealthSettings(check=False, timeout="2m", rollback_on_failure=False)
    unset = application()
    assert unset.health == unset.targets[0].health == HealthSettings()


@pytest.mark.parametrize(
    ("app", "target", "expected"),
    [
        ({}, {}, HealthPolicy(check=True, timeout_text="5m", rollback_on_failure=False)),
        ({"health": "None"}, {}, HealthPolicy(check=False)),
        ({"healthTimeout": "90s", "onFailure": "Rollback"}, {}, HealthPolicy(True, "90s", True)),
        ({"onFailure": "None"}, {}, HealthPolicy()),
        (
            {},
            {"health": "Check", "healthTimeout": "1h", "onFailure": "Rollback"},
            HealthPolicy(True, "1h", True),
        ),
        # A target overrides the Application, setting by setting.
        (
            {"health": "Check", "healthTimeout": "90s", "onFailure": "Rollback"},
            {"health": "None"},
            HealthPolicy(False, "90s", True),
        ),
        ({"onFailure": "Rollback"}, {"onFailure": "None"}, HealthPolicy(rollback_on_failure=False)),
        ({"health": "None"}, {"health": "Check"}, HealthPolicy(check=True)),
        ({"healthTimeout": "90s"}, {"healthTimeout": "10m"}, HealthPolicy(timeout_text="10m")),
        ({"healthTimeout": "90s"}, {"healthTimeout": ""}, HealthPolicy(timeout_text="90s")),
    ],
)
def test_health_policy(app: dict, target: dict, expected: HealthPolicy) -> None:
    parsed = application(app, target)
    assert parsed.health_policy(parsed.targets[0]) == expected


@pytest.mark.parametrize("level", ["spec", "target"])
@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("health", "check", "Check or None"),
        ("health", True, "Check or None"),
        ("health", "Off", "Check or None"),
        ("onFailure", "rollback", "None or Rollback"),
        ("onFailure", "Retry", "None or Rollback"),
    ],
)
def test_invalid_health_settings_name_the_field(level: str, field: str, value: Any, allowed: str) -> None:
    where = "spec" if level == "spec" else "spec.targets[0]"
    settings = {field: value}
    with pytest.raises(InvalidResourceError, match=re.escape(f"{where}.{field} must be {allowed}")):
        application(*((settings, None) if level == "spec" else (None, settings)))


@pytest.mark.parametrize("level", ["spec", "target"])
def test_a_zero_health_timeout_is_rejected(level: str) -> None:
    settings = {"healthTimeout": "0s"}
    with pytest.raises(InvalidResourceError, match="healthTimeout"):
        application(*((settings, None) if level == "spec" else (None, settings)))


# ---------------------------------------------------------------------------
# plan: failed health checks and retries


def decided(recorded: RecordedStatus, **spec: Any) -> tuple[Action, str]:
    plan = plan_for(deployment(**spec), recorded)
    return plan.action, plan.reason


def test_inputs_that_failed_their_health_check_are_not_run_again() -> None:
    fingerprint = desired().fingerprint
    recorded = RecordedStatus(
        applied_fingerprint="sha256:something-else", unhealthy_fingerprint=fingerprint, release=HERE
    )
    assert decided(recorded) == (Action.NOTHING, "HealthCheckFailed")
    plan = plan_for(deployment(), recorded)
    assert plan.desired is not None and plan.desired.fingerprint == fingerprint
    # Other inputs (a fix) run at once.
    changed = RecordedStatus(applied_fingerprint="sha256:something-else", unhealthy_fingerprint="sha256:old")
    assert decided(changed) == (Action.UPGRADE, "")


@pytest.mark.parametrize("unhealthy", [False, True])
def test_a_new_retry_request_runs_helm_again_for_the_same_inputs(unhealthy: bool) -> None:
    fingerprint = desired().fingerprint
    recorded = RecordedStatus(
        applied_fingerprint=fingerprint,
        unhealthy_fingerprint=fingerprint if unhealthy else "",
        release=HERE,
        retry_request_id="",
    )
    assert decided(recorded, retryRequestId="r1") == (Action.UPGRADE, "RetryRequested")
    # Once acted on, the same id is no retry.
    done = replace(recorded, retry_request_id="r1")
    expected = (Action.NOTHING, "HealthCheckFailed" if unhealthy else "")
    assert decided(done, retryRequestId="r1") == expected
    assert decided(done, retryRequestId="r2") == (Action.UPGRADE, "RetryRequested")


def test_retry_and_health_fields_are_parsed() -> None:
    assert deployment(retryRequestId="r1").retry_request_id == "r1"
    assert deployment().retry_request_id == ""
    recorded = RecordedStatus.parse({"unhealthyFingerprint": "sha256:x", "lastRetryRequestId": "r1"})
    assert (recorded.unhealthy_fingerprint, recorded.retry_request_id) == ("sha256:x", "r1")
    cleared = RecordedStatus.parse({"unhealthyFingerprint": None, "lastRetryRequestId": None})
    assert (cleared.unhealthy_fingerprint, cleared.retry_request_id) == ("", "")


# ---------------------------------------------------------------------------
# service.outcomes.deploy_outcome


@pytest.mark.parametrize(
    ("progressing", "shown"),
    [
        (None, "the first assessment"),
        ([], "the first assessment"),
        (["a: 0/1"], "a: 0/1"),
        (["a", "b", "c"], "a; b; c"),
        (["a", "b", "c", "d", "e"], "a; b; c (and 2 more)"),
    ],
)
def test_verifying_is_not_done_and_says_what_it_waits_for(progressing: list[str] | None, shown: str) -> None:
    health = {} if progressing is None else {"progressing": progressing}
    outcome = deploy_outcome(dep(2, "Verifying", 2, health=health), 2)
    assert outcome == WaitOutcome(False, message=f"Verifying: waiting for {shown}")


def test_an_automatic_rollback_is_a_failed_deploy() -> None:
    automatic = deploy_outcome(dep(2, "RolledBack", 2), 2)
    assert automatic == WaitOutcome(True, False, "RolledBack: m")
    requested = {**dep(2, "RolledBack", 2), "spec": {"rollback": {"revision": 1}}}
    assert deploy_outcome(requested, 2) == WaitOutcome(True, True, "m")
    assert deploy_outcome(dep(2, "Deployed", 2), 2) == WaitOutcome(True, True, "m")


def test_a_failed_health_check_ends_the_wait() -> None:
    failed = dep(
        2, "Failed", 2, conditions=[{"type": "Stalled", "status": "True", "reason": "HealthCheckFailed"}]
    )
    assert deploy_outcome(failed, 2) == WaitOutcome(True, False, "Failed: m")
    assert not deploy_outcome(dep(2, "Verifying", 1), 2).done  # the old generation's result


@pytest.mark.parametrize(
    ("phase", "done", "ok"),
    [("Verifying", False, False), ("RolledBack", True, True), ("Failed", True, False)],
)
def test_rollback_wait_ends_when_the_old_revision_is_healthy_again(phase: str, done: bool, ok: bool) -> None:
    obj = {
        "spec": {"rollback": {"revision": 1, "requestId": "r"}},
        "status": {"phase": phase, "lastRollback": {"revision": 1, "requestId": "r", "result": "Succeeded"}},
    }
    outcome = rollback_outcome(obj, 1, "r")
    assert (outcome.done, outcome.ok) == (done, ok)
