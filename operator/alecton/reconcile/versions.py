"""Which Image versions a promotion may deploy, and which of them is the newest.

A Deployment with `spec.promotion` carries a version policy instead of a fixed version, and
CI records Images with a free-form `version` string. The operator asks this module which of
those strings qualify and which one to deploy. Everything here is pure: strings in,
decisions out.

A version that does not fit the policy is simply not a candidate, never an error, because
CI may record anything (a branch name, a SHA). Only a malformed *policy* is an error, and
its message names the field, so the person who wrote the Deployment can fix it.

Two forms of policy:

* semver: ``{"semver": ">=1.4.0 <2", "prereleases": false}``. The range uses npm syntax
  and is evaluated by the `node-semver` library (import name `nodesemver`).
* pattern: ``{"pattern": "^build-(?P<order>\\d+)$", "order": "Numerical"}``. A regular
  expression picks the versions and, through a group, the part of them to sort by. It is the
  tenant's own text, so it runs on RE2 (`google-re2`, import name `re2`), whose matching time
  is linear in the version's length: with Python's backtracking `re`, a pattern like
  ``^(a+)+$`` against 48 "a"s and a "_" would hold the operator's event loop for minutes.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import nodesemver

from alecton.api.linear_regex import LinearRegexError, compile_linear, refusal

_SEMVER_FIELDS = ("semver", "prereleases")
_PATTERN_FIELDS = ("pattern", "order")
_DIGITS = re.compile(r"[0-9]+")


class Order(enum.Enum):
    """How a pattern policy sorts the keys it extracts."""

    NUMERICAL = "Numerical"  # keys are integers: build numbers, timestamps
    LEXICAL = "Lexical"  # keys compare as strings (code point by code point)


@dataclass(frozen=True)
class VersionPolicy:
    """Which versions qualify and how they sort; build one with `VersionPolicy.parse`.

    The two forms are the subclasses `SemverPolicy` and `PatternPolicy`. They only differ in
    `qualifies`, `_precedence` and `describe`; choosing the newest version and deciding
    whether one supersedes another is the same for both and lives here.
    """

    @classmethod
    def parse(cls, spec: Any, *, field: str = "versions") -> VersionPolicy:
        """The policy a Deployment's `versions` object describes.

        Raises ValueError with a message that starts with the offending field (`field` is
        the path of the object itself, so a caller can pass e.g. "spec.promotion.versions").
        Fields whose value is null count as absent, as the API server treats them.
        """
        if not isinstance(spec, Mapping):
            raise ValueError(f"{field}: must be an object with either semver or pattern, not {spec!r}")
        given = {key: value for key, value in spec.items() if value is not None}
        if ("semver" in given) == ("pattern" in given):
            raise ValueError(f"{field}: give exactly one of semver or pattern")
        if "semver" in given:
            _reject_unknown(given, _SEMVER_FIELDS, "semver", field)
            return SemverPolicy.from_fields(given, field)
        _reject_unknown(given, _PATTERN_FIELDS, "pattern", field)
        return PatternPolicy.from_fields(given, field)

    def qualifies(self, version: str) -> bool:
        """Whether `version` may be deployed under this policy."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line for status conditions and events."""
        raise NotImplementedError

    def _precedence(self, a: str, b: str) -> int:
        """Negative, zero or positive as `a` sorts before, level with or after `b`.

        Only called with versions that qualify.
        """
        raise NotImplementedError

    def newest(self, versions: Iterable[str], exclude: Collection[str] = ()) -> str | None:
        """The newest qualifying version that is not in `exclude`, or None if there is none.

        `exclude` holds the versions that already failed their health check, so a failed
        version is not deployed again while an older good one exists. Two different strings
        can rank level (`1.0.0` and `v1.0.0`, or `build-01` and `build-1` under a numerical
        pattern); then the greater string wins, so the answer does not depend on the order
        in which the API server happened to list the Images.
        """
        excluded = frozenset(exclude)
        best: str | None = None
        for version in versions:
            if not self.qualifies(version) or version in excluded:
                continue
            if best is None or self._sorts_after(version, best):
                best = version
        return best

    def is_newer(self, candidate: str, than: str) -> bool:
        """Whether `candidate` should supersede `than` (e.g. a pending, not yet started deploy).

        A candidate that does not qualify is never newer. A `than` outside the policy but
        still orderable (a semver version outside the range, a version the pattern keys) is
        compared all the same: automation never goes *down* from a hotfix deployed by hand
        or from a range narrowed under it. Only a `than` that cannot be ordered at all is
        older than any qualifying candidate. Precedence alone decides: a version that ranks
        level is *not* newer, so `v1.0.0` does not replace a pending `1.0.0`.
        """
        if not self.qualifies(candidate):
            return False
        if not self._orderable(than):
            return True
        return self._precedence(candidate, than) > 0

    def _orderable(self, version: str) -> bool:
        """Whether `version` has a place in this policy's order (qualifying or not)."""
        return self.qualifies(version)

    def _sorts_after(self, a: str, b: str) -> bool:
        """The total order `newest` uses: precedence first, then the greater string."""
        order = self._precedence(a, b)
        return order > 0 or (order == 0 and a > b)


@dataclass(frozen=True)
class SemverPolicy(VersionPolicy):
    """Versions that are semver (a leading "v" allowed) and fall inside an npm range.

    Pre-releases qualify only when `prereleases` is true. Then a pre-release qualifies when
    the range admits it by semver precedence *and* also admits the release it leads up to,
    so `^1.4.2` takes `1.5.0-rc.1` but not `2.0.0-rc.1`; it also qualifies when the range
    itself names a pre-release of the same x.y.z (npm's own rule: `>=2.0.0-rc.1` takes
    `2.0.0-rc.2`). See `_admits_by_precedence` for why the library alone does not suffice.
    """

    constraint: str
    prereleases: bool = False

    @classmethod
    def from_fields(cls, spec: Mapping[str, Any], field: str) -> SemverPolicy:
        """Validate the semver form; `VersionPolicy.parse` has already picked it."""
        constraint = spec["semver"]
        where = f"{field}.semver"
        if not isinstance(constraint, str) or not constraint.strip():
            raise ValueError(f"{where}: must be a version range like '>=1.4.0 <2' (use '*' for any version)")
        if any(not alternative.strip() for alternative in constraint.split("||")):
            # npm reads an empty alternative as "*": a stray "||" would admit every version.
            raise ValueError(f"{where}: empty alternative in {constraint!r} would admit every version")
        if nodesemver.valid_range(constraint, loose=False) is None:
            raise ValueError(
                f"{where}: invalid range {constraint!r}; use npm syntax such as "
                "'>=1.4.0 <2', '~1.4', '^1.4.2', '1.x' or '*'"
            )
        prereleases = spec.get("prereleases", False)
        if not isinstance(prereleases, bool):
            raise ValueError(f"{field}.prereleases: must be true or false, not {prereleases!r}")
        return cls(constraint=constraint, prereleases=prereleases)

    def qualifies(self, version: str) -> bool:
        parsed = _parse_semver(version)
        if parsed is None:
            return False
        range_ = _parse_range(self.constraint)
        if not parsed.prerelease:
            return bool(range_.test(parsed))
        if not self.prereleases:
            return False
        if range_.test(parsed):  # npm's rule: the range names a pre-release of this x.y.z
            return True
        release = nodesemver.make_semver(f"{parsed.major}.{parsed.minor}.{parsed.patch}", loose=False)
        return _admits_by_precedence(range_, parsed) and bool(range_.test(release))

    def describe(self) -> str:
        suffix = " (pre-releases included)" if self.prereleases else ""
        return f"semver {self.constraint}{suffix}"

    def _precedence(self, a: str, b: str) -> int:
        # Semver precedence: build metadata ("+...") and the "v" prefix do not count.
        return int(nodesemver.compare(a, b, False))

    def _orderable(self, version: str) -> bool:
        return _parse_semver(version) is not None


@dataclass(frozen=True)
class PatternPolicy(VersionPolicy):
    """Versions a regular expression finds, sorted by a key it extracts.

    The expression uses RE2 syntax and is applied like `re.search`: it may match anywhere in
    the version unless it is anchored, and `^`/`$` anchors are honoured (write
    `^build-(\\d+)$` to match the whole string; in RE2 `$` matches only at the very end, as
    `\\z` does). RE2 has no backreferences, lookarounds, atomic groups or possessive
    quantifiers; `parse` names the construct it refuses. The sort key is the named group
    `order` if the expression has one, else its first group, else the whole version. A
    version whose key group did not take part in the match does not qualify. Under
    `Order.NUMERICAL` the key must consist of ASCII digits only (build numbers, timestamps);
    a version with any other key does not qualify. Versions longer than `MAX_VERSION_LENGTH`
    never qualify.
    """

    pattern: str
    order: Order = Order.LEXICAL

    @classmethod
    def from_fields(cls, spec: Mapping[str, Any], field: str) -> PatternPolicy:
        """Validate the pattern form; `VersionPolicy.parse` has already picked it."""
        pattern = spec["pattern"]
        if not isinstance(pattern, str) or not pattern:
            raise ValueError(f"{field}.pattern: must be a non-empty regular expression, not {pattern!r}")
        try:
            compile_linear(pattern)
        except LinearRegexError as exc:
            raise ValueError(f"{field}.pattern: {pattern!r} {refusal(exc)}") from None
        order = spec.get("order", Order.LEXICAL.value)
        try:
            parsed_order = Order(order)
        except ValueError:
            raise ValueError(f"{field}.order: must be Numerical or Lexical, not {order!r}") from None
        return cls(pattern=pattern, order=parsed_order)

    def qualifies(self, version: str) -> bool:
        return self._key(version) is not None

    def describe(self) -> str:
        return f"pattern {self.pattern} ({self.order.value.lower()})"

    def _precedence(self, a: str, b: str) -> int:
        key_a, key_b = self._key(a), self._key(b)
        assert key_a is not None and key_b is not None  # only called with qualifying versions
        return (key_a > key_b) - (key_a < key_b)  # type: ignore[operator]

    def _key(self, version: str) -> int | str | None:
        """The sort key of `version`, or None if it does not qualify."""
        if not isinstance(version, str):
            return None
        if len(version) > MAX_VERSION_LENGTH:
            return None
        regex = compile_linear(self.pattern)
        match = regex.search(version)
        if match is None:
            return None
        if "order" in regex.groupindex:
            key = match.group("order")
        elif regex.groups:
            key = match.group(1)
        else:
            key = version
        if key is None:
            return None
        if self.order is Order.LEXICAL:
            return key
        return int(key) if _DIGITS.fullmatch(key) else None


# The CRDs bound an Image's version (and spec.version) at 128 characters; a longer string did
# not come from an Image and is never matched, so matching time stays bounded twice over.
MAX_VERSION_LENGTH = 128


def _reject_unknown(spec: Mapping[str, Any], allowed: tuple[str, ...], kind: str, field: str) -> None:
    """Fail on a field the policy form does not use: a typo ("prerelease") would otherwise be
    ignored silently and the policy would deploy versions its author meant to exclude."""
    for key in spec:
        if key not in allowed:
            raise ValueError(
                f"{field}.{key}: not a field of a {kind} policy (it takes {' and '.join(allowed)})"
            )


def _parse_semver(version: str) -> Any:
    """The version as a strict `nodesemver.SemVer` (a leading "v" allowed), or None.

    `nodesemver.valid` matches its pattern with `$`, which also matches before a trailing
    newline, and then strips the string; "1.4.0\\n" is not what CI meant to record, so any
    surrounding whitespace disqualifies a version here. Loose mode stays off: it would
    accept "=1.4.0" and "1.4.0beta".
    """
    if not isinstance(version, str) or version != version.strip():
        return None
    return nodesemver.valid(version, False)


@functools.lru_cache(maxsize=64)
def _parse_range(constraint: str) -> Any:
    """The parsed `nodesemver.Range`; cached because `newest` tests every Image against it."""
    return nodesemver.make_range(constraint, False)


def _admits_by_precedence(range_: Any, version: Any) -> bool:
    """Whether one `||` alternative of the range holds for `version` by semver precedence alone.

    node-semver 0.9.1 offers two behaviours for pre-releases and neither is this one.
    Without `include_prerelease`, a pre-release only matches an alternative that names a
    pre-release of the same x.y.z (npm's default), so `>=1.4.0` never admits `1.5.0-rc.1`.
    With `include_prerelease=True` the library builds the version with a flag that makes
    every comparison ignore its pre-release tag, so `1.5.0-rc.1` satisfies `>=1.5.0` and
    not `<1.5.0`, the reverse of semver precedence. `test_set(..., include_prerelease=True)`
    on a version parsed without that flag compares correctly and skips the npm rule.
    """
    return any(
        nodesemver.test_set(comparators, version, include_prerelease=True) for comparators in range_.set
    )
