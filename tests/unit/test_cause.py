"""What made a revision: status.history[].cause (reconcile/cause.py, helm/release.py)."""

from __future__ import annotations

from typing import Any

import pytest
from alecton.api.models import Deployment
from alecton.reconcile.cause import cause_of
from alecton.reconcile.history import carry_recorded, history_after_upgrade, history_from_status, mark_cause
from alecton.reconcile.plan import Action, Plan, RecordedStatus
from alecton.reconcile.promotion_hold import FIELD_MANAGER
from alecton.reconcile.release import HistoryEntry


def version_manager(manager: str) -> dict[str, Any]:
    return {"manager": manager, "time": "2026-01-01T00:00:00Z", "fieldsV1": {"f:spec": {"f:version": {}}}}


def deployment(
    managers: tuple[str, ...] = ("kubectl",), retry: str = "", version: str = "1.0", promoted: bool = False
) -> Deployment:
    spec: dict[str, Any] = {"application": "web", "target": "prod", "version": version}
    if retry:
        spec["retryRequestId"] = retry
    if promoted:
        spec["promotion"] = {"versions": {"semver": "1.x"}}
    return Deployment.parse(
        {
            "metadata": {
                "namespace": "team",
                "name": "web-prod",
                "uid": "u",
                "generation": 2,
                "managedFields": [version_manager(m) for m in managers],
            },
            "spec": spec,
        }
    )


RECORDED = RecordedStatus.parse({"appliedVersion": "1.0", "lastRetryRequestId": "r1"})
# The promotion step recorded that the operator itself wrote spec.version 1.0.
PROMOTED = RecordedStatus.parse(
    {"appliedVersion": "0.9", "lastRetryRequestId": "r1", "promotion": {"written": "1.0", "promoted": "1.0"}}
)


@pytest.mark.parametrize(
    ("plan", "dep", "cause"),
    [
        (Plan(Action.UPGRADE), deployment(), "deploy"),
        (Plan(Action.UPGRADE), deployment(retry="r2"), "retry"),
        (Plan(Action.UPGRADE), deployment(retry="r1"), "deploy"),  # that retry was acted on
        (Plan(Action.UPGRADE), deployment(retry="r2", version="2.0"), "deploy"),  # new version wins
        (Plan(Action.ROLLBACK), deployment(), "rollback"),
        (Plan(Action.ROLLBACK, rollback_to=3, health_failure="crash"), deployment(), "automatic-rollback"),
        (Plan(Action.NOTHING), deployment(), ""),
    ],
)
def test_the_cause_of_a_revision_says_who_or_what_made_it(plan: Plan, dep: Deployment, cause: str) -> None:
    assert cause_of(plan, dep, RECORDED) == cause


@pytest.mark.parametrize(
    ("dep", "recorded", "cause"),
    [
        # The operator recorded writing this version itself: a promotion.
        (deployment(promoted=True), PROMOTED, "promotion"),
        (deployment((FIELD_MANAGER,), promoted=True), PROMOTED, "promotion"),
        # Anyone may call itself the operator's field manager: without the record it is a deploy.
        (deployment((FIELD_MANAGER,), promoted=True), RECORDED, "deploy"),
        (deployment((FIELD_MANAGER,)), RECORDED, "deploy"),
        # A version other than the one the operator wrote, or no promotion policy any more.
        (deployment((FIELD_MANAGER,), promoted=True, version="1.1"), PROMOTED, "deploy"),
        (deployment(), PROMOTED, "deploy"),
        # Red team, issue 23: the promoted version already runs, and a tenant changed the
        # values: that upgrade is the tenant's deploy, not an approved promotion.
        (
            deployment(promoted=True),
            RecordedStatus.parse(
                {"appliedVersion": "1.0", "promotion": {"written": "1.0", "promoted": "1.0"}}
            ),
            "deploy",
        ),
    ],
)
def test_a_promotion_is_what_the_operator_recorded_not_a_field_manager_name(
    dep: Deployment, recorded: RecordedStatus, cause: str
) -> None:
    assert cause_of(Plan(Action.UPGRADE), dep, recorded) == cause


def entry(revision: int, **extra: Any) -> HistoryEntry:
    return HistoryEntry(revision, "superseded", "web-0.1.0", "1", "2026", "Upgrade complete", **extra)


def test_a_cause_is_recorded_on_its_revision_and_survives_status_and_helm_history() -> None:
    history = mark_cause([entry(2), entry(1)], 2, "promotion")
    assert [e.cause for e in history] == ["promotion", ""]
    as_status = [e.as_status() for e in history]
    assert as_status[0]["cause"] == "promotion" and "cause" not in as_status[1]
    recorded = history_from_status(as_status)
    assert recorded[0].cause == "promotion"
    # helm's history knows nothing of causes: what status recorded is kept
    assert carry_recorded([entry(3), entry(2), entry(1)], recorded)[1].cause == "promotion"
    assert mark_cause(history, 2, "")[0].cause == "promotion"  # no cause known: nothing erased


def test_an_upgrade_keeps_the_causes_of_older_revisions() -> None:
    from alecton.reconcile.release import ReleaseInfo

    released = ReleaseInfo("web-prod", "web", 3, "deployed", "web-0.1.0", "1", "2026", "Upgrade complete")
    extended = history_after_upgrade([entry(2, cause="rollback")], released, "1.2", 10)
    assert extended is not None and [e.cause for e in extended] == ["", "rollback"]
