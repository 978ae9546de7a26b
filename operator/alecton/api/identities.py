"""Keyless signer identities (Application spec.verify.identities): who may have signed, as
the Fulcio certificate of a cosign keyless signature names them. Parsed and checked here;
matched against certificates in alecton.reconcile.keyless."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MAX_IDENTITIES = 16
MAX_FIELD_CHARS = 256
# At most this many choice points in a pattern: variable repeats (`?`, `*`, `+`, `{n,m}` with
# n < m, `{n,}`) and alternations (`a|b` the parser does not fold into a character set). A
# subject that almost matches makes the matcher try every way of splitting it between them:
# about 257 ways each on a subject of at most 256 characters, so the time grows as a power of
# the subject's length whose degree is their number. Three stay within tens of milliseconds;
# five `a{0,60}` take 0.6 s and forty `a?` or thirty-two `(?:a|aa)` hang. Fixed repeats
# (`{n}`) choose nothing and are free.
MAX_VARIABLE_REPEATS = 3
_KEYS = frozenset({"issuer", "subject", "subjectRegExp"})

try:  # Python 3.11 names the parser re._parser; it was sre_parse before.
    from re import _parser as _regex_parser  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_parse as _regex_parser  # type: ignore[no-redef]

_REPEATS = {
    _regex_parser.MAX_REPEAT,
    _regex_parser.MIN_REPEAT,
    getattr(_regex_parser, "POSSESSIVE_REPEAT", None),
}


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
        pattern = re.compile(self.subject_pattern)
        return any(len(s) <= MAX_FIELD_CHARS and pattern.fullmatch(s) for s in subjects)

    @property
    def described(self) -> str:
        who = self.subject or f"~{self.subject_pattern}"
        return f"{who} from {self.issuer}"


class UnsafePatternError(ValueError):
    """A subjectRegExp whose matching time could explode (nested or alternated repetition)."""


def _check_pattern(parsed: Any, inside_repeat: bool, counts: list[int]) -> None:
    for op, argument in parsed:
        if op in _REPEATS:
            low, high, body = argument
            if inside_repeat:
                raise UnsafePatternError("a repetition inside a repetition")
            if low < high:
                counts[0] += 1
            _check_pattern(body, True, counts)
        elif op is _regex_parser.BRANCH:
            if inside_repeat:
                raise UnsafePatternError("alternatives inside a repetition")
            counts[0] += 1
            for branch in argument[1]:
                _check_pattern(branch, inside_repeat, counts)
        elif op is _regex_parser.SUBPATTERN:
            _check_pattern(argument[-1], inside_repeat, counts)
        elif op is getattr(_regex_parser, "ATOMIC_GROUP", None):
            _check_pattern(argument, inside_repeat, counts)
        elif op in (_regex_parser.ASSERT, _regex_parser.ASSERT_NOT):
            _check_pattern(argument[1], inside_repeat, counts)
        elif op in (_regex_parser.GROUPREF, _regex_parser.GROUPREF_EXISTS):
            raise UnsafePatternError("a back reference")


def check_subject_pattern(pattern: str) -> None:
    """ValueError, saying why, for a pattern that does not compile or could take exponential
    (or high polynomial) time on a certificate's subject."""
    try:
        parsed = _regex_parser.parse(pattern)
    except re.error as error:
        raise ValueError(f"is not a regular expression: {error}") from None
    counts = [0]
    try:
        _check_pattern(parsed, False, counts)
    except UnsafePatternError as error:
        raise ValueError(f"is refused: {error} (matching time could explode)") from None
    if counts[0] > MAX_VARIABLE_REPEATS:
        raise ValueError(
            f"is refused: more than {MAX_VARIABLE_REPEATS} variable repeats and alternations"
            " (`?`, `*`, `+`, `{n,m}`, `|`; fixed `{n}` is free): matching time could explode"
        )


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
