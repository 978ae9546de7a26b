"""Freezes for people (service/freezes.py, service/deployments.request_deploy): a manual
deploy that a freeze holds is refused up front with the freeze's name and reason, an override
reason is written with the change for exactly the generation it makes, freezes start and end;
the faces map a refusal to exit 6 and HTTP 423; the operator keeps each freeze's status."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import pytest
from alecton.cli.output import EXIT_FROZEN
from alecton.cli.session import exit_code_of
from alecton.handlers.freezes import FreezeStatus, freeze_namespaces
from alecton.reconcile.freeze import FREEZE_OVERRIDE_ANNOTATION
from alecton.reconcile.times import epoch
from alecton.service.deployments import request_deploy
from alecton.service.errors import InvalidRequestError, NotFoundError
from alecton.service.freezes import FrozenError, end_freeze, freeze_rows, start_freeze
from alecton.service.outcomes import deploy_outcome
from alecton.web.errors import _service_error

from tests.unit.fakes import FakeKube, api_error, run

NS = "team"
NOW = epoch("2026-03-01T12:00:00Z")


class Kube(FakeKube):
    """FakeKube with the reads and deletes the service makes."""

    def __init__(self) -> None:
        super().__init__()
        self.forbid_cluster_reads = False
        self.status_written = asyncio.Event()

    async def patch_status(
        self, kind: str, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        written = await super().patch_status(kind, namespace, name, status)
        self.status_written.set()
        return written

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        found = self.objects.get((kind, "" if kind == "ClusterFreeze" else namespace, name))
        if found is None:
            raise api_error(404, "Not Found", f"{name} not found")
        return copy.deepcopy(found)

    async def list(self, kind: str, namespace: str | None, **_: Any) -> list[dict[str, Any]]:
        if kind == "ClusterFreeze" and self.forbid_cluster_reads:
            raise api_error(403, "Forbidden", "clusterfreezes is forbidden")
        wanted = "" if kind == "ClusterFreeze" else namespace
        return [copy.deepcopy(o) for (k, ns, _), o in self.objects.items() if k == kind and ns == wanted]

    async def delete(self, kind: str, namespace: str, name: str) -> None:
        if self.objects.pop((kind, namespace, name), None) is None:
            raise api_error(404, "Not Found", f"{name} not found")


def kube_with(*freezes: dict[str, Any], version: str | None = "1.0") -> Kube:
    kube = Kube()
    targets = [{"name": "prod", "cluster": "us-east", "namespace": "web"}]
    kube.add("Application", {"metadata": {"namespace": NS, "name": "web"}, "spec": {"targets": targets}})
    if version is not None:
        body = {
            "metadata": {"namespace": NS, "name": "web-prod", "generation": 4, "resourceVersion": "9"},
            "spec": {"application": "web", "target": "prod", "version": version},
        }
        kube.add("Deployment", body)
    for freeze in freezes:
        kube.objects[
            (freeze["kind"], freeze["metadata"].get("namespace", ""), freeze["metadata"]["name"])
        ] = freeze
    return kube


def freeze(name: str = "quarter", namespace: str = NS, kind: str = "Freeze", **spec: Any) -> dict[str, Any]:
    meta = {"name": name} if kind == "ClusterFreeze" else {"name": name, "namespace": namespace}
    return {"kind": kind, "metadata": meta, "spec": {"reason": "quarter close", **spec}}


def test_a_deploy_during_a_freeze_is_refused_with_its_name_and_reason_and_writes_nothing() -> None:
    kube = kube_with(freeze())
    with pytest.raises(FrozenError) as refused:
        run(request_deploy(kube, NS, "web", "prod", "1.1"))
    assert str(refused.value).startswith(
        'deploying web 1.1 to prod is frozen by Freeze quarter ("quarter close") until it is ended'
    )
    assert not [c for c in kube.calls if c[0] in ("patch", "create")]
    assert exit_code_of(refused.value) == EXIT_FROZEN
    answer = _service_error(None, refused.value)  # type: ignore[arg-type]
    assert answer.status_code == 423 and json.loads(answer.body)["reason"] == "Frozen"


def test_freezes_that_do_not_select_the_deploy_let_it_through() -> None:
    kube = kube_with(
        freeze("theirs", namespace="other"),
        freeze("api-only", applications=["api"]),
        freeze("eu", kind="ClusterFreeze", clusters=["eu-*"]),
        freeze("past", until="2020-01-01T00:00:00Z"),
    )
    obj, _ = run(request_deploy(kube, NS, "web", "prod", "1.1"))
    assert obj["spec"]["version"] == "1.1"


def test_a_cluster_freeze_refuses_and_an_unreadable_one_is_left_to_the_operator() -> None:
    kube = kube_with(freeze("stop", kind="ClusterFreeze", clusters=["us-*"]))
    with pytest.raises(FrozenError, match="ClusterFreeze stop"):
        run(request_deploy(kube, NS, "web", "prod", "1.1"))
    kube.forbid_cluster_reads = True
    obj, _ = run(request_deploy(kube, NS, "web", "prod", "1.1"))
    assert obj["spec"]["version"] == "1.1"


def test_an_override_is_written_for_the_generation_the_change_makes() -> None:
    kube = kube_with(freeze())
    obj, _ = run(request_deploy(kube, NS, "web", "prod", "1.1", override_freeze=" INC-7  hotfix "))
    assert obj["metadata"]["generation"] == 5
    assert obj["metadata"]["annotations"][FREEZE_OVERRIDE_ANNOTATION] == "5:INC-7 hotfix"
    # The same version again changes no spec: the override is for the current generation.
    again, _ = run(request_deploy(kube, NS, "web", "prod", "1.1", override_freeze="inputs changed"))
    assert again["metadata"]["annotations"][FREEZE_OVERRIDE_ANNOTATION] == "5:inputs changed"


def test_an_override_on_a_new_deployment_is_for_generation_one() -> None:
    kube = kube_with(freeze(), version=None)
    obj, _ = run(request_deploy(kube, NS, "web", "prod", "1.0", override_freeze="first release"))
    assert obj["metadata"]["annotations"][FREEZE_OVERRIDE_ANNOTATION] == "1:first release"


def test_an_override_must_say_why() -> None:
    with pytest.raises(InvalidRequestError, match="give a reason"):
        run(request_deploy(kube_with(freeze()), NS, "web", "prod", "1.1", override_freeze="   "))


def test_start_list_and_end_a_freeze() -> None:
    kube = kube_with(version=None)
    created = run(
        start_freeze(kube, NS, "release-week", "quarter close", duration="2h", targets=["prod*"], now=NOW)
    )
    assert created["spec"] == {
        "reason": "quarter close",
        "until": "2026-03-01T14:00:00Z",
        "targets": ["prod*"],
    }
    platform = run(start_freeze(kube, NS, "stop", "incident", cluster_wide=True, now=NOW))
    assert platform["kind"] == "ClusterFreeze" and ("ClusterFreeze", "", "stop") in kube.objects
    rows = run(freeze_rows(kube, NS, now=NOW + 60))
    assert [(r["kind"], r["name"], r["active"], r["activeUntil"]) for r in rows] == [
        ("ClusterFreeze", "stop", True, None),
        ("Freeze", "release-week", True, "2026-03-01T14:00:00Z"),
    ]
    run(end_freeze(kube, NS, "release-week"))
    with pytest.raises(NotFoundError, match="no Freeze 'release-week' in namespace 'team'"):
        run(end_freeze(kube, NS, "release-week"))


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"name": "Bad_Name"}, "lowercase"),
        ({"reason": "  "}, "--reason"),
        ({"duration": "2h", "until": "2026-03-02T00:00:00Z"}, "not both"),
        ({"duration": "soon"}, "--for"),
        ({"until": "tomorrow"}, "--until"),
    ],
)
def test_bad_freeze_requests_are_refused(options: dict[str, Any], error: str) -> None:
    arguments = {"name": "f", "reason": "why", **options}
    with pytest.raises(InvalidRequestError, match=error):
        run(start_freeze(kube_with(), NS, arguments.pop("name"), arguments.pop("reason"), **arguments))


# ----- the operator's status of a freeze ---------------------------------------------------------------


def test_the_operator_writes_status_and_again_when_the_freeze_ends() -> None:
    async def scenario() -> list[dict[str, Any]]:
        kube = kube_with(version=None)
        body = freeze(until="2026-03-01T12:00:01Z")
        body["metadata"]["generation"] = 1
        kube.add("Freeze", body)
        clock = [NOW]
        statuses = FreezeStatus(kube, clock=lambda: clock[0])  # type: ignore[arg-type]
        await statuses.seen(body, deleted=False)
        clock[0] = NOW + 2

        def written() -> list[dict[str, Any]]:
            return [c[4] for c in kube.calls if c[0] == "patch_status"]

        async def ended() -> None:
            while not written() or written()[-1]["active"]:
                kube.status_written.clear()
                await kube.status_written.wait()

        await asyncio.wait_for(ended(), 10)  # the timer set for the end (1 s + margin) fires
        statuses.stop()
        return written()

    written = asyncio.run(scenario())
    assert written[0] == {
        "active": True,
        "activeUntil": "2026-03-01T12:00:01Z",
        "nextStart": None,
        "message": "active until 2026-03-01T12:00:01Z: quarter close",
        "observedGeneration": 1,
    }
    assert written[-1]["active"] is False and written[-1]["message"] == "ended"


def test_an_invalid_freeze_says_so_and_freezes_nothing() -> None:
    kube = kube_with(version=None)
    body = freeze(until="not a time")
    kube.add("Freeze", body)
    run(FreezeStatus(kube).seen(body, deleted=False))  # type: ignore[arg-type]
    [status] = [c[4] for c in kube.calls if c[0] == "patch_status"]
    assert status["active"] is False and status["message"].startswith("invalid, freezes nothing: spec.until")


def test_a_changed_freeze_requeues_its_namespace_and_a_cluster_freeze_every_namespace() -> None:
    assert freeze_namespaces(freeze(), ["a", "b"]) == [NS]
    assert freeze_namespaces(freeze("stop", kind="ClusterFreeze"), ["b", "a", "b"]) == ["a", "b"]


def test_waiting_for_a_deploy_a_freeze_holds_ends_with_its_message() -> None:
    held = {
        "metadata": {"generation": 5},
        "status": {
            "observedGeneration": 5,
            "phase": "Pending",
            "message": "version 1.1 (running: 1.0) is frozen by Freeze quarter",
            "conditions": [{"type": "Ready", "status": "False", "reason": "Frozen"}],
        },
    }
    outcome = deploy_outcome(held, 5)
    assert (outcome.done, outcome.ok) == (True, False)
    assert outcome.message == "Frozen: version 1.1 (running: 1.0) is frozen by Freeze quarter"


def test_a_cluster_freeze_of_a_context_holds_a_cluster_object_of_any_name() -> None:
    kube = kube_with(freeze("prod-ctx", kind="ClusterFreeze", clusters=["prod-context"]))
    kube.add(
        "Cluster", {"metadata": {"namespace": NS, "name": "us-east"}, "spec": {"context": "prod-context"}}
    )
    with pytest.raises(FrozenError, match="ClusterFreeze prod-ctx"):
        run(request_deploy(kube, NS, "web", "prod", "1.1"))


def test_a_tenants_own_kubeconfig_context_name_matches_no_platform_freeze() -> None:
    kube = kube_with(freeze("prod-ctx", kind="ClusterFreeze", clusters=["prod-context"]))
    spec = {"context": "prod-context", "kubeconfigSecretRef": {"name": "kc"}}
    kube.add("Cluster", {"metadata": {"namespace": NS, "name": "us-east"}, "spec": spec})
    obj, _ = run(request_deploy(kube, NS, "web", "prod", "1.1"))
    assert obj["spec"]["version"] == "1.1"


def test_the_freeze_list_leaves_out_cluster_freezes_of_other_namespaces() -> None:
    kube = kube_with(
        freeze("theirs", namespace="other"),
        freeze("b-only", kind="ClusterFreeze", namespaces=["team-b*"]),
        freeze("ours", kind="ClusterFreeze", namespaces=["te*"]),
        freeze("all", kind="ClusterFreeze"),
        freeze("mine"),
    )
    names = {row["name"] for row in run(freeze_rows(kube, NS, now=NOW))}
    assert names == {"ours", "all", "mine"}
