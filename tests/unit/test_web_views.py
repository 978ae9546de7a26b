"""The HTTP API's answers (web/views.py), from resource JSON, without a cluster."""

from __future__ import annotations

from typing import Any

import pytest
from alecton.service.outcomes import WaitOutcome
from alecton.web import views


def meta(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "team", **extra}


def image(version: str, ref: str, created: str = "2026-01-01T00:00:00Z", name: str = "web") -> dict[str, Any]:
    return {
        "metadata": meta(f"{name}-{version}-{ref[-3:]}", creationTimestamp=created),
        "spec": {"name": name, "version": version, "image": ref},
    }


APP = {
    "metadata": meta("web", labels={"team": "a"}, resourceVersion="7"),
    "spec": {
        "chart": "webapp",
        "image": "web",
        "targets": [
            {"name": "staging", "cluster": "b", "namespace": "web-staging"},
            {"name": "prod", "cluster": "c", "namespace": "web-prod"},
        ],
    },
}
HISTORY = [
    {"revision": 3, "status": "deployed", "version": "1.0.0", "cause": "rollback", "chart": "webapp-0.1.0"},
    {"revision": 2, "status": "superseded", "version": "1.1.0", "cause": "promotion", "healthy": False},
    {"revision": 1, "status": "superseded", "version": "1.0.0", "healthy": True},
]
STAGING = {
    "metadata": meta("web-staging", generation=4),
    "spec": {"application": "web", "target": "staging", "version": "1.1.0"},
    "status": {
        "phase": "RolledBack",
        "observedGeneration": 4,
        "release": {
            "revision": 3,
            "cluster": "b",
            "image": "r/web:1.0.0",
            "lastDeployed": "2026-01-02T00:00:00Z",
        },
        "health": {"state": "Healthy", "message": "all ready", "progressing": []},
        "history": HISTORY,
    },
}
IMAGES = [
    image("1.0.0", "r/web:1.0.0"),
    image("1.1.0", "r/web:1.1.0"),
    image("1.0.0", "r/web:999", "2026-02-01T00:00:00Z"),
]


def test_an_application_message_is_its_name_and_spec_and_back() -> None:
    message = views.application_message(APP)
    assert message == {"name": "web", **APP["spec"]}
    created = views.application_object(message)
    assert created["metadata"] == {"name": "web"} and created["spec"] == APP["spec"]


def test_a_replaced_application_keeps_its_metadata_but_not_its_old_spec() -> None:
    replaced = views.application_object({"name": "web", "chart": "other", "image": "web"}, APP)
    assert replaced["spec"] == {"chart": "other", "image": "web"}  # no merge: targets are gone
    assert replaced["metadata"] == {"name": "web", "labels": {"team": "a"}, "resourceVersion": "7"}


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": 3, "chart": "x"}])
def test_an_application_without_a_name_is_refused_before_kubernetes(body: dict[str, Any]) -> None:
    with pytest.raises(views.BadRequest, match="name"):
        views.application_object(body)


def test_the_image_of_a_version_is_the_oldest_image_recorded_for_it() -> None:
    assert views.image_refs(IMAGES, "web") == {"1.0.0": "r/web:1.0.0", "1.1.0": "r/web:1.1.0"}
    assert views.image_refs(IMAGES, "api") == {}


def test_releases_carry_their_image_and_cause_and_the_current_one_is_helms_deployed_one() -> None:
    refs = views.image_refs(IMAGES, "web")
    releases = views.releases(STAGING, refs)
    assert [(x["revision"], x["image"], x["cause"], x["healthy"]) for x in releases] == [
        (3, "r/web:1.0.0", "rollback", None),
        (2, "r/web:1.1.0", "promotion", False),
        (1, "r/web:1.0.0", "", True),
    ]
    assert views.current_release(STAGING, refs)["revision"] == 3
    assert views.current_release({"status": {}}, refs) is None


@pytest.mark.parametrize(
    ("outcome", "waited", "code"),
    [
        (WaitOutcome(False), False, 202),
        (WaitOutcome(True, True), True, 200),
        (WaitOutcome(True, False, "Failed: boom"), True, 502),
        (WaitOutcome(False, message="Verifying"), True, 504),
    ],
)
def test_a_deploy_answers_with_a_status_ci_can_trust(outcome: WaitOutcome, waited: bool, code: int) -> None:
    assert views.outcome_status(outcome, waited) == code


def test_a_deploy_response_has_the_release_the_deployment_and_the_outcome() -> None:
    response = views.deploy_response(STAGING, views.image_refs(IMAGES, "web"), WaitOutcome(True, True, "ok"))
    assert response["release"]["revision"] == 3
    deployment = response["deployment"]
    assert (deployment["version"], deployment["running"], deployment["phase"]) == (
        "1.1.0",
        "1.0.0",
        "RolledBack",
    )
    assert deployment["health"]["state"] == "Healthy"
    assert response["outcome"] == {"done": True, "ok": True, "message": "ok"}


def promotion(name: str, to: str, state: str = "", created: str = "2026-01-03T00:00:00Z") -> dict[str, Any]:
    return {
        "metadata": meta(name, creationTimestamp=created),
        "spec": {
            "deployment": "web-prod",
            "application": "web",
            "target": "prod",
            "fromVersion": "1.0.0",
            "toVersion": to,
            "digest": "d",
            "reason": "staging runs it",
        },
        "status": {"state": state, "message": "waiting for approval"} if state else {},
    }


def test_the_overview_has_every_target_what_runs_where_and_the_open_promotions() -> None:
    prod = {
        "metadata": meta("web-prod"),
        "spec": {"application": "web", "target": "prod", "version": "1.0.0"},
        "status": {
            "phase": "Deployed",
            "release": {"cluster": "c", "revision": 1},
            "history": [{"revision": 1, "status": "deployed", "version": "1.0.0"}],
            "promotion": {"state": "Pending", "message": "1.1.0 waits"},
        },
    }
    promotions = [
        promotion("p1", "1.1.0", "Pending"),
        promotion("p0", "0.9.0", "Applied", "2026-01-01T00:00:00Z"),
    ]
    result = views.overview("team", [APP], [STAGING, prod], IMAGES, promotions, "now")
    rows = {(row["target"], row["running"], row["phase"], row["image"]) for row in result["rows"]}
    assert rows == {
        ("staging", "1.0.0", "RolledBack", "r/web:1.0.0"),
        ("prod", "1.0.0", "Deployed", "r/web:1.0.0"),
    }
    assert result["images"] == [
        {
            "image": "web",
            "clusters": {
                "b": [{"version": "1.0.0", "targets": ["staging"]}],
                "c": [{"version": "1.0.0", "targets": ["prod"]}],
            },
        }
    ]
    (open_one,) = result["promotions"]
    assert (open_one["name"], open_one["to"], open_one["state"]) == ("p1", "1.1.0", "Pending")
    assert open_one["message"] == "waiting for approval" and open_one["reason"] == "staging runs it"
    prod_row = next(row for row in result["rows"] if row["target"] == "prod")
    assert prod_row["promotion"] == {"state": "Pending", "message": "1.1.0 waits", "hold": ""}


def test_a_target_without_a_deployment_is_shown_as_not_deployed() -> None:
    rows = views.overview("team", [APP], [], [], [], "now")["rows"]
    prod = next(row for row in rows if row["target"] == "prod")
    assert (prod["target"], prod["phase"], prod["image"]) == ("prod", "NotDeployed", "")
    assert views.overview("team", [APP], [], [], [], "now")["images"] == []


def test_the_details_of_a_deployment_list_its_own_promotions_final_ones_too() -> None:
    other = {
        **promotion("x", "2.0.0", "Pending"),
        "spec": {**promotion("x", "2.0.0")["spec"], "deployment": "api-prod"},
    }
    prod = {"metadata": meta("web-prod"), "spec": {"application": "web", "target": "prod"}, "status": {}}
    details = views.deployment_details(prod, {}, [promotion("p0", "0.9.0", "Applied"), other])
    assert [p["name"] for p in details["promotions"]] == ["p0"]
    assert details["releases"] == [] and details["deployment"]["phase"] == "Pending"
