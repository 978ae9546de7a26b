"""One Kubernetes API client per caller, kept between requests.

A client per request costs a TLS handshake with the API server each time (and a new
connection pool): with a dashboard that refreshes rows live, that is most of a request's
time. The pool keeps one client per caller, keyed by a digest of the caller's credentials
(an HMAC with a key made at start, so the key in memory says nothing about the token and
is useless outside this process; the token itself is never logged or used as a key).

Bounded: at most `size` clients alive, counting evicted ones still in use (the least
recently used idle one goes first; when all are in use a new key is refused with
PoolFullError) and none idle for longer than `idle_seconds`. A client is closed only
once no request uses it any more: a lease counts its users, and an evicted client in
use is closed by its last user.
A client is only ever handed to the key it was made for, so one caller never acts with
another's credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from alecton.kube.client import KubeClient

T = TypeVar("T")

POOL_SIZE = 256
IDLE_SECONDS = 300.0

_DIGEST_KEY = secrets.token_bytes(32)


def credential_digest(token: str) -> str:
    """What a caller's client (and cached view) is filed under: never the token itself."""
    return hmac.new(_DIGEST_KEY, token.encode(), hashlib.sha256).hexdigest()


async def _close_client(client: KubeClient) -> None:
    await client.close()


def _group(key: str) -> str:
    return key.rpartition("|")[0] or key


class PoolFullError(Exception):
    """Every one of the pool's `size` things is in use: a new key must wait (HTTP 503)."""


@dataclass
class _Entry(Generic[T]):
    item: T
    used_at: float
    users: int = 0
    retired: bool = False


@dataclass
class KeyedPool(Generic[T]):
    """Things made per key (a caller's client, a caller's cached view), bounded by count and
    idle time, each closed by `closer` once evicted and no longer in use."""

    closer: Callable[[T], Awaitable[None]]
    size: int = POOL_SIZE
    idle_seconds: float = IDLE_SECONDS
    clock: Callable[[], float] = time.monotonic
    # At most this many entries per group (the part of a key before its last "|": one
    # caller's views): past it a new key of the group retires the group's own least recently
    # used idle entry, so one caller cycling scopes never pushes out other callers' entries.
    per_group: int | None = None
    _entries: OrderedDict[str, _Entry[T]] = field(default_factory=OrderedDict)
    _making: dict[str, asyncio.Future[T]] = field(default_factory=dict)
    _retired_in_use: int = 0  # evicted, closed once their last user goes: they count too

    def __len__(self) -> int:
        return len(self._entries)

    @contextlib.asynccontextmanager
    async def lease(self, key: str, make: Callable[[], Awaitable[T]]) -> AsyncIterator[T]:
        """The client filed under `key` (made by `make` the first time), for one use."""
        entry = await self._entry(key, make)
        entry.users += 1
        try:
            yield entry.item
        finally:
            entry.users -= 1
            entry.used_at = self.clock()
            if entry.retired and entry.users == 0:
                self._retired_in_use -= 1
                await self.closer(entry.item)

    async def _entry(self, key: str, make: Callable[[], Awaitable[T]]) -> _Entry[T]:
        await self._expire()
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            entry.used_at = self.clock()
            return entry
        # Concurrent first requests of one caller share one client.
        making = self._making.get(key)
        if making is None:
            await self._make_group_room(key)
            await self._make_room()
            making = asyncio.get_running_loop().create_future()
            self._making[key] = making
            try:
                made = await make()
            except BaseException as error:
                making.set_exception(error)
                making.exception()  # retrieved: the waiters (if any) get it too
                raise
            finally:
                self._making.pop(key, None)
            making.set_result(made)
            entry = _Entry(made, self.clock())
            self._entries[key] = entry
            await self._evict_over_size()
            return entry
        await making
        return self._entries.get(key) or await self._entry(key, make)

    async def _make_room(self) -> None:
        """Room for one more: the least recently used idle entry goes; with none idle, a
        new key is refused, so things in use (a view held by a live stream) never exceed
        `size`."""
        while len(self._entries) + self._retired_in_use + len(self._making) >= self.size:
            idle = next((key for key, entry in self._entries.items() if entry.users == 0), None)
            if idle is None:
                raise PoolFullError(f"all {self.size} are in use")
            await self._retire(idle)

    async def _make_group_room(self, key: str) -> None:
        if self.per_group is None:
            return
        group = _group(key)
        while True:
            mine = [k for k in self._entries if _group(k) == group]  # least recently used first
            making = sum(1 for k in self._making if _group(k) == group)
            if len(mine) + making < self.per_group:
                return
            idle = next((k for k in mine if self._entries[k].users == 0), None)
            if idle is None:
                raise PoolFullError(f"this caller already has {self.per_group} in use")
            await self._retire(idle)

    async def _retire(self, key: str) -> None:
        entry = self._entries.pop(key)
        entry.retired = True
        if entry.users == 0:
            await self.closer(entry.item)
        else:
            self._retired_in_use += 1

    async def _expire(self) -> None:
        oldest_allowed = self.clock() - self.idle_seconds
        idle = [k for k, e in self._entries.items() if e.users == 0 and e.used_at < oldest_allowed]
        for key in idle:
            await self._retire(key)

    async def _evict_over_size(self) -> None:
        while len(self._entries) > self.size:
            await self._retire(next(iter(self._entries)))

    async def discard(self, key: str) -> None:
        """Forget what is filed under `key` (closed once no longer in use)."""
        if key in self._entries:
            await self._retire(key)

    async def close(self) -> None:
        for key in list(self._entries):
            await self._retire(key)


def ClientPool(size: int = POOL_SIZE, idle_seconds: float = IDLE_SECONDS) -> KeyedPool[KubeClient]:
    """The pool of callers' API clients."""
    return KeyedPool(_close_client, size, idle_seconds)
