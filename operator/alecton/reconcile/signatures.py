"""cosign key-based image signatures, checked without cosign: pure.

cosign stores the signatures of the image with manifest digest `sha256:<hex>` as an OCI
image manifest at tag `sha256-<hex>.sig` of the same repository. Each layer is a "simple
signing" payload (JSON naming the signed manifest digest in
`critical.image.docker-manifest-digest`) and carries its signature, base64, in the layer
annotation `dev.cosignproject.cosign/signature`. The signature is over the payload bytes:
ECDSA with SHA-256, RSA PKCS#1 v1.5 with SHA-256, or Ed25519, as cosign makes them.

Here: the policy's public keys read from a Secret, the signature manifest parsed, each
payload checked against the Image's digest and each key (or, for keyless signatures, the
certificate the layer carries: reconcile.keyless), and the verdict with a message a person
can act on. The registry calls live in alecton.registry.signatures.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from alecton.api.identities import Identity
from alecton.reconcile.image_ref import DIGEST_RE
from alecton.reconcile.keyless import (
    CERTIFICATE_ANNOTATION,
    CHAIN_ANNOTATION,
    MAX_CERTIFICATE_CHARS,
    MAX_CHAIN_CHARS,
    CertificateRefusal,
    CertifiedSigner,
    Keyless,
    certified_signer,
    parse_roots,
    public_key_der,
)

SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_PAYLOAD_TYPE = "cosign container image signature"
# Bounds on what a registry (or whoever can push to it) makes the operator read and check.
MAX_SIGNATURE_LAYERS = 16
MAX_PAYLOAD_BYTES = 64 * 1024
MAX_SIGNATURE_CHARS = 8 * 1024
MAX_KEYS = 16
MAX_KEY_BYTES = 16 * 1024
PUBLIC_KEY_SUFFIX = ".pub"

PublicKeyObject = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


class VerificationPolicyError(ValueError):
    """The verify Secret cannot be used as it is (no key, a key that is not a public key)."""


class SignatureFormatError(ValueError):
    """What sits at the signature tag is not a cosign signature manifest."""


@dataclass(frozen=True)
class PublicKey:
    name: str  # the Secret's key, e.g. cosign.pub
    fingerprint: str  # sha256 of the key's DER SubjectPublicKeyInfo, hex
    key: PublicKeyObject = field(repr=False, compare=False, hash=False)

    @property
    def short(self) -> str:
        return f"{self.name} (SHA256:{self.fingerprint[:16]})"


def parse_public_keys(secret: str, data: dict[str, bytes], required: bool = True) -> tuple[PublicKey, ...]:
    """Every `*.pub` key of the Secret, as PEM public keys cosign can sign for (none is an
    error unless not `required`: keyless identities stand in for keys)."""
    names = sorted(name for name in data if name.endswith(PUBLIC_KEY_SUFFIX))
    if not names and not required:
        return ()
    if not names:
        raise VerificationPolicyError(
            f"Secret {secret!r} (spec.verify.secretRef) has no *.pub key: add the PEM public key "
            "of `cosign generate-key-pair` as cosign.pub"
        )
    if len(names) > MAX_KEYS:
        raise VerificationPolicyError(f"Secret {secret!r} has more than {MAX_KEYS} *.pub keys")
    keys = []
    for name in names:
        raw = data[name]
        if len(raw) > MAX_KEY_BYTES:
            raise VerificationPolicyError(f"Secret {secret!r} key {name!r} is over {MAX_KEY_BYTES} bytes")
        try:
            key = serialization.load_pem_public_key(raw)
        except (ValueError, TypeError):
            raise VerificationPolicyError(f"Secret {secret!r} key {name!r} is not a PEM public key") from None
        if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
            raise VerificationPolicyError(
                f"Secret {secret!r} key {name!r}: only ECDSA, RSA and Ed25519 keys sign cosign signatures"
            )
        der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        keys.append(PublicKey(name, hashlib.sha256(der).hexdigest(), key))
    return tuple(keys)


def keys_fingerprint(keys: Iterable[PublicKey]) -> str:
    """One string for a set of keys: with the image digest, the key of a cached verdict."""
    return ",".join(sorted(k.fingerprint for k in keys))


@dataclass(frozen=True)
class Trust:
    """Whom a policy trusts: the Secret's `*.pub` keys, and keyless signers (roots and
    identities) when spec.verify.identities is set. A signature by either is accepted."""

    keys: tuple[PublicKey, ...]
    keyless: Keyless | None = None

    @property
    def fingerprint(self) -> str:
        keyless = f" {self.keyless.fingerprint}" if self.keyless else ""
        return keys_fingerprint(self.keys) + keyless


def parse_trust(secret: str, data: dict[str, bytes], identities: tuple[Identity, ...]) -> Trust:
    """The policy's keys, and with identities the Secret's roots (`fulcio-root.pem`)."""
    if not identities:
        return Trust(parse_public_keys(secret, data))
    try:
        roots = parse_roots(secret, data)
    except ValueError as error:
        raise VerificationPolicyError(str(error)) from None
    return Trust(parse_public_keys(secret, data, required=False), Keyless(roots, identities))


def signature_tag(digest: str) -> str:
    """`sha256:<hex>` -> `sha256-<hex>.sig`, where cosign stores that manifest's signatures."""
    if not DIGEST_RE.match(digest):
        raise ValueError(f"{digest!r} is not a sha256 digest")
    return digest.replace(":", "-") + ".sig"


@dataclass(frozen=True)
class SignatureLayer:
    """One signed payload as the signature manifest describes it (the payload is its blob)."""

    digest: str
    size: int
    signature: bytes = field(repr=False)
    certificate: str = field(default="", repr=False)  # keyless: the signer's PEM certificate
    chain: str = field(default="", repr=False)  # and the PEM certificates up to the root


def signature_layers(manifest: bytes) -> list[SignatureLayer]:
    """The simple-signing layers of a signature manifest, with their decoded signatures.
    Layers of other media types or without a signature annotation are skipped."""
    try:
        body = json.loads(manifest)
    except (ValueError, UnicodeDecodeError):
        raise SignatureFormatError("the signature manifest is not JSON") from None
    layers = body.get("layers") if isinstance(body, dict) else None
    if not isinstance(layers, list):
        raise SignatureFormatError("the signature manifest has no layers")
    found: list[SignatureLayer] = []
    for layer in layers[:MAX_SIGNATURE_LAYERS]:
        if not isinstance(layer, dict) or layer.get("mediaType") != SIMPLE_SIGNING_MEDIA_TYPE:
            continue
        annotations = layer.get("annotations")
        encoded = annotations.get(SIGNATURE_ANNOTATION) if isinstance(annotations, dict) else None
        digest, size = layer.get("digest"), layer.get("size")
        if not isinstance(encoded, str) or not encoded or len(encoded) > MAX_SIGNATURE_CHARS:
            continue
        if not isinstance(digest, str) or not DIGEST_RE.match(digest):
            continue
        if not isinstance(size, int) or not 0 < size <= MAX_PAYLOAD_BYTES:
            continue
        try:
            signature = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            continue
        certificate = _annotation(annotations, CERTIFICATE_ANNOTATION, MAX_CERTIFICATE_CHARS)
        chain = _annotation(annotations, CHAIN_ANNOTATION, MAX_CHAIN_CHARS)
        found.append(SignatureLayer(digest, size, signature, certificate, chain))
    return found


def _annotation(annotations: dict[str, object], name: str, limit: int) -> str:
    value = annotations.get(name)
    return value if isinstance(value, str) and len(value) <= limit else ""


def signed_digest(payload: bytes) -> str:
    """The manifest digest a simple-signing payload names ("" when it names none)."""
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return ""
    critical = body.get("critical") if isinstance(body, dict) else None
    if not isinstance(critical, dict) or str(critical.get("type", "")).lower() != COSIGN_PAYLOAD_TYPE:
        return ""
    image = critical.get("image")
    digest = image.get("docker-manifest-digest") if isinstance(image, dict) else None
    return digest if isinstance(digest, str) and DIGEST_RE.match(digest) else ""


def signature_valid(key: PublicKey, signature: bytes, payload: bytes) -> bool:
    try:
        if isinstance(key.key, ec.EllipticCurvePublicKey):
            key.key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key.key, rsa.RSAPublicKey):
            key.key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
        else:
            key.key.verify(signature, payload)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Verdict:
    verified: bool
    message: str
    waiting: bool = False  # the policy's Secret is not there yet: Pending, not Failed
    cacheable: bool = True  # a registry that could not be asked is asked again next pass
    judged: bool = True  # False: the registry could not be asked, nothing is said of the image
    # A keyless verdict holds until its certificate expires (then the next check refuses it).
    valid_until: dt.datetime | None = None


# A signed payload as fetched: its layer and the blob's bytes (None: the blob was missing
# or did not hash to the layer's digest).
Fetched = tuple[SignatureLayer, bytes | None]


IMAGE_ADVICE = "sign it with `cosign sign --key cosign.key` and record it again"


def verify(
    image: str,
    digest: str,
    keys: tuple[PublicKey, ...],
    signed: list[Fetched] | None,
    subject: str = "image",
    advice: str = IMAGE_ADVICE,
    keyless: Keyless | None = None,
    now: dt.datetime | None = None,
) -> Verdict:
    """Is `image` (recorded with manifest digest `digest`) signed by one of `keys`, or by a
    certificate `keyless` trusts (valid at `now`)? `signed` is None when the registry has no
    signature tag for the digest. `subject` names what was signed in the messages (an image,
    or a chart: cosign signs both alike), and `advice` says what to do when there is no
    signature."""
    where = f"{image.partition('@')[0]}@{digest}"
    tag = signature_tag(digest)
    if not signed:
        return Verdict(
            False,
            f"{subject} {where} has no cosign signature (no simple-signing layer at tag {tag}): {advice}",
        )
    other_digests: set[str] = set()
    by_other_key = 0
    refusals: list[str] = []
    for layer, payload in signed:
        if payload is None or "sha256:" + hashlib.sha256(payload).hexdigest() != layer.digest:
            continue
        names = signed_digest(payload)
        valid = [k for k in keys if signature_valid(k, layer.signature, payload)]
        signer = None
        if not valid and keyless is not None and layer.certificate:
            judged = _keyless_signer(layer, payload, keyless, now or dt.datetime.now(dt.UTC))
            if isinstance(judged, CertificateRefusal):
                refusals.append(judged.message)
                continue
            signer = judged
        if not valid and signer is None:
            by_other_key += 1
        elif names != digest:
            other_digests.add(names or "no digest")
        elif signer is not None:
            return Verdict(
                True,
                f"{subject} {where} is signed by {signer.subject} from {signer.identity.issuer} "
                f"(keyless, certificate valid until {signer.not_after:%Y-%m-%dT%H:%M:%SZ}; "
                "no transparency log checked)",
                valid_until=signer.not_after,
            )
        else:
            return Verdict(True, f"{subject} {where} is signed by key {valid[0].short}")
    if other_digests:
        return Verdict(
            False,
            f"the signature at tag {tag} of {where} is a signature for another digest "
            f"({', '.join(sorted(other_digests))}), not this {subject}'s: refused",
        )
    if refusals:
        return Verdict(
            False,
            f"{subject} {where}: the keyless signature at tag {tag} is refused: "
            + "; ".join(dict.fromkeys(refusals)),
        )
    identities = keyless.identities if keyless else ()
    known = ", ".join([k.short for k in keys] + [i.described for i in identities])
    if by_other_key:
        return Verdict(
            False,
            f"{subject} {where} is signed by another key: no signature at tag {tag} verifies with the "
            f"policy's keys ({known})",
        )
    return Verdict(
        False, f"{subject} {where}: no signature at tag {tag} could be read (payload missing, altered)"
    )


def _keyless_signer(
    layer: SignatureLayer, payload: bytes, keyless: Keyless, now: dt.datetime
) -> CertifiedSigner | CertificateRefusal | None:
    """The certificate's signer when the layer's signature verifies with the certificate's
    key and the certificate passes keyless' checks; None when the signature does not verify
    with it (then it is another key's)."""
    judged = certified_signer(layer.certificate, layer.chain, keyless, now)
    if isinstance(judged, CertificateRefusal):
        return judged
    key = PublicKey("certificate", hashlib.sha256(public_key_der(judged.key)).hexdigest(), judged.key)
    return judged if signature_valid(key, layer.signature, payload) else None
