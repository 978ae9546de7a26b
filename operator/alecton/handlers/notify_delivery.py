"""One Notifier's delivery loop: a bounded queue, one request at a time with a deadline,
retries with capped backoff until the receiver says yes (at least once), a rate limit, and a
status written now and then. Runs as its own task, so a slow or dead receiver never delays a
reconcile: the controller only ever calls `offer`, which never blocks.

The decisions (what matches, what to send, how long to wait, what status says) are in
`reconcile/notify_*.py`; this module does the network and the API calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from alecton.kube.client import ApiException, KubeClient, api_error_message
from alecton.metrics import NotifierMetrics
from alecton.reconcile.news import News
from alecton.reconcile.notify_address import AddressRefusedError, IPNetwork, check_literal, refusal
from alecton.reconcile.notify_payloads import Credentials, Request, Skipped, Source, request_for, scrub
from alecton.reconcile.notify_policy import (
    BoundedQueue,
    NotifierSettings,
    RecentKeys,
    TokenBucket,
    backoff_seconds,
    retry_after_seconds,
)
from alecton.reconcile.notify_status import (
    ADDRESS_REFUSED,
    FAILURE,
    REFUSED,
    SECRET_NOT_FOUND,
    SKIPPED,
    SUCCESS,
    Delivered,
    NotifierState,
    status_patch,
)

log = logging.getLogger("alecton.notify")

REQUEST_TIMEOUT = 10.0  # seconds per request, connect included
CONNECT_TIMEOUT = 5.0
QUEUE_SIZE = 1000
RATE = 10.0  # requests a second, on average, per Notifier
BURST = 20
BACKOFF_BASE = 1.0  # seconds after the first failure, doubling
BACKOFF_CAP = 120.0
STATUS_INTERVAL = 3.0  # seconds between status writes at most
SECRET_TTL = 30.0  # a rotated Secret is used within this many seconds


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class GuardedResolver(AbstractResolver):
    """Resolves at connect time and refuses the connection when any address of the name is
    one the operator must not reach (DNS rebinding: what is checked is what is connected to)."""

    def __init__(self, allowed: tuple[IPNetwork, ...]) -> None:
        self.allowed = allowed
        self.plain_http = False  # set per request (one request at a time per Notifier)
        self.refused = ""
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        for info in found:
            why = refusal(info["host"], self.allowed, self.plain_http)
            if why:
                self.refused = f"{host} resolves to {why}"
                raise OSError(self.refused)
        return found

    async def close(self) -> None:
        await self._inner.close()


@dataclass(frozen=True)
class Attempt:
    delivered: Delivered
    retry: bool  # try this News again after a backoff
    wait: float | None = None  # the receiver's Retry-After


SourceLookup = Callable[[News], Source | None]


class Delivery:
    """The delivery task of one Notifier."""

    def __init__(
        self,
        settings: NotifierSettings,
        kube: KubeClient,
        metrics: NotifierMetrics,
        allowed: tuple[IPNetwork, ...],
        secret_namespace: str,
        source_of: SourceLookup,
        status: dict[str, Any],
    ) -> None:
        self.settings = settings
        self.kube = kube
        self.metrics = metrics
        self.allowed = allowed
        self.secret_namespace = secret_namespace
        self.source_of = source_of
        self.queue = BoundedQueue(QUEUE_SIZE)
        self.recent = RecentKeys()
        self.bucket = TokenBucket(RATE, BURST, time.monotonic())
        self.state = NotifierState.resume(status, settings.generation)
        self.previous_status = status
        self._wake = asyncio.Event()
        self._dirty = asyncio.Event()
        self._credentials: tuple[float, Credentials | None] = (0.0, None)
        self._tasks: list[asyncio.Task[None]] = []

    # ----- called by the sink (never blocks, never raises) --------------------------------

    def offer(self, news: News) -> None:
        if not self.recent.first_time(news.key):
            return
        if not self.queue.put(news):
            self.state.dropped += 1
            self.metrics.dropped.labels(self.settings.label).inc()
        self._queue_changed()
        self._wake.set()

    def update(self, settings: NotifierSettings, status: dict[str, Any]) -> None:
        """A changed spec: keep the queue, use the new settings from the next News on."""
        self.settings = settings
        self.previous_status = status
        self.state.generation = settings.generation
        self._credentials = (0.0, None)
        self.check_address()
        self._wake.set()

    # ----- life --------------------------------------------------------------------------

    def start(self) -> None:
        self.check_address()
        self._tasks = [
            asyncio.create_task(self._deliver_forever(), name=f"notify {self.settings.label}"),
            asyncio.create_task(self._write_status_forever(), name=f"notify status {self.settings.label}"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.metrics.forget(self.settings.label)

    def check_address(self) -> None:
        """An address the operator may not reach is reported at once, before any News."""
        self.state.suspended = self.settings.suspend
        self.state.problem = None
        for url in (self.settings.address, self.settings.api_url):
            if not url:
                continue
            try:
                check_literal(url, self.allowed)
            except AddressRefusedError as error:
                self.state.problem = (ADDRESS_REFUSED, f"receiver address refused: {error}")
        self._dirty.set()

    def _queue_changed(self) -> None:
        self.state.queued = len(self.queue)
        self.metrics.queued.labels(self.settings.label).set(len(self.queue))
        self._dirty.set()

    # ----- the loop ----------------------------------------------------------------------

    async def _deliver_forever(self) -> None:
        resolver = GuardedResolver(self.allowed)
        connector = aiohttp.TCPConnector(resolver=resolver, use_dns_cache=False, limit=1)
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT, sock_connect=CONNECT_TIMEOUT)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False) as session:
            while True:
                news = self.queue.pop()
                if news is None or self.settings.suspend:
                    if news is not None:  # suspended: put it back at the front, wait for a change
                        self.queue.items.appendleft(news)
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                self._queue_changed()
                try:
                    await self._deliver(session, resolver, news)
                except Exception as error:  # a bug must not end this Notifier's deliveries
                    # The type only: an exception's text could quote a request's header.
                    log.error("notifier %s: delivery failed: %s", self.settings.label, type(error).__name__)
                    log.debug("notifier %s", self.settings.label, exc_info=True)

    async def _deliver(self, session: aiohttp.ClientSession, resolver: GuardedResolver, news: News) -> None:
        """Until success, a permanent refusal, or a skip: at least once."""
        failures = 0
        while True:
            await self._rate_limit()
            attempt = await self._attempt(session, resolver, news)
            self.state.record(attempt.delivered)
            self.metrics.deliveries.labels(
                self.settings.label, str(self.settings.provider), attempt.delivered.result
            ).inc()
            self._dirty.set()
            if not attempt.retry:
                return
            failures += 1
            delay = (
                attempt.wait
                if attempt.wait is not None
                else backoff_seconds(failures, BACKOFF_BASE, BACKOFF_CAP)
            )
            await asyncio.sleep(delay)

    async def _rate_limit(self) -> None:
        while not self.bucket.take(time.monotonic()):  # noqa: ASYNC110 (a timed wait, not a flag)
            await asyncio.sleep(self.bucket.wait_time(time.monotonic()))

    async def _attempt(
        self, session: aiohttp.ClientSession, resolver: GuardedResolver, news: News
    ) -> Attempt:
        def done(result: str, reason: str = "", status: int = 0, retry: bool = False) -> Attempt:
            return Attempt(Delivered(utc_now(), str(news.kind), news.key, result, status, reason), retry)

        creds = await self._read_credentials()
        if creds is None:
            return done(FAILURE, self.state.problem[1] if self.state.problem else "no Secret", retry=True)
        source = self.source_of(news) if self.settings.commit_status else None
        request = request_for(self.settings, news, creds, source)
        if isinstance(request, Skipped):
            return done(SKIPPED, request.reason)
        try:
            target = check_literal(request.url, self.allowed)
        except AddressRefusedError as error:
            self.state.problem = (ADDRESS_REFUSED, f"receiver address refused: {scrub(str(error), creds)}")
            return done(REFUSED, scrub(str(error), creds))
        resolver.plain_http, resolver.refused = target.plain_http, ""
        return await self._send(session, resolver, request, creds, done)

    async def _send(
        self,
        session: aiohttp.ClientSession,
        resolver: GuardedResolver,
        request: Request,
        creds: Credentials,
        done: Callable[..., Attempt],
    ) -> Attempt:
        try:
            async with session.request(
                request.method, request.url, data=request.body, headers=request.headers, allow_redirects=False
            ) as response:
                await response.read()
                code = response.status
                wait = retry_after_seconds(response.headers.get("Retry-After"), BACKOFF_CAP)
        except TimeoutError:
            return done(FAILURE, f"no answer within {REQUEST_TIMEOUT:.0f} s", retry=True)
        except aiohttp.ClientError as error:
            if resolver.refused:
                self.state.problem = (ADDRESS_REFUSED, f"receiver address refused: {resolver.refused}")
                return done(REFUSED, resolver.refused)
            return done(FAILURE, scrub(f"{type(error).__name__}: {error}", creds), retry=True)
        if 200 <= code < 300:
            if self.state.problem and self.state.problem[0] == ADDRESS_REFUSED:
                self.state.problem = None
            return done(SUCCESS, status=code)
        # 4xx other than these will not get better by asking again: recorded, not retried.
        retry = code >= 500 or code in (408, 425, 429)
        attempt = done(FAILURE, f"HTTP {code}", status=code, retry=retry)
        return Attempt(attempt.delivered, retry, wait) if retry else attempt

    async def _read_credentials(self) -> Credentials | None:
        read_at, cached = self._credentials
        if cached is not None and time.monotonic() - read_at < SECRET_TTL:
            return cached
        name = self.settings.secret_name
        if not name:
            creds = Credentials()
        else:
            try:
                data = await self.kube.read_secret(self.secret_namespace, name)
            except ApiException as error:
                self.state.problem = (SECRET_NOT_FOUND, f"Secret {name}: {api_error_message(error)}")
                return None
            except (aiohttp.ClientError, TimeoutError) as error:
                self.state.problem = (SECRET_NOT_FOUND, f"Secret {name}: {type(error).__name__}")
                return None
            if data is None:
                where = f"namespace {self.secret_namespace}"
                self.state.problem = (SECRET_NOT_FOUND, f"Secret {name} not found in {where}")
                return None
            creds = Credentials.from_secret(data)
        if self.state.problem and self.state.problem[0] == SECRET_NOT_FOUND:
            self.state.problem = None
        self._credentials = (time.monotonic(), creds)
        return creds

    # ----- status ------------------------------------------------------------------------

    async def _write_status_forever(self) -> None:
        written = 0.0
        while True:
            await self._dirty.wait()
            await asyncio.sleep(max(0.0, written + STATUS_INTERVAL - time.monotonic()))
            self._dirty.clear()
            written = time.monotonic()
            patch = status_patch(self.state, self.previous_status, utc_now())
            try:
                # A ClusterNotifier is cluster-scoped (CLUSTER_SCOPED): its namespace is ignored.
                await self.kube.patch_status(
                    self.settings.kind, self.settings.namespace, self.settings.name, patch
                )
                self.previous_status = {**self.previous_status, "conditions": patch["conditions"]}
            except ApiException as error:
                if error.status == 404:
                    return  # deleted; the watch stops this task
                log.warning(
                    "status of %s %s: %s", self.settings.kind, self.settings.label, api_error_message(error)
                )
                self._dirty.set()
            except (aiohttp.ClientError, TimeoutError) as error:
                log.warning(
                    "status of %s %s: %s", self.settings.kind, self.settings.label, type(error).__name__
                )
                self._dirty.set()
