"""What one server serves with: whose identity requests act with, the default namespace,
and what diffs render with."""

from __future__ import annotations

from dataclasses import dataclass, field

from alecton.reconcile.chart import ChartFetcher, ChartPolicy
from alecton.service.server_settings import LocalCaller, ServerSettings
from alecton.web.identity import BearerIdentity, Identity, LocalIdentity
from alecton.web.security import LocalSession


@dataclass(frozen=True)
class WebSettings:
    identity: Identity
    namespace: str
    session: LocalSession | None = None  # local mode (`alecton dashboard`)
    helm: str = ""
    charts: ChartPolicy = field(default_factory=lambda: ChartPolicy(fetcher=ChartFetcher.WEB))

    @classmethod
    def of(cls, settings: ServerSettings) -> WebSettings:
        """Local mode for the person's own kubeconfig, else proxy mode for the API server."""
        caller = settings.caller
        if isinstance(caller, LocalCaller):
            return cls(
                identity=LocalIdentity(caller.kubeconfig, caller.context),
                namespace=settings.namespace,
                session=LocalSession(caller.token, caller.port),
                helm=settings.helm,
                charts=settings.charts,
            )
        return cls(
            identity=BearerIdentity(caller),
            namespace=settings.namespace,
            helm=settings.helm,
            charts=settings.charts,
        )
