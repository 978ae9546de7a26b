"""Uninstall (handlers/actions/uninstall.py): on deletion, where status says the release
lives and at a move's old place, each only when helm's storage names this Deployment."""

from __future__ import annotations

import logging
from typing import Any

from alecton.api.models import Deployment
from alecton.handlers.actions.uninstall import remove_moved, uninstall, uninstall_at
from alecton.kube.releases import ReleaseLookupError
from alecton.reconcile.decide import Do, Step
from alecton.reconcile.outcomes import Note, Uninstalled, UninstallFailed
from alecton.reconcile.plan import Action, Plan, ReleaseLocation

from tests.unit.fakes import (
    CLUSTER,
    CONTEXT,
    HERE,
    NS,
    OLD_CONTEXT,
    OLD_PLACE,
    RELEASE,
    RELEASE_NAMESPACE,
    Fakes,
    deployment_body,
    fakes,
    operator_config,
    released_status,
    request,
    run,
)

OWNER = f"{NS}/{RELEASE}"
DELETED = {"deletionTimestamp": "2026-03-01T12:00:00Z"}
LOGGER = logging.LoggerAdapter(logging.getLogger("test"), {})


def uninstall_of(f: Fakes, status: dict[str, Any], **spec: Any) -> Uninstalled | UninstallFailed:
    body = deployment_body(status, **DELETED, **spec)
    return run(uninstall(f.ctx, request(body, Step(Do.UNINSTALL, Plan(Action.UNINSTALL)))))


def test_the_release_status_names_is_uninstalled_when_storage_names_this_deployment() -> None:
    f = fakes()
    f.storage.put(OWNER)
    outcome = uninstall_of(f, released_status(3))
    assert outcome == Uninstalled(f"removed the release from namespace {RELEASE_NAMESPACE}")
    assert f.helm.calls == [("uninstall", RELEASE, RELEASE_NAMESPACE, CONTEXT)]
    assert f.storage.lookups == [(CONTEXT, RELEASE_NAMESPACE, RELEASE)]


def test_a_release_of_another_owner_is_left() -> None:
    f = fakes()
    f.storage.put(f"{NS}/other")
    outcome = uninstall_of(f, released_status(3))
    assert isinstance(outcome, Uninstalled)
    assert outcome.message.startswith(f"left {HERE.describe()}: ")
    assert f"belongs to alecton Deployment {NS}/other" in outcome.message
    assert f.helm.calls == []


def test_a_release_already_gone_says_so() -> None:
    f = fakes()
    f.helm.removed = False
    outcome = uninstall_of(f, released_status(3))
    assert outcome == Uninstalled(f"the release in namespace {RELEASE_NAMESPACE!r} was already gone")
    assert f.helm.actions() == ["uninstall"]


def test_a_cluster_that_no_longer_exists_is_not_reached() -> None:
    f = fakes(clusters=())
    outcome = uninstall_of(f, released_status(3))
    assert outcome == Uninstalled(
        f"left {HERE.describe()}: the Cluster no longer exists, so it cannot be reached"
    )
    assert f.helm.calls == [] and f.storage.lookups == []


def test_a_cluster_that_points_elsewhere_now_is_not_touched() -> None:
    f = fakes()
    f.storage.put(OWNER)
    elsewhere = ReleaseLocation(CLUSTER.ref.name, "server:https://10.9.9.9", RELEASE_NAMESPACE, RELEASE)
    outcome = uninstall_of(f, released_status(3, elsewhere))
    assert outcome == Uninstalled(f"left {elsewhere.describe()}: the Cluster now points at another cluster")
    assert f.helm.calls == [] and f.storage.lookups == []


def test_the_old_place_of_a_move_that_never_succeeded_goes_too() -> None:
    f = fakes()
    f.storage.put(OWNER)
    f.storage.put(OWNER, context=OLD_CONTEXT)
    status = released_status(0, HERE, [], movedFrom=OLD_PLACE.as_status())
    outcome = uninstall_of(f, status)
    removed = f"removed the release from namespace {RELEASE_NAMESPACE}"
    assert outcome == Uninstalled(f"{removed}; {removed}")
    assert f.helm.calls == [
        ("uninstall", RELEASE, RELEASE_NAMESPACE, CONTEXT),
        ("uninstall", RELEASE, RELEASE_NAMESPACE, OLD_CONTEXT),
    ]


def test_moved_from_the_same_place_is_uninstalled_once() -> None:
    f = fakes()
    f.storage.put(OWNER)
    outcome = uninstall_of(f, released_status(3, movedFrom=HERE.as_status()))
    assert isinstance(outcome, Uninstalled)
    assert f.helm.actions() == ["uninstall"]


def test_a_helm_failure_is_reported_for_a_retry() -> None:
    f = fakes()
    f.storage.put(OWNER)
    f.helm.fail("uninstall", "Error: uninstall: Release not loaded: web-staging: query: failed\n")
    outcome = uninstall_of(f, released_status(3))
    assert outcome == UninstallFailed(
        "helm uninstall failed: uninstall: Release not loaded: web-staging: query: failed"
    )


def test_unreadable_storage_is_a_failure_and_nothing_is_removed() -> None:
    f = fakes()
    f.storage.error = ReleaseLookupError(
        "cannot read helm's storage for release 'web-staging': 403 Forbidden"
    )
    outcome = uninstall_of(f, released_status(3))
    assert outcome == UninstallFailed("cannot read helm's storage for release 'web-staging': 403 Forbidden")
    assert f.helm.calls == []


def test_a_cluster_without_a_grant_is_a_failure() -> None:
    f = fakes(config=operator_config(grants=()))
    outcome = uninstall_of(f, released_status(3))
    assert isinstance(outcome, UninstallFailed) and "--allow-context" in outcome.error
    assert f.helm.calls == []


# ----- the old place after a successful move ------------------------------------------------------


def moved(f: Fakes, **spec: Any) -> tuple[str, Note]:
    deployment = Deployment.parse(deployment_body(**spec))
    return run(remove_moved(f.ctx, deployment, OLD_PLACE, LOGGER))


def test_remove_moved_uninstalls_the_old_place_it_owns() -> None:
    f = fakes()
    f.storage.put(OWNER, context=OLD_CONTEXT)
    message, note = moved(f)
    assert message == f"removed the release from namespace {RELEASE_NAMESPACE}"
    assert note == Note("ReleaseMoved", message)
    assert f.helm.calls == [("uninstall", RELEASE, RELEASE_NAMESPACE, OLD_CONTEXT)]


def test_remove_moved_with_deletion_policy_orphan_leaves_it_running() -> None:
    f = fakes()
    f.storage.put(OWNER, context=OLD_CONTEXT)
    message, note = moved(f, deletionPolicy="Orphan")
    assert message == f"left the release in namespace {RELEASE_NAMESPACE!r} running (deletionPolicy Orphan)"
    assert note == Note("ReleaseMoved", message)
    assert f.helm.calls == [] and f.storage.lookups == []


def test_remove_moved_that_fails_is_a_warning_with_the_command_to_run() -> None:
    f = fakes()
    f.storage.error = ReleaseLookupError("cannot reach the cluster to check who owns release 'web-staging'")
    message, note = moved(f)
    assert message == (
        f"could not remove {OLD_PLACE.describe()}: cannot reach the cluster to check who owns release "
        f"'web-staging'; remove it by hand (helm uninstall {RELEASE} -n {RELEASE_NAMESPACE})"
    )
    assert note == Note("ReleaseMoved", message, warning=True)


def test_uninstall_at_a_place_storage_holds_nothing_lets_helm_say_it_is_gone() -> None:
    f = fakes()
    f.helm.removed = False
    deployment = Deployment.parse(deployment_body())
    message = run(uninstall_at(f.ctx, deployment, HERE, LOGGER))
    assert message == f"the release in namespace {RELEASE_NAMESPACE!r} was already gone"
    assert f.storage.lookups == [(CONTEXT, RELEASE_NAMESPACE, RELEASE)]
    assert f.helm.actions() == ["uninstall"]
