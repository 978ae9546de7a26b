"""cosign signatures checked without cosign or a cluster: keys made here, signature
manifests and simple-signing payloads built as cosign builds them, the verdict and its
words, the policy's Secret, and the plan's refusal."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from typing import Any

import pytest
from alecton.api.models import Application, Image, InvalidResourceError, ObjectRef
from alecton.reconcile.image_policy import (
    ImageDigestMissingError,
    ImageVerificationFailedError,
    VerificationSecretMissingError,
    checked_image,
)
from alecton.reconcile.signatures import (
    SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING_MEDIA_TYPE,
    Fetched,
    PublicKey,
    Verdict,
    VerificationPolicyError,
    keys_fingerprint,
    parse_public_keys,
    signature_layers,
    signature_tag,
    signed_digest,
    verify,
)
from alecton.registry.signatures import ImageVerifier
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32
IMAGE = "registry.example:5000/team/web:1.0.0"
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def pem(private: PrivateKey) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def payload(digest: str = DIGEST) -> bytes:
    """cosign's simple-signing payload, byte for byte as it writes one."""
    return json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": IMAGE.rsplit(":", 1)[0]},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        },
        separators=(",", ":"),
    ).encode()


def sign(private: PrivateKey, data: bytes) -> bytes:
    if isinstance(private, ec.EllipticCurvePrivateKey):
        return private.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(private, rsa.RSAPrivateKey):
        return private.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return private.sign(data)


def manifest(*signed: tuple[bytes, bytes]) -> bytes:
    """A signature manifest as cosign pushes it, one layer per (payload, signature)."""
    layers = [
        {
            "mediaType": SIMPLE_SIGNING_MEDIA_TYPE,
            "size": len(body),
            "digest": "sha256:" + hashlib.sha256(body).hexdigest(),
            "annotations": {SIGNATURE_ANNOTATION: base64.b64encode(signature).decode()},
        }
        for body, signature in signed
    ]
    config = {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2, "digest": DIGEST}
    return json.dumps({"schemaVersion": 2, "config": config, "layers": layers}).encode()


def fetched(*signed: tuple[bytes, bytes]) -> list[Fetched]:
    layers = signature_layers(manifest(*signed))
    return [(layer, body) for layer, (body, _signature) in zip(layers, signed, strict=True)]


def keys(*privates: PrivateKey) -> tuple[PublicKey, ...]:
    return parse_public_keys("cosign", {f"key{i}.pub": pem(p) for i, p in enumerate(privates)})


@pytest.mark.parametrize(
    "private",
    [
        ec.generate_private_key(ec.SECP256R1()),
        ed25519.Ed25519PrivateKey.generate(),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
    ],
    ids=["ecdsa-p256", "ed25519", "rsa"],
)
def test_a_signature_by_a_policy_key_over_this_digest_verifies(private: PrivateKey) -> None:
    body = payload()
    verdict = verify(IMAGE, DIGEST, keys(private), fetched((body, sign(private, body))))
    assert verdict.verified, verdict.message
    assert "signed by key key0.pub" in verdict.message


def test_one_of_several_keys_and_one_of_several_signatures_is_enough() -> None:
    ours, theirs = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    body = payload()
    signed = fetched((body, sign(theirs, body)), (body, sign(ours, body)))
    assert verify(IMAGE, DIGEST, keys(ours), signed).verified
    assert verify(IMAGE, DIGEST, keys(theirs, ours), fetched((body, sign(ours, body)))).verified


def test_no_signature_another_key_another_digest_and_an_altered_payload_are_refused() -> None:
    ours, theirs = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    policy = keys(ours)
    tag = "sha256-" + "ab" * 32 + ".sig"

    unsigned = verify(IMAGE, DIGEST, policy, None)
    assert not unsigned.verified and "has no cosign signature" in unsigned.message and tag in unsigned.message

    body = payload()
    other_key = verify(IMAGE, DIGEST, policy, fetched((body, sign(theirs, body))))
    assert not other_key.verified and "signed by another key" in other_key.message
    assert policy[0].fingerprint[:16] in other_key.message

    # A valid signature of another image's digest, copied to this digest's tag.
    copied = payload(OTHER)
    moved = verify(IMAGE, DIGEST, policy, fetched((copied, sign(ours, copied))))
    assert not moved.verified and f"signature for another digest ({OTHER})" in moved.message

    # The registry serves a payload that does not hash to the layer's digest.
    layer, _ = fetched((body, sign(ours, body)))[0]
    altered = verify(IMAGE, DIGEST, policy, [(layer, body.replace(b"ab", b"ef", 1))])
    assert not altered.verified and "(payload missing, altered)" in altered.message

    # A signature over other bytes than the payload (a tampered layer annotation).
    tampered = verify(IMAGE, DIGEST, policy, fetched((body, sign(ours, body + b" "))))
    assert not tampered.verified and "signed by another key" in tampered.message


def test_the_signature_manifest_is_read_within_bounds() -> None:
    assert signature_tag(DIGEST) == "sha256-" + "ab" * 32 + ".sig"
    with pytest.raises(ValueError, match="not a sha256 digest"):
        signature_tag("sha256:short")
    with pytest.raises(ValueError, match="not JSON"):
        signature_layers(b"<html>")
    with pytest.raises(ValueError, match="no layers"):
        signature_layers(b"{}")
    odd: dict[str, Any] = json.loads(manifest((payload(), b"sig")))
    odd["layers"].append({"mediaType": "application/octet-stream", "digest": DIGEST, "size": 3})
    odd["layers"].append({**odd["layers"][0], "size": 10**9})  # larger than any payload
    odd["layers"].append({**odd["layers"][0], "annotations": {SIGNATURE_ANNOTATION: "not base64!"}})
    assert len(signature_layers(json.dumps(odd).encode())) == 1
    assert signed_digest(payload()) == DIGEST
    assert signed_digest(b'{"critical": {"type": "atomic container signature"}}') == ""


def test_the_policy_secret_holds_public_keys_only() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    both = parse_public_keys("cosign", {"b.pub": pem(private), "a.pub": pem(private), "username": b"x"})
    assert [k.name for k in both] == ["a.pub", "b.pub"]
    assert keys_fingerprint(both) == keys_fingerprint(reversed(both))
    for data, words in [
        ({"username": b"robot"}, "has no \\*.pub key"),
        (
            {"cosign.pub": b"-----BEGIN PUBLIC KEY-----\nxx\n-----END PUBLIC KEY-----\n"},
            "not a PEM public key",
        ),
        (
            {
                "cosign.pub": private.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            },
            "not a PEM public key",
        ),
    ]:
        with pytest.raises(VerificationPolicyError, match=words):
            parse_public_keys("cosign", data)


def application(verify_spec: Any = None, pin: bool = False) -> Application:
    spec: dict[str, Any] = {"chart": "webapp", "image": "web", "pinImageDigest": pin}
    if verify_spec is not None:
        spec["verify"] = verify_spec
    return Application.parse({"metadata": {"name": "web", "namespace": "team"}, "spec": spec})


def image(digest: str = DIGEST) -> Image:
    return Image(ObjectRef("team", "web-1"), "web", "1.0.0", IMAGE, "t", digest=digest)


def test_verify_implies_pinning_and_refuses_what_fails() -> None:
    policy = {"provider": "cosign", "secretRef": {"name": "cosign"}}
    app = application(policy)
    assert app.verify is not None and app.verify.secret == "cosign"
    with pytest.raises(InvalidResourceError, match="provider cosign"):
        application({"provider": "notation", "secretRef": {"name": "x"}})

    good = Verdict(True, "signed")
    assert checked_image(app, image(), good) == f"{IMAGE}@{DIGEST}"
    assert checked_image(application(), image(), None) == IMAGE  # no policy: no verdict needed
    with pytest.raises(ImageDigestMissingError, match=r"spec\.verify checks signatures by digest"):
        checked_image(app, image(""), good)
    with pytest.raises(ImageVerificationFailedError, match=r"web-1.*has no cosign signature"):
        checked_image(app, image(), Verdict(False, "has no cosign signature"))
    with pytest.raises(ImageVerificationFailedError, match="was not checked"):
        checked_image(app, image(), None)
    with pytest.raises(VerificationSecretMissingError, match="does not exist"):
        checked_image(app, image(), Verdict(False, "Secret 'cosign' does not exist", waiting=True))


def test_the_plan_refuses_with_image_verification_failed() -> None:
    from alecton.api.models import Cluster, Deployment
    from alecton.reconcile.chart import ChartPolicy
    from alecton.reconcile.plan import Action, RecordedStatus, Resolved, ValuesSources, plan_release

    app = Application.parse(
        {
            "metadata": {"name": "web", "namespace": "team"},
            "spec": {
                "chart": "oci://registry.example:5000/charts/webapp",
                "image": "web",
                "verify": {"provider": "cosign", "secretRef": {"name": "cosign"}},
                "targets": [{"name": "staging", "cluster": "local", "namespace": "web"}],
            },
        }
    )
    target = app.targets[0]
    cluster = Cluster.parse({"metadata": {"name": "local", "namespace": "team"}, "spec": {"inCluster": True}})
    deployment = Deployment.parse(
        {
            "metadata": {
                "name": "web-staging",
                "namespace": "team",
                "finalizers": ["alecton.dev/helm-release"],
            },
            "spec": {"application": "web", "target": "staging", "version": "1.0.0"},
        }
    )
    resolved = Resolved(app, target, cluster, image())
    charts = ChartPolicy()
    refused = ValuesSources(image_verdict=Verdict(False, "image x is signed by another key"))
    plan = plan_release(deployment, RecordedStatus(), resolved, deployment.ref, charts, refused)
    assert (plan.action, plan.reason) == (Action.REFUSED, "ImageVerificationFailed")
    assert "signed by another key" in plan.message
    waiting = ValuesSources(image_verdict=Verdict(False, "Secret 'cosign' does not exist", waiting=True))
    plan = plan_release(deployment, RecordedStatus(), resolved, deployment.ref, charts, waiting)
    assert (plan.action, plan.reason) == (Action.WAIT, "VerificationSecretNotFound")
    verified = ValuesSources(image_verdict=Verdict(True, "signed"))
    plan = plan_release(deployment, RecordedStatus(), resolved, deployment.ref, charts, verified)
    assert plan.action is Action.UPGRADE and plan.desired is not None
    assert plan.desired.image == f"{IMAGE}@{DIGEST}"


def test_the_verifier_waits_for_its_secret_and_refuses_bad_keys_without_asking_the_registry() -> None:
    verifier = ImageVerifier()
    policy = application({"provider": "cosign", "secretRef": {"name": "cosign"}}).verify
    assert policy is not None
    missing = asyncio.run(verifier.verdict(image(), policy, None))
    assert missing.waiting and "Secret 'cosign' (spec.verify.secretRef) does not exist" in missing.message
    bad = asyncio.run(verifier.verdict(image(), policy, {"cosign.pub": b"nope"}))
    assert not bad.verified and "not a PEM public key" in bad.message
    assert verifier.fetches == 0


def test_a_verified_digest_is_not_fetched_again_and_a_refusal_is_asked_again_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from alecton.registry import signatures as fetching

    ours = ec.generate_private_key(ec.SECP256R1())
    body = payload()
    answers: dict[str, list[Fetched] | None] = {DIGEST: fetched((body, sign(ours, body))), OTHER: None}
    asked: list[str] = []

    def fake_fetch(reference: Any, login: Any) -> list[Fetched] | None:
        asked.append(reference.digest)
        return answers[reference.digest]

    monkeypatch.setattr(fetching, "fetch_signatures", fake_fetch)
    clock = [1000.0]
    monkeypatch.setattr(fetching.time, "monotonic", lambda: clock[0])
    verifier = ImageVerifier()
    policy = application({"provider": "cosign", "secretRef": {"name": "cosign"}}).verify
    assert policy is not None
    data = {"cosign.pub": pem(ours)}
    for _ in range(3):
        assert asyncio.run(verifier.verdict(image(DIGEST), policy, data)).verified
        assert not asyncio.run(verifier.verdict(image(OTHER), policy, data)).verified
    assert asked == [DIGEST, OTHER]
    clock[0] += fetching.REFUSED_TTL + 1  # the refusal expires; the verified digest stays
    asyncio.run(verifier.verdict(image(DIGEST), policy, data))
    asyncio.run(verifier.verdict(image(OTHER), policy, data))
    assert asked == [DIGEST, OTHER, OTHER]
    # Another key set is another question.
    other_keys = {"cosign.pub": pem(ours), "second.pub": pem(ec.generate_private_key(ec.SECP256R1()))}
    assert asyncio.run(verifier.verdict(image(DIGEST), policy, other_keys)).verified
    assert asked == [DIGEST, OTHER, OTHER, DIGEST]
