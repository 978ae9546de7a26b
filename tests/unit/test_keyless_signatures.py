"""Keyless cosign signatures checked without cosign or Sigstore services: a Fulcio-like CA
(root and intermediate, alecton.local.pki) issues short-lived code-signing certificates,
layers carry them as cosign writes them, and the verdict says which identity signed, or
why not (another identity, another issuer, another CA, expired, another key)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import time
from dataclasses import replace

import pytest
from alecton.api.identities import MAX_FIELD_CHARS, Identity, check_subject_pattern, parse_identities
from alecton.api.models import InvalidResourceError
from alecton.local import pki
from alecton.reconcile.keyless import (
    CERTIFICATE_ANNOTATION,
    CHAIN_ANNOTATION,
    ROOTS_KEY,
    CertificateRefusal,
    CertifiedSigner,
    Keyless,
    certificate_issuer,
    certificate_subjects,
    certified_signer,
    parse_roots,
)
from alecton.reconcile.signatures import (
    SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING_MEDIA_TYPE,
    Fetched,
    Trust,
    Verdict,
    VerificationPolicyError,
    parse_trust,
    signature_layers,
    verify,
)
from alecton.registry.signatures import ImageVerifier
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.unit.test_image_signatures import DIGEST, IMAGE, OTHER, application, payload, pem

ISSUER = "https://token.actions.example"
SIGNER = "ci@team.example"
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(autouse=True)
def _checked_now() -> None:
    """The time of each check is the test's own: certificates are issued a minute before the
    test runs, and the whole suite runs for most of an hour after this module is imported."""
    global NOW
    NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def fulcio() -> pki.CertificateAuthority:
    """An intermediate under a root, as Fulcio issues from (the root goes in the Secret)."""
    return pki.CertificateAuthority("fulcio-intermediate", parent=pki.CertificateAuthority("fulcio-root"))


def root_pem(ca: pki.CertificateAuthority) -> bytes:
    return x509.load_pem_x509_certificates(ca.chain_pem)[-1].public_bytes(serialization.Encoding.PEM)


def keyless(ca: pki.CertificateAuthority, *identities: Identity) -> Keyless:
    return Keyless(
        parse_roots("cosign", {ROOTS_KEY: root_pem(ca)}), identities or (Identity(ISSUER, SIGNER),)
    )


def signed_layer(pair: pki.KeyPair, chain: bytes, body: bytes | None = None) -> list[Fetched]:
    """One layer signed with the certificate's key, carrying the certificate and chain."""
    body = body or payload()
    private = serialization.load_pem_private_key(pair.key_pem, None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    signature = private.sign(body, ec.ECDSA(hashes.SHA256()))
    layer = {
        "mediaType": SIMPLE_SIGNING_MEDIA_TYPE,
        "size": len(body),
        "digest": "sha256:" + hashlib.sha256(body).hexdigest(),
        "annotations": {
            SIGNATURE_ANNOTATION: base64.b64encode(signature).decode(),
            CERTIFICATE_ANNOTATION: pair.cert_pem.decode(),
            CHAIN_ANNOTATION: chain.decode(),
        },
    }
    manifest = json.dumps({"schemaVersion": 2, "layers": [layer]}).encode()
    return [(found, body) for found in signature_layers(manifest)]


def test_a_certificate_of_the_policys_ca_naming_an_accepted_identity_verifies(
    fulcio: pki.CertificateAuthority,
) -> None:
    pair = fulcio.code_signing(SIGNER, ISSUER)
    verdict = verify(
        IMAGE, DIGEST, (), signed_layer(pair, fulcio.chain_pem), keyless=keyless(fulcio), now=NOW
    )
    assert verdict.verified, verdict.message
    assert f"is signed by {SIGNER} from {ISSUER} (keyless" in verdict.message
    assert "no transparency log checked" in verdict.message
    cert = x509.load_pem_x509_certificate(pair.cert_pem)
    assert verdict.valid_until == cert.not_valid_after_utc  # the cache holds it no longer


def test_a_uri_identity_matches_by_pattern_and_the_issuer_is_read_from_fulcios_extension(
    fulcio: pki.CertificateAuthority,
) -> None:
    workflow = "https://git.example/team/web/.github/workflows/release.yaml@refs/heads/main"
    pair = fulcio.code_signing(workflow, ISSUER)
    cert = x509.load_pem_x509_certificate(pair.cert_pem)
    assert certificate_issuer(cert) == ISSUER and certificate_subjects(cert) == (workflow,)
    pattern = Identity(ISSUER, subject_pattern=r"https://git\.example/team/[^/]+/\.github/workflows/.*")
    judged = certified_signer(
        pair.cert_pem.decode(), fulcio.chain_pem.decode(), keyless(fulcio, pattern), NOW
    )
    assert isinstance(judged, CertifiedSigner) and judged.subject == workflow, judged
    # Anchored: a pattern matching a part of the subject is not enough.
    partial = Identity(ISSUER, subject_pattern=r"https://git\.example/team")
    refused = certified_signer(
        pair.cert_pem.decode(), fulcio.chain_pem.decode(), keyless(fulcio, partial), NOW
    )
    assert isinstance(refused, CertificateRefusal) and refused.kind == "identity", refused


def refusal(fulcio: pki.CertificateAuthority, pair: pki.KeyPair, chain: bytes, policy: Keyless) -> Verdict:
    verdict = verify(IMAGE, DIGEST, (), signed_layer(pair, chain), keyless=policy, now=NOW)
    assert not verdict.verified, verdict.message
    assert DIGEST in verdict.message and "keyless signature at tag" in verdict.message, verdict.message
    return verdict


def test_another_identity_or_another_issuer_is_refused_naming_both(fulcio: pki.CertificateAuthority) -> None:
    other_signer = refusal(
        fulcio, fulcio.code_signing("intruder@else.example", ISSUER), fulcio.chain_pem, keyless(fulcio)
    )
    assert (
        f"names intruder@else.example from issuer {ISSUER}, not an identity of spec.verify.identities "
        f"({SIGNER} from {ISSUER})" in other_signer.message
    )
    other_issuer = refusal(
        fulcio, fulcio.code_signing(SIGNER, "https://evil.example"), fulcio.chain_pem, keyless(fulcio)
    )
    assert f"names {SIGNER} from issuer https://evil.example" in other_issuer.message


def test_a_certificate_of_another_ca_is_refused_even_with_its_own_chain(
    fulcio: pki.CertificateAuthority,
) -> None:
    stranger = pki.CertificateAuthority("fulcio-intermediate", parent=pki.CertificateAuthority("fulcio-root"))
    verdict = refusal(fulcio, stranger.code_signing(SIGNER, ISSUER), stranger.chain_pem, keyless(fulcio))
    assert f"does not chain to a root of {ROOTS_KEY}" in verdict.message
    # Without the intermediate the layer should carry, nothing chains either.
    missing = refusal(fulcio, fulcio.code_signing(SIGNER, ISSUER), b"", keyless(fulcio))
    assert f"does not chain to a root of {ROOTS_KEY}" in missing.message


def test_an_expired_or_not_yet_valid_certificate_is_refused(fulcio: pki.CertificateAuthority) -> None:
    expired = fulcio.code_signing(SIGNER, ISSUER, NOW - dt.timedelta(hours=2), dt.timedelta(minutes=10))
    verdict = refusal(fulcio, expired, fulcio.chain_pem, keyless(fulcio))
    assert (
        "expired at" in verdict.message and "validity is checked at the time of the check" in verdict.message
    )
    early = fulcio.code_signing(SIGNER, ISSUER, NOW + dt.timedelta(hours=1))
    assert "is not valid before" in refusal(fulcio, early, fulcio.chain_pem, keyless(fulcio)).message


def test_a_certificate_not_for_code_signing_is_refused(fulcio: pki.CertificateAuthority) -> None:
    serving = fulcio.serving("web")  # a TLS certificate of the same CA: no codeSigning EKU
    judged = certified_signer(serving.cert_pem.decode(), fulcio.chain_pem.decode(), keyless(fulcio), NOW)
    assert isinstance(judged, CertificateRefusal) and judged.kind == "untrusted", judged


def test_a_valid_certificate_over_a_signature_of_another_key_is_another_keys(
    fulcio: pki.CertificateAuthority,
) -> None:
    """Someone copies a real signer's certificate into a layer signed with their own key."""
    real, theirs = fulcio.code_signing(SIGNER, ISSUER), fulcio.code_signing("x@else.example", ISSUER)
    stolen = replace(theirs, cert_pem=real.cert_pem)
    verdict = verify(
        IMAGE, DIGEST, (), signed_layer(stolen, fulcio.chain_pem), keyless=keyless(fulcio), now=NOW
    )
    assert not verdict.verified and "is signed by another key" in verdict.message, verdict.message
    assert f"{SIGNER} from {ISSUER}" in verdict.message  # what the policy accepts


def test_a_keyless_signature_of_another_digest_is_refused(fulcio: pki.CertificateAuthority) -> None:
    pair = fulcio.code_signing(SIGNER, ISSUER)
    layers = signed_layer(pair, fulcio.chain_pem, payload(OTHER))
    verdict = verify(IMAGE, DIGEST, (), layers, keyless=keyless(fulcio), now=NOW)
    assert not verdict.verified and f"a signature for another digest ({OTHER})" in verdict.message


def test_without_identities_a_certificate_is_not_trusted(fulcio: pki.CertificateAuthority) -> None:
    """The key path is unchanged: a keyless layer verifies with no `*.pub` key."""
    layers = signed_layer(fulcio.code_signing(SIGNER, ISSUER), fulcio.chain_pem)
    own = ec.generate_private_key(ec.SECP256R1())
    trust = parse_trust("cosign", {"cosign.pub": pem(own)}, ())
    verdict = verify(IMAGE, DIGEST, trust.keys, layers, keyless=trust.keyless, now=NOW)
    assert not verdict.verified and "is signed by another key" in verdict.message


def test_the_secret_needs_roots_with_identities_and_keys_become_optional(
    fulcio: pki.CertificateAuthority,
) -> None:
    identities = (Identity(ISSUER, SIGNER),)
    with pytest.raises(VerificationPolicyError, match=f"has no {ROOTS_KEY}"):
        parse_trust("cosign", {"cosign.pub": b"x"}, identities)
    with pytest.raises(VerificationPolicyError, match="is not PEM certificates"):
        parse_trust("cosign", {ROOTS_KEY: b"not a certificate"}, identities)
    leaf = fulcio.code_signing(SIGNER, ISSUER).cert_pem
    with pytest.raises(VerificationPolicyError, match="is not a CA certificate"):
        parse_trust("cosign", {ROOTS_KEY: leaf}, identities)
    trust = parse_trust("cosign", {ROOTS_KEY: root_pem(fulcio)}, identities)
    assert trust.keys == () and trust.keyless is not None
    other = parse_trust("cosign", {ROOTS_KEY: root_pem(fulcio)}, (Identity(ISSUER, "other@team.example"),))
    assert trust.fingerprint != other.fingerprint  # a cached verdict is per identities too


def test_identities_parse_with_errors_that_say_what_to_fix() -> None:
    parsed = parse_identities([{"issuer": ISSUER, "subject": SIGNER}], "spec.verify.identities")
    assert parsed == (Identity(ISSUER, SIGNER),)
    for raw, words in [
        ([{"subject": SIGNER}], "issuer is required"),
        ([{"issuer": ISSUER}], "exactly one of subject and subjectRegExp"),
        ([{"issuer": ISSUER, "subject": SIGNER, "subjectRegExp": ".*"}], "exactly one"),
        ([{"issuer": ISSUER, "email": SIGNER}], "unknown key 'email'"),
        ([{"issuer": ISSUER, "subjectRegExp": "(a)\\1@x"}], "a backreference"),
        ("x", "must be a list"),
    ]:
        with pytest.raises(ValueError, match=words):
            parse_identities(raw, "spec.verify.identities")
    with pytest.raises(InvalidResourceError, match=r"spec.verify.identities\[0\].subjectRegExp"):
        application({"provider": "cosign", "secretRef": {"name": "c"}, "identities": [
            {"issuer": ISSUER, "subjectRegExp": "(?=a)a"}]})  # fmt: skip
    parsed_app = application({"provider": "cosign", "secretRef": {"name": "c"}, "identities": [
        {"issuer": ISSUER, "subject": SIGNER}]})  # fmt: skip
    assert parsed_app.verify is not None and parsed_app.verify.identities == (Identity(ISSUER, SIGNER),)


# Shapes that make a backtracking matcher (Python's `re`) try every split of a subject that
# almost matches: exponential for nested repeats, a power of the subject's length for choice
# points in a row (five a{0,60} took 0.6 s, forty a? or thirty-two (?:a|aa) hung: R27B-2).
BACKTRACKING_BOMBS = [
    "(a+)+$",
    "(a|aa)*$",
    "(.*a){2}",
    r"(\w+\s?)*$",
    "a*b*c*d*",
    "(?:x+)+",
    "a{0,60}a{0,60}a{0,60}a{0,60}a{0,60}b",
    "a?" * 40 + "b",
    "a{0,2}" * 30 + "[bc]",
    "(?:a|aa)" * 32 + "b",
    r".*a.*b.*c.*d.*e.*f",
]


@pytest.mark.parametrize("pattern", BACKTRACKING_BOMBS)
def test_patterns_that_explode_in_a_backtracking_matcher_match_in_linear_time(pattern: str) -> None:
    """subjectRegExp is matched by RE2, as cosign's Go regexp matches it: no pattern can make
    matching take more than linear time, so no shape needs refusing."""
    identity = Identity(ISSUER, subject_pattern=pattern)
    check_subject_pattern(identity.subject_pattern)
    started = time.monotonic()
    for subject in ("a" * MAX_FIELD_CHARS, "ab" * (MAX_FIELD_CHARS // 2), "x" * MAX_FIELD_CHARS):
        identity.matches(ISSUER, (subject,))
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("(a)\\1", "a backreference"),
        ("(?=x)x", "a lookahead"),
        ("(?<!x)y", "a negative lookbehind"),
        ("a++", "a possessive quantifier"),
        ("(a", "not a valid regular expression"),
    ],
)
def test_what_re2_cannot_match_is_refused_naming_the_construct(pattern: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_identities([{"issuer": ISSUER, "subjectRegExp": pattern}], "spec.verify.identities")


def test_a_workflow_pattern_with_several_alternatives_is_accepted_and_matches_whole_subjects() -> None:
    # A realistic CI identity: more choice points than the old limit of three allowed.
    pattern = (
        r"https://github\.com/(?:team|ops|platform)/(?:web|api)/\.github/workflows/"
        r"(?:build|release)\.ya?ml@refs/(?:heads/main|tags/v.+)"
    )
    identity = parse_identities([{"issuer": ISSUER, "subjectRegExp": pattern}], "spec.verify.identities")[0]
    ok = "https://github.com/ops/api/.github/workflows/release.yml@refs/tags/v1.2.3"
    assert identity.matches(ISSUER, (ok,))
    assert not identity.matches(ISSUER, ("x" + ok,))  # the whole subject, not a part of it
    assert not identity.matches("https://other.issuer", (ok,))


def test_a_keyless_verdict_is_cached_no_longer_than_the_certificate() -> None:
    verifier = ImageVerifier()
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)
    verifier._remember(("r", DIGEST, "f"), Verdict(True, "ok", valid_until=soon))
    expires = verifier._cache[("r", DIGEST, "f")][1] - time.monotonic()
    assert 0 < expires <= 60
    assert Trust(()).fingerprint == ""


def test_identity_lists_that_differ_never_share_a_cached_verdict() -> None:
    # R27B-4: the fields were joined with "|" and ";" unescaped, so this tenant's list of two
    # identities (the second one its own) and a list of one whose subject spells both out had
    # one fingerprint, and one cached verdict.
    two = Keyless((), (Identity(ISSUER, SIGNER), Identity("https://oidc.evil", "me@evil")))
    one = Keyless((), (Identity(ISSUER, f"{SIGNER}|;https://oidc.evil|me@evil"),))
    assert two.fingerprint != one.fingerprint

    def fingerprint(*identities: Identity) -> str:
        return Keyless((), identities).fingerprint

    assert fingerprint(Identity(f"{ISSUER}|{SIGNER}", "x")) != fingerprint(Identity(ISSUER, f"{SIGNER}|x"))
    assert fingerprint(Identity(ISSUER, SIGNER)) != fingerprint(Identity(ISSUER, "", SIGNER))
    assert fingerprint(*two.identities) == two.fingerprint


def test_the_issuer_is_read_from_either_fulcio_extension_and_two_that_differ_match_nothing(
    fulcio: pki.CertificateAuthority,
) -> None:
    cert = x509.load_pem_x509_certificate(fulcio.code_signing(SIGNER, ISSUER).cert_pem)
    current = cert.extensions.get_extension_for_oid(pki.FULCIO_ISSUER_OID)
    legacy = cert.extensions.get_extension_for_oid(pki.FULCIO_LEGACY_ISSUER_OID)
    assert certificate_issuer(cert) == ISSUER

    def only(*extensions: x509.Extension[x509.ExtensionType]) -> x509.Certificate:
        private = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(x509.Name([]))
            .public_key(private.public_key())
            .serial_number(1)
            .not_valid_before(NOW)
            .not_valid_after(NOW + dt.timedelta(minutes=10))
        )
        for extension in extensions:
            builder = builder.add_extension(extension.value, extension.critical)
        return builder.sign(private, hashes.SHA256())

    assert certificate_issuer(only(legacy)) == ISSUER
    assert certificate_issuer(only(current)) == ISSUER
    other = x509.UnrecognizedExtension(pki.FULCIO_LEGACY_ISSUER_OID, b"https://evil.example")
    both = only(current, x509.Extension(pki.FULCIO_LEGACY_ISSUER_OID, False, other))
    assert certificate_issuer(both) != ISSUER and "https://evil.example" in certificate_issuer(both)
    assert certificate_issuer(only()) == ""


def test_an_unreadable_certificate_is_a_refusal_and_long_names_stay_bounded(
    fulcio: pki.CertificateAuthority,
) -> None:
    judged = certified_signer(
        "-----BEGIN CERTIFICATE-----\nnot\n-----END CERTIFICATE-----\n", "", keyless(fulcio), NOW
    )
    assert isinstance(judged, CertificateRefusal) and judged.kind == "malformed", judged
    long_name = "https://x.example/" + "a" * 2000
    judged = certified_signer(
        fulcio.code_signing(long_name, ISSUER).cert_pem.decode(),
        fulcio.chain_pem.decode(),
        keyless(fulcio),
        NOW,
    )
    assert (
        isinstance(judged, CertificateRefusal) and judged.kind == "identity" and len(judged.message) < 700
    ), judged
