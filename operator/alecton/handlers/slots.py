"""Who may start a helm action now: fairness between tenants and clusters.

Acquiring is one synchronous check-and-take (no await in between), so two workers can
never both take the last slot. Counters are removed at zero, so they never grow with the
number of namespaces or clusters ever seen.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass, field


@dataclass
class Slots:
    per_namespace: int  # helm actions one tenant namespace may run at once
    _namespaces: Counter[str] = field(default_factory=Counter)
    _clusters: Counter[Hashable] = field(default_factory=Counter)
    # Clusters that just failed as unreachable get one action at a time until they answer,
    # so a dead cluster cannot take every worker (no head-of-line blocking).
    unreachable: set[Hashable] = field(default_factory=set)

    def try_acquire(self, namespace: str, cluster: Hashable) -> str | None:
        """Take a slot; None on success, else why not (the caller retries shortly)."""
        if self._namespaces[namespace] >= self.per_namespace:
            return f"namespace {namespace} already runs {self.per_namespace} helm actions"
        if cluster in self.unreachable and self._clusters[cluster] >= 1:
            return "its cluster is unreachable and already being tried"
        self._namespaces[namespace] += 1
        self._clusters[cluster] += 1
        return None

    def release(self, namespace: str, cluster: Hashable) -> None:
        for counter, key in ((self._namespaces, namespace), (self._clusters, cluster)):
            counter[key] -= 1
            if counter[key] <= 0:
                del counter[key]

    def in_flight(self, namespace: str) -> int:
        return self._namespaces[namespace]

    @property
    def tracked(self) -> int:
        """How many keys are held (for tests: zero when idle)."""
        return len(self._namespaces) + len(self._clusters)
