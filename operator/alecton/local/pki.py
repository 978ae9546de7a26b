"""Certificates for the local control plane: one CA, serving certs, client certs, and (for
signing tests) Fulcio-like code-signing certificates from a CA or an intermediate.

Everything is generated at start-up with the `cryptography` package; nothing leaves
the state directory, and keys are written 0600.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = dt.timedelta(days=30)
# Fulcio writes the OIDC issuer that vouched for the signer twice: as a DER UTF8String, and
# as raw bytes in the older extension (the only one cosign 2.6 reads).
FULCIO_ISSUER_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
FULCIO_LEGACY_ISSUER_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")


@dataclass(frozen=True)
class KeyPair:
    cert_pem: bytes
    key_pem: bytes


def _new_key() -> ec.EllipticCurvePrivateKey:
    # P-256 keys are fast to generate (RSA 2048 takes ~100 ms each on a busy core).
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: object, not_before: dt.datetime | None = None
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
    )


def _der_utf8_string(text: str) -> bytes:
    data = text.encode()
    if len(data) < 0x80:
        return bytes([0x0C, len(data)]) + data
    width = (len(data).bit_length() + 7) // 8
    return bytes([0x0C, 0x80 | width]) + len(data).to_bytes(width, "big") + data


class CertificateAuthority:
    """A throwaway CA that signs the apiserver serving certs and client certs; with a
    `parent`, an intermediate CA signed by it; `not_before` for a CA that must have been valid
    in the past (certificates of a signing time gone by)."""

    def __init__(
        self,
        common_name: str = "alecton-local-ca",
        parent: CertificateAuthority | None = None,
        not_before: dt.datetime | None = None,
    ) -> None:
        self._key = _new_key()
        self._name = _name(common_name)
        self._parent = parent
        issuer_name, signing_key = (parent._name, parent._key) if parent else (self._name, self._key)
        builder = _builder(self._name, issuer_name, self._key.public_key(), not_before)
        if parent is not None:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(parent._key.public_key()), critical=False
            )
        self._cert = (
            builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(signing_key, hashes.SHA256())
        )

    @property
    def cert_pem(self) -> bytes:
        return self._cert.public_bytes(serialization.Encoding.PEM)

    @property
    def chain_pem(self) -> bytes:
        """This CA's certificate and its parents' up to the root, as cosign's
        --certificate-chain wants them."""
        return self.cert_pem + (self._parent.chain_pem if self._parent else b"")

    def _issue(self, builder: x509.CertificateBuilder, key: ec.EllipticCurvePrivateKey) -> KeyPair:
        cert = builder.sign(self._key, hashes.SHA256())
        return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))

    def serving(self, common_name: str) -> KeyPair:
        """A TLS server certificate for 127.0.0.1 and localhost."""
        key = _new_key()
        san = x509.SubjectAlternativeName(
            [
                x509.DNSName("localhost"),
                x509.DNSName("kubernetes.default.svc"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            ]
        )
        builder = (
            _builder(_name(common_name), self._name, key.public_key())
            .add_extension(san, critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        )
        return self._issue(builder, key)

    def client(self, user: str, group: str | None = None) -> KeyPair:
        """A client certificate: Kubernetes reads the user from CN and groups from O."""
        key = _new_key()
        builder = _builder(_name(user, group), self._name, key.public_key()).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        return self._issue(builder, key)

    def code_signing(
        self,
        identity: str,
        oidc_issuer: str,
        not_before: dt.datetime | None = None,
        lifetime: dt.timedelta = dt.timedelta(hours=1),
    ) -> KeyPair:
        """A signing certificate as Fulcio issues one: no subject name, the identity as SAN
        (an email, or a URI when it has a scheme), EKU codeSigning, the OIDC issuer in
        Fulcio's two extensions."""
        key = _new_key()
        start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        san: x509.GeneralName = (
            x509.UniformResourceIdentifier(identity) if "://" in identity else x509.RFC822Name(identity)
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self._name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + lifetime)
            .add_extension(x509.SubjectAlternativeName([san]), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
            .add_extension(
                x509.UnrecognizedExtension(FULCIO_ISSUER_OID, _der_utf8_string(oidc_issuer)), critical=False
            )
            .add_extension(
                x509.UnrecognizedExtension(FULCIO_LEGACY_ISSUER_OID, oidc_issuer.encode()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
        )
        return self._issue(builder, key)


def service_account_keys() -> KeyPair:
    """The key pair kube-apiserver signs (private) and verifies (public) SA tokens with.

    Returned as a KeyPair whose `cert_pem` holds the PEM public key.
    """
    key = _new_key()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return KeyPair(public, _key_pem(key))


def write_private(path: Path, data: bytes) -> Path:
    """Write a file readable by its owner only (keys, kubeconfigs)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path
