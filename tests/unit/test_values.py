from __future__ import annotations

import copy
import pickle
import re
from typing import Any

import pytest
import yaml
from alecton.api.models import ImageValues
from alecton.helm.actions import _values_yaml
from alecton.reconcile.redact import Redactor
from alecton.reconcile.values import (
    MAX_VALUES_DEPTH,
    ValuesReference,
    ValuesSourceMissingError,
    compute_values,
    deep_merge,
    merge_values_from,
    secret_strings,
    set_path,
    split_image_reference,
    values_depth_error,
)
from hypothesis import given, settings
from hypothesis import strategies as st


def test_precedence_application_then_target_then_image() -> None:
    values = compute_values(
        {"replicaCount": 1, "config": {"a": 1, "b": 2}, "image": "ignored"},
        {"config": {"b": 3}, "extra": True},
        "registry.example.com/web:1.4.2",
        ImageValues(),
    )
    assert values == {
        "replicaCount": 1,
        "config": {"a": 1, "b": 3},
        "extra": True,
        "image": "registry.example.com/web:1.4.2",
    }


def test_inputs_are_not_mutated() -> None:
    app = {"config": {"a": 1}}
    target = {"config": {"b": 2}}
    compute_values(app, target, "x:1", ImageValues())
    assert app == {"config": {"a": 1}} and target == {"config": {"b": 2}}


def test_null_override_is_kept_for_helm_to_delete_the_default() -> None:
    assert deep_merge({"a": {"b": 1}}, {"a": None}) == {"a": None}


def test_split_form_sets_repository_and_tag_only() -> None:
    values = compute_values(
        {},
        {},
        "host:5000/team/web:2.0",
        ImageValues(ref=None, repository="image.repository", tag="image.tag"),
    )
    assert values == {"image": {"repository": "host:5000/team/web", "tag": "2.0"}}


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("web:1.0", ("web", "1.0")),
        ("host:5000/web", ("host:5000/web", "latest")),
        ("host:5000/web:3", ("host:5000/web", "3")),
        ("web@sha256:abc", ("web", "@sha256:abc")),
    ],
)
def test_split_image_reference(reference: str, expected: tuple[str, str]) -> None:
    assert split_image_reference(reference) == expected


def test_set_path_replaces_scalars_on_the_way() -> None:
    values = {"image": "old"}
    set_path(values, "image.ref", "new")
    assert values == {"image": {"ref": "new"}}


def test_values_file_keeps_tricky_strings_literal() -> None:
    tricky = {"s": "a,b=c", "n": "null", "t": "true", "f": "1.0", "b": "{x}", "nl": "a\nb", "u": "☃"}
    assert yaml.safe_load(_values_yaml(tricky)) == tricky


# ----- iterative deep_merge keeps the recursive version's results ----------------------------


def _recursive_deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """The deep_merge this module had before it became iterative: the reference for results."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _recursive_deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


_KEYS = st.sampled_from(["a", "b", "c", "image", "tag"])
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_KEYS, children, max_size=4),
    max_leaves=20,
)
_MAPS = st.dictionaries(_KEYS, _VALUES, max_size=5)


@settings(max_examples=300, deadline=None)
@given(_MAPS, _MAPS)
def test_deep_merge_matches_the_recursive_version(base: dict[str, Any], override: dict[str, Any]) -> None:
    base_before, override_before = copy.deepcopy(base), copy.deepcopy(override)
    # repr, not ==: key order reaches the values file and must match too.
    assert repr(deep_merge(base, override)) == repr(_recursive_deep_merge(base, override))
    assert base == base_before and override == override_before


def _chain(levels: int, key: str = "a", leaf: Any = "leaf") -> dict[str, Any]:
    """`levels` maps nested under `key`, built with a loop (no recursion to build it either)."""
    root: dict[str, Any] = {}
    node = root
    for _ in range(levels - 1):
        child: dict[str, Any] = {}
        node[key] = child
        node = child
    node[key] = leaf
    return root


def _bottom(values: dict[str, Any], key: str = "a") -> Any:
    node: Any = values
    while isinstance(node, dict) and key in node:
        node = node[key]
    return node


def test_deep_merge_of_very_deep_input_does_not_exhaust_the_stack() -> None:
    base = _chain(100_000, leaf={"keep": 1})
    override = _chain(100_000, leaf={"add": 2})
    merged = deep_merge(base, override)
    node: Any = merged
    for _ in range(100_000):
        node = node["a"]
    assert node == {"keep": 1, "add": 2}
    assert _bottom(base) == {"keep": 1}  # the inputs are untouched
    assert _bottom(override) == {"add": 2}


def test_deep_merge_changes_a_map_shared_by_two_keys_under_the_merged_key_only() -> None:
    shared = {"x": 1, "inner": {"y": 1}}
    base = {"a": shared, "b": shared}
    merged = deep_merge(base, {"a": {"inner": {"z": 2}}})
    assert merged == {"a": {"x": 1, "inner": {"y": 1, "z": 2}}, "b": {"x": 1, "inner": {"y": 1}}}
    assert repr(merged) == repr(_recursive_deep_merge(base, {"a": {"inner": {"z": 2}}}))
    assert shared == {"x": 1, "inner": {"y": 1}}


def test_deep_merge_keeps_yaml_anchors_shared_instead_of_expanding_them() -> None:
    # 2**40 paths if the anchors were expanded into a tree.
    node: Any = ["x"]
    for _ in range(40):
        node = [node, node]
    merged = deep_merge({"big": node}, {"small": 1})
    assert merged["big"][0] is merged["big"][1]
    assert merged["big"] is not node


def test_deep_merge_of_cyclic_input() -> None:
    cyclic: dict[str, Any] = {"a": 1}
    cyclic["self"] = cyclic
    merged = deep_merge(cyclic, {"a": 2})
    assert merged["a"] == 2 and merged["self"] is merged
    # Both cyclic along the same key: the walk would never end.
    other: dict[str, Any] = {}
    other["self"] = other
    with pytest.raises(ValueError, match="deeper than 1000 levels"):
        deep_merge(cyclic, other)


# ----- depth check ----------------------------------------------------------------------------


def test_depth_check_of_100000_levels_answers_without_recursion() -> None:
    message = values_depth_error(_chain(100_000))
    assert message is not None and "nested deeper than 64 levels" in message

    nested_lists: list[Any] = []
    node = nested_lists
    for _ in range(100_000):
        child: list[Any] = []
        node.append(child)
        node = child
    assert values_depth_error({"l": nested_lists}) is not None


def test_depth_limit_is_exact() -> None:
    assert values_depth_error(_chain(MAX_VALUES_DEPTH)) is None
    assert values_depth_error(_chain(MAX_VALUES_DEPTH + 1)) is not None
    # An empty map is a level too.
    assert values_depth_error(_chain(MAX_VALUES_DEPTH, leaf={})) is not None
    assert values_depth_error(_chain(3), limit=3) is None
    assert values_depth_error(_chain(3), limit=2) is not None


def test_lists_count_as_levels() -> None:
    values = {"a": [[{"b": "leaf"}]]}  # map, list, list, map
    assert values_depth_error(values, limit=4) is None
    assert values_depth_error(values, limit=3) == (
        "values are nested deeper than 3 levels (at values.a[0][0]): flatten them"
    )


@pytest.mark.parametrize("values", [{}, {"a": 1}, "text", 5, None, []])
def test_shallow_values_pass(values: Any) -> None:
    assert values_depth_error(values) is None


def test_depth_message_shows_where_and_the_first_eight_keys() -> None:
    message = values_depth_error(_chain(200), where="spec.values")
    assert message == (
        "values are nested deeper than 64 levels (at spec.values.a.a.a.a.a.a.a.a...): flatten them"
    )


def test_depth_message_is_one_line_whatever_the_keys() -> None:
    message = values_depth_error({"bad\nkey": {"x.y": {"c": {}}}}, limit=2)
    assert message is not None and "\n" not in message
    assert "(at values['bad\\nkey']['x.y']):" in message


def test_depth_check_of_cyclic_values_reports_them_too_deep() -> None:
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    assert values_depth_error(cyclic) is not None


def test_depth_check_of_nested_anchors_does_not_expand_them() -> None:
    node: Any = ["x"]
    for _ in range(60):
        node = [node, node, node]  # 3**60 paths if walked as a tree
    assert values_depth_error(node, limit=61) is None
    assert values_depth_error(node, limit=60) is not None


# ----- valuesFrom references ------------------------------------------------------------------


def test_reference_defaults() -> None:
    assert ValuesReference.parse({"kind": "Secret", "name": "db"}, "spec.valuesFrom[0]") == ValuesReference(
        kind="Secret", name="db", key="values.yaml", target_path="", optional=False
    )


def test_reference_with_every_field() -> None:
    raw = {
        "kind": "ConfigMap",
        "name": "web.cfg",
        "key": "g.txt",
        "targetPath": "a.b-c.d_e",
        "optional": True,
    }
    assert ValuesReference.parse(raw, "x") == ValuesReference(
        "ConfigMap", "web.cfg", "g.txt", "a.b-c.d_e", True
    )


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        ("Secret/db", "must be an object"),
        (None, "must be an object"),
        ({"name": "db"}, ".kind must be Secret or ConfigMap"),
        ({"kind": "Pod", "name": "db"}, ".kind must be Secret or ConfigMap, not 'Pod'"),
        ({"kind": "secret", "name": "db"}, ".kind must be Secret or ConfigMap"),
        ({"kind": "Secret"}, ".name is required"),
        ({"kind": "Secret", "name": ""}, ".name is required"),
        ({"kind": "Secret", "name": 5}, ".name must be a Secret name"),
        ({"kind": "Secret", "name": "Bad_Name"}, ".name must be a Secret name"),
        ({"kind": "Secret", "name": "a" * 254}, ".name must be a Secret name"),
        ({"kind": "Secret", "name": "db", "key": 5}, ".key must be a string, not int"),
        ({"kind": "Secret", "name": "db", "key": ["a"]}, ".key must be a string, not list"),
        ({"kind": "Secret", "name": "db", "key": ""}, ".key must be a Secret data key"),
        ({"kind": "Secret", "name": "db", "key": "a/b"}, ".key must be a Secret data key"),
        ({"kind": "Secret", "name": "db", "targetPath": "a..b"}, ".targetPath must be a dotted path"),
        ({"kind": "Secret", "name": "db", "targetPath": ".a"}, ".targetPath must be a dotted path"),
        ({"kind": "Secret", "name": "db", "targetPath": "a."}, ".targetPath must be a dotted path"),
        ({"kind": "Secret", "name": "db", "targetPath": "a b"}, ".targetPath must be a dotted path"),
        ({"kind": "Secret", "name": "db", "targetPath": 5}, ".targetPath must be a string"),
        ({"kind": "Secret", "name": "db", "optional": "yes"}, ".optional must be true or false"),
    ],
)
def test_reference_parse_errors_name_the_entry(raw: Any, complaint: str) -> None:
    with pytest.raises(ValueError, match=re.escape(complaint)) as caught:
        ValuesReference.parse(raw, "spec.valuesFrom[2]")
    assert str(caught.value).startswith("spec.valuesFrom[2]")


# ----- merging valuesFrom ---------------------------------------------------------------------

SECRET = ValuesReference("Secret", "db")
CONFIG = ValuesReference("ConfigMap", "web")


def test_sources_merge_in_order_over_the_base() -> None:
    base = {"keep": 1, "nested": {"x": 1, "y": 1}, "b": 0}
    sources: list[tuple[ValuesReference, str | None]] = [
        (CONFIG, "nested: {x: 2}\nb: 1\n"),
        (SECRET, "nested: {y: 3}\nb: 2\n"),
    ]
    assert merge_values_from(base, sources) == {"keep": 1, "nested": {"x": 2, "y": 3}, "b": 2}
    assert base == {"keep": 1, "nested": {"x": 1, "y": 1}, "b": 0}


def test_no_sources_is_a_copy_of_the_base() -> None:
    base = {"a": {"b": 1}}
    merged = merge_values_from(base, [])
    assert merged == base and merged is not base and merged["a"] is not base["a"]


def test_documented_precedence_order() -> None:
    # chart defaults < Application valuesFrom < Application values < target valuesFrom
    # < target values < image keys
    app_from = [(CONFIG, "level: app-from\nfrom_app_from: 1\nimage: from-app-from\n")]
    app_values = {"level": "app-values", "only_app": 1}
    target_from = [(SECRET, "level: target-from\nonly_target_from: 1\n")]
    target_values = {"only_target": 1}
    values = merge_values_from({}, app_from)
    values = deep_merge(values, app_values)
    values = merge_values_from(values, target_from)
    values = compute_values(values, target_values, "r/web:1", ImageValues())
    assert values == {
        "level": "target-from",
        "from_app_from": 1,
        "image": "r/web:1",
        "only_app": 1,
        "only_target_from": 1,
        "only_target": 1,
    }
    assert compute_values(values, {"level": "target"}, "r/web:1", ImageValues())["level"] == "target"


def test_missing_optional_source_is_skipped() -> None:
    optional = ValuesReference("Secret", "maybe", optional=True)
    assert merge_values_from({"a": 1}, [(optional, None), (CONFIG, "b: 2")]) == {"a": 1, "b": 2}


def test_missing_required_source_names_kind_name_and_key() -> None:
    reference = ValuesReference("Secret", "db-creds", key="extra.yaml")
    with pytest.raises(ValuesSourceMissingError) as caught:
        merge_values_from({}, [(CONFIG, "a: 1"), (reference, None)])
    assert isinstance(caught.value, ValueError)
    assert "Secret/db-creds" in str(caught.value) and "extra.yaml" in str(caught.value)
    assert caught.value.reference == reference
    copied = pickle.loads(pickle.dumps(caught.value))
    assert str(copied) == str(caught.value) and copied.reference == reference


def test_target_path_sets_the_text_as_a_string() -> None:
    base = {"image": "scalar", "config": {"keep": 1}}
    sources: list[tuple[ValuesReference, str | None]] = [
        (ValuesReference("Secret", "s", key="k", target_path="image.pullSecret"), "true"),
        (ValuesReference("ConfigMap", "c", key="k", target_path="config.file"), "a: b\nc: [1, 2]\n"),
        (ValuesReference("ConfigMap", "d", key="k", target_path="top"), ""),
    ]
    assert merge_values_from(base, sources) == {
        "image": {"pullSecret": "true"},
        "config": {"keep": 1, "file": "a: b\nc: [1, 2]\n"},
        "top": "",
    }


def test_target_path_replaces_a_map_at_its_end() -> None:
    reference = ValuesReference("ConfigMap", "c", target_path="config")
    assert merge_values_from({"config": {"a": 1}}, [(reference, "text")]) == {"config": "text"}


def test_empty_or_comment_only_yaml_is_no_values() -> None:
    assert merge_values_from({"a": 1}, [(CONFIG, ""), (CONFIG, "# nothing here\n")]) == {"a": 1}


@pytest.mark.parametrize(
    ("text", "shape"),
    [
        ("- hunter22-list\n", "not a list"),
        ("hunter22-scalar", "not a single value"),
        ("42", "not a single value"),
    ],
)
def test_yaml_that_is_not_a_map_is_refused_without_echoing_it(text: str, shape: str) -> None:
    with pytest.raises(ValueError, match=shape) as caught:
        merge_values_from({}, [(SECRET, text)])
    assert "Secret/db key values.yaml" in str(caught.value)
    assert "hunter22" not in str(caught.value) and "42" not in str(caught.value)


def test_invalid_yaml_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="is not valid YAML") as caught:
        merge_values_from({}, [(SECRET, "ok: 1\npassword: [hunter22-unclosed\n")])
    assert "Secret/db key values.yaml" in str(caught.value)
    assert "hunter22" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_too_deep_yaml_is_refused_without_its_keys() -> None:
    text = "".join(f"{'  ' * level}secretkey{level}:\n" for level in range(70)) + "  " * 70 + "x: 1\n"
    with pytest.raises(ValueError, match="nested deeper than 64 levels") as caught:
        merge_values_from({}, [(SECRET, text)])
    assert "secretkey" not in str(caught.value)


def test_self_referencing_yaml_anchor_is_refused() -> None:
    with pytest.raises(ValueError, match="nested deeper"):
        merge_values_from({}, [(CONFIG, "a: &loop\n  b: *loop\n")])


# ----- strings from Secrets -------------------------------------------------------------------


def test_secret_strings_come_from_secrets_only() -> None:
    sources: list[tuple[ValuesReference, str | None]] = [
        (SECRET, "db:\n  password: hunter22\n  port: 5432\n  hosts: [one.example, two.example]\n"),
        (CONFIG, "public: not-a-secret\n"),
        (ValuesReference("Secret", "tls", key="tls.key", target_path="tls.key"), "-----KEY-----\nabc\n"),
        (ValuesReference("Secret", "gone", optional=True), None),
    ]
    assert secret_strings(sources) == [
        "hunter22",
        "5432",  # a number from a Secret is a secret too (helm prints it)
        "5432",
        "one.example",
        "two.example",
        "-----KEY-----\nabc\n",
    ]


def test_secret_text_that_is_not_a_map_is_kept_whole() -> None:
    broken = "password: [hunter22-unclosed\n"
    assert secret_strings([(SECRET, broken)]) == [broken]
    assert secret_strings([(SECRET, "- hunter22-in-a-list\n")]) == [
        "- hunter22-in-a-list\n",
        "hunter22-in-a-list",
    ]


def test_redactor_from_secret_strings_hides_them_in_helm_errors() -> None:
    sources: list[tuple[ValuesReference, str | None]] = [(SECRET, "password: Tr0ub4dor-3\n")]
    redactor = Redactor(secret_strings(sources))
    values = merge_values_from({}, sources)
    where = "Error: execution error at (web/templates/check.yaml:3:4)"
    error = f"{where}: value {values['password']} is not accepted"
    assert redactor.redact(error) == f"{where}: value [redacted] is not accepted"
