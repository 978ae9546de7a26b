"""Keep secret strings out of everything the operator writes: status, Events, logs.

Chart values may come from Kubernetes Secrets (valuesFrom), and helm quotes values
back in its errors ("value hunter2 is not accepted"), so any text that came from
helm is passed through a `Redactor` built from those secrets before it is written.
"""

from __future__ import annotations

import base64
import re
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


def _forms(secret: str) -> Iterator[str]:
    """The ways a secret can show up in helm's output."""
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
    # Charts put Secret data into manifests with `b64enc`, and helm errors about a
    # manifest quote it in that form.
    yield base64.b64encode(secret.encode("utf-8")).decode("ascii")


class Redactor:
    """Replaces known secret strings with `[redacted]`. Immutable once built."""

    __slots__ = ("_pattern", "_sources")

    _sources: frozenset[str]
    _pattern: re.Pattern[str] | None

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        sources = frozenset(s for s in secrets if isinstance(s, str) and _is_worth_redacting(s))
        needles = {form for secret in sources for form in _forms(secret)}
        pattern: re.Pattern[str] | None = None
        if needles:
            # Longest first: at any position the regex takes the first alternative
            # that matches, so a secret that contains another is matched whole. The
            # lookahead makes every position a candidate, so secrets that overlap
            # (the end of one is the start of the next) are both found; see redact().
            ordered = sorted(needles, key=lambda s: (-len(s), s))
            pattern = re.compile("(?=(" + "|".join(re.escape(s) for s in ordered) + "))")
        object.__setattr__(self, "_sources", sources)
        object.__setattr__(self, "_pattern", pattern)

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
        return self._pattern is not None

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

    def redact(self, text: str) -> str:
        """`text` with every occurrence of a secret replaced by `[redacted]`."""
        if self._pattern is None or not text:
            return text
        # One pass over the text collects the span of the longest secret starting at
        # each position; overlapping spans are joined, so no piece of a secret is
        # left over between two replacements.
        spans: list[list[int]] = []
        for match in self._pattern.finditer(text):
            start = match.start()
            end = start + len(match.group(1))
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
