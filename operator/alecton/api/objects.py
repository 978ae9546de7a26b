"""Plain data types naming Kubernetes objects, shared by every layer."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ObjectKey:
    api_version: str  # "apps/v1", "v1", "batch/v1", "example.com/v1"
    kind: str
    namespace: str  # "" for cluster-scoped
    name: str

    def describe(self) -> str:
        return f"{self.kind} {self.name}"

    @property
    def group(self) -> str:
        # The core group has no prefix: "v1" -> "", "apps/v1" -> "apps".
        return self.api_version.rpartition("/")[0]
