from __future__ import annotations

import datetime as dt
import re

import pytest
from alecton.cli.output import age, corrected
from alecton.service.outcomes import deploy_outcome, rollback_outcome
from alecton.service.resources import field_selector, image_body, image_object_name, label_value
from alecton.service.status import running_version, status_rows

DNS = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


@pytest.mark.parametrize(
    ("name", "version", "expected"),
    [("web", "1.4.2", "web-1.4.2"), ("web", "2024.01.02", "web-2024.01.02")],
)
def test_image_object_name_is_readable_when_possible(name: str, version: str, expected: str) -> None:
    assert image_object_name(name, version) == expected


@pytest.mark.parametrize("version", ["1.0.0+build.5", "V1_RC", "x" * 300, "-weird-"])
def test_image_object_name_is_always_valid_and_distinct(version: str) -> None:
    name = image_object_name("web", version)
    assert DNS.match(name) and len(name) <= 253
    assert name != image_object_name("web", version + "1")


def test_label_values_fit_kubernetes_rules() -> None:
    assert label_value("1.4.2") == "1.4.2"
    long = label_value("v" * 100 + "+meta")
    assert len(long) <= 63 and re.match(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$", long)
    body = image_body("web", "1.0+b", "r/web:1")
    assert body["spec"] == {"name": "web", "version": "1.0+b", "image": "r/web:1"}


def test_field_selector_skips_unset_filters() -> None:
    assert field_selector(**{"spec.name": "web", "spec.version": None}) == "spec.name=web"
    assert field_selector(**{"spec.name": None}) == ""


def dep(generation: int, phase: str, observed: int, **status: object) -> dict:
    return {
        "metadata": {"generation": generation},
        "status": {"phase": phase, "observedGeneration": observed, "message": "m", **status},
    }


def test_deploy_outcome_waits_for_the_new_generation() -> None:
    assert not deploy_outcome(dep(2, "Deployed", 1), 2).done  # still the old result
    assert deploy_outcome(dep(2, "Deployed", 2), 2).ok
    failed = deploy_outcome(dep(2, "Failed", 2), 2)
    assert failed.done and not failed.ok and failed.message.startswith("Failed")
    assert not deploy_outcome(dep(2, "Pending", 2), 2).done
    stalled = dep(2, "Pending", 2, conditions=[{"type": "Stalled", "status": "True"}])
    assert deploy_outcome(stalled, 2).done and not deploy_outcome(stalled, 2).ok


def test_rollback_outcome_matches_the_request() -> None:
    pending = dep(3, "Deployed", 3, lastRollback={"revision": 1, "requestId": "old", "result": "Succeeded"})
    assert not rollback_outcome(pending, 1, "new").done
    done = dep(3, "RolledBack", 3, lastRollback={"revision": 1, "requestId": "new", "result": "Succeeded"})
    assert rollback_outcome(done, 1, "new").ok
    failed = dep(3, "Failed", 3, lastRollback={"revision": 1, "requestId": "new", "result": "Failed"})
    assert rollback_outcome(failed, 1, "new").done and not rollback_outcome(failed, 1, "new").ok


def test_age_like_kubectl() -> None:
    now = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    assert age("2026-01-01T23:59:15Z", now) == "45s"
    assert age("2026-01-01T23:57:00Z", now) == "3m"
    assert age("2026-01-01T19:00:00Z", now) == "5h"
    assert age("2025-12-29T00:00:00Z", now) == "4d"
    assert age(None) == ""


def test_status_rows_cover_every_target_and_orphan_deployments() -> None:
    apps = [
        {
            "metadata": {"name": "web"},
            "spec": {"targets": [{"name": "prod", "cluster": "c1"}, {"name": "staging", "cluster": "c2"}]},
        }
    ]
    deps = [
        {
            "metadata": {"name": "web-staging"},
            "spec": {"application": "web", "target": "staging", "version": "2"},
            "status": {"phase": "Deployed", "release": {"revision": 4, "cluster": "c2"}},
        },
        {
            "metadata": {"name": "old-x"},
            "spec": {"application": "old", "target": "x", "version": "1"},
            "status": {},
        },
    ]
    rows = status_rows(apps, deps)
    assert [(r["application"], r["target"], r["phase"], r["revision"]) for r in rows] == [
        ("old", "x", "Pending", None),
        ("web", "prod", "NotDeployed", None),
        ("web", "staging", "Deployed", 4),
    ]


def test_history_shows_drift_corrections_briefly() -> None:
    assert corrected([]) == ""
    assert corrected([{"result": "Failed"}, {"result": "Succeeded"}]) == "2x, last failed"


def deployment_with(version: str, **status: object) -> dict:
    return {
        "metadata": {"name": "web-staging"},
        "spec": {"application": "web", "target": "staging", "version": version},
        "status": status,
    }


def history_entry(revision: int, status: str, version: str = "", description: str = "") -> dict:
    return {"revision": revision, "status": status, "version": version, "description": description}


def test_status_shows_the_running_version_after_a_rollback() -> None:
    # spec.version (and appliedVersion, the spec.version of the last helm action) still say
    # 1.1.0; revision 3 is a copy of revision 1, version 1.0.0, and it is what runs.
    rolled_back = deployment_with(
        "1.1.0",
        phase="RolledBack",
        appliedVersion="1.1.0",
        release={"revision": 3, "status": "deployed", "version": "1.0.0"},
        history=[
            history_entry(3, "deployed", "1.0.0", "Rollback to 1"),
            history_entry(2, "superseded", "1.1.0"),
            history_entry(1, "superseded", "1.0.0"),
        ],
        lastRollback={"revision": 1, "requestId": "r1", "result": "Succeeded"},
    )
    [row] = status_rows([], [rolled_back])
    assert (row["version"], row["running"], row["revision"]) == ("1.1.0", "1.0.0", 3)


def test_running_version_is_the_deployed_revision_not_the_newest() -> None:
    # A failed upgrade leaves the previous revision deployed (and running).
    history = [history_entry(2, "failed", "1.1.0"), history_entry(1, "deployed", "1.0.0")]
    assert running_version({"history": history}) == "1.0.0"
    # While the operator deploys 1.1.0, 1.0.0 still runs.
    deploying = deployment_with("1.1.0", phase="Deploying", history=[history_entry(1, "deployed", "1.0.0")])
    assert [(r["version"], r["running"]) for r in status_rows([], [deploying])] == [("1.1.0", "1.0.0")]


@pytest.mark.parametrize(
    "status",
    [
        {},  # never reconciled
        {"release": {"name": "web-staging"}},  # first install under way
        {"history": [history_entry(1, "failed", "1.0.0")]},  # first install failed
        {"history": [history_entry(4, "deployed", "", "Rollback to 1")]},  # version not known
    ],
)
def test_running_version_is_empty_when_nothing_known_runs(status: dict) -> None:
    assert running_version(status) == ""
