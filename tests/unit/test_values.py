from __future__ import annotations

import pytest
import yaml
from alecton.api.models import ImageValues
from alecton.helm.actions import _values_yaml
from alecton.reconcile.values import compute_values, deep_merge, set_path, split_image_reference


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
