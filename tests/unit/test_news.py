"""The News of each summary (reconcile/news.py, issue 25): for every summary case of
test_summary.py that posts an Event, the News it makes (kind, severity, version, revision,
cause, reason), or none; who asked comes from the annotation the API server stamps; keys are
stable and distinct; the wire form reads back; secret values never appear."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from alecton.reconcile.decide import Do, Observed, Step
from alecton.reconcile.health import State
from alecton.reconcile.helm_failure import FailureClass, FailureKind
from alecton.reconcile.news import CHANGED_BY_ANNOTATION, Kind, News, Severity
from alecton.reconcile.outcomes import (
    Claimed,
    Conflict,
    Done,
    Note,
    Promoted,
    Released,
    ReleaseFailed,
    Summary,
    Uninstalled,
    UninstallFailed,
)
from alecton.reconcile.plan import Action, Plan
from alecton.reconcile.redact import Redactor
from alecton.reconcile.summary import summarize
from alecton.reconcile.times import epoch
from alecton.reconcile.verdict import Outcome as Verdict

from tests.unit.fakes import HERE, OLD_PLACE, deployment_body, entry, image_for, plan_of, released_status
from tests.unit.test_summary import (
    NOW,
    at,
    check_step,
    checked,
    health,
    in_place,
    promotion_facts,
    release_of,
    summary,
    upgrade,
)

# (kind, severity, version, revision, cause, reason) of each News.
Fact = tuple[str, str, str, int, str, str]


def facts(result: Summary) -> list[Fact]:
    return [(str(n.kind), str(n.severity), n.version, n.revision, n.cause, n.reason) for n in result.news]


def released(revision: int = 3, version: str = "1.1", cause: str = "deploy", **options: Any) -> Released:
    """As the release action reports it: the newest revision marked with its cause."""
    history = [replace(entry(revision, "deployed", version), cause=cause), entry(revision - 1)]
    return Released(HERE, history, image_for(version), **options)


def automatic_rollback_step(failures: int = 0) -> tuple[dict[str, Any], Step]:
    return release_of(
        deployment_body(released_status(3, appliedVersion="1.1", failures=failures), version="1.1"),
        action=Action.ROLLBACK, reason="HealthCheckFailed", rollback_to=2,
        health_failure="version 1.1 (revision 3) failed its health check",
    )  # fmt: skip


def requested_rollback() -> tuple[dict[str, Any], Step]:
    return release_of(deployment_body(released_status(3), rollback={"revision": 1, "requestId": "r1"}))


def report(action: Action, reason: str = "Why", body: dict[str, Any] | None = None) -> Summary:
    return summary(body or deployment_body(), Step(Do.REPORT, Plan(action, reason, "because")))


def uninstall(outcome: Any, failures: int = 0) -> Summary:
    body = deployment_body(released_status(3, failures=failures))
    return summary(body, Step(Do.UNINSTALL, Plan(Action.UNINSTALL)), outcome)


def in_check(mode: str, outcome: Any, body: dict[str, Any] | None = None) -> Summary:
    return summary(body or in_place("Deployed"), check_step(in_place("Deployed"), mode), outcome)


def verify(body: dict[str, Any], state: State, **step: Any) -> Summary:
    do = Do.FAIL_HEALTH if "failure" in step else Do.VERIFY
    return summary(body, Step(do, plan_of(body), **step), verdict=health(state, "0 of 2 ready"))


def verifying() -> dict[str, Any]:
    return in_place("Verifying", message="applied", settledPhase="Deployed")


ASKED = {"revision": 1, "requestId": "r1"}
ORPHANED = Plan(Action.RELEASE_FINALIZER, "Orphaned", "x")
INPUT_FAILURE = FailureClass(FailureKind.INPUT, "TemplateError")
CORRECTION = {"at": NOW, "revision": 3, "detail": "ConfigMap web-config"}

CASES: dict[str, tuple[Callable[[], Summary], list[Fact]]] = {
    # A waiting, conflicting, suspended or refused Deployment is no release transition.
    "report-wait": (lambda: report(Action.WAIT, "ImageNotFound"), []),
    "report-conflict": (lambda: report(Action.CONFLICT), []),
    "report-suspended": (lambda: report(Action.SUSPENDED), []),
    "report-refused": (lambda: report(Action.REFUSED), []),
    "invalid-spec": (
        lambda: summarize(Observed(None, {}, epoch(NOW), 4, invalid="bad"),
                          Step(Do.REPORT, Plan(Action.REFUSED, "InvalidSpec", "bad")), Done(), NOW),
        [],
    ),
    "held-rollback": (
        lambda: report(Action.HELD, "RollbackHeld", deployment_body(released_status(4))),
        [("Held", "warning", "1.0", 4, "", "RollbackHeld")],
    ),
    "promote": (
        lambda: summary(deployment_body(), Step(Do.PROMOTE), Promoted(
            wrote_version=True, step=promotion_facts(),
            notes=(Note("PromotionProposed", "1.0.0 -> 1.1.0"), Note("PromotionHeld", "x", warning=True)))),
        [("PromotionProposed", "info", "1.1.0", 0, "promotion", "PromotionProposed"),
         ("Held", "warning", "1.0", 0, "", "PromotionHeld")],
    ),
    "finalize-orphaned": (
        lambda: summary(deployment_body(), Step(Do.FINALIZE, ORPHANED)),
        [],
    ),
    "uninstalled": (
        lambda: uninstall(Uninstalled("removed the release from namespace apps")),
        [("Uninstalled", "info", "1.0", 3, "", "UninstallSucceeded")],
    ),
    "uninstall-failed": (
        lambda: uninstall(UninstallFailed("helm uninstall failed"), failures=2),
        [("Failed", "error", "1.0", 3, "", "UninstallFailed")],
    ),
    "release-not-owned": (lambda: summary(*upgrade(), Conflict("belongs to team/other")), []),
    "claim": (
        lambda: summary(*upgrade(), Claimed(HERE, new_place=True, moved_from=OLD_PLACE)),
        [("DeployStarted", "info", "1.1", 0, "deploy", "DeployStarted")],
    ),
    "verifying": (
        lambda: summary(*upgrade(), released(verify_until=at(300))),
        [("Deployed", "info", "1.1", 3, "deploy", "UpgradeSucceeded")],
    ),
    "deployed-after-repair": (
        lambda: summary(*upgrade(), released(repaired="x", notes=(Note("ReleaseRepaired", "x", True),))),
        [("Deployed", "info", "1.1", 3, "deploy", "UpgradeSucceeded")],
    ),
    "requested-rollback": (
        lambda: summary(*requested_rollback(), released(4, "1.0", "rollback", rollback_record=ASKED)),
        [("RolledBack", "warning", "1.0", 4, "rollback", "RollbackSucceeded")],
    ),
    "automatic-rollback": (
        lambda: summary(*automatic_rollback_step(), released(4, "1.0", "automatic-rollback")),
        [("RolledBack", "warning", "1.0", 4, "automatic", "AutomaticRollback")],
    ),
    "upgrade-failed": (
        lambda: summary(*upgrade(), ReleaseFailed("helm upgrade failed: boom")),
        [("Failed", "error", "1.1", 2, "deploy", "UpgradeFailed")],
    ),
    "inputs-refused": (
        lambda: summary(*upgrade(), ReleaseFailed("bad", stalled=INPUT_FAILURE)),
        [("Failed", "error", "1.1", 2, "deploy", "TemplateError")],
    ),
    "cluster-refused": (
        lambda: summary(*upgrade(), ReleaseFailed("no grant", reason="ClusterRefused")),
        [("Failed", "error", "1.1", 2, "deploy", "ClusterRefused")],
    ),
    "rollback-failed": (
        lambda: summary(*release_of(deployment_body(released_status(3), rollback={"revision": 9})),
                        ReleaseFailed("no 9", stalled=FailureClass(FailureKind.INPUT, "InvalidObject"),
                                      rollback_record={"revision": 9})),
        [("Failed", "error", "1.0", 3, "rollback", "InvalidObject")],
    ),
    "automatic-rollback-failed": (
        lambda: summary(*automatic_rollback_step(), ReleaseFailed("helm rollback failed: boom")),
        [("Failed", "error", "1.1", 3, "automatic", "HealthCheckFailed")],
    ),
    "healthy": (
        lambda: verify(verifying(), State.CURRENT, outcome=Verdict.HEALTHY),
        [("Healthy", "info", "1.0", 3, "deploy", "Healthy")],
    ),
    "degraded": (
        lambda: verify(in_place("Deployed"), State.IN_PROGRESS, outcome=Verdict.DEGRADED),
        [("Degraded", "warning", "1.0", 3, "deploy", "Degraded")],
    ),
    "health-check-failed": (
        lambda: verify(verifying(), State.FAILED, failure="f", no_rollback="none"),
        [("Failed", "error", "1.0", 3, "deploy", "HealthCheckFailed")],
    ),
    "drift-detected": (
        lambda: in_check("Warn", checked(True)),
        [("DriftDetected", "warning", "1.0", 3, "deploy", "DriftDetected")],
    ),
    "drift-resolved": (
        lambda: in_check("Warn", checked(False), in_place("Deployed", drift={"drifted": True})),
        [],
    ),
    "drift-corrected": (
        lambda: in_check("Correct", checked(False, {**CORRECTION, "objects": 1, "result": "Succeeded"})),
        [("DriftCorrected", "info", "1.0", 3, "deploy", "DriftCorrected")],
    ),
    "drift-correction-failed": (
        lambda: in_check("Correct", checked(True, {**CORRECTION, "objects": 0, "result": "Failed"})),
        [("Failed", "error", "1.0", 3, "deploy", "DriftCorrectionFailed")],
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_each_summary_that_posts_an_event_makes_its_news(name: str) -> None:
    make, expected = CASES[name]
    result = make()
    assert result.events or name == "claim", "every case here posts an Event (a claim writes status only)"
    assert facts(result) == expected
    for news in result.news:
        assert (news.namespace, news.deployment, news.application, news.target) == (
            "team", "web-staging", "web", "staging",
        )  # fmt: skip
        assert news.time == NOW and news.severity in Severity


@pytest.mark.parametrize(
    "make",
    [
        lambda: summary(in_place("Deployed"), Step(Do.WAIT, plan_of(in_place("Deployed")), wait=12.0)),
        lambda: summary(*upgrade(), Done(result="throttled", wait=1.0)),
        lambda: summary(deployment_body(), Step(Do.PROMOTE), Promoted(waiting="x", wait=3.0)),
        lambda: summary(
            deployment_body({"phase": "Pending", "message": "no Image", "observedGeneration": 3}),
            Step(Do.REPORT, Plan(Action.WAIT, "ImageNotFound", "no Image")),
        ),
    ],
)
def test_a_summary_that_writes_nothing_makes_no_news(make: Callable[[], Summary]) -> None:
    result = make()
    assert result.status is None and result.events == [] and result.news == []


def test_who_asked_is_the_annotation_the_api_server_stamped() -> None:
    body, step = upgrade()
    body["metadata"]["annotations"] = {CHANGED_BY_ANNOTATION: "system:serviceaccount:team:ci"}
    (news,) = summary(body, step, released()).news
    assert news.requested_by == "system:serviceaccount:team:ci"
    assert news.as_dict()["requestedBy"] == "system:serviceaccount:team:ci"


def test_a_deletion_names_nobody_rather_than_the_last_deployer() -> None:
    # Admission cannot stamp a DELETE: the annotation still names whoever last deployed.
    body = deployment_body(released_status(3))
    body["metadata"]["annotations"] = {CHANGED_BY_ANNOTATION: "alice"}
    body["metadata"]["deletionTimestamp"] = "2026-03-01T12:00:00Z"
    result = summary(body, Step(Do.UNINSTALL, Plan(Action.UNINSTALL)), Uninstalled("removed"))
    (news,) = result.news
    assert news.kind is Kind.UNINSTALLED and news.requested_by == ""


def every_news() -> list[News]:
    return [news for make, _ in CASES.values() for news in make().news]


def test_keys_are_stable_and_distinct() -> None:
    first, again = every_news(), every_news()
    assert [n.key for n in first] == [n.key for n in again]  # the same transition, the same key
    # Different transitions, different keys ("deployed" twice in CASES is one transition).
    transitions = {
        (n.kind, n.revision, n.version, n.promotion, n.input_digest, n.generation, n.reason) for n in first
    }
    assert len({n.key for n in first}) == len(transitions) > 15
    news = first[0]
    assert replace(news, message="reworded").key == news.key
    # A second episode (the same revision degrades again later) is news of its own.
    assert replace(news, time="2030-01-01T00:00:00Z").key != news.key
    assert replace(news, kind=Kind.HEALTHY).key != news.key and replace(news, revision=99).key != news.key


def test_the_wire_form_reads_back() -> None:
    for news in every_news():
        wire = json.loads(json.dumps(news.as_dict()))
        assert News.from_dict(wire) == news
        assert wire["key"] == news.key
    full = replace(every_news()[0], extra={"a": "b"}, verifying=True, promotion="p", requested_by="x")
    assert News.from_dict(full.as_dict()) == full and News.from_dict(full.as_dict()).extra == {"a": "b"}


SECRET = "s3cr3t-pa55w0rd"


def test_no_secret_value_reaches_the_news() -> None:
    """Actions redact helm's words with the values' Redactor before they are an outcome; the
    news carries those words, never the secret."""
    redactor = Redactor([SECRET])
    words = f"helm upgrade failed: values: password={SECRET} rejected"
    failed = summary(*upgrade(), ReleaseFailed(redactor.redact(words)))
    uninstall = summary(deployment_body(released_status(3)), Step(Do.UNINSTALL, Plan(Action.UNINSTALL)),
                        UninstallFailed(redactor.redact(f"cannot reach {SECRET}")))  # fmt: skip
    for result in (failed, uninstall):
        assert result.news
        for news in result.news:
            text = json.dumps(news.as_dict())
            assert SECRET not in text and "[redacted]" in text
