"""Red team of the issue 27 fixes (R27B-1..8), as a tenant: each test checks that what the
attacker wanted does not happen (R28-1..3; each failed before its fix, as docs/security.md
says)."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from alecton.api.identities import parse_identities
from alecton.api.models import Image
from alecton.local import pki
from alecton.reconcile.image_policy import authoritative_image
from alecton.reconcile.keyless import ROOTS_KEY, CertificateRefusal, Keyless, certified_signer, parse_roots
from alecton.reconcile.redact import Redactor
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

# --- R28-1: subjectRegExp shapes that stall within the three-choice-point budget ---------------

# Three variable repeats (the budget), then fixed-width lookbehinds: the checker counts no
# choice point in them ("fixed {n} is free"), yet each one the matcher reaches walks 50
# characters back, at every one of the ~2.8 million ways of splitting a 256-character subject
# between the three repeats. The pattern is 250 characters, under the 256 the field allows.
STALLING_PATTERN = "a*a*a*" + "(?<=a{50})" * 24 + "(?!)"
# A SAN the tenant's own certificate carries (the tenant's Secret names the roots it chains to).
LONG_SUBJECT = "a" * 256
# An accepted pattern should answer "at once", as test_an_accepted_pattern_on_a_long_subject
# says; 16 identities times the certificate's SANs multiply whatever one match costs.
AT_ONCE_SECONDS = 0.25


def test_a_pattern_of_three_repeats_and_fixed_lookbehinds_is_refused_or_answers_at_once() -> None:
    assert len(STALLING_PATTERN) <= 256
    try:
        (identity,) = parse_identities(
            [{"issuer": "https://oidc.team", "subjectRegExp": STALLING_PATTERN}], "spec.verify.identities"
        )
    except ValueError:
        return  # refused at parse time: the fix
    started = time.perf_counter()
    assert not identity.matches("https://oidc.team", (LONG_SUBJECT,))
    took = time.perf_counter() - started
    assert took < AT_ONCE_SECONDS, f"one SAN took {took:.2f} s under an accepted pattern"


def _many_san_certificate(root: pki.CertificateAuthority, issuer: str, sans: list[str]) -> str:
    """A code-signing certificate as Fulcio issues one, but with many URI SANs: the tenant's
    own Secret names the root, so the tenant issues what it likes (within 16 KiB of PEM)."""
    key = pki._new_key()
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(root._name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(s) for s in sans]), critical=True
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .add_extension(
            x509.UnrecognizedExtension(pki.FULCIO_ISSUER_OID, pki._der_utf8_string(issuer)), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root._key.public_key()), critical=False
        )
    )
    return root._issue(builder, key).cert_pem.decode()


def test_one_signature_layer_under_accepted_patterns_is_judged_at_once() -> None:
    issuer = "https://oidc.team"
    root = pki.CertificateAuthority("tenant-root")
    # 44 SANs of 256 characters fit the 16 KiB the operator reads; none matches.
    sans = [f"https://{i:02d}" + "a" * 246 for i in range(44)]
    certificate = _many_san_certificate(root, issuer, sans)
    # Three repeats each (the shape the old checker accepted; `(?!)` is not RE2), all sixteen identities.
    identities = parse_identities(
        [{"issuer": issuer, "subjectRegExp": "https://\\d\\d[a]*[a]*[a]*b" + "x" * i} for i in range(16)],
        "spec.verify.identities",
    )
    policy = Keyless(parse_roots("cosign", {ROOTS_KEY: root.cert_pem}), identities)
    started = time.perf_counter()
    judged = certified_signer(certificate, "", policy, dt.datetime.now(dt.UTC))
    took = time.perf_counter() - started
    assert isinstance(judged, CertificateRefusal) and judged.kind == "identity"
    # verify() runs on the operator's event loop: every other Deployment waits this long.
    assert took < AT_ONCE_SECONDS, f"one layer took {took:.2f} s (x16 layers, x4 identities more)"


# --- R28-2: forms of a Secret value a chart really renders that the Redactor misses -------------

SECRET = "Hunter2Password"
PIN = "4821"
# Each text is what `helm template` (helm v3/v4 in .tools) printed for the template shown,
# with s=Hunter2Password, pin=4821, u=paßwort-geheim: a chart quoting it in `fail` puts it in
# status and Events.
RENDERED = {
    # printf "%x" .Values.s
    "hex": (SECRET, "48756e7465723250617373776f7264"),
    # printf "%s / %s" (substr 0 8 .Values.s) (substr 8 16 .Values.s)
    "halves": (SECRET, "Hunter2P / assword"),
    # printf "%v" (splitList "" .Values.s)
    "split": (SECRET, "[H u n t e r 2 P a s s w o r d]"),
    # .Values.pin | toString | sha256sum: a four-digit PIN is 10 000 hashes away
    "sha256 of a PIN": (PIN, "a388f562e286fdf28986f9253579f4d096446e01dd0c771996a51ff11b390fa2"),
    # .Values.u | upper: Go's ToUpper keeps ß, Python's upper() makes it SS
    "upper with ß": ("paßwort-geheim", "PAßWORT-GEHEIM"),
}


@pytest.mark.parametrize("form", sorted(RENDERED))
def test_a_secret_a_chart_renders_in_another_form_is_still_redacted(form: str) -> None:
    secret, rendered = RENDERED[form]
    message = f'execution error at (web/templates/cm.yaml:7:9): bad value "{rendered}"'
    # What status and Events get of a failed release whose values hold the secret.
    redacted = Redactor([secret]).redact_helm_error(message)
    assert rendered not in redacted, f"{form}: {redacted}"


def test_the_forms_r27b7_covers_are_still_redacted() -> None:
    # The control: the forms fixed for R27B-7 are redacted, so the misses above are new ones.
    assert "[redacted]" in Redactor([SECRET]).redact(f"bad value {SECRET.upper()}")
    assert "[redacted]" in Redactor([SECRET]).redact("bad value SHVudGVyMlBhc3N3b3Jk")


# --- R28-3: a same-second copy of the team's build with another spec.source --------------------


def _image(name: str, revision: str, repository: str = "github.com/team-a/web") -> Image:
    return Image.parse(
        {
            "metadata": {"namespace": "team-a", "name": name, "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {
                "name": "web",
                "version": "1.0",
                "image": "r.example/team-a/web:1.0",
                "digest": "sha256:" + "d" * 64,
                "source": {"repository": repository, "revision": revision},
            },
        }
    )


def test_a_same_second_copy_of_the_build_with_another_source_does_not_decide_the_source() -> None:
    team = _image("web-1-0", "1111111111111111111111111111111111111111")
    # CI's leaked token, alecton-image-publisher: the same image and digest (so not "another
    # build"), the commit it wants the platform's ClusterNotifier to mark deployed.
    shadow = _image("a-shadow", "bad0bad0bad0bad0bad0bad0bad0bad0bad0bad0", "github.com/team-a/release-gate")
    chosen = authoritative_image([team, shadow])
    # What the attacker wanted: the version's recorded source is its commit. Either the team's
    # record or an ambiguity a person settles would hold.
    assert not (isinstance(chosen, Image) and chosen.source == shadow.source), (
        "the shadow's source was chosen"
    )
