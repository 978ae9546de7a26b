"""The custom resources as the faces write and read them: names, labels, request bodies,
field selectors, and the parts of an object's JSON (spec, status, name) whatever its shape.

Pure, so they are unit-tested without a cluster.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from alecton.api.models import API_VERSION, release_name

_DNS_INVALID = re.compile(r"[^a-z0-9.-]+")
_LABEL_INVALID = re.compile(r"[^A-Za-z0-9_.-]+")

IMAGE_NAME_LABEL = "alecton.dev/image-name"
IMAGE_VERSION_LABEL = "alecton.dev/image-version"


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def image_object_name(name: str, version: str) -> str:
    """A valid, deterministic object name for an Image: `<name>-<version>`, cleaned up.

    When cleaning changed anything (uppercase, `+`, `_`, overlong), a short hash of the
    original pair keeps different versions from colliding.
    """
    raw = f"{name}-{version}"
    cleaned = _DNS_INVALID.sub("-", raw.lower()).strip("-.")
    if cleaned == raw and len(cleaned) <= 253:
        return cleaned
    return f"{cleaned[:240].rstrip('-.')}-{_short_hash(raw)}"


def label_value(value: str) -> str:
    cleaned = _LABEL_INVALID.sub("-", value).strip("-_.")
    if cleaned == value and len(cleaned) <= 63:
        return cleaned
    return f"{cleaned[:54].rstrip('-_.')}-{_short_hash(value)}"


def image_body(
    name: str, version: str, reference: str, source: Mapping[str, str] | None = None, digest: str = ""
) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "version": version, "image": reference}
    if source:
        spec["source"] = dict(source)
    if digest:
        spec["digest"] = digest
    return {
        "apiVersion": API_VERSION,
        "kind": "Image",
        "metadata": {
            "name": image_object_name(name, version),
            "labels": {IMAGE_NAME_LABEL: label_value(name), IMAGE_VERSION_LABEL: label_value(version)},
        },
        "spec": spec,
    }


def field_selector(**fields: str | None) -> str:
    """`spec.name=web,spec.version=1.0` from the filters that are set."""
    return ",".join(f"{key}={value}" for key, value in fields.items() if value)


def deployment_body(application: str, target: str, version: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Deployment",
        "metadata": {"name": release_name(application, target)},
        "spec": {"application": application, "target": target, "version": version},
    }


def spec_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def status_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    status = obj.get("status")
    return status if isinstance(status, dict) else {}


def name_of(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")
