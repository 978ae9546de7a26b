"""`alecton dora`'s service (service/dora.py), its HTTP route and its table, with a fake
API server answer (no cluster here; tests/integration/test_dora_prometheus.py reads real
ReleaseRecords)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from alecton.cli.dora import duration
from alecton.kube.client import ApiException, KubeClient
from alecton.reconcile.dora import DAY
from alecton.reconcile.news import Kind, News, Severity
from alecton.reconcile.times import epoch
from alecton.service import dora as service
from alecton.service.errors import InvalidRequestError, NotFoundError
from alecton.web.identity import Identity
from alecton.web.security import LocalSession
from alecton.web.server import WebSettings, asgi
from fastapi.testclient import TestClient

NOW = epoch("2026-11-30T00:00:00Z")
TOKEN = "t" * 32
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Host": "127.0.0.1:8765"}


def spec(
    kind: Kind, when: float, version: str, revision: int, target: str = "prod", **fields: Any
) -> dict[str, Any]:
    from alecton.reconcile.dora import rfc3339

    news = News(kind, Severity.INFO, "team", f"web-{target}", "web", target, rfc3339(when), version=version,
                revision=revision, **fields)  # fmt: skip
    return news.as_dict()


SPECS = [
    {
        **spec(Kind.DEPLOYED, NOW - 2 * DAY, "1.0", 2, verifying=True),
        "imageCreatedAt": "2026-11-27T23:00:00Z",
    },
    spec(Kind.HEALTHY, NOW - 2 * DAY + 60, "1.0", 2),
    spec(Kind.DEPLOYED, NOW - DAY, "1.1", 3, verifying=True),
    spec(Kind.FAILED, NOW - DAY + 120, "1.1", 3, reason="HealthCheckFailed"),
    spec(Kind.DEPLOYED, NOW - DAY + 600, "1.2", 4),
    spec(Kind.DEPLOYED, NOW - DAY, "1.0", 2, target="staging"),
    {"kind": "SomethingNew", "severity": "info"},  # a newer operator's kind: skipped
]


class FakeCustomObjects:
    """Answers list requests in pages of two, like the API server with `limit`."""

    calls: list[dict[str, Any]] = []
    status = 200

    def __init__(self, _api: Any) -> None:
        pass

    async def list_namespaced_custom_object(self, group: str, version: str, namespace: str, plural: str,
                                            **kwargs: Any) -> dict[str, Any]:  # fmt: skip
        FakeCustomObjects.calls.append({"namespace": namespace, "plural": plural, **kwargs})
        if FakeCustomObjects.status != 200:
            raise ApiException(status=FakeCustomObjects.status, reason="NotFound")
        start = int(kwargs.get("_continue") or 0)
        items = [{"spec": s} for s in SPECS[start : start + 2]]
        more = start + 2 < len(SPECS)
        return {"items": items, "metadata": {"continue": str(start + 2) if more else ""}}


class FakeClient:
    api = object()
    timeout = 30

    async def close(self) -> None:
        pass


@pytest.fixture(autouse=True)
def fake_api(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeCustomObjects.calls = []
    FakeCustomObjects.status = 200
    monkeypatch.setattr(service.k8s, "CustomObjectsApi", FakeCustomObjects)


def report(**kwargs: Any) -> service.DoraReport:
    return asyncio.run(service.dora_report(FakeClient(), "team", now=NOW, **kwargs))  # type: ignore[arg-type]


def test_every_page_is_read_and_each_target_has_its_figures() -> None:
    result = report()
    assert len(FakeCustomObjects.calls) == 4  # seven records in pages of two
    assert all(
        call["plural"] == "releaserecords" and call["namespace"] == "team" for call in FakeCustomObjects.calls
    )
    assert result.records == 6
    prod, staging = result.figures
    assert (prod.target, prod.deploys, prod.change_failures) == ("prod", 3, 1)
    assert [lead.seconds for lead in prod.lead_times] == [3600 + 60]
    assert [r.seconds for r in prod.restores] == [480]
    assert (staging.target, staging.deploys) == ("staging", 1)
    data = result.as_dict()
    assert data["since"] == "2026-10-31T00:00:00Z" and data["figures"][0][
        "changeFailureRate"
    ] == pytest.approx(1 / 3, abs=1e-4)


def test_application_and_target_select_by_label_and_by_spec() -> None:
    result = report(application="web", target="staging")
    assert (
        FakeCustomObjects.calls[0]["label_selector"]
        == "alecton.dev/application=web,alecton.dev/target=staging"
    )
    assert [f.target for f in result.figures] == ["staging"]  # the spec decides too


def test_the_period_bounds_what_counts() -> None:
    result = report(since="1d")
    prod = result.figures[0]
    assert (prod.deploys, prod.lead_times) == (2, ())


def test_a_bad_period_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequestError, match="period"):
        report(since="forever")


def test_no_crd_is_a_clear_not_found() -> None:
    FakeCustomObjects.status = 404
    with pytest.raises(NotFoundError, match="ReleaseRecord CRD"):
        report()


class FakeIdentity(Identity):
    mode = "local"

    async def client(self, token: str) -> KubeClient:
        return FakeClient()  # type: ignore[return-value]


def web() -> TestClient:
    settings = WebSettings(FakeIdentity(), "team", LocalSession(TOKEN, 8765))
    return TestClient(asgi(settings), base_url="http://127.0.0.1:8765", raise_server_exceptions=False)


def test_the_http_route_answers_the_same_report() -> None:
    answer = web().get("/v1/dora", params={"since": "3650d", "target": "prod"}, headers=HEADERS)
    assert answer.status_code == 200, answer.text
    figures = answer.json()["figures"]
    assert [(f["target"], f["deploys"], f["changeFailures"]) for f in figures] == [("prod", 3, 1)]


@pytest.mark.parametrize(
    ("params", "code"),
    [({"since": "soon"}, 400), ({"application": "Bad Name"}, 422), ({"since": "9" * 20}, 422)],
)
def test_the_http_route_refuses_bad_input(params: dict[str, str], code: int) -> None:
    assert web().get("/v1/dora", params=params, headers=HEADERS).status_code == code


def test_the_http_route_says_when_the_crd_is_missing() -> None:
    FakeCustomObjects.status = 404
    answer = web().get("/v1/dora", headers=HEADERS)
    assert answer.status_code == 404 and "ReleaseRecord CRD" in answer.json()["error"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (5, "5s"), (59.6, "60s"), (60, "1m"), (5400, "1.5h"), (36000, "10h"), (2 * DAY, "2.0d")],
)
def test_durations_in_the_table(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text
