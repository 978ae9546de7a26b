from __future__ import annotations

import base64
import gzip
import json
from types import SimpleNamespace

from alecton.api.models import ObjectRef
from alecton.handlers.ownership import ownership_conflict
from alecton.handlers.slots import Slots
from alecton.kube.releases import StoredRelease, owner_labels, stored_release
from alecton.reconcile.plan import ReleaseLocation

HERE = ReleaseLocation("b", "context:b", "web", "web-staging")
ME = ObjectRef("team-a", "web-staging")


def secret(version: int, labels: dict[str, str], description: str = "") -> SimpleNamespace:
    body = gzip.compress(json.dumps({"info": {"description": description}}).encode())
    data = {"release": base64.b64encode(base64.b64encode(body)).decode()}
    meta = SimpleNamespace(labels={"owner": "helm", "version": str(version), "status": "deployed", **labels})
    return SimpleNamespace(metadata=meta, data=data)


def test_owner_comes_from_the_newest_revisions_labels() -> None:
    assert stored_release([]) == StoredRelease(False)
    items = [
        secret(1, owner_labels("team-b", "web-staging")),
        secret(2, owner_labels("team-a", "web-staging")),
    ]
    assert stored_release(items).owner == "team-a/web-staging"


def test_releases_made_before_labels_fall_back_to_the_description_and_never_to_nobody() -> None:
    old = secret(3, {}, "alecton: deployed version 1.0 for team-a/web-staging")
    assert stored_release([old]).owner == "team-a/web-staging"
    hand = secret(1, {}, "Install complete")
    stored = stored_release([hand])
    assert stored.exists and stored.owner is None
    assert ownership_conflict(stored, ME, HERE, {}, allow_adopt=True) is not None  # not annotated


def test_ownership_decisions() -> None:
    absent, mine = StoredRelease(False), StoredRelease(True, str(ME))
    theirs, hand = StoredRelease(True, "team-b/web-staging"), StoredRelease(True, None)
    assert ownership_conflict(absent, ME, HERE, {}, False) is None
    assert ownership_conflict(mine, ME, HERE, {}, False) is None
    assert "belongs to alecton Deployment team-b/web-staging" in (
        ownership_conflict(theirs, ME, HERE, {}, True) or ""
    )
    adopt = {"alecton.dev/adopt": "true"}
    assert "--allow-adopt" in (ownership_conflict(hand, ME, HERE, adopt, False) or "")
    assert ownership_conflict(hand, ME, HERE, adopt, True) is None
    # Adoption never takes another alecton Deployment's release.
    assert ownership_conflict(theirs, ME, HERE, adopt, True) is not None


def test_slots_bound_a_namespace_and_a_dead_cluster_and_forget_idle_keys() -> None:
    slots = Slots(per_namespace=2)
    assert slots.try_acquire("a", "c1") is None and slots.try_acquire("a", "c2") is None
    assert "namespace a" in (slots.try_acquire("a", "c1") or "")
    assert slots.try_acquire("b", "c1") is None  # another tenant is not starved
    slots.unreachable.add("dead")
    assert slots.try_acquire("c", "dead") is None
    assert "unreachable" in (slots.try_acquire("d", "dead") or "")
    for namespace, cluster in (("a", "c1"), ("a", "c2"), ("b", "c1"), ("c", "dead")):
        slots.release(namespace, cluster)
    assert slots.tracked == 0


def test_a_move_is_a_different_place_and_legacy_status_matches_by_name() -> None:
    assert not HERE.same_place(ReleaseLocation("b", "context:b", "other", "web-staging"))
    assert not HERE.same_place(ReleaseLocation("b", "server:https://x", "web", "web-staging"))
    assert HERE.same_place(ReleaseLocation("b", "", "web", "web-staging"))
