"""Where an Image's code came from (issue 25 point 3): `spec.source` from the CLI and the
HTTP API through service/images.py, kept immutable, and shown with releases and images."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import yaml
from alecton.api.models import Image, ImageSource
from alecton.service.errors import ConflictError
from alecton.service.images import create_image, image_source, image_sources
from alecton.service.resources import image_body
from alecton.web import views

from tests.unit.test_changed_by_policy import REPO

SHA = "4f2c1e9a0b7d3c5e8f1a2b3c4d5e6f7a8b9c0d1e"
SOURCE = {"repository": "github.com/org/web", "revision": SHA, "url": f"https://github.com/org/web/commit/{SHA}",
          "committedAt": "2026-12-01T09:30:00Z"}  # fmt: skip


class Images:
    """Just enough of a KubeClient for create_image: list, get and create of Images."""

    def __init__(self, *existing: dict[str, Any]) -> None:
        self.objects = list(existing)
        self.created: list[dict[str, Any]] = []

    async def list(self, kind: str, namespace: str, field_selector: str = "") -> list[dict[str, Any]]:
        wanted = dict(part.split("=", 1) for part in field_selector.split(",") if part)
        return [
            o for o in self.objects if all(o["spec"][k.removeprefix("spec.")] == v for k, v in wanted.items())
        ]

    async def create(self, kind: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self.created.append(body)
        return body


def test_image_source_keeps_only_what_is_given() -> None:
    assert image_source() == {}
    assert image_source(revision=f" {SHA} ", url="") == {"revision": SHA}
    assert image_source("github.com/org/web", SHA, SOURCE["url"], "2026-12-01T09:30:00Z") == SOURCE


def test_the_image_body_carries_the_source_only_when_there_is_one() -> None:
    assert "source" not in image_body("web", "1.0.0", "r/web:1")["spec"]
    assert image_body("web", "1.0.0", "r/web:1", SOURCE)["spec"]["source"] == SOURCE


def test_the_model_reads_the_source_back() -> None:
    body = image_body("web", "1.0.0", "r/web:1", SOURCE) | {}
    body["metadata"] |= {"namespace": "team", "creationTimestamp": "2026-12-01T10:00:00Z"}
    image = Image.parse(body)
    assert image.source == ImageSource(repository="github.com/org/web", revision=SHA, url=SOURCE["url"],
                                       committed_at="2026-12-01T09:30:00Z")  # fmt: skip
    assert image.source is not None and image.source.as_dict() == SOURCE
    assert ImageSource.parse({}) is None and ImageSource.parse("x") is None


def test_create_sends_the_source_and_a_second_create_with_another_source_conflicts() -> None:
    client = Images()
    result, obj = asyncio.run(create_image(client, "team", "web", "1.0.0", "r/web:1", SOURCE))  # type: ignore[arg-type]
    assert result == "created" and client.created[0]["spec"]["source"] == SOURCE
    recorded = Images(obj)
    # A CI retry with the same reference and source, or without a source at all, changes nothing.
    for again in (SOURCE, None):
        assert asyncio.run(create_image(recorded, "team", "web", "1.0.0", "r/web:1", again))[0] == "unchanged"  # type: ignore[arg-type]
    other = {**SOURCE, "revision": "0" * 40}
    with pytest.raises(ConflictError, match="immutable"):
        asyncio.run(create_image(recorded, "team", "web", "1.0.0", "r/web:1", other))  # type: ignore[arg-type]
    assert recorded.created == []


def test_the_crd_checks_each_field_and_keeps_the_source_immutable() -> None:
    crd = yaml.safe_load((REPO / "crds" / "images.alecton.dev.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["x-kubernetes-validations"][0]["rule"] == "self == oldSelf"  # source included
    source = spec["properties"]["source"]["properties"]
    assert source["revision"]["pattern"] == "^[0-9a-fA-F]{7,64}$"
    assert source["url"]["pattern"].startswith("^https?://")  # never a javascript: link
    assert source["committedAt"]["format"] == "date-time"


IMAGE = image_body("web", "1.0.0", "r/web:1.0.0", SOURCE) | {}
PLAIN = image_body("web", "0.9.0", "r/web:0.9.0")


def test_the_api_shows_the_source_of_images_and_releases() -> None:
    assert views.image_message(IMAGE)["source"] == SOURCE
    assert "source" not in views.image_message(PLAIN)
    sources = image_sources([IMAGE, PLAIN], "web")
    assert sources == {"1.0.0": SOURCE}
    deployment = {
        "status": {"history": [{"revision": 2, "version": "1.0.0"}, {"revision": 1, "version": "0.9.0"}]}
    }
    newest, oldest = views.releases(deployment, {}, sources)
    assert newest["source"] == SOURCE and "source" not in oldest
    rows = [{"application": "web", "target": "staging", "running": "1.0.0", "cluster": "b"}]
    (placed,) = views.image_placement(rows, {"web": "web"}, {"web": sources})
    assert placed["clusters"]["b"] == [{"version": "1.0.0", "targets": ["staging"], "source": SOURCE}]
