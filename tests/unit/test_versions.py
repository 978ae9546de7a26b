from __future__ import annotations

import itertools
from random import Random

import pytest
from alecton.reconcile.versions import Order, PatternPolicy, SemverPolicy, VersionPolicy
from hypothesis import given
from hypothesis import strategies as st


def semver(constraint: str, prereleases: bool = False) -> VersionPolicy:
    return VersionPolicy.parse({"semver": constraint, "prereleases": prereleases})


def pattern(regex: str, order: str | None = None) -> VersionPolicy:
    spec = {"pattern": regex} if order is None else {"pattern": regex, "order": order}
    return VersionPolicy.parse(spec)


# ---------------------------------------------------------------------------
# semver: constraint forms


@pytest.mark.parametrize(
    ("constraint", "inside", "outside"),
    [
        (">=1.4.0 <2", ["1.4.0", "1.9.9", "1.10.0"], ["1.3.9", "2.0.0", "0.9.0"]),
        ("~1.4", ["1.4.0", "1.4.99"], ["1.3.9", "1.5.0"]),
        ("~1.4.2", ["1.4.2", "1.4.7"], ["1.4.1", "1.5.0"]),
        ("^1.4.2", ["1.4.2", "1.99.0"], ["1.4.1", "2.0.0"]),
        ("^0.4.2", ["0.4.2", "0.4.9"], ["0.5.0", "1.0.0"]),
        ("1.x", ["1.0.0", "1.99.99"], ["0.9.9", "2.0.0"]),
        ("*", ["0.0.1", "1.0.0", "99.0.0"], []),
        ("1.2.3", ["1.2.3", "v1.2.3"], ["1.2.4"]),
        ("1.2.3 - 1.4", ["1.2.3", "1.4.99"], ["1.2.2", "1.5.0"]),
        ("^1.0.0 || >=3.1.0 <3.2", ["1.5.0", "3.1.4"], ["2.0.0", "3.2.0", "0.1.0"]),
    ],
)
def test_semver_constraint_forms(constraint: str, inside: list[str], outside: list[str]) -> None:
    policy = semver(constraint)
    for version in inside:
        assert policy.qualifies(version), version
    for version in outside:
        assert not policy.qualifies(version), version


def test_semver_v_prefix_is_accepted() -> None:
    policy = semver(">=1.4.0 <2")
    assert policy.qualifies("v1.4.0")
    assert policy.newest(["1.4.0", "v1.5.0", "1.4.9"]) == "v1.5.0"


@pytest.mark.parametrize(
    "version",
    ["1.4", "1", "latest", "main-abc123", "", "=1.4.0", "V1.4.0", "01.4.0", "1.4.0.1", "1.4.0\n", " 1.4.0"],
)
def test_semver_invalid_versions_do_not_qualify(version: str) -> None:
    assert not semver("*").qualifies(version)


def test_semver_non_string_versions_do_not_qualify() -> None:
    policy = semver("*")
    assert not policy.qualifies(None)  # type: ignore[arg-type]
    assert not policy.qualifies(140)  # type: ignore[arg-type]


def test_semver_newest_skips_invalid_versions() -> None:
    assert semver("*").newest(["latest", "1.0.0", "2.0", "main"]) == "1.0.0"
    assert semver("*").newest(["latest", "main"]) is None
    assert semver("*").newest([]) is None


def test_semver_build_metadata_is_accepted_and_ignored_for_precedence() -> None:
    policy = semver("^1")
    assert policy.qualifies("1.2.0+build.7")
    assert policy.newest(["1.2.0+build.7", "1.1.0"]) == "1.2.0+build.7"
    assert not policy.is_newer("1.2.0+build.8", "1.2.0+build.7")


# ---------------------------------------------------------------------------
# semver: pre-releases


def test_prereleases_excluded_by_default() -> None:
    policy = semver(">=1.4.0 <2")
    assert not policy.qualifies("1.5.0-rc.1")
    assert policy.newest(["1.4.0", "1.5.0-rc.1"]) == "1.4.0"


def test_prereleases_excluded_even_when_the_range_names_one() -> None:
    # npm would admit 2.0.0-rc.2 here; the policy's switch decides instead.
    assert not semver(">=2.0.0-rc.1").qualifies("2.0.0-rc.2")


def test_prereleases_included() -> None:
    policy = semver(">=1.4.0 <2", prereleases=True)
    assert policy.qualifies("1.5.0-rc.1")
    assert policy.qualifies("v1.5.0-rc.1")
    assert policy.newest(["1.4.0", "1.5.0-rc.1"]) == "1.5.0-rc.1"
    assert policy.newest(["1.5.0-rc.1", "1.5.0"]) == "1.5.0"  # the release outranks its rc


def test_prereleases_follow_semver_precedence() -> None:
    policy = semver(">=1.5.0", prereleases=True)
    # 1.5.0-rc.1 comes before 1.5.0, so it is below the range.
    assert not policy.qualifies("1.5.0-rc.1")
    assert policy.qualifies("1.6.0-rc.1")
    assert semver(">=1.4.0 <1.5.0", prereleases=True).qualifies("1.4.1-rc.1")
    ordered = [
        "1.6.0-alpha",
        "1.6.0-alpha.1",
        "1.6.0-alpha.beta",
        "1.6.0-beta.2",
        "1.6.0-beta.11",
        "1.6.0-rc.1",
    ]
    for older, newer in itertools.pairwise(ordered):
        assert policy.is_newer(newer, older), (newer, older)
        assert not policy.is_newer(older, newer), (older, newer)


@pytest.mark.parametrize("constraint", ["^1.4.2", "1.x", "~1.9", "<2", ">=1.4.0 <2"])
def test_prerelease_of_the_next_major_stays_outside(constraint: str) -> None:
    # 2.0.0-rc.1 precedes 2.0.0, but a range that stops before 2.0.0 does not mean it.
    assert not semver(constraint, prereleases=True).qualifies("2.0.0-rc.1")


def test_prerelease_needs_its_release_inside_the_range() -> None:
    # Conservative where npm (includePrerelease) is not: 1.5.0-rc.1 < 1.5.0, but the range
    # does not take 1.5.0 itself, and 1.4.0-rc.1 < 1.4.0 is below `~1.4` by precedence.
    assert not semver("<1.5.0", prereleases=True).qualifies("1.5.0-rc.1")
    assert not semver("~1.4", prereleases=True).qualifies("1.4.0-rc.1")
    assert semver("~1.4", prereleases=True).qualifies("1.4.1-rc.1")


def test_prerelease_named_by_the_range_qualifies() -> None:
    assert semver(">=2.0.0-rc.1 <2.0.0", prereleases=True).qualifies("2.0.0-rc.2")
    assert semver("2.0.0-rc.1", prereleases=True).qualifies("2.0.0-rc.1")
    assert not semver(">=2.0.0-rc.3", prereleases=True).qualifies("2.0.0-rc.2")


def test_star_admits_prereleases_when_wanted() -> None:
    assert semver("*", prereleases=True).qualifies("0.1.0-dev.3")
    assert not semver("*").qualifies("0.1.0-dev.3")


# ---------------------------------------------------------------------------
# newest, exclusions, ties, is_newer


def test_newest_with_exclusions() -> None:
    policy = semver("^1")
    versions = ["1.0.0", "1.2.0", "1.1.0", "2.0.0"]
    assert policy.newest(versions) == "1.2.0"
    assert policy.newest(versions, exclude={"1.2.0"}) == "1.1.0"
    assert policy.newest(versions, exclude=["1.2.0", "1.1.0", "1.0.0"]) is None


def test_newest_accepts_any_iterable_once() -> None:
    assert semver("*").newest(iter(["1.0.0", "3.0.0", "2.0.0"])) == "3.0.0"


def test_semver_ties_pick_the_greater_string() -> None:
    policy = semver("*")
    assert policy.newest(["1.0.0", "v1.0.0"]) == "v1.0.0"
    assert policy.newest(["v1.0.0", "1.0.0"]) == "v1.0.0"
    assert policy.newest(["1.0.0+b", "1.0.0+a"]) == "1.0.0+b"


def test_exclusion_is_by_exact_string() -> None:
    # "v1.0.0" failed; "1.0.0" is another Image even though it ranks level.
    assert semver("*").newest(["1.0.0", "v1.0.0"], exclude={"v1.0.0"}) == "1.0.0"


def test_is_newer() -> None:
    policy = semver("^1")
    assert policy.is_newer("1.3.0", "1.2.0")
    assert not policy.is_newer("1.2.0", "1.3.0")
    assert not policy.is_newer("1.2.0", "1.2.0")
    assert not policy.is_newer("v1.2.0", "1.2.0")  # level is not newer
    assert not policy.is_newer("2.0.0", "1.2.0")  # candidate does not qualify
    assert not policy.is_newer("junk", "1.2.0")
    assert policy.is_newer("1.0.0", "0.9.0")  # `than` does not qualify
    assert policy.is_newer("1.0.0", "junk")


# ---------------------------------------------------------------------------
# pattern policies


def test_pattern_numerical_versus_lexical() -> None:
    versions = ["build-9", "build-10", "build-2"]
    assert pattern(r"^build-(\d+)$", "Numerical").newest(versions) == "build-10"
    assert pattern(r"^build-(\d+)$", "Lexical").newest(versions) == "build-9"
    assert pattern(r"^build-(\d+)$").newest(versions) == "build-9"  # Lexical is the default


def test_pattern_named_group_is_the_key() -> None:
    policy = pattern(r"^(?P<branch>[a-z]+)-(?P<order>\d+)$", "Numerical")
    # The first group (branch) would put "zeta-1" first; the `order` group decides.
    assert policy.newest(["zeta-1", "alpha-20", "beta-3"]) == "alpha-20"


def test_pattern_first_group_is_the_key() -> None:
    policy = pattern(r"^(\d+)-([a-z]+)$", "Numerical")
    assert policy.newest(["10-a", "9-z"]) == "10-a"


def test_pattern_whole_version_is_the_key() -> None:
    policy = pattern(r"^release-")
    assert policy.newest(["release-b", "release-a", "other-z"]) == "release-b"
    # Without a group the whole version must be an integer for a numerical order.
    numbers = pattern(r"^\d+$", "Numerical")
    assert numbers.newest(["9", "10", "08"]) == "10"


def test_pattern_search_semantics_and_anchors() -> None:
    unanchored = pattern(r"build-(\d+)", "Numerical")
    assert unanchored.qualifies("ci/build-12/amd64")
    anchored = pattern(r"^build-(\d+)$", "Numerical")
    assert not anchored.qualifies("ci/build-12/amd64")
    assert not anchored.qualifies("build-12-dirty")
    assert anchored.qualifies("build-12")


def test_pattern_numerical_key_must_be_an_integer() -> None:
    policy = pattern(r"^build-(.+)$", "Numerical")
    assert policy.qualifies("build-20240501120000")
    for version in ["build-1.5", "build-x", "build--3", "build-+3", "build-1_000", "build-\u0663"]:
        assert not policy.qualifies(version), version
    assert pattern(r"^build-(.+)$", "Lexical").qualifies("build-1.5")


def test_pattern_key_group_that_did_not_take_part_does_not_qualify() -> None:
    policy = pattern(r"^build(?:-(\d+))?$", "Lexical")
    assert policy.qualifies("build-3")
    assert not policy.qualifies("build")


def test_pattern_ties_pick_the_greater_string() -> None:
    policy = pattern(r"^build-(\d+)$", "Numerical")
    assert policy.newest(["build-01", "build-1"]) == "build-1"
    assert policy.newest(["build-1", "build-01"]) == "build-1"
    assert not policy.is_newer("build-1", "build-01")


def test_pattern_is_newer_and_exclusions() -> None:
    policy = pattern(r"^build-(\d+)$", "Numerical")
    assert policy.is_newer("build-10", "build-9")
    assert not policy.is_newer("build-9", "build-10")
    assert policy.is_newer("build-1", "nightly")
    assert policy.newest(["build-9", "build-10"], exclude={"build-10"}) == "build-9"


def test_pattern_non_string_versions_do_not_qualify() -> None:
    assert not pattern(".*").qualifies(None)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# parse and describe


def test_parse_builds_the_right_forms() -> None:
    assert semver(">=1.4.0 <2") == SemverPolicy(constraint=">=1.4.0 <2", prereleases=False)
    assert VersionPolicy.parse({"semver": "*"}) == SemverPolicy(constraint="*")
    assert pattern(r"^b-(\d+)$", "Numerical") == PatternPolicy(pattern=r"^b-(\d+)$", order=Order.NUMERICAL)
    assert VersionPolicy.parse({"pattern": "x", "order": None}) == PatternPolicy(pattern="x")


def test_describe() -> None:
    assert semver(">=1.4.0 <2").describe() == "semver >=1.4.0 <2"
    assert semver("^1", prereleases=True).describe() == "semver ^1 (pre-releases included)"
    assert pattern(r"^build-(\d+)$", "Numerical").describe() == r"pattern ^build-(\d+)$ (numerical)"
    assert pattern(r"^v(.*)$").describe() == "pattern ^v(.*)$ (lexical)"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, r"^versions: give exactly one of semver or pattern$"),
        ({"semver": "*", "pattern": ".*"}, r"^versions: give exactly one of semver or pattern$"),
        ({"prereleases": True}, r"^versions: give exactly one of semver or pattern$"),
        ("^1", r"^versions: must be an object"),
        ({"semver": ">=banana"}, r"^versions\.semver: invalid range '>=banana'"),
        ({"semver": "1.2.3.4"}, r"^versions\.semver: invalid range"),
        ({"semver": ""}, r"^versions\.semver: must be a version range"),
        ({"semver": "  "}, r"^versions\.semver: must be a version range"),
        ({"semver": 2}, r"^versions\.semver: must be a version range"),
        ({"semver": "^1 ||"}, r"^versions\.semver: empty alternative in '\^1 \|\|'"),
        ({"semver": "*", "prereleases": "yes"}, r"^versions\.prereleases: must be true or false, not 'yes'$"),
        ({"semver": "*", "order": "Lexical"}, r"^versions\.order: not a field of a semver policy"),
        ({"semver": "*", "prerelease": True}, r"^versions\.prerelease: not a field of a semver policy"),
        ({"pattern": "(unclosed"}, r"^versions\.pattern: '\(unclosed' is not a valid regular expression: "),
        ({"pattern": ""}, r"^versions\.pattern: must be a non-empty regular expression"),
        ({"pattern": 5}, r"^versions\.pattern: must be a non-empty regular expression"),
        (
            {"pattern": "x", "order": "numeric"},
            r"^versions\.order: must be Numerical or Lexical, not 'numeric'$",
        ),
        ({"pattern": "x", "order": ["Lexical"]}, r"^versions\.order: must be Numerical or Lexical"),
        ({"pattern": "x", "prereleases": True}, r"^versions\.prereleases: not a field of a pattern policy"),
    ],
)
def test_parse_errors_name_the_field(spec: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        VersionPolicy.parse(spec)


def test_parse_error_uses_the_callers_path() -> None:
    with pytest.raises(ValueError, match=r"^spec\.promotion\.versions\.semver: invalid range"):
        VersionPolicy.parse({"semver": "nope"}, field="spec.promotion.versions")


# ---------------------------------------------------------------------------
# Properties

_semver_strings = st.builds(
    "{}{}.{}.{}{}{}".format,
    st.sampled_from(["", "v"]),
    st.integers(0, 3),
    st.integers(0, 3),
    st.integers(0, 3),
    st.sampled_from(["", "", "-rc.1", "-rc.2", "-alpha", "-0"]),
    st.sampled_from(["", "", "+b1", "+b2"]),
)
_versions = st.lists(
    st.one_of(_semver_strings, st.sampled_from(["latest", "1.2", "main", "v", ""])), max_size=12
)
_policies = st.builds(
    semver,
    st.sampled_from(["*", ">=1.0.0 <3", "^1.1", "~2.0", "1.x || 3.x", "<=2.1.1", ">=1.0.0-rc.2 <1.0.0"]),
    st.booleans(),
)
_build_versions = st.lists(
    st.one_of(
        st.builds("build-{}".format, st.integers(0, 200)),
        st.builds("build-0{}".format, st.integers(0, 20)),
        st.sampled_from(["build-x", "nightly", "build-", "build-1.5"]),
    ),
    max_size=12,
)
_pattern_policies = st.builds(
    pattern,
    st.sampled_from([r"^build-(\d+)$", r"^build-(.*)$", r"build"]),
    st.sampled_from(["Numerical", "Lexical"]),
)


@st.composite
def _cases(draw: st.DrawFn) -> tuple[VersionPolicy, list[str], set[str]]:
    if draw(st.booleans()):
        policy, versions = draw(_policies), draw(_versions)
    else:
        policy, versions = draw(_pattern_policies), draw(_build_versions)
    exclude = set(draw(st.lists(st.sampled_from(versions), max_size=4))) if versions else set()
    return policy, versions, exclude


@given(_cases())
def test_newest_is_a_qualifying_candidate_and_nothing_is_newer(
    case: tuple[VersionPolicy, list[str], set[str]],
) -> None:
    policy, versions, exclude = case
    candidates = [v for v in versions if policy.qualifies(v) and v not in exclude]
    best = policy.newest(versions, exclude)
    if not candidates:
        assert best is None
        return
    assert best in candidates
    assert not any(policy.is_newer(v, best) for v in candidates)


@given(_cases(), st.randoms(use_true_random=False))
def test_newest_does_not_depend_on_listing_order(
    case: tuple[VersionPolicy, list[str], set[str]], random: Random
) -> None:
    policy, versions, exclude = case
    shuffled = list(versions)
    random.shuffle(shuffled)
    assert policy.newest(shuffled, exclude) == policy.newest(versions, exclude)


@given(_cases())
def test_is_newer_is_a_strict_order(case: tuple[VersionPolicy, list[str], set[str]]) -> None:
    policy, versions, _ = case
    for a in versions:
        assert not policy.is_newer(a, a)
        for b in versions:
            if policy.qualifies(a) and policy.qualifies(b):
                assert not (policy.is_newer(a, b) and policy.is_newer(b, a))


def test_never_newer_than_a_version_outside_the_range_that_sorts_above() -> None:
    """A hotfix deployed by hand (2.1.0) under a policy `<2`: automation must not go down."""
    policy = VersionPolicy.parse({"semver": ">=1.4.0 <2"})
    assert not policy.is_newer("1.9.0", "2.1.0")
    assert policy.is_newer("1.9.0", "1.2.0")  # below the range: going up is fine
    assert policy.is_newer("1.9.0", "latest")  # not orderable at all
