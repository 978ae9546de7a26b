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
    # The manifest's digest; Applications with spec.pinImageDigest deploy image@digest.
    digest: str | None = Field(default=None, pattern=r"^sha256:[a-f0-9]{64}$")


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
    model_config = ConfigDict(populate_by_name=True)
    application: str = Field(min_length=1)
    target: str = Field(min_length=1)
    version: str = Field(min_length=1, description="The Image version to deploy.")
    override_freeze: str | None = Field(
        default=None,
        alias="overrideFreeze",
        max_length=256,
        description="Deploy although a freeze is active: why (recorded on the Deployment, with who).",
    )


class FreezeRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    name: str = Field(min_length=1, max_length=253, examples=["release-week"])
    reason: str = Field(min_length=1, max_length=512, examples=["quarter close"])
    duration: str | None = Field(
        default=None, alias="for", examples=["2h"], description="End after this long."
    )
    until: str | None = Field(
        default=None, examples=["2026-12-27T08:00:00Z"], description="End at this time."
    )
    applications: list[str] | None = Field(default=None, max_length=64)
    targets: list[str] | None = Field(default=None, max_length=64)
    cluster_wide: bool = Field(
        default=False, alias="clusterWide", description="A ClusterFreeze (cluster admins)."
    )


class RollbackRequest(BaseModel):
    application: str = Field(min_length=1)
    target: str = Field(min_length=1)
    version: int = Field(ge=1, description="The Helm revision to roll back to (as the seed names it).")


class DecisionRequest(BaseModel):
    application: str = Field(min_length=1)
    target: str = Field(min_length=1)
    version: str | None = Field(default=None, description="The open Promotion to this version.")
    comment: str = Field(default="", max_length=1024)
