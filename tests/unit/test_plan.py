from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from alecton.api.models import (
    Application,
    Cluster,
    Deployment,
    Image,
    ImageSource,
    InvalidResourceError,
    ObjectRef,
)
from alecton.reconcile.chart import ChartPolicy
from alecton.reconcile.image_policy import AmbiguousVersion, authoritative_image, image_warning, pick_image
from alecton.reconcile.plan import (
    Action,
    Missing,
    RecordedStatus,
    ReleaseLocation,
    Resolved,
    owner_of,
    plan_release,
    resolve,
    rolled_back_fingerprint,
)
from alecton.reconcile.release import HistoryEntry
from alecton.reconcile.retry import LiveLock, Repair, backoff_seconds, plan_repair, retry_wait

HERE = ReleaseLocation("b", "context:alecton-b", "web", "web-staging")
CHARTS = ChartPolicy(Path(__file__).resolve().parents[2] / "charts")
NS = "team"


def deployment(
    name: str = "web-staging", created: str = "2026-01-01T00:00:00Z", status: dict | None = None, **spec: Any
) -> Deployment:
    meta: dict[str, Any] = {
        "namespace": NS,
        "name": name,
        "uid": "u1",
        "generation": 1,
        "creationTimestamp": created,
    }
    for key in ("deletionTimestamp", "finalizers"):
        if key in spec:
            meta[key] = spec.pop(key)
    body = {
        "metadata": meta,
        "spec": {"application": "web", "target": "staging", "version": "1.0", **spec},
        "status": status or {},
    }
    return Deployment.parse(body)


APP_SPEC: dict[str, Any] = {
    "chart": "webapp",
    "image": "web",
    "values": {"a": 1},
    "targets": [{"name": "staging", "cluster": "b", "namespace": "web-staging", "values": {"a": 2}}],
}
APP = Application.parse({"metadata": {"namespace": NS, "name": "web"}, "spec": APP_SPEC})
CLUSTER = Cluster.parse({"metadata": {"namespace": NS, "name": "b"}, "spec": {"context": "alecton-b"}})


def image(
    version: str = "1.0", ref: str = "r/web:1.0", created: str = "2026-01-01T00:00:00Z", name: str = "i"
) -> Image:
    return Image.parse(
        {
            "metadata": {"namespace": NS, "name": name, "creationTimestamp": created},
            "spec": {"name": "web", "version": version, "image": ref},
        }
    )


def resolved() -> Resolved:
    return Resolved(APP, APP.targets[0], CLUSTER, image())


def plan_for(
    dep: Deployment,
    recorded: RecordedStatus | None = None,
    resolution: Any = None,
    owner: ObjectRef | None = None,
):
    return plan_release(dep, recorded or RecordedStatus(), resolution or resolved(), owner or dep.ref, CHARTS)


def test_missing_references_are_named_precisely() -> None:
    dep = deployment()
    assert resolve(dep, None, lambda _: CLUSTER, [image()]).reason == "ApplicationNotFound"  # type: ignore[union-attr]
    other = deployment(target="prod")
    missing = resolve(other, APP, lambda _: CLUSTER, [image()])
    assert (
        isinstance(missing, Missing) and missing.reason == "TargetNotFound" and "staging" in missing.message
    )
    assert resolve(dep, APP, lambda _: None, [image()]).reason == "ClusterNotFound"  # type: ignore[union-attr]
    missing = resolve(dep, APP, lambda _: CLUSTER, [])
    assert (
        isinstance(missing, Missing)
        and missing.reason == "ImageNotFound"
        and "alecton image create web 1.0" in missing.message
    )
    assert isinstance(resolve(dep, APP, lambda _: CLUSTER, [image()]), Resolved)


def test_first_upgrade_then_nothing_once_applied() -> None:
    dep = deployment()
    plan = plan_for(dep)
    assert plan.action is Action.UPGRADE
    assert plan.desired is not None and plan.desired.values == {"a": 2, "image": "r/web:1.0"}
    applied = RecordedStatus(applied_fingerprint=plan.desired.fingerprint, release=HERE)
    assert plan_for(dep, applied).action is Action.NOTHING


def test_any_input_change_changes_the_fingerprint() -> None:
    base = plan_for(deployment()).desired
    assert base is not None
    other_image = plan_release(
        deployment(),
        RecordedStatus(),
        Resolved(APP, APP.targets[0], CLUSTER, image(ref="r/web:1.1")),
        deployment().ref,
        CHARTS,
    ).desired
    other_cluster = Cluster.parse({"metadata": {"namespace": NS, "name": "b"}, "spec": {"context": "other"}})
    moved = plan_release(
        deployment(),
        RecordedStatus(),
        Resolved(APP, APP.targets[0], other_cluster, image()),
        deployment().ref,
        CHARTS,
    ).desired
    assert other_image and moved
    assert len({base.fingerprint, other_image.fingerprint, moved.fingerprint}) == 3
    assert base.fingerprint == plan_for(deployment()).desired.fingerprint  # type: ignore[union-attr]


def test_rollback_runs_once_per_request() -> None:
    dep = deployment(rollback={"revision": 1})
    desired = plan_for(dep).desired
    assert plan_for(dep).action is Action.ROLLBACK
    done = RecordedStatus(applied_fingerprint=desired.fingerprint, rollback_revision=1)  # type: ignore[union-attr]
    assert plan_for(dep, done).action is Action.NOTHING
    again = deployment(rollback={"revision": 1, "requestId": "second"})
    assert plan_for(again, done).action is Action.ROLLBACK
    # After the rollback, a new version deploys normally.
    newer = deployment(version="2.0", rollback={"revision": 1})
    assert (
        plan_release(
            newer, done, Resolved(APP, APP.targets[0], CLUSTER, image("2.0", "r/web:2.0")), newer.ref, CHARTS
        ).action
        is Action.UPGRADE
    )


def test_waiting_conflict_suspend_refused() -> None:
    dep = deployment()
    assert plan_for(dep, resolution=Missing("ImageNotFound", "no image")).action is Action.WAIT
    conflict = plan_for(dep, owner=ObjectRef(NS, "other"))
    assert conflict.action is Action.CONFLICT and "'other' already deploys" in conflict.message
    assert plan_for(deployment(suspend=True)).action is Action.SUSPENDED
    bad_app = Application.parse(
        {
            "metadata": {"namespace": NS, "name": "web"},
            "spec": {
                "chart": "../etc",
                "image": "web",
                "targets": [{"name": "staging", "cluster": "b", "namespace": "x"}],
            },
        }
    )
    refused = plan_for(dep, resolution=Resolved(bad_app, bad_app.targets[0], CLUSTER, image()))
    assert refused.action is Action.REFUSED and "outside" in refused.message


def test_deletion_decisions() -> None:
    gone = {"deletionTimestamp": "2026-01-01T00:00:00Z", "finalizers": ["alecton.dev/helm-release"]}
    made = RecordedStatus(release=HERE)
    assert plan_for(deployment(**gone), made).action is Action.UNINSTALL
    assert plan_for(deployment(deletionPolicy="Orphan", **gone), made).action is Action.RELEASE_FINALIZER
    # Never made the release (or not the owner): nothing to uninstall.
    assert plan_for(deployment(**gone)).action is Action.RELEASE_FINALIZER
    assert plan_for(deployment(**gone), made, owner=ObjectRef(NS, "other")).action is Action.RELEASE_FINALIZER
    assert plan_for(deployment(deletionTimestamp="2026-01-01T00:00:00Z"), made).action is Action.NOTHING


def test_owner_is_the_maker_then_oldest_then_canonical_name() -> None:
    first = deployment("zzz", created="2026-01-01T00:00:00Z")
    later = deployment("aaa", created="2026-01-02T00:00:00Z")
    assert owner_of([later, first]) is first
    tie_canonical = deployment("web-staging", created="2026-01-01T00:00:00Z")
    assert owner_of([first, tie_canonical]) is tie_canonical
    maker = deployment("newer", created="2026-02-01T00:00:00Z", status={"release": {"name": "web-staging"}})
    assert owner_of([first, tie_canonical, maker]) is maker
    assert owner_of([]) is None


def test_oldest_image_of_a_pair_wins() -> None:
    old = image(created="2026-01-01T00:00:00Z", ref="first", name="b")
    new = image(created="2026-01-05T00:00:00Z", ref="second", name="a")
    assert pick_image([new, old]) is old


def test_a_later_image_of_the_same_version_is_shadowed_and_says_by_what() -> None:
    first = image(ref="r/web:1.0", created="2026-01-01T00:00:00Z", name="web-1")
    later = image(ref="r/web:other", created="2026-01-01T00:00:05Z", name="web-1-b")
    assert image_warning(later, [first, later]) == (
        "DuplicateVersion",
        "version 1.0 of image 'web' is already recorded by Image web-1 (r/web:1.0); "
        "this Image is not used: record a new build as a new version",
    )
    assert image_warning(first, [first, later]) is None
    assert image_warning(first, []) is None  # not indexed yet: alone


def test_every_caller_gets_the_one_decision_on_a_same_second_tie() -> None:
    team = image(ref="r/web:1.0", name="web-1-0")
    shadow = image(ref="evil.example/web:1.0", name="a-shadow")
    later = image(ref="r/web:1.0-later", name="0-later", created="2026-01-01T00:00:09Z")
    chosen = authoritative_image([later, team, shadow])
    assert isinstance(chosen, AmbiguousVersion) and chosen.images == (shadow, team)
    assert pick_image([team, shadow, later]) is None  # news, web and CLI show no guess
    for tied in (team, shadow):  # each of the two says why, naming the other
        warning = image_warning(tied, [team, shadow, later])
        assert warning is not None and warning[0] == "ImageAmbiguous"
        assert "a-shadow" in warning[1] and "web-1-0" in warning[1]
    assert image_warning(later, [team, shadow, later]) is None  # not the one to delete
    assert image_warning(shadow, []) is None  # alone until the other is indexed


def test_a_same_second_image_of_another_build_makes_the_version_ambiguous_not_the_attackers() -> None:
    # R27B-8: a CI token bound to alecton-image-publisher records a "shadow" of version 1.0 in
    # the same second as the team's Image, named to sort first and pointing at its own build.
    dep = deployment()
    team = image(ref="r/web:1.0", name="web-1-0")
    shadow = image(ref="evil.example/web:1.0", name="a-shadow")
    resolution = resolve(dep, APP, lambda _: CLUSTER, [team, shadow])
    assert isinstance(resolution, Missing), f"deployed {resolution.image.image}"  # type: ignore[union-attr]
    assert resolution.reason == "ImageAmbiguous"
    assert "a-shadow (evil.example/web:1.0)" in resolution.message
    assert "web-1-0 (r/web:1.0)" in resolution.message
    assert "delete the wrong one" in resolution.message
    plan = plan_for(dep, resolution=resolution)
    assert plan.action is Action.REFUSED and plan.desired is None and plan.reason == "ImageAmbiguous"
    # The same reference with another digest is another build too.
    pinned = image(ref="r/web:1.0", name="a-pinned")
    pinned = replace(pinned, digest="sha256:" + "e" * 64)
    assert isinstance(resolve(dep, APP, lambda _: CLUSTER, [team, pinned]), Missing)


def test_same_second_images_of_one_build_and_a_later_one_are_not_ambiguous() -> None:
    dep = deployment()
    team = image(ref="r/web:1.0", name="web-1-0")
    twin = image(ref="r/web:1.0", name="a-twin")
    later = image(ref="evil.example/web:1.0", name="0-later", created="2026-01-01T00:00:01Z")
    for candidates in ([team, twin, later], [later, twin, team]):
        resolution = resolve(dep, APP, lambda _: CLUSTER, candidates)
        assert isinstance(resolution, Resolved) and resolution.image == twin


def test_same_second_twins_that_name_other_sources_are_ambiguous_too() -> None:
    # The same build with another spec.source: whichever won would feed News, DORA and the
    # commit statuses posted with the team's token the attacker's repository and commit.
    dep = deployment()
    team = replace(
        image(ref="r/web:1.0", name="web-1-0"), source=ImageSource("github.com/team/web", "a" * 40)
    )
    twin = replace(image(ref="r/web:1.0", name="a-twin"), source=ImageSource("github.com/evil/x", "b" * 40))
    resolution = resolve(dep, APP, lambda _: CLUSTER, [team, twin])
    assert isinstance(resolution, Missing) and resolution.reason == "ImageAmbiguous"
    assert "github.com/evil/x" in resolution.message


def test_backoff_is_exponential_and_capped() -> None:
    assert [backoff_seconds(n) for n in range(6)] == [0, 5, 10, 20, 40, 80]
    assert backoff_seconds(30) == 300


def test_retry_wait_only_for_the_inputs_that_failed() -> None:
    recorded = RecordedStatus.parse({"failedFingerprint": "sha256:x", "retryAfter": "2026-01-01T00:00:10Z"})
    now = recorded.retry_after - 4
    assert retry_wait(recorded, "sha256:x", now) == 4
    assert retry_wait(recorded, "sha256:y", now) == 0
    assert retry_wait(recorded, "sha256:x", recorded.retry_after + 1) == 0


def test_inputs_helm_refused_wait_for_a_change_not_a_timer() -> None:
    """Issue 16: a template error was retried on a timer ("attempt 4; retrying in 40 s")."""
    recorded = RecordedStatus.parse({"failedFingerprint": "sha256:x", "stalledFingerprint": "sha256:x"})
    assert retry_wait(recorded, "sha256:x", time.time() + 10**6) == math.inf
    assert retry_wait(recorded, "sha256:y", time.time()) == 0  # changed inputs run at once


@pytest.mark.parametrize(
    "spec",
    [
        {"application": "web", "target": "staging"},
        {"application": "web", "target": 3, "version": "1"},
        {"application": "web", "target": "s", "version": "1", "rollback": {"revision": 0}},
        {"application": "web", "target": "s", "version": "1", "deletionPolicy": "Keep"},
    ],
)
def test_invalid_deployments_are_reported(spec: dict) -> None:
    with pytest.raises(InvalidResourceError):
        Deployment.parse({"metadata": {"namespace": NS, "name": "x"}, "spec": spec})


def test_duplicate_target_names_rejected() -> None:
    with pytest.raises(InvalidResourceError, match="used twice"):
        Application.parse(
            {
                "metadata": {},
                "spec": {
                    "chart": "c",
                    "image": "i",
                    "targets": [{"name": "a", "cluster": "c", "namespace": "n"}] * 2,
                },
            }
        )


def test_a_rollback_holds_until_a_new_version_or_its_removal() -> None:
    dep = deployment(rollback={"revision": 1})
    desired = plan_for(dep).desired
    assert desired is not None
    rolled_back = RecordedStatus(
        applied_fingerprint="sha256:old",
        applied_inputs={**desired.inputs(), "values": "changed"},
        applied_version="1.0",
        release=HERE,
        release_revision=3,
        rollback_revision=1,
        rollback_result="Succeeded",
    )
    held = plan_for(dep, rolled_back)
    assert held.action is Action.HELD and "held at revision 3" in held.message and "values" in held.message
    assert plan_for(deployment(), rolled_back).action is Action.UPGRADE  # spec.rollback removed
    # Right after the rollback nothing changed: no helm, and removing spec.rollback deploys.
    just = replace(rolled_back, applied_fingerprint=rolled_back_fingerprint(desired.fingerprint))
    assert plan_for(dep, just).action is Action.NOTHING
    assert plan_for(deployment(), just).action is Action.UPGRADE
    newer = deployment(version="2.0", rollback={"revision": 1})
    resolved = Resolved(APP, APP.targets[0], CLUSTER, image("2.0", "r/web:2.0"))
    assert plan_release(newer, rolled_back, resolved, newer.ref, CHARTS).action is Action.UPGRADE


def test_a_rollback_with_a_new_version_in_one_update_is_superseded() -> None:
    newer = deployment(version="2.0", rollback={"revision": 1})
    recorded = RecordedStatus(
        applied_fingerprint="sha256:x", applied_version="1.0", release=HERE, release_revision=2
    )
    resolved = Resolved(APP, APP.targets[0], CLUSTER, image("2.0", "r/web:2.0"))
    plan = plan_release(newer, recorded, resolved, newer.ref, CHARTS)
    assert (plan.action, plan.reason) == (Action.UPGRADE, "RollbackSuperseded")


def test_only_a_stale_pending_revision_is_repaired() -> None:
    def entry(revision: int, status: str, updated: str) -> HistoryEntry:
        return HistoryEntry(revision, status, "c-1", "1", updated, "")

    history = [entry(2, "pending-upgrade", "2026-01-01T00:10:00.123456789Z"), entry(1, "deployed", "x")]
    stuck_at = 1767226200.123456  # 2026-01-01T00:10:00.123456Z
    live = plan_repair(history, stuck_at + 100, stale_after=360)
    assert isinstance(live, LiveLock) and "not repaired before 2026-01-01T00:16:00Z" in live.description
    repair = plan_repair(history, stuck_at + 361, stale_after=360)
    assert isinstance(repair, Repair) and repair.rollback_to == 1
    # Unreadable time: assume it may be live.
    assert isinstance(plan_repair([entry(2, "pending-install", "?")], stuck_at, 1), LiveLock)
    assert plan_repair([entry(1, "deployed", "x")], stuck_at, 1) is None


def test_values_too_deep_are_refused_not_a_recursion_error() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(5000):
        node["a"] = {}
        node = node["a"]
    app = Application.parse(
        {"metadata": {"namespace": NS, "name": "web"}, "spec": {**APP_SPEC, "values": deep}}
    )
    plan = plan_release(
        deployment(),
        RecordedStatus(),
        Resolved(app, app.targets[0], CLUSTER, image()),
        deployment().ref,
        CHARTS,
    )
    assert (plan.action, plan.reason) == (Action.REFUSED, "ValuesRefused")
    assert "deeper than 64 levels" in plan.message


def test_a_promoted_deployment_needs_no_version_and_keeps_what_promotion_reads() -> None:
    body = {
        "metadata": {
            "namespace": NS,
            "name": "web-prod",
            "annotations": {"alecton.dev/resume": "r1"},
            "managedFields": [{"manager": "kubectl-patch", "fieldsV1": {"f:spec": {"f:version": {}}}}],
        },
        "spec": {
            "application": "web",
            "target": "prod",
            "promotion": {"versions": {"semver": "1.x"}, "from": "qa"},
        },
    }
    dep = Deployment.parse(body)
    assert dep.version == "" and dep.promotion_source == "qa"
    assert (
        dep.annotations["alecton.dev/resume"] == "r1" and dep.managed_fields[0]["manager"] == "kubectl-patch"
    )
    with pytest.raises(InvalidResourceError, match=r"spec.version is required"):
        Deployment.parse({**body, "spec": {"application": "web", "target": "prod"}})
