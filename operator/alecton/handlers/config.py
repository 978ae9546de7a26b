"""Operator settings, from command-line options or environment variables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from alecton.kube.client import kubeconfig_path
from alecton.reconcile.access import ContextPolicy
from alecton.reconcile.chart import ChartPolicy


@dataclass(frozen=True)
class OperatorConfig:
    kubeconfig: str | None = None  # the operator's own kubeconfig (None: $KUBECONFIG / in-cluster)
    context: str | None = None  # context of the management cluster in that kubeconfig
    target_kubeconfig: str | None = None  # whose contexts Clusters name (default: `kubeconfig`)
    namespaces: tuple[str, ...] = ()  # empty: every namespace
    helm_binary: str = "helm"
    # "server": one long-lived helmd serves every helm action (helm/server.py); "cli": a helm per action
    helm_driver: str = "server"
    helmd_binary: str | None = None  # None: helmd next to the helm binary (else the CLI runs)
    helm_concurrency: int = 4
    helm_timeout: float = 300.0
    history_max: int = 10
    helm_openapi_validation: bool = False  # helm's client-side schema check (costly; see helm/actions.py)
    charts_dir: Path | None = None
    context_policy: ContextPolicy = field(default_factory=ContextPolicy)
    allow_insecure_kubeconfig: bool = False
    allow_insecure_repositories: bool = False  # http:// chart repositories
    repository_hosts: frozenset[str] = frozenset()  # chart hosts allowed; empty: any
    allow_adopt: bool = False  # may a Deployment take over a release alecton did not make?
    lock_grace: float = 60.0  # a pending-* revision older than helm's timeout + this is stale
    namespace_share: float = 0.5  # the share of helm workers one tenant namespace may hold
    helm_home: Path | None = None
    probe_address: str = ""  # host:port for /healthz, /readyz, /metrics; empty: off
    leader_elect: bool = False  # one of several replicas: reconcile only while holding the Lease
    leader_election_namespace: str = "default"  # the operator's own namespace
    shard: str = ""  # reconcile only Deployments with this alecton.dev/shard label ("": unlabelled)
    # The Secret (in the operator's namespace, made on first use) whose key signs the
    # operator's own spec.version writes (`alecton.dev/promoted`); replicas and shards share it.
    # Receiver addresses Notifiers may reach although they are loopback, private or
    # link-local (--notify-allow-cidr); plain http only to these.
    notify_allow_cidrs: tuple[str, ...] = ()
    promotion_key_secret: str = "alecton-promotion-key"  # noqa: S105 (a Secret's name)
    audit_log: str = ""  # a file for one JSON line per release transition, `-` for stdout; "" off
    audit_retention_days: float = 400.0  # ReleaseRecords older than this are deleted

    @property
    def operator_namespace(self) -> str:
        """Where the operator keeps its own objects: its Leases and the promotion key."""
        return self.leader_election_namespace

    @property
    def lease_name(self) -> str:
        return f"alecton-operator-{self.shard}" if self.shard else "alecton-operator"

    @property
    def charts(self) -> ChartPolicy:
        return ChartPolicy(self.charts_dir, self.allow_insecure_repositories, self.repository_hosts)

    @property
    def stale_lock_after(self) -> float:
        """Seconds after which a pending-* revision cannot belong to a running helm."""
        return self.helm_timeout + self.lock_grace

    @property
    def namespace_workers(self) -> int:
        return max(1, int(self.helm_concurrency * self.namespace_share))

    @property
    def kubeconfig_path(self) -> str | None:
        """The operator's own kubeconfig file (None: in-cluster)."""
        return kubeconfig_path(self.kubeconfig)

    @property
    def target_kubeconfig_path(self) -> str | None:
        """The file helm gets for the contexts that Clusters name."""
        return self.target_kubeconfig or self.kubeconfig_path
