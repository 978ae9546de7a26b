"""Operator settings, from command-line options or environment variables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from alecton.kube.client import kubeconfig_path
from alecton.reconcile.access import ContextPolicy


@dataclass(frozen=True)
class OperatorConfig:
    kubeconfig: str | None = None  # the operator's own kubeconfig (None: $KUBECONFIG / in-cluster)
    context: str | None = None  # context of the management cluster in that kubeconfig
    target_kubeconfig: str | None = None  # whose contexts Clusters name (default: `kubeconfig`)
    namespaces: tuple[str, ...] = ()  # empty: every namespace
    helm_binary: str = "helm"
    helm_concurrency: int = 4
    helm_timeout: float = 300.0
    history_max: int = 10
    charts_dir: Path | None = None
    context_policy: ContextPolicy = field(default_factory=ContextPolicy)
    allow_insecure_kubeconfig: bool = False
    helm_home: Path | None = None
    probe_address: str = ""  # host:port for /healthz, /readyz, /metrics; empty: off

    @property
    def kubeconfig_path(self) -> str | None:
        """The operator's own kubeconfig file (None: in-cluster)."""
        return kubeconfig_path(self.kubeconfig)

    @property
    def target_kubeconfig_path(self) -> str | None:
        """The file helm gets for the contexts that Clusters name."""
        return self.target_kubeconfig or self.kubeconfig_path
