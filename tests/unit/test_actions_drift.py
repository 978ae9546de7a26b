"""Drift (handlers/actions/drift.py and correct.py): compare a settled release's objects
with the live ones and, with `mode: Correct`, re-apply what the release owns.

The tenant's cluster is faked at the module's I/O boundary: the functions the modules import
to read helm's storage and the live objects and to apply one (`read_manifest`, `read_objects`,
`locate`, `apply_object`) are replaced on the modules by a `FakeCluster`'s. The API clients
are the real DriftClients', made from a kubeconfig file that names no reachable server (no
request is ever sent through them).
"""

from __future__ import annotations

import copy
import inspect
import time
from pathlib import Path
from typing import Any

import pytest
from alecton.api.models import ObjectRef
from alecton.api.objects import ObjectKey
from alecton.handlers.actions import correct as correct_module
from alecton.handlers.actions import drift as drift_module
from alecton.handlers.actions.correct import correct
from alecton.handlers.actions.drift import DriftClients, check_drift, drift_off
from alecton.kube import informers, releases
from alecton.kube.access import KubeAccess
from alecton.kube.client import ApiException
from alecton.kube.informers import Located, Resource
from alecton.reconcile.decide import Do, Step
from alecton.reconcile.diff import diff_release, key_of, parse_manifest
from alecton.reconcile.drift import RELEASE_NAME_ANNOTATION, RELEASE_NAMESPACE_ANNOTATION
from alecton.reconcile.outcomes import Done, DriftChecked
from alecton.reconcile.times import epoch

from tests.unit.fakes import (
    CLUSTER,
    CONTEXT,
    NS,
    REF,
    RELEASE,
    RELEASE_NAMESPACE,
    Fakes,
    api_error,
    application,
    deployment_body,
    fakes,
    operator_config,
    plan_of,
    released_status,
    request,
    run,
)

REVISION = 4
KUBECONFIG = f"""
apiVersion: v1
kind: Config
clusters:
- name: b
  cluster: {{server: "https://127.0.0.1:1"}}
contexts:
- name: {CONTEXT}
  context: {{cluster: b, user: u}}
current-context: {CONTEXT}
users:
- name: u
  user: {{token: not-a-real-token}}
"""


def config_map(name: str, data: dict[str, str], namespace: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


# web-config and web-extra are the release's own; stray is not annotated as the release's
# live; elsewhere lives outside the release namespace.
MANIFEST_OBJECTS = [
    config_map("web-config", {"a": "1"}),
    config_map("web-extra", {"b": "1"}),
    config_map("stray", {"c": "1"}),
    config_map("elsewhere", {"d": "1"}, namespace="other"),
]
MANIFEST = "\n---\n".join(
    "\n".join(
        [
            f"apiVersion: {o['apiVersion']}",
            f"kind: {o['kind']}",
            "metadata:",
            *[f"  {k}: {v}" for k, v in o["metadata"].items()],
            "data:",
            *[f'  {k}: "{v}"' for k, v in o["data"].items()],
        ]
    )
    for o in MANIFEST_OBJECTS
)


def key(name: str, namespace: str = RELEASE_NAMESPACE) -> ObjectKey:
    return ObjectKey("v1", "ConfigMap", namespace, name)


def live(obj: dict[str, Any], owned: bool = True, **data: str) -> dict[str, Any]:
    """`obj` as the API server returns it (server metadata; helm's annotations when owned)."""
    result = copy.deepcopy(obj)
    meta = result["metadata"]
    meta.setdefault("namespace", RELEASE_NAMESPACE)
    meta.update(uid="u", resourceVersion="9", creationTimestamp="2026-01-01T00:00:00Z")
    if owned:
        meta["annotations"] = {
            RELEASE_NAME_ANNOTATION: RELEASE,
            RELEASE_NAMESPACE_ANNOTATION: RELEASE_NAMESPACE,
        }
    result["data"] = {**result["data"], **data}
    return result


def in_sync() -> dict[ObjectKey, dict[str, Any] | None]:
    by_name = {o["metadata"]["name"]: o for o in MANIFEST_OBJECTS}
    return {
        key("web-config"): live(by_name["web-config"]),
        key("web-extra"): live(by_name["web-extra"]),
        key("stray"): live(by_name["stray"]),
        key("elsewhere", "other"): live(by_name["elsewhere"]),
    }


class FakeCluster:
    """The tenant's cluster as drift reaches it: helm's storage (one manifest) and the live
    objects; applying an object makes the live one the release's again."""

    def __init__(self, objects: dict[ObjectKey, dict[str, Any] | None], manifest: str = MANIFEST) -> None:
        self.manifest = manifest
        self.objects = objects
        self.unserved: set[str] = set()  # kinds the server does not serve
        self.manifest_reads: list[tuple[str, str, int]] = []
        self.object_reads = 0
        self.applied: list[tuple[ObjectKey, str]] = []  # (key, field manager)
        self.manifest_error: Exception | None = None
        self.apply_errors: dict[str, ApiException] = {}  # by object name

    async def read_manifest(self, api: Any, release: str, namespace: str, revision: int) -> str:
        self.manifest_reads.append((release, namespace, revision))
        if self.manifest_error is not None:
            raise self.manifest_error
        return self.manifest

    async def read_objects(
        self, api: Any, keys: list[Any], known: dict[tuple[str, str], Located] | None = None
    ) -> dict[Any, dict[str, Any] | None]:
        self.object_reads += 1
        return {k: copy.deepcopy(self.objects.get(k)) for k in keys}

    async def locate(self, api: Any, api_version: str, kind: str) -> Located | None:
        if kind in self.unserved:
            return None
        return Located(Resource(api_version, kind.lower() + "s"), True)

    async def apply_object(
        self, api: Any, where: Located, obj: dict[str, Any], field_manager: str
    ) -> dict[str, Any]:
        name = obj["metadata"]["name"]
        applied = key_of(obj)
        self.applied.append((applied, field_manager))
        if name in self.apply_errors:
            raise self.apply_errors[name]
        self.objects[applied] = live(obj)
        return copy.deepcopy(self.objects[applied])


@pytest.fixture
def kubeconfig(tmp_path: Path) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    return str(path)


@pytest.fixture
def f(kubeconfig: str) -> Fakes:
    return fakes(config=operator_config(kubeconfig=kubeconfig))


def install(monkeypatch: pytest.MonkeyPatch, cluster: FakeCluster) -> FakeCluster:
    monkeypatch.setattr(drift_module, "read_manifest", cluster.read_manifest)
    monkeypatch.setattr(drift_module, "read_objects", cluster.read_objects)
    monkeypatch.setattr(correct_module, "locate", cluster.locate)
    monkeypatch.setattr(correct_module, "apply_object", cluster.apply_object)
    return cluster


def drift_step(mode: str = "Warn", requested: str = "") -> tuple[dict[str, Any], Step]:
    body = deployment_body(released_status(REVISION, phase="Deployed"))
    plan = plan_of(body, app=application(drift={"mode": mode}))
    return body, Step(Do.CHECK_DRIFT, plan, requested=requested, correct=mode == "Correct")


def check(f: Fakes, mode: str = "Warn", requested: str = "") -> DriftChecked | Done:
    body, step = drift_step(mode, requested)

    async def scenario() -> DriftChecked | Done:
        clients = DriftClients()
        try:
            return await check_drift(f.ctx, clients, request(body, step))
        finally:
            await clients.close()

    return run(scenario())


def checks(f: Fakes, result: str) -> float | None:
    return f.metrics.registry.get_sample_value("alecton_drift_checks_total", {"result": result})


def test_the_faked_functions_have_the_real_signatures() -> None:
    fake = FakeCluster({})
    for name, real in [
        ("read_manifest", releases.read_manifest),
        ("read_objects", informers.read_objects),
        ("locate", informers.locate),
        ("apply_object", informers.apply_object),
    ]:
        ours = inspect.signature(getattr(fake, name))
        assert [p.name for p in ours.parameters.values()] == list(inspect.signature(real).parameters), name
        assert getattr(drift_module if name.startswith("read") else correct_module, name) is real


# ----- drift off, and when this process first considered a revision -------------------------------


def test_considered_since_is_remembered_per_revision() -> None:
    clients = DriftClients()
    assert clients.considered_since(REF, 3, 100.0) == 100.0
    assert clients.considered_since(REF, 3, 250.0) == 100.0  # the first time counts
    assert clients.considered_since(REF, 4, 300.0) == 300.0  # a new revision starts again
    assert clients.considered_since(REF, 4, 350.0) == 300.0


def test_drift_off_forgets_when_the_deployment_was_considered() -> None:
    f = fakes()
    clients = DriftClients()
    other = ObjectRef(NS, "other")
    clients.considered_since(REF, 3, 100.0)
    clients.considered_since(other, 3, 100.0)
    body, step = drift_step("Off")
    assert run(drift_off(f.ctx, clients, request(body, Step(Do.DRIFT_OFF, step.plan)))) == Done()
    assert clients.considered_since(REF, 3, 500.0) == 500.0
    assert clients.considered_since(other, 3, 500.0) == 100.0  # only this Deployment's


# ----- the check ----------------------------------------------------------------------------------


def test_a_busy_share_looks_again_in_a_second_and_reads_nothing(
    f: Fakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = install(monkeypatch, FakeCluster(in_sync()))
    f.slots.try_acquire(NS, CLUSTER.ref)
    assert check(f) == Done(wait=1.0)
    assert cluster.manifest_reads == [] and cluster.object_reads == 0
    assert f.slots.in_flight(NS) == 1
    assert checks(f, "error") is None and checks(f, "in_sync") is None


def test_a_release_in_sync(f: Fakes, monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = install(monkeypatch, FakeCluster(in_sync()))
    outcome = check(f)
    assert outcome == DriftChecked(REVISION, False, "no changes", [], "", None)
    assert cluster.manifest_reads == [(RELEASE, RELEASE_NAMESPACE, REVISION)]
    assert cluster.applied == []
    assert checks(f, "in_sync") == 1 and f.slots.tracked == 0


def test_drift_is_reported_and_not_corrected_in_warn_mode(f: Fakes, monkeypatch: pytest.MonkeyPatch) -> None:
    objects = in_sync()
    objects[key("web-config")]["data"]["a"] = "2"  # type: ignore[index]
    objects[key("web-extra")] = None
    cluster = install(monkeypatch, FakeCluster(objects))
    outcome = check(f, requested="r-7")
    assert isinstance(outcome, DriftChecked)
    assert (outcome.revision, outcome.drifted, outcome.summary) == (
        REVISION,
        True,
        "1 changed, 1 missing, 2 unchanged",
    )
    assert [(o["name"], o["change"], o["fields"]) for o in outcome.objects] == [
        ("web-config", "changed", ["/data/a"]),
        ("web-extra", "missing", []),
    ]
    assert outcome.requested == "r-7" and outcome.correction is None
    assert cluster.applied == [] and f.storage.lookups == []
    assert checks(f, "drifted") == 1


def test_correct_applies_what_the_release_owns_and_refuses_the_rest(
    f: Fakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = in_sync()
    objects[key("web-config")]["data"]["a"] = "2"  # type: ignore[index]  # the release's: applied
    objects[key("web-extra")] = None  # missing in the release namespace: applied
    objects[key("stray")] = live(MANIFEST_OBJECTS[2], owned=False, c="2")  # not annotated: refused
    objects[key("elsewhere", "other")] = None  # missing outside the release namespace: refused
    cluster = install(monkeypatch, FakeCluster(objects))
    f.storage.put(f"{NS}/{RELEASE}")

    outcome = check(f, "Correct")

    assert isinstance(outcome, DriftChecked)
    assert cluster.applied == [(key("web-config"), "helm"), (key("web-extra"), "helm")]
    correction = outcome.correction
    assert correction is not None
    assert (correction["revision"], correction["objects"], correction["result"]) == (REVISION, 2, "Failed")
    assert correction["detail"] == (
        "ConfigMap web-config, ConfigMap web-extra, ConfigMap stray, ConfigMap elsewhere; failed: "
        "ConfigMap stray is not annotated as an object of this release: not applied; "
        "ConfigMap elsewhere is missing and lives in namespace 'other', outside the release namespace: "
        "not applied"
    )
    # Compared again after the correction: what was refused still differs.
    assert cluster.object_reads == 2
    assert outcome.drifted and [o["name"] for o in outcome.objects] == ["stray", "elsewhere"]
    # The owner was read again right before applying.
    assert f.storage.lookups == [(CONTEXT, RELEASE_NAMESPACE, RELEASE)]
    assert checks(f, "correction_failed") == 1


def test_a_correction_of_the_release_own_objects_succeeds(f: Fakes, monkeypatch: pytest.MonkeyPatch) -> None:
    objects = in_sync()
    objects[key("web-config")]["data"]["a"] = "2"  # type: ignore[index]
    cluster = install(monkeypatch, FakeCluster(objects))
    outcome = check(f, "Correct")
    assert isinstance(outcome, DriftChecked) and outcome.correction is not None
    assert outcome.correction["result"] == "Succeeded" and outcome.correction["objects"] == 1
    assert abs(epoch(outcome.correction["at"]) - time.time()) < 5
    assert outcome.correction["detail"] == "ConfigMap web-config"
    assert not outcome.drifted and outcome.summary == "no changes"
    assert cluster.applied == [(key("web-config"), "helm")]
    assert checks(f, "corrected") == 1


def test_nothing_is_corrected_when_storage_names_another_owner(
    f: Fakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = in_sync()
    objects[key("web-config")]["data"]["a"] = "2"  # type: ignore[index]
    cluster = install(monkeypatch, FakeCluster(objects))
    f.storage.put(f"{NS}/other")
    assert check(f, "Correct") == Done(wait=60.0)
    assert cluster.applied == []
    assert checks(f, "error") == 1 and f.slots.tracked == 0


def test_an_unreadable_manifest_looks_again_in_a_minute(f: Fakes, monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = install(monkeypatch, FakeCluster(in_sync()))
    cluster.manifest_error = api_error(403, "Forbidden")
    assert check(f) == Done(wait=60.0)
    assert cluster.object_reads == 0
    assert checks(f, "error") == 1 and f.slots.tracked == 0
    assert f.metrics.registry.get_sample_value("alecton_drift_check_duration_seconds_count") == 1


def test_a_cluster_without_a_grant_looks_again_in_a_minute(
    kubeconfig: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = fakes(config=operator_config(grants=(), kubeconfig=kubeconfig))
    cluster = install(monkeypatch, FakeCluster(in_sync()))
    assert check(f) == Done(wait=60.0)
    assert cluster.manifest_reads == [] and checks(f, "error") == 1


# ----- correct, on its own ------------------------------------------------------------------------


def correction_of(cluster: FakeCluster) -> dict[str, Any]:
    manifest = parse_manifest(cluster.manifest, RELEASE_NAMESPACE)
    keys = [key_of(o, RELEASE_NAMESPACE) for o in manifest]
    live_objects = {k: cluster.objects.get(k) for k in keys}
    result = diff_release(manifest, live_objects, mode="drift")
    _, step = drift_step("Correct")
    assert step.plan is not None and step.plan.desired is not None
    return run(correct(object(), manifest, result, live_objects, step.plan.desired, REVISION))  # type: ignore[arg-type]


def drifted_cluster(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    objects = in_sync()
    objects[key("web-config")]["data"]["a"] = "2"  # type: ignore[index]
    objects[key("web-extra")] = None
    return install(monkeypatch, FakeCluster(objects))


def test_correct_reports_an_apply_the_api_server_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = drifted_cluster(monkeypatch)
    cluster.apply_errors["web-extra"] = api_error(
        422, "Unprocessable Entity", 'ConfigMap "web-extra" is invalid'
    )
    correction = correction_of(cluster)
    assert cluster.applied == [(key("web-config"), "helm"), (key("web-extra"), "helm")]
    assert (correction["objects"], correction["result"]) == (1, "Failed")
    assert correction["detail"] == (
        "ConfigMap web-config, ConfigMap web-extra; failed: "
        'ConfigMap web-extra: ConfigMap "web-extra" is invalid'
    )


def test_correct_reports_kinds_the_server_does_not_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = drifted_cluster(monkeypatch)
    cluster.unserved.add("ConfigMap")
    correction = correction_of(cluster)
    assert cluster.applied == []
    assert (correction["objects"], correction["result"]) == (0, "Failed")
    assert correction["detail"] == (
        "ConfigMap web-config, ConfigMap web-extra; failed: ConfigMap web-config: kind not served; "
        "ConfigMap web-extra: kind not served"
    )


def test_correct_keeps_its_detail_short(monkeypatch: pytest.MonkeyPatch) -> None:
    many = [config_map(f"cm-{i:03d}-" + "x" * 30, {"a": "1"}) for i in range(40)]
    manifest = "\n---\n".join(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {o['metadata']['name']}\ndata:\n  a: '1'"
        for o in many
    )
    cluster = install(monkeypatch, FakeCluster({}, manifest))
    correction = correction_of(cluster)
    assert correction["objects"] == 40 and correction["result"] == "Succeeded"
    assert len(correction["detail"]) == 500


# ----- the pooled API clients ---------------------------------------------------------------------


def test_clients_are_pooled_per_cluster_identity(kubeconfig: str) -> None:
    async def scenario() -> None:
        clients = DriftClients()
        operator = KubeAccess(kubeconfig, CONTEXT, identity=f"context:{CONTEXT}")
        tenant = KubeAccess(
            kubeconfig, CONTEXT, identity=f"context:{CONTEXT}", impersonate="system:serviceaccount:apps:x"
        )
        first = await clients.client(CLUSTER.ref, operator)
        assert await clients.client(CLUSTER.ref, operator) is first
        other = await clients.client(CLUSTER.ref, tenant)
        assert other is not first
        assert other.api.default_headers["Impersonate-User"] == "system:serviceaccount:apps:x"
        assert "Impersonate-User" not in first.api.default_headers
        await clients.close()
        assert await clients.client(CLUSTER.ref, operator) is not first  # closed: made again
        await clients.close()

    run(scenario())
