"""DORA metrics from live news: a `NewsSink` that runs each piece of news through the same
state machine as `alecton dora` (`reconcile.dora.advance`) and updates `metrics.DoraSeries`.

What it remembers is in memory only, per (namespace, application, target): the deploy being
verified, the deploys already counted and the start of an open incident. An operator restart
forgets them, so an incident open across a restart is not measured (its restore has no start),
and a verification running across a restart is counted only if it fails or rolls back.
`alecton dora` reads the stored ReleaseRecords and has no such gap.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from alecton.api.models import Image
from alecton.handlers.indexes import Indexes
from alecton.metrics import DoraSeries
from alecton.reconcile.dora import (
    Deploy,
    LeadTime,
    Record,
    Restore,
    StreamKey,
    StreamState,
    advance,
    stream_of,
)
from alecton.reconcile.news import Kind, News
from alecton.reconcile.times import epoch

log = logging.getLogger("alecton.dora")

# Kinds that can complete a deploy or a restore: only these need the Image looked up.
_LEAD_KINDS = frozenset({Kind.DEPLOY_STARTED, Kind.DEPLOYED, Kind.HEALTHY})


class DoraMetrics:
    """Never blocks (a few dictionary lookups per piece of news) and never raises."""

    def __init__(self, series: DoraSeries, indexes: Indexes, clock: Callable[[], float] = time.time) -> None:
        self._series = series
        self._indexes = indexes
        self._clock = clock
        self._states: dict[StreamKey, StreamState] = {}
        # The stream each Deployment last fed. A Deployment's target and application are
        # mutable (and the tenant writes its Application's targets): when one moves, the
        # stream it left goes, unless another Deployment still feeds it, so the series stay
        # bounded by the Deployments that exist, not by every name ever used.
        self._stream_of: dict[tuple[str, str], StreamKey] = {}

    def publish(self, news: list[News]) -> None:
        for item in news:
            try:
                self._one(item)
            except Exception as error:  # a metric must never cost a reconcile
                log.warning("DORA metrics: %s/%s: %r", item.namespace, item.deployment, error)

    def _one(self, news: News) -> None:
        stream = stream_of(news)
        self._follow(news, stream)
        at = epoch(news.time) or self._clock()
        committed, created = self._origin(news) if news.kind in _LEAD_KINDS else ("", "")
        state, findings = advance(
            self._states.get(stream, StreamState()), Record(news, committed, created), at
        )
        if news.kind is Kind.UNINSTALLED:  # gone: its series and memory go too (bounded cardinality)
            self._stream_of.pop((news.namespace, news.deployment), None)
            self._drop_unless_fed(stream)
            return
        self._states[stream] = state
        for finding in findings:
            if isinstance(finding, Deploy):
                self._series.deployed(stream, finding.success, finding.at)
            elif isinstance(finding, LeadTime):
                self._series.lead_time.labels(*stream).observe(finding.seconds)
            elif isinstance(finding, Restore):
                self._series.time_to_restore.labels(*stream).observe(finding.seconds)

    def _follow(self, news: News, stream: StreamKey) -> None:
        """Remember which stream `news`' Deployment feeds; drop the one it moved away from."""
        previous = self._stream_of.get((news.namespace, news.deployment))
        self._stream_of[(news.namespace, news.deployment)] = stream
        if previous is not None and previous != stream:
            self._drop_unless_fed(previous)

    def _drop_unless_fed(self, stream: StreamKey) -> None:
        if stream not in self._stream_of.values():
            self._states.pop(stream, None)
            self._series.forget(stream)

    def _origin(self, news: News) -> tuple[str, str]:
        """(source.committedAt, the Image's creation) of the news' version, from the index."""
        image = self._indexes.image_of(news.namespace, news.application, news.version)
        return (committed_at(image), image.created) if image is not None else ("", "")


def committed_at(image: Image) -> str:
    """`spec.source.committedAt` of an Image, if the model carries its source (read defensively:
    an Image without a source, or a model without the field, gives "")."""
    source: Any = getattr(image, "source", None)
    if isinstance(source, dict):
        return str(source.get("committedAt") or "")
    return str(getattr(source, "committed_at", "") or "")
