"""The audit trail: a NewsSink that keeps every release transition as a ReleaseRecord (and,
with `--audit-log`, as a JSON line for the cluster's log pipeline), and the retention sweep.

`publish` never waits on the network: it writes the log line (a local file or stdout,
flushed per line) and puts the record on its namespace's bounded queue, drained by that
namespace's own writer task. One tenant whose records the API server refuses (a quota it
filled, say) retries and drops only its own: other namespaces' records never wait behind
it. The record's name is derived from the News's key, so a transition written twice is a
409 from the API server, which counts as done; other failures are retried with a capped
backoff.
What a record says is built in `reconcile/audit.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import stat
import sys
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol, TextIO

import aiohttp

from alecton.api.models import Image
from alecton.handlers.config import OperatorConfig
from alecton.handlers.controller import Controller
from alecton.handlers.indexes import Indexes
from alecton.kube.client import ApiException
from alecton.reconcile.audit import RECORD_KIND, audit_line, expired, record_body, retry_delay
from alecton.reconcile.news import News

log = logging.getLogger("alecton.audit")

QUEUE_SIZE = 500  # records of one namespace waiting for the API server; past that, new ones are dropped
MAX_ATTEMPTS = 20  # about 15 minutes of retries at the 60 s cap, then the record is given up
DRAIN_SECONDS = 5.0  # at a clean stop, how long queued records may take to be written
SWEEP_INTERVAL = 600.0  # seconds between retention sweeps
SWEEP_PAGE = 500  # records read per sweep (one page; the next sweep goes on from there)
SWEEP_DELETES = 100  # records deleted per sweep at most
_GIVE_UP = {400, 422}  # the record itself is refused: retrying cannot help


class RecordClient(Protocol):
    """What the audit trail needs of the API (KubeClient has it)."""

    async def create(self, kind: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]: ...

    async def list_page(
        self, kind: str, namespace: str | None, limit: int, continue_token: str = "", label_selector: str = ""
    ) -> tuple[list[dict[str, Any]], str]: ...

    async def delete(self, kind: str, namespace: str, name: str) -> None: ...


def image_lookup(indexes: Indexes) -> Callable[[News], Image | None]:
    """The Image a News's version names, from the operator's indexes (no API call)."""
    return lambda news: indexes.image_of(news.namespace, news.application, news.version)


def open_audit_log(path: str) -> TextIO:
    """`-`: stdout. Else the file, appended to, readable and writable by the operator only
    (records name people and versions), line buffered."""
    if path == "-":
        return sys.stdout
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    if stat.S_ISREG(os.fstat(fd).st_mode):
        os.fchmod(fd, 0o600)  # an older file keeps no wider rights
    return os.fdopen(fd, "a", buffering=1, encoding="utf-8")


class AuditTrail:
    """The NewsSink of the audit trail. `start` in a running loop, `stop` at shutdown."""

    def __init__(
        self,
        client: RecordClient,
        image_of: Callable[[News], Image | None],
        log_file: TextIO | None = None,
        queue_size: int = QUEUE_SIZE,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.client = client
        self.image_of = image_of
        self.log_file = log_file
        self.queue_size = queue_size
        self.queues: dict[str, asyncio.Queue[dict[str, Any]]] = {}  # per namespace
        self.sleep = sleep
        self.written = 0
        self.dropped = 0
        self._started = False
        self._writers: dict[str, asyncio.Future[None]] = {}
        self._tasks: list[asyncio.Future[None]] = []

    @property
    def queued(self) -> int:
        return sum(queue.qsize() for queue in self.queues.values())

    def publish(self, news: list[News]) -> None:
        for one in news:
            try:
                image = self.image_of(one)
                self._log_line(one, image)
                self.enqueue(record_body(one, image))
            except asyncio.QueueFull:
                self.dropped += 1
                log.error(
                    "audit: queue of %s full, record of %s %s dropped",
                    one.namespace,
                    one.kind,
                    one.deployment,
                )
            except Exception as error:  # a sink never raises into the controller
                log.error(
                    "audit: cannot record %s of %s/%s: %s", one.kind, one.namespace, one.deployment, error
                )

    def enqueue(self, body: dict[str, Any]) -> None:
        """Queue a record in its namespace's queue (QueueFull when that one is full) and make
        sure a writer drains it."""
        namespace = str(body["metadata"]["namespace"])
        queue = self.queues.get(namespace)
        if queue is None:
            queue = self.queues[namespace] = asyncio.Queue(maxsize=self.queue_size)
        queue.put_nowait(body)
        self._ensure_writer(namespace)

    def _ensure_writer(self, namespace: str) -> None:
        writer = self._writers.get(namespace)
        if self._started and (writer is None or writer.done()):
            self._writers[namespace] = asyncio.ensure_future(self._drain(self.queues[namespace]))

    def _log_line(self, news: News, image: Image | None) -> None:
        if self.log_file is None:
            return
        try:
            self.log_file.write(audit_line(news, image) + "\n")
            self.log_file.flush()
        except (OSError, ValueError) as error:
            log.error("audit log: cannot write: %s", error)

    def start(self, sweep: RetentionSweep | None = None) -> None:
        self._started = True
        for namespace in self.queues:
            self._ensure_writer(namespace)
        if sweep is not None:
            self._tasks.append(asyncio.ensure_future(sweep.run()))

    async def stop(self, drain: float = DRAIN_SECONDS) -> None:
        """Stop the writers (and sweep) after giving what is queued `drain` seconds to be written."""
        if self._started and self.queued:
            joins = [queue.join() for queue in self.queues.values()]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*joins), drain)
        self._started = False
        for task in [*self._writers.values(), *self._tasks]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.log_file is not None and self.log_file is not sys.stdout:
            self.log_file.close()

    async def _drain(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        """One namespace's writer: ends when its queue is empty (the next record starts
        another), so idle namespaces hold no task."""
        while not queue.empty():
            body = queue.get_nowait()
            try:
                await self.write(body)
            except Exception as error:  # the writer outlives any one record
                log.error("audit: record %s not written: %r", body["metadata"]["name"], error)
            finally:
                queue.task_done()

    async def write(self, body: dict[str, Any]) -> bool:
        """Create one record: True once it exists (created now or before: 409), False when
        it is given up (refused as invalid, or still failing after MAX_ATTEMPTS)."""
        meta = body["metadata"]
        for attempt in range(MAX_ATTEMPTS):
            try:
                await self.client.create(RECORD_KIND, meta["namespace"], body)
                self.written += 1
                return True
            except ApiException as error:
                if error.status == 409:
                    return True  # the same transition, recorded already
                if error.status in _GIVE_UP:
                    log.error(
                        "audit: record %s/%s refused: %s", meta["namespace"], meta["name"], error.reason
                    )
                    return False
                reason = f"{error.status} {error.reason}"
            except (OSError, TimeoutError, aiohttp.ClientError) as error:
                reason = type(error).__name__
            delay = retry_delay(attempt)
            where = f"{meta['namespace']}/{meta['name']}"
            log.warning("audit: record %s not written (%s); again in %.0f s", where, reason, delay)
            await self.sleep(delay)
        log.error(
            "audit: record %s/%s given up after %d attempts", meta["namespace"], meta["name"], MAX_ATTEMPTS
        )
        return False


class RetentionSweep:
    """Deletes records older than the retention: one sweep pages through the records (one
    page of SWEEP_PAGE at a time) and deletes at most SWEEP_DELETES; the next sweep goes on
    where a full one stopped."""

    def __init__(
        self,
        client: RecordClient,
        retention_days: float,
        namespaces: Iterable[str] = (),
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.client = client
        self.retention_days = retention_days
        self.namespaces: list[str | None] = list(namespaces) or [None]  # None: every namespace
        self.now = now
        self._at = 0  # which namespace the next page is of
        self._token = ""
        self.deleted = 0

    async def sweep(self) -> int:
        """One sweep: how many records it deleted."""
        gone, pages = 0, 0
        while gone < SWEEP_DELETES:
            gone += await self._page(SWEEP_DELETES - gone)
            pages += 1
            if not self._token and self._at % len(self.namespaces) == 0:
                break  # every record seen once
            if pages >= 10_000:  # a list that never ends is not ours to finish
                break
        self.deleted += gone
        return gone

    async def _page(self, budget: int) -> int:
        namespace = self.namespaces[self._at % len(self.namespaces)]
        try:
            items, token = await self.client.list_page(RECORD_KIND, namespace, SWEEP_PAGE, self._token)
        except ApiException as error:
            if error.status != 410:
                raise
            items, token = [], ""  # the continue token expired: this namespace starts again
        self._token = token
        if not token:
            self._at = (self._at + 1) % len(self.namespaces)
        gone = 0
        for ns, name in expired(items, self.now(), self.retention_days, budget):
            try:
                await self.client.delete(RECORD_KIND, ns, name)
                gone += 1
            except ApiException as error:
                if error.status != 404:
                    raise
        return gone

    @property
    def interval(self) -> float:
        """Seconds between sweeps: SWEEP_INTERVAL, or a tenth of a shorter retention."""
        return min(SWEEP_INTERVAL, max(1.0, self.retention_days * 86400 / 10))

    async def run(self) -> None:
        while True:
            try:
                await self.sweep()
            except (ApiException, OSError, TimeoutError, aiohttp.ClientError) as error:
                log.warning("audit: retention sweep failed: %r", error)
            await asyncio.sleep(self.interval)


def start_audit(controller: Controller, config: OperatorConfig) -> AuditTrail:
    """The audit trail of a running operator: a sink of the controller's news, its writer,
    and (in the unsharded operator only: every shard sees every record) the retention sweep."""
    trail = AuditTrail(
        controller.kube,
        image_lookup(controller.indexes),
        open_audit_log(config.audit_log) if config.audit_log else None,
    )
    sweep = (
        None
        if config.shard
        else RetentionSweep(controller.kube, config.audit_retention_days, config.namespaces)
    )
    trail.start(sweep)
    controller.news.add(trail)
    return trail
