"""Keyless signer identities (Application spec.verify.identities): who may have signed, as
the Fulcio certificate of a cosign keyless signature names them. Parsed and checked here;
matched against certificates in alecton.reconcile.keyless."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alecton.api.linear_regex import LinearRegexError, compile_linear, refusal

MAX_IDENTITIES = 16
MAX_FIELD_CHARS = 256
_KEYS = frozenset({"issuer", "subject", "subjectRegExp"})


@dataclass(frozen=True)
class Identity:
    """One accepted signer: the OIDC issuer exactly, and the certificate's SAN (email or URI)
    exactly (`subject`) or fully matching `subject_pattern`."""

    issuer: str
    subject: str = ""
    subject_pattern: str = ""

    def matches(self, issuer: str, subjects: tuple[str, ...]) -> bool:
        if issuer != self.issuer:
            return False
        if self.subject:
            return self.subject in subjects
        pattern = compile_linear(self.subject_pattern)  # RE2: linear time, Go's syntax
        return any(len(s) <= MAX_FIELD_CHARS and pattern.fullmatch(s) for s in subjects)

    @property
    def described(self) -> str:
        who = self.subject or f"~{self.subject_pattern}"
        return f"{who} from {self.issuer}"


def check_subject_pattern(pattern: str) -> None:
    """ValueError, saying why, for a pattern RE2 cannot compile (RE2 is Go's syntax, as cosign
    reads it; a back reference or a lookaround is named). Any pattern RE2 accepts matches in
    time linear in the subject, so none is refused for its shape (R27B-2: Python's `re`
    backtracks, and five `a{0,60}` took 0.6 s on one certificate)."""
    try:
        compile_linear(pattern)
    except LinearRegexError as error:
        raise ValueError(refusal(error)) from None


def _text(raw: dict[str, Any], key: str, where: str) -> str:
    value = raw.get(key, "")
    if not isinstance(value, str) or len(value) > MAX_FIELD_CHARS:
        raise ValueError(f"{where}.{key} must be a string of at most {MAX_FIELD_CHARS} characters")
    return value


def parse_identities(raw: Any, where: str) -> tuple[Identity, ...]:
    """`[{issuer, subject | subjectRegExp}]`; ValueError naming the entry and what to fix."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_IDENTITIES:
        raise ValueError(f"{where} must be a list of at most {MAX_IDENTITIES} identities")
    identities = []
    for index, entry in enumerate(raw):
        place = f"{where}[{index}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{place} must be an object with issuer and subject or subjectRegExp")
        unknown = sorted(str(k) for k in entry if k not in _KEYS)
        if unknown:
            raise ValueError(f"{place}: unknown key {unknown[0]!r} (expected issuer, subject, subjectRegExp)")
        issuer = _text(entry, "issuer", place)
        subject, pattern = _text(entry, "subject", place), _text(entry, "subjectRegExp", place)
        if not issuer:
            raise ValueError(f"{place}.issuer is required: the OIDC issuer URL the certificate names")
        if bool(subject) == bool(pattern):
            raise ValueError(f"{place} needs exactly one of subject and subjectRegExp")
        if pattern:
            try:
                check_subject_pattern(pattern)
            except ValueError as error:
                raise ValueError(f"{place}.subjectRegExp {pattern!r} {error}") from None
        identities.append(Identity(issuer, subject, pattern))
    return tuple(identities)
