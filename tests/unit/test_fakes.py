"""The fakes of tests/unit/fakes.py stand in for the real classes: same method names, same
parameters, same kind (coroutine or not), and the failures they raise are the real ones."""

from __future__ import annotations

import inspect

import pytest
from alecton.handlers.health_monitor import HealthMonitor
from alecton.helm.actions import HelmActions
from alecton.kube.client import ApiException, KubeClient
from alecton.kube.releases import ReleaseStorage
from alecton.metrics import Metrics
from alecton.reconcile.helm_failure import FailureKind, classify_helm_failure

from tests.unit.fakes import LOCKED_STDERR, FakeHelm, FakeKube, FakeMonitor, FakeStorage, helm_error, run

PAIRS = [
    (FakeHelm, HelmActions, ["upgrade", "rollback", "history", "uninstall"]),
    (
        FakeKube,
        KubeClient,
        [
            "get",
            "patch",
            "create",
            "patch_status",
            "read_secret_key",
            "read_or_create_secret_key",
            "post_event",
        ],
    ),
    (FakeStorage, ReleaseStorage, ["lookup"]),
    (FakeMonitor, HealthMonitor, ["track", "untrack", "tracked", "verdict"]),
]


def _shape(function: object) -> tuple[list[tuple[str, object]], bool]:
    parameters = inspect.signature(function).parameters.values()  # type: ignore[arg-type]
    return [(p.name, p.default) for p in parameters], inspect.iscoroutinefunction(function)


@pytest.mark.parametrize(("fake", "real", "methods"), PAIRS, ids=lambda value: getattr(value, "__name__", ""))
def test_fakes_have_the_real_signatures(fake: type, real: type, methods: list[str]) -> None:
    for name in methods:
        assert _shape(getattr(fake, name)) == _shape(getattr(real, name)), name


def test_fake_helm_has_the_history_limit_of_the_real_one() -> None:
    assert FakeHelm().history_max == HelmActions.__dataclass_fields__["history_max"].default


def test_helm_errors_are_the_real_ones() -> None:
    locked = helm_error("upgrade", LOCKED_STDERR)
    assert locked.release_locked
    assert str(locked) == (
        "helm upgrade failed: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress"
    )
    assert not helm_error("upgrade", "Error: UPGRADE FAILED: boom\n").release_locked
    assert classify_helm_failure(locked.result.stderr).kind is FailureKind.TRANSIENT


def test_metrics_can_be_made_more_than_once_per_process() -> None:
    first, second = Metrics(), Metrics()
    first.drift_checks.labels("error").inc()
    assert first.registry.get_sample_value("alecton_drift_checks_total", {"result": "error"}) == 1
    assert second.registry.get_sample_value("alecton_drift_checks_total", {"result": "error"}) is None


def test_fake_kube_refuses_a_stale_resource_version_and_raises_the_generation() -> None:
    kube = FakeKube()
    kube.add(
        "Deployment", {"metadata": {"namespace": "n", "name": "d", "resourceVersion": "1", "generation": 1}}
    )

    async def scenario() -> None:
        written = await kube.patch(
            "Deployment", "n", "d", {"metadata": {"resourceVersion": "1"}, "spec": {"a": 1}}
        )
        assert written["metadata"]["generation"] == 2
        assert written["metadata"]["resourceVersion"] != "1"
        with pytest.raises(ApiException) as raised:
            await kube.patch("Deployment", "n", "d", {"metadata": {"resourceVersion": "1"}, "spec": {"a": 2}})
        assert raised.value.status == 409

    run(scenario())
