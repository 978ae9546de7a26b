"""Keep secret strings out of everything the operator writes: status, Events, logs.

Chart values may come from Kubernetes Secrets (valuesFrom), and helm quotes values
back in its errors ("value hunter2 is not accepted"), so any text that came from
helm is passed through a `Redactor` built from those secrets before it is written.
A chart may render a value transformed (`b64enc`, `toJson`, `upper`...), into a diff or
an error: the Redactor searches for those forms of each secret too (`_forms`).
"""

from __future__ import annotations

import base64
import re
import urllib.parse
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

REDACTED = "[redacted]"

# Shorter secrets are not redacted. Replacing every "a", "on" or "yes" would make
# every message unreadable, and the holes would give the value away anyway (a
# message with every "yes" cut out says the secret is "yes"). A value that short
# is not a credential worth protecting; the trade-off is that it stays visible.
MIN_SECRET_LENGTH = 4


def go_float_text(value: float) -> str:
    """How Go prints a float64 with %v (strconv 'g', shortest): helm reads every number of
    the values as a float64, so a template quoting a number from a Secret prints
    985848797790 as 9.8584879779e+11."""
    if value != value or value in (float("inf"), float("-inf")):
        return ""
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    # repr is the shortest text that reads back as the same float, as Go's shortest is.
    _, digit_tuple, exponent = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    point = len(digits) + int(exponent)  # where the decimal point goes
    exp = point - 1
    if exp < -4 or exp >= 6:  # Go's rule for the shortest 'g'
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'+' if exp >= 0 else '-'}{abs(exp):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def number_texts(value: int | float) -> list[str]:
    """The ways a number from a Secret shows up in helm's output: as written, and as Go
    prints helm's float64 of it."""
    texts = [str(value) if isinstance(value, int) else repr(value), go_float_text(float(value))]
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        texts.append(str(int(value)))
    return texts


def string_leaves(values: Any) -> list[str]:
    """Every string found in a nested structure of dicts and lists (dict values, not keys),
    and the texts of its numbers (a numeric PIN or account ID is a secret too).

    Iterative, and each container is visited once: values parsed from YAML may be
    nested very deep or share (even cyclic) anchors, and neither may crash or hang this.
    """
    found: list[str] = []
    seen: set[int] = set()
    stack: list[Any] = [values]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            found.append(node)
        elif isinstance(node, int | float) and not isinstance(node, bool):
            found.extend(number_texts(node))
        elif isinstance(node, dict | list | tuple):
            if id(node) in seen:
                continue
            seen.add(id(node))
            children = node.values() if isinstance(node, dict) else node
            # Reversed so strings come out in document order, which keeps tests readable.
            stack.extend(reversed(list(children)))
    return found


def _is_worth_redacting(text: str) -> bool:
    # Measured without surrounding whitespace: a secret of four spaces would
    # otherwise cut holes into every indented line.
    return len(text.strip()) >= MIN_SECRET_LENGTH


# A secret's bytes inside a longer base64 text (`printf "%s:%s" .user .password | b64enc`)
# give only a fragment of its encoding; fragments shorter than this would turn up in any
# base64 text (a 4-character secret's are 2 to 4 characters), so they are not searched for.
MIN_ENCODED_FRAGMENT = 8

# How Go escapes a string inside JSON (toJson: encoding/json, which also escapes <, > and &
# unless asked not to, as toRawJson does) and inside %q (quote); YAML's double-quoted style
# escapes quotes and backslashes alike.
_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_GO_QUOTE_ESCAPES = {**_JSON_ESCAPES, "\a": "\\a", "\v": "\\v"}
_URL_SAFE = str.maketrans("+/", "-_")  # base64's URL-safe alphabet


def _escaped(secret: str, escapes: dict[str, str], control: str) -> str:
    """`secret` as it reads inside a quoted string; other control characters as `control`
    formats their code."""
    return "".join(escapes.get(c) or (control % ord(c) if c < " " else c) for c in secret)


def _quoted_forms(secret: str) -> Iterator[str]:
    """The secret inside a quoted string: toJson (with and without Go's HTML escaping),
    quote (Go's %q), YAML's single quotes, and a URL's query or path (urlquery)."""
    yield _escaped(secret, _JSON_ESCAPES, "\\u%04x")
    yield _escaped(secret, {**_JSON_ESCAPES, **_HTML_ESCAPES}, "\\u%04x")
    yield _escaped(secret, _GO_QUOTE_ESCAPES, "\\x%02x")
    yield secret.replace("'", "''")
    yield urllib.parse.quote_plus(secret, safe="~")
    yield urllib.parse.quote(secret, safe="~")


def _base64_forms(data: bytes) -> Iterator[str]:
    """The secret in base32 (b32enc) and base64 (b64enc), and where its bytes stand inside a
    longer base64 text: for each of the three offsets within a 3-byte group, the characters
    that encode the secret's bytes alone; each also in the URL-safe alphabet."""
    yield base64.b32encode(data).decode("ascii")
    encodings = [base64.b64encode(data).decode("ascii")]
    for offset in range(3):
        # Zero bytes stand in for the unknown ones before the secret: the first characters
        # depend on them, and the characters after the last whole group on what follows.
        encoded = base64.b64encode(bytes(offset) + data).decode("ascii")
        fragment = encoded[(offset * 4 + 2) // 3 : (offset + len(data)) // 3 * 4]
        if len(fragment) >= MIN_ENCODED_FRAGMENT:
            encodings.append(fragment)
    for encoded in encodings:
        yield encoded
        yield encoded.translate(_URL_SAFE)


def _forms(secret: str) -> Iterator[str]:
    """The ways a secret can show up in helm's output and in rendered manifests: as it is,
    each line of a multi-line one, through the template functions a chart may apply to it
    (upper, lower, quote, toJson, urlquery, b64enc, b32enc), and as its bytes inside a longer
    base64 text."""
    yield secret
    lines = secret.splitlines()
    if len(lines) > 1 or secret != secret.rstrip("\r\n"):
        # Helm's YAML and template errors quote a single line of a multi-line
        # value (a PEM key, a config file), and a trailing newline is common in
        # Secrets created from files.
        for line in lines:
            stripped = line.strip()
            if len(stripped) >= MIN_SECRET_LENGTH:
                yield stripped
    yield secret.upper()
    yield secret.lower()
    yield from _quoted_forms(secret)
    # Charts put Secret data into manifests with `b64enc`, and helm errors about a
    # manifest quote it in that form.
    yield from _base64_forms(secret.encode("utf-8"))


class Redactor:
    """Replaces known secret strings with `[redacted]`. Immutable once built."""

    __slots__ = ("_needles", "_sources")

    _sources: frozenset[str]
    _needles: tuple[str, ...]  # every form of every secret

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        sources = frozenset(s for s in secrets if isinstance(s, str) and _is_worth_redacting(s))
        needles = {form for secret in sources for form in _forms(secret)}
        object.__setattr__(self, "_sources", sources)
        object.__setattr__(self, "_needles", tuple(sorted(needles)))

    @classmethod
    def from_values(cls, values: Any) -> Redactor:
        """Every string leaf of `values` (nested dicts and lists) is a secret."""
        return cls(string_leaves(values))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    # Immutable, so copies can be the object itself; pickling rebuilds it from the
    # secrets (the attribute-by-attribute default would trip over __setattr__).
    def __copy__(self) -> Redactor:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Redactor:
        return self

    def __reduce__(self) -> tuple[type[Redactor], tuple[tuple[str, ...]]]:
        return (type(self), (tuple(self._sources),))

    def __bool__(self) -> bool:
        return bool(self._needles)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Redactor):
            return NotImplemented
        return self._sources == other._sources

    def __hash__(self) -> int:
        return hash(self._sources)

    def __repr__(self) -> str:
        # Never the secrets themselves: a repr ends up in logs and tracebacks.
        return f"Redactor({len(self._sources)} secrets)"

    def merged(self, other: Redactor) -> Redactor:
        """A redactor for the secrets of both."""
        if not other._sources or other._sources <= self._sources:
            return self
        if not self._sources:
            return other
        return Redactor(self._sources | other._sources)

    def redact_helm_error(self, text: str) -> str:
        """helm's error about a release whose values hold these secrets, fit for status and
        Events: what the chart printed (a `fail` or `required` message, an included
        template's name) and the values the API server quotes back are withheld, since a
        chart may print a value in any form (hex, in pieces, hashed: red team R28-2); where
        it failed stays. Without secrets in the values, helm's words are shown whole."""
        if not self._needles:
            return text
        return self.redact(withhold_printed_values(text))

    def redact(self, text: str) -> str:
        """`text` with every occurrence of a secret replaced by `[redacted]`."""
        if not self._needles or not text:
            return text
        # Overlapping occurrences are joined (a secret containing another is replaced
        # whole; the end of one being the start of the next leaves no piece between).
        spans: list[list[int]] = []
        for start, end in _occurrences(text, self._needles):
            if spans and start < spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], end)
            else:
                spans.append([start, end])
        if not spans:
            return text
        pieces: list[str] = []
        position = 0
        for start, end in spans:
            pieces.append(text[position:start])
            pieces.append(REDACTED)
            position = end
        pieces.append(text[position:])
        return "".join(pieces)


def _occurrences(text: str, needles: Iterable[str]) -> list[tuple[int, int]]:
    """The span of every occurrence of every needle (overlapping ones too), in order. One
    `str.find` scan per needle: each form of each secret is a needle, and a scan in C costs
    a fraction of what one alternative of a regex tried at every position does."""
    found: list[tuple[int, int]] = []
    for needle in needles:
        start = text.find(needle)
        while start != -1:
            found.append((start, start + len(needle)))
            start = text.find(needle, start + 1)
    found.sort()
    return found


WITHHELD = (
    "[withheld: the values hold data from Secrets, which a chart may print in any form; "
    "`alecton diff` or `helm template`, with your own access to those Secrets, shows it]"
)
# What a chart prints in helm's errors: the message of `fail` or `required` after "execution
# error at (FILE:LINE:COL):", and, in Helm 4's layout, what follows "error calling FUNC:" (an
# include's template name). The rest of the text from there is the chart's.
_CHART_PRINTED = re.compile(r"(execution error at \([^()\n]{0,512}\):|error calling [\w.]{1,64}:)[\s\S]*")
# What the API server quotes back of a rendered object: `Invalid value: "..."` (Go's %q), and
# the YAML decoder's `cannot unmarshal !!str `...``.
_QUOTED_VALUE = re.compile(r'((?:Invalid|Unsupported|Duplicate) value: )"(?:[^"\\\n]|\\.)*"')
_UNMARSHALED_VALUE = re.compile(r"(cannot unmarshal !!\w{1,16} )`[^`\n]*`")


def withhold_printed_values(text: str) -> str:
    """`text` (helm's error) without what the chart printed or the API server quoted."""
    text = _CHART_PRINTED.sub(lambda m: f"{m.group(1)} {WITHHELD}", text, count=1)
    text = _QUOTED_VALUE.sub(lambda m: m.group(1) + WITHHELD, text)
    return _UNMARSHALED_VALUE.sub(lambda m: m.group(1) + WITHHELD, text)
