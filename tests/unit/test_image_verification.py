"""The Image's own word on its signature (status.verifications and the Verified condition):
the pure decision of what to write, and the writer that writes only on change, with the
resourceVersion it read."""

from __future__ import annotations

from typing import Any

from alecton.api.models import Image, VerifyPolicy
from alecton.handlers.images import ImageVerifications
from alecton.reconcile.image_verification import (
    MAX_ENTRIES,
    judgement,
    judgements,
    verification_status,
)
from alecton.reconcile.signatures import Verdict
from alecton.web.views import image_message

from tests.unit.fakes import NS, FakeKube, run

NOW, LATER = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"
COSIGN, THEIRS = VerifyPolicy("cosign"), VerifyPolicy("theirs")
SIGNED = Verdict(True, "image r/web@sha256:aa is signed by key cosign.pub (SHA256:0123456789abcdef)")
OTHER_KEY = Verdict(False, "image r/web@sha256:aa is signed by another key: ...")
NO_SECRET = Verdict(False, "Secret 'cosign' (spec.verify.secretRef) does not exist: ...", waiting=True)
UNREADABLE = Verdict(False, "the signatures of r/web could not be read: ...", cacheable=False, judged=False)


def condition(status: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == "Verified")


def test_each_verdict_is_an_entry_with_its_reason_and_the_secret_by_name() -> None:
    good = judgement("web", COSIGN, SIGNED)
    assert good is not None and good.as_dict() == {
        "application": "web",
        "secret": "cosign",
        "verified": True,
        "reason": "Verified",
        "message": SIGNED.message,
    }
    refused = judgement("web", COSIGN, OTHER_KEY)
    assert refused is not None and (refused.verified, refused.reason) == (False, "ImageVerificationFailed")
    waiting = judgement("web", COSIGN, NO_SECRET)
    assert waiting is not None and (waiting.verified, waiting.reason) == (None, "VerificationSecretNotFound")
    assert "verified" not in waiting.as_dict()  # absent, not null: a merge patch drops nulls
    # A registry that could not be asked says nothing about the Image: it keeps its last verdict.
    assert judgement("web", COSIGN, UNREADABLE) is None


def test_the_condition_follows_the_verdicts_of_every_application() -> None:
    good = judgement("web", COSIGN, SIGNED)
    assert good is not None
    first = verification_status({}, good, 1, NOW)
    assert first is not None
    assert condition(first) == {
        "type": "Verified",
        "status": "True",
        "reason": "Verified",
        "message": f"Application web (Secret 'cosign'): {SIGNED.message}",
        "observedGeneration": 1,
        "lastTransitionTime": NOW,
    }
    # The same verdict again: nothing to write.
    assert verification_status(first, good, 1, LATER) is None
    # Another Application with another key refuses it: False, naming only the one that refuses.
    refused = judgement("api", THEIRS, OTHER_KEY)
    assert refused is not None
    second = verification_status(first, refused, 1, LATER)
    assert second is not None
    assert [e["application"] for e in second["verifications"]] == ["api", "web"]
    assert condition(second)["status"] == "False"
    assert condition(second)["reason"] == "ImageVerificationFailed"
    assert condition(second)["message"] == f"Application api (Secret 'theirs'): {OTHER_KEY.message}"
    assert condition(second)["lastTransitionTime"] == LATER
    # Unknown only while none refuses.
    waiting = judgement("api", THEIRS, NO_SECRET)
    assert waiting is not None
    third = verification_status(second, waiting, 1, LATER)
    assert third is not None and condition(third)["status"] == "Unknown"
    assert condition(third)["reason"] == "VerificationSecretNotFound"
    assert [e.application for e in judgements(third)] == ["api", "web"]


def test_a_missing_or_stale_condition_is_written_again() -> None:
    good = judgement("web", COSIGN, SIGNED)
    assert good is not None
    written = verification_status({}, good, 1, NOW)
    assert written is not None
    assert verification_status({"verifications": written["verifications"]}, good, 1, NOW) is not None
    assert verification_status(written, good, 2, NOW) is not None  # written for another generation


def test_entries_are_bounded_and_the_new_verdict_kept() -> None:
    status: dict[str, Any] = {}
    for n in range(MAX_ENTRIES + 3):
        judged = judgement(f"app-{n:03}", COSIGN, OTHER_KEY)
        assert judged is not None
        status = verification_status(status, judged, 1, NOW) or status
        assert judged in judgements(status)
    assert len(status["verifications"]) == MAX_ENTRIES


def image_body(status: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "alecton.dev/v1alpha1",
        "kind": "Image",
        "metadata": {
            "name": "web-1.0.0",
            "namespace": NS,
            "generation": 1,
            "resourceVersion": "7",
            "creationTimestamp": NOW,
        },
        "spec": {"name": "web", "version": "1.0.0", "image": "r/web:1.0.0", "digest": "sha256:" + "a" * 64},
    }
    if status:
        body["status"] = status
    return body


def writes(kube: FakeKube) -> list[tuple[Any, ...]]:
    return [c for c in kube.calls if c[0] == "patch_status"]


def test_the_writer_writes_on_change_only() -> None:
    kube = FakeKube()
    kube.add("Image", image_body())
    image = Image.parse(image_body())
    writer = ImageVerifications(kube)  # type: ignore[arg-type]
    run(writer.record(image, "web", COSIGN, SIGNED))
    stored = kube.object("Image", NS, "web-1.0.0")
    assert stored is not None and condition(stored["status"])["status"] == "True"
    assert len(writes(kube)) == 1
    # Every later pass with the same verdict: no API call at all.
    calls = len(kube.calls)
    run(writer.record(image, "web", COSIGN, SIGNED))
    run(writer.record(image, "web", COSIGN, UNREADABLE))
    assert len(kube.calls) == calls
    # A new verdict is written.
    run(writer.record(image, "web", COSIGN, OTHER_KEY))
    stored = kube.object("Image", NS, "web-1.0.0")
    assert stored is not None and condition(stored["status"])["status"] == "False"
    assert len(writes(kube)) == 2


def test_a_process_that_finds_its_verdict_written_does_not_write_it_again() -> None:
    """Another shard (or this process before a restart) wrote the same verdict."""
    kube = FakeKube()
    good = judgement("web", COSIGN, SIGNED)
    assert good is not None
    kube.add("Image", image_body(verification_status({}, good, 1, NOW)))
    writer = ImageVerifications(kube)  # type: ignore[arg-type]
    run(writer.record(Image.parse(image_body()), "web", COSIGN, SIGNED))
    run(writer.record(Image.parse(image_body()), "web", COSIGN, SIGNED))
    assert writes(kube) == [] and [c[0] for c in kube.calls] == ["get"]


def test_a_conflict_reads_again_and_keeps_the_other_writers_entry() -> None:
    """Two writers (shards) judge one Image for two Applications: the later write is on the
    resourceVersion it read, and a conflict reads again instead of dropping the other entry."""
    kube = FakeKube()
    kube.add("Image", image_body())
    image = Image.parse(image_body())
    ours, theirs = ImageVerifications(kube), ImageVerifications(kube)  # type: ignore[arg-type]
    kube.fail("patch_status", 409, "Conflict")  # the other writer wrote in between
    run(theirs.record(image, "api", THEIRS, OTHER_KEY))
    run(ours.record(image, "web", COSIGN, SIGNED))
    run(theirs.record(image, "api", THEIRS, OTHER_KEY))
    stored = kube.object("Image", NS, "web-1.0.0")
    assert stored is not None
    assert [(e.application, e.verified) for e in judgements(stored["status"])] == [
        ("api", False),
        ("web", True),
    ]


def test_a_deleted_or_replaced_image_is_not_written() -> None:
    kube = FakeKube()
    writer = ImageVerifications(kube)  # type: ignore[arg-type]
    run(writer.record(Image.parse(image_body()), "web", COSIGN, SIGNED))  # gone: 404, nothing said
    replaced = image_body()
    replaced["spec"]["image"] = "r/web:other"
    kube.add("Image", replaced)
    run(writer.record(Image.parse(image_body()), "web", COSIGN, SIGNED))
    assert writes(kube) == []


def test_list_images_shows_the_verified_condition() -> None:
    good = judgement("web", COSIGN, SIGNED)
    assert good is not None
    body = image_body(verification_status({}, good, 1, NOW))
    assert image_message(body)["verified"] == {
        "status": "True",
        "reason": "Verified",
        "message": f"Application web (Secret 'cosign'): {SIGNED.message}",
    }
    assert "verified" not in image_message(image_body())  # no policy judged it


def test_a_flood_of_unjudged_entries_never_pushes_a_refusal_out() -> None:
    """Red team: a deployer makes MAX_ENTRIES Applications whose policy names a missing Secret
    (each an Unknown entry) to push the team's refusal out of the bound: Verified would go
    False -> Unknown. Refusals are kept first."""
    kube = FakeKube()
    kube.add("Image", image_body())
    writer = ImageVerifications(kube)  # type: ignore[arg-type]
    image = Image.parse(image_body())
    run(writer.record(image, "web", COSIGN, OTHER_KEY))
    for n in range(MAX_ENTRIES):
        run(writer.record(image, f"a{n:03}", VerifyPolicy("nope"), NO_SECRET))
    status = kube.object("Image", NS, "web-1.0.0")["status"]
    assert "web" in [e.application for e in judgements(status)]
    assert condition(status)["status"] == "False"


def test_an_image_deleted_and_created_again_gets_its_refusal_written_again() -> None:
    """Red team: `kubectl delete image` then apply it again (same spec, empty status): the
    writer's memory of what it wrote is per Image object, not per name."""
    kube = FakeKube()
    kube.add("Image", image_body())
    writer = ImageVerifications(kube)  # type: ignore[arg-type]
    run(writer.record(Image.parse(image_body()), "web", COSIGN, OTHER_KEY))
    again = image_body()
    again["metadata"]["creationTimestamp"] = "2026-01-01T00:01:00Z"
    kube.add("Image", again)  # replaces the stored object: no status
    run(writer.record(Image.parse(again), "web", COSIGN, OTHER_KEY))
    assert condition(kube.object("Image", NS, "web-1.0.0")["status"])["status"] == "False"
