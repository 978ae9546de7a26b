"""Where an operation talks to, and the ids of requests the operator answers once."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from dataclasses import dataclass

from alecton.kube.client import KubeClient, current_namespace


@dataclass(frozen=True)
class Target:
    """Where a command talks to: kubeconfig, context and namespace, resolved like kubectl."""

    kubeconfig: str | None
    context: str | None
    namespace: str

    @classmethod
    def of(cls, kubeconfig: str | None, context: str | None, namespace: str | None) -> Target:
        kubeconfig = kubeconfig or os.environ.get("KUBECONFIG") or None
        if kubeconfig and ":" in kubeconfig:  # $KUBECONFIG may be a list; use its first file
            kubeconfig = kubeconfig.split(":")[0]
        return cls(kubeconfig, context, namespace or current_namespace(kubeconfig, context))

    async def client(self) -> KubeClient:
        return await KubeClient.connect(self.kubeconfig, self.context, agent="alecton-cli")


def request_id() -> str:
    """A new id for a request the operator answers once (rollback, retry, drift check)."""
    return f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
