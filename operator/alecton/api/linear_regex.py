"""Tenants' regular expressions (promotion version patterns, keyless subjectRegExp), compiled
with RE2 (`google-re2`, import name `re2`): matching time is linear in the subject whatever the
pattern, so no pattern a tenant writes can stall the shared operator, and the syntax is Go's
(RE2), the one cosign and Flux read. What RE2 refuses (back references, lookarounds,
possessive quantifiers) is named in the error, with the construct."""

from __future__ import annotations

import functools
from typing import Any

import re2

LinearRegexError = re2.error

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print every refused pattern to stderr itself

# What RE2 refuses that Python's `re` accepts, by the operator in its error message.
_UNSUPPORTED_OPERATORS = {
    "(?=": "a lookahead (?=...)",
    "(?!": "a negative lookahead (?!...)",
    "(?<=": "a lookbehind (?<=...)",
    "(?<!": "a negative lookbehind (?<!...)",
    "(?>": "an atomic group (?>...)",
    "(?(": "a conditional group (?(...)...)",
    "(?#": "a comment group (?#...)",
    "(?P": "a named backreference (?P=name)",
}


@functools.lru_cache(maxsize=256)
def compile_linear(pattern: str) -> Any:
    """The RE2 expression of a tenant's pattern (LinearRegexError if RE2 refuses it); cached:
    the same few patterns are matched again and again."""
    return re2.compile(pattern, _OPTIONS)


def refusal(error: Exception) -> str:
    """Why RE2 refused `pattern`, for one line after the pattern itself: the construct RE2
    does not support, else RE2's own words."""
    raw = error.args[0] if error.args else ""
    detail = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    detail = " ".join(detail.split())
    construct, hint = "", ""
    kind, _, operand = detail.partition(": ")
    if kind == "invalid perl operator":
        construct = _UNSUPPORTED_OPERATORS.get(operand, f"the group flag {operand}")
    elif kind == "invalid escape sequence" and operand[1:].isdigit():
        construct = f"a backreference ({operand})"
    elif kind == "invalid escape sequence" and operand == "\\k":
        construct = "a named backreference (\\k<name>)"
    elif kind == "invalid escape sequence" and operand == "\\Z":
        construct, hint = "\\Z", "; write $ or \\z, which in RE2 match only at the very end"
    elif kind == "invalid escape sequence":
        construct = f"the escape {operand}"
    elif kind == "bad repetition operator" and operand.endswith("+"):
        construct = f"a possessive quantifier ({operand})"
    elif kind == "invalid repetition size":
        construct = f"a repetition count above 1000 ({operand})"
    if construct:
        return f"uses {construct}, which RE2 syntax (linear-time matching) does not support{hint}"
    return f"is not a valid regular expression: {detail}"
