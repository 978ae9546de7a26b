"""Chart values: computed from scratch on every deploy.

Precedence, lowest first: chart defaults (helm applies them) < Application values
< target values < the image keys. The result reaches helm as a values file, so user
strings are never parsed by `--set` (no key injection through `,` `=` `.` `{`).
"""

from __future__ import annotations

import copy
from typing import Any

from alecton.api.models import ImageValues


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Maps merge key by key; any other value in `override` replaces the base value.

    `null` in `override` is kept: helm reads it as "delete this chart default".
    """
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def split_image_reference(reference: str) -> tuple[str, str]:
    """`repo/name:tag` -> (`repo/name`, `tag`); `repo/name@sha256:x` -> (`repo/name`, `@sha256:x`).

    A registry port (`host:5000/name`) is not a tag. Without tag or digest the tag is `latest`.
    """
    if "@" in reference:
        repository, digest = reference.split("@", 1)
        return repository, "@" + digest
    last_slash = reference.rfind("/")
    colon = reference.rfind(":")
    if colon > last_slash:
        return reference[:colon], reference[colon + 1 :]
    return reference, "latest"


def set_path(values: dict[str, Any], dotted: str, value: Any) -> None:
    """Set `a.b.c` in nested maps, replacing any non-map found on the way."""
    node = values
    *parents, leaf = dotted.split(".")
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[leaf] = value


def compute_values(
    application_values: dict[str, Any],
    target_values: dict[str, Any],
    image_reference: str,
    image_values: ImageValues,
) -> dict[str, Any]:
    values = deep_merge(application_values, target_values)
    if image_values.ref:
        set_path(values, image_values.ref, image_reference)
    if image_values.repository and image_values.tag:
        repository, tag = split_image_reference(image_reference)
        set_path(values, image_values.repository, repository)
        set_path(values, image_values.tag, tag)
    return values
