"""cosign keyless signatures (spec.verify.identities), checked without cosign or Sigstore
services: pure.

A keyless signature layer carries the signer's short-lived certificate (PEM, annotation
`dev.sigstore.cosign/certificate`) and the certificates between it and the root (annotation
`dev.sigstore.cosign/chain`). Fulcio writes the signer's identity as a SAN (email or URI)
and the OIDC issuer that vouched for it in extension 1.3.6.1.4.1.57264.1.8 (a DER
UTF8String; the older 1.3.6.1.4.1.57264.1.1 holds the raw string). Here: the trusted roots
read from the Secret's `fulcio-root.pem`, and the certificate judged: does it chain to one
of them, is it valid at the time given, does it name an accepted identity. The payload's
signature with the certificate's key is checked by the caller (reconcile.signatures).

Not checked (there is no Rekor nor timestamp authority here, as `cosign verify
--insecure-ignore-tlog`): a transparency log entry, the certificate's SCT, a signed
timestamp. So the time a certificate must be valid at is the time of the check.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID

from alecton.api.identities import Identity

CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
ROOTS_KEY = "fulcio-root.pem"
ISSUER_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")  # DER UTF8String
LEGACY_ISSUER_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")  # raw bytes
MAX_CERTIFICATE_CHARS = 16 * 1024  # one PEM certificate in an annotation
MAX_CHAIN_CHARS = 32 * 1024
MAX_CHAIN_CERTIFICATES = 4
MAX_ROOTS = 8
MAX_ROOTS_BYTES = 64 * 1024
MAX_CHAIN_DEPTH = 4

CertificateKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


@dataclass(frozen=True)
class Keyless:
    """The keyless half of a policy: the roots certificates must chain to, and who may sign."""

    roots: tuple[x509.Certificate, ...] = field(repr=False)
    identities: tuple[Identity, ...]

    @property
    def fingerprint(self) -> str:
        """With the key fingerprints and the digest, the key of a cached verdict."""
        roots = ",".join(sorted(root.fingerprint(hashes.SHA256()).hex() for root in self.roots))
        # JSON, not joined text: the fields are the tenant's own strings, and two different
        # lists must never spell the same text and share a verdict (R27B-4).
        who = json.dumps([[i.issuer, i.subject, i.subject_pattern] for i in self.identities])
        return f"roots={roots} identities={hashlib.sha256(who.encode()).hexdigest()}"


def parse_roots(secret: str, data: dict[str, bytes]) -> tuple[x509.Certificate, ...]:
    """The CA certificates of the Secret's `fulcio-root.pem`; ValueError saying what to fix."""
    raw = data.get(ROOTS_KEY)
    if not raw:
        raise ValueError(
            f"Secret {secret!r} has no {ROOTS_KEY} (spec.verify.identities needs the root "
            "certificate(s) of the Fulcio that issues the signers' certificates, PEM)"
        )
    if len(raw) > MAX_ROOTS_BYTES:
        raise ValueError(f"Secret {secret!r} key {ROOTS_KEY!r} is over {MAX_ROOTS_BYTES} bytes")
    try:
        roots = tuple(x509.load_pem_x509_certificates(raw))
    except ValueError:
        raise ValueError(f"Secret {secret!r} key {ROOTS_KEY!r} is not PEM certificates") from None
    if len(roots) > MAX_ROOTS:
        raise ValueError(f"Secret {secret!r} key {ROOTS_KEY!r} holds more than {MAX_ROOTS} certificates")
    for root in roots:
        if not _is_ca(root):
            raise ValueError(
                f"Secret {secret!r} key {ROOTS_KEY!r}: {root.subject.rfc4514_string()!r} is not a CA "
                "certificate (basicConstraints CA:TRUE)"
            )
    return roots


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def certificate_issuer(cert: x509.Certificate) -> str:
    """The OIDC issuer Fulcio wrote in the certificate ("" when none). Fulcio writes both
    extensions alike; should they differ, the text names both and so matches no identity."""
    values = {
        ext.oid: ext.value.value
        for ext in cert.extensions
        if isinstance(ext.value, x509.UnrecognizedExtension)
    }
    current = _der_utf8_string(values[ISSUER_OID]) if ISSUER_OID in values else ""
    legacy = values[LEGACY_ISSUER_OID].decode("utf-8", "replace") if LEGACY_ISSUER_OID in values else ""
    if current and legacy and current != legacy:
        return f"{current} (and {legacy} in extension {LEGACY_ISSUER_OID.dotted_string})"
    return current or legacy


def _der_utf8_string(der: bytes) -> str:
    """The text of a DER UTF8String (tag 12), "" when `der` is not one."""
    if len(der) < 2 or der[0] != 0x0C:
        return ""
    length, start = der[1], 2
    if length & 0x80:
        width = length & 0x7F
        if not 0 < width <= 2 or len(der) < 2 + width:
            return ""
        length, start = int.from_bytes(der[2 : 2 + width], "big"), 2 + width
    if start + length != len(der):
        return ""
    return der[start:].decode("utf-8", "replace")


def certificate_subjects(cert: x509.Certificate) -> tuple[str, ...]:
    """The signer's identity as Fulcio writes it: the SAN emails and URIs."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(san.get_values_for_type(x509.RFC822Name)) + tuple(
        san.get_values_for_type(x509.UniformResourceIdentifier)
    )


@dataclass(frozen=True)
class CertifiedSigner:
    """A certificate that passed every check: its key is the one to check the payload with."""

    key: CertificateKey = field(repr=False)
    identity: Identity
    subject: str  # the SAN that matched
    not_after: dt.datetime


@dataclass(frozen=True)
class CertificateRefusal:
    kind: str  # "untrusted" | "expired" | "identity" | "malformed"
    message: str


def _require_code_signing(
    _policy: verification.Policy, _cert: x509.Certificate, usage: x509.ExtendedKeyUsage | None
) -> None:
    if usage is None or ExtendedKeyUsageOID.CODE_SIGNING not in usage:
        raise ValueError("the certificate's extended key usage is not codeSigning")


def _verifier(roots: tuple[x509.Certificate, ...], now: dt.datetime) -> verification.ClientVerifier:
    policies = verification.ExtensionPolicy
    leaf_policy = policies.permit_all().require_present(
        x509.ExtendedKeyUsage, verification.Criticality.AGNOSTIC, _require_code_signing
    )
    return (
        verification.PolicyBuilder()
        .store(verification.Store(list(roots)))
        .time(now)
        .max_chain_depth(MAX_CHAIN_DEPTH)
        .extension_policies(ca_policy=policies.webpki_defaults_ca(), ee_policy=leaf_policy)
        .build_client_verifier()
    )


def _load(certificate_pem: str, chain_pem: str) -> tuple[x509.Certificate, list[x509.Certificate]]:
    if len(certificate_pem) > MAX_CERTIFICATE_CHARS or len(chain_pem) > MAX_CHAIN_CHARS:
        raise ValueError("the certificate or its chain is too large")
    leaf = x509.load_pem_x509_certificate(certificate_pem.encode())
    _ = leaf.extensions  # parsed lazily: a malformed extension is a ValueError here, not later
    chain = list(x509.load_pem_x509_certificates(chain_pem.encode())) if chain_pem.strip() else []
    if len(chain) > MAX_CHAIN_CERTIFICATES:
        raise ValueError(f"the chain holds more than {MAX_CHAIN_CERTIFICATES} certificates")
    return leaf, chain


def _stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def certified_signer(
    certificate_pem: str, chain_pem: str, keyless: Keyless, now: dt.datetime
) -> CertifiedSigner | CertificateRefusal:
    """Judge a signature layer's certificate: it chains to a root of the policy, every
    certificate is valid at `now`, and it names one of the policy's identities."""
    try:
        leaf, chain = _load(certificate_pem, chain_pem)
    except ValueError as error:
        return CertificateRefusal("malformed", f"its certificate cannot be read ({error})")
    # What the signer's certificate says goes into status: bounded, as the rest of it.
    names = _short(", ".join(certificate_subjects(leaf)) or "no email or URI")
    if now < leaf.not_valid_before_utc:
        return CertificateRefusal(
            "expired", f"its certificate ({names}) is not valid before {_stamp(leaf.not_valid_before_utc)}"
        )
    if now > leaf.not_valid_after_utc:
        return CertificateRefusal(
            "expired",
            f"its certificate ({names}) expired at {_stamp(leaf.not_valid_after_utc)} (no transparency "
            "log or timestamp proves it was signed earlier: validity is checked at the time of the check)",
        )
    intermediates = [cert for cert in chain if cert.subject != cert.issuer]  # roots come from the Secret
    try:
        _verifier(keyless.roots, now).verify(leaf, intermediates)
    except (verification.VerificationError, ValueError, TypeError, UnsupportedAlgorithm) as error:
        return CertificateRefusal(
            "untrusted",
            f"its certificate ({names}) does not chain to a root of {ROOTS_KEY} ({_short(str(error))})",
        )
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        return CertificateRefusal("malformed", "its certificate's key is not ECDSA, RSA or Ed25519")
    issuer, subjects = certificate_issuer(leaf), certificate_subjects(leaf)
    for identity in keyless.identities:
        if identity.matches(issuer, subjects):
            subject = next(s for s in subjects if identity.matches(issuer, (s,)))
            return CertifiedSigner(key, identity, subject, leaf.not_valid_after_utc)
    accepted = "; ".join(i.described for i in keyless.identities)
    return CertificateRefusal(
        "identity",
        f"its certificate names {names} from issuer {_short(issuer) or '(none)'}, not an identity of "
        f"spec.verify.identities ({accepted})",
    )


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def public_key_der(key: CertificateKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
