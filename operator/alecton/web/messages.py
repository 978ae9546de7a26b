"""Request and answer shapes (for /openapi.json; views.py builds the answers)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ImageSourceMessage(BaseModel):
    """Where the build's code came from; the Image CRD checks each field's form."""

    model_config = ConfigDict(extra="forbid")
    repository: str | None = Field(default=None, max_length=512, examples=["github.com/org/web"])
    revision: str | None = Field(default=None, max_length=64, examples=["4f2c1e9a0b7d"])
    url: str | None = Field(
        default=None, max_length=2048, examples=["https://github.com/org/web/commit/4f2c1e9"]
    )
    committedAt: str | None = Field(default=None, max_length=64, examples=["2026-12-01T09:30:00Z"])


class ImageMessage(BaseModel):
    name: str = Field(min_length=1, examples=["web"])
    version: str = Field(min_length=1, examples=["1.4.2"])
    image: str = Field(min_length=1, examples=["registry.example.com/web:1.4.2"])
    source: ImageSourceMessage | None = None


class TargetMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    cluster: str
    namespace: str
    values: dict[str, Any] | None = None


class ApplicationMessage(BaseModel):
    """An Application: `name` and every field of its spec (chart, image, targets, ...)."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1, examples=["web"])
    chart: str | None = Field(default=None, examples=["web"])
    image: str | None = Field(default=None, examples=["web"])
    targets: list[TargetMessage] | None = None


class DeployRequest(BaseModel):
    application: str = Field(min_length=1)
    target: str = Field(min_length=1)
    version: str = Field(min_length=1, description="The Image version to deploy.")


class RollbackRequest(BaseModel):
    application: str = Field(min_length=1)
    target: str = Field(min_length=1)
    version: int = Field(ge=1, description="The Helm revision to roll back to (as the seed names it).")


class DecisionRequest(BaseModel):
    application: str = Field(min_length=1)
    target: str = Field(min_length=1)
    version: str | None = Field(default=None, description="The open Promotion to this version.")
    comment: str = Field(default="", max_length=1024)
