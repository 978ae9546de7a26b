"""Who owns a Helm release, read from helm's own storage (Secrets labelled
owner=helm,name=<release>) with one API list instead of a helm process.

alecton records a release's owner in helm's release labels (`helm upgrade --labels`),
which helm copies onto its storage Secrets. Clients for the operator's own contexts are
kept; a client for a tenant's Secret-held kubeconfig, or one impersonating a tenant's
ServiceAccount, lives only for one lookup.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio import client

from alecton.api.models import OWNER_NAME_LABEL, OWNER_NAMESPACE_LABEL
from alecton.kube.access import KubeAccess
from alecton.kube.client import deadline, load_configuration
from alecton.kube.informers import list_pages
from alecton.reconcile.release import owner_from_description

_LOOKUP_DEADLINE = deadline(total=15.0)
_LOOKUP_HARD_DEADLINE = 20.0


class ReleaseLookupError(Exception):
    """The owner of a release could not be read: nothing may be done to it then."""


@dataclass(frozen=True)
class StoredRelease:
    exists: bool
    owner: str | None = None  # `namespace/name` of the owning Deployment; None: not alecton's
    status: str = ""  # helm's status of the newest revision


def owner_labels(namespace: str, name: str) -> dict[str, str]:
    return {OWNER_NAMESPACE_LABEL: namespace, OWNER_NAME_LABEL: name}


# The most a release may decompress to. Helm keeps a release Secret under 1 MiB, so an honest
# release is a few MiB of JSON; helm's storage on a tenant's cluster is the tenant's to write,
# and a gzip bomb there must not exhaust the operator's memory (or hold its event loop while
# megabytes of JSON are parsed: 16 MiB of the worst JSON takes about 0.45 s).
MAX_RELEASE_BYTES = 16 << 20
_CHUNK = 1 << 20  # decompressed per step


def _decode_release(data: dict[str, str] | None) -> dict[str, Any]:
    """Helm stores a release as base64(gzip(JSON)) inside the Secret's (base64) data.

    {} when it cannot be read, also when it would decompress to more than
    `MAX_RELEASE_BYTES` (decompression stops there): `stored_release` then finds no owner in
    its description, so a release that exists counts as not alecton's, never as nobody's.
    """
    return _decode_sized(data, MAX_RELEASE_BYTES)[0]


def _decode_sized(data: dict[str, str] | None, limit: int) -> tuple[dict[str, Any], int]:
    """The release (as `_decode_release`, at most `limit` bytes) and what finding out cost:
    the larger of what was stored and what it decompressed to (`limit` when it would
    decompress to more). The stored size counts too: gzip members that decompress to
    nothing cost their decoding all the same."""
    size = 0
    try:
        raw = base64.b64decode(base64.b64decode((data or {})["release"]))
        stored = size = len(raw)
        if raw[:2] == b"\x1f\x8b":
            size = max(stored, limit)  # if decompression stops at the limit
            raw = _gunzip(raw, limit)
            size = max(stored, len(raw))
        decoded = json.loads(raw)
    except (KeyError, ValueError, OSError, EOFError, RecursionError, zlib.error):
        return {}, size
    return (decoded if isinstance(decoded, dict) else {}), size


def _gunzip(raw: bytes, limit: int) -> bytes:
    """gzip members decompressed one bounded step at a time; ValueError past `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while raw:
        member = zlib.decompressobj(16 + zlib.MAX_WBITS)
        pending = raw
        while not member.eof:
            # max_length 0 would mean "no limit": size <= limit here, so it is at least 1.
            chunk = member.decompress(pending, min(limit + 1 - size, _CHUNK))
            size += len(chunk)
            if size > limit:
                raise ValueError(f"release decompresses to more than {limit} bytes")
            chunks.append(chunk)
            pending = member.unconsumed_tail
            if not chunk and not pending and not member.eof:
                raise ValueError("release is cut short")
        raw = member.unused_data
    return b"".join(chunks)


def stored_release(items: list[Any]) -> StoredRelease:
    """The newest revision's owner. A release whose owner cannot be read is never
    "nobody's": labels first, then (releases made before labels) alecton's description."""
    if not items:
        return StoredRelease(False)

    def revision(item: Any) -> int:
        try:
            return int((item.metadata.labels or {}).get("version") or 0)
        except ValueError:
            return 0

    newest = max(items, key=revision)
    labels = newest.metadata.labels or {}
    status = str(labels.get("status") or "")
    if labels.get(OWNER_NAMESPACE_LABEL) and labels.get(OWNER_NAME_LABEL):
        return StoredRelease(True, f"{labels[OWNER_NAMESPACE_LABEL]}/{labels[OWNER_NAME_LABEL]}", status)
    release = _decode_release(newest.data)
    description = str((release.get("info") or {}).get("description") or "")
    return StoredRelease(True, owner_from_description(description), status)


class ReleaseStorage:
    def __init__(self) -> None:
        self._clients: dict[tuple[str, str, str], client.ApiClient] = {}
        self._closing: set[asyncio.Task[None]] = set()

    @contextlib.asynccontextmanager
    async def _client(self, access: KubeAccess) -> AsyncIterator[client.ApiClient]:
        if access.tenant_secret:
            api = client.ApiClient(await load_configuration(access.kubeconfig, access.context or None))
            try:
                yield api
            finally:
                self._close_later(api)
            return
        # The operator's own contexts: one client per context and impersonated identity.
        # Helm's storage is read as the identity helm runs as (the tenant's ServiceAccount
        # unless a grant says `@operator`), so the owner check sees no more than helm does.
        key = (access.kubeconfig, access.context, access.impersonate)
        if key not in self._clients:
            api = client.ApiClient(
                await load_configuration(access.kubeconfig or None, access.context or None)
            )
            if access.impersonate:
                api.set_default_header("Impersonate-User", access.impersonate)
            self._clients[key] = api
        yield self._clients[key]

    async def lookup(self, access: KubeAccess, release: str, namespace: str) -> StoredRelease:
        try:
            async with self._client(access) as api:
                # aiohttp's own deadline covers the request; this one also covers closing a
                # connection to a server that never answers (TLS shutdown can wait on it).
                async with asyncio.timeout(_LOOKUP_HARD_DEADLINE):
                    secrets = await client.CoreV1Api(api).list_namespaced_secret(
                        namespace,
                        label_selector=f"owner=helm,name={release}",
                        _request_timeout=_LOOKUP_DEADLINE,
                    )
        except client.ApiException as error:
            hint = ""
            if error.status == 403 and access.impersonate:
                # The usual cause on a shared cluster: nobody onboarded this namespace for the
                # identity the grant acts as.
                hint = (
                    f" as {access.impersonate}, which has no rights there; the platform team gives "
                    f"it some by onboarding the namespace (alecton onboard {namespace} --tenant TENANT)"
                )
            raise ReleaseLookupError(
                f"cannot read helm's storage for release {release!r} in namespace {namespace!r}: "
                f"{error.status} {error.reason}{hint}"
            ) from None
        except Exception as error:  # unreachable, timed out, a broken kubeconfig
            self._forget(access)  # never reuse connections to a server that did not answer
            raise ReleaseLookupError(
                f"cannot reach the cluster to check who owns release {release!r}: "
                f"{type(error).__name__} {str(error)[:200]}"
            ) from None
        return stored_release(list(secrets.items))

    def _forget(self, access: KubeAccess) -> None:
        api = self._clients.pop((access.kubeconfig, access.context, access.impersonate), None)
        if api is not None:
            self._close_later(api)

    def _close_later(self, api: client.ApiClient) -> None:
        # In the background: closing may itself wait on a server that never answers.
        task = asyncio.get_running_loop().create_task(api.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        for api in self._clients.values():
            await api.close()
        self._clients.clear()


async def read_manifest(api: client.ApiClient, release: str, namespace: str, revision: int) -> str:
    """The manifest of one revision, from helm's storage Secret (no helm process)."""
    async with asyncio.timeout(_LOOKUP_HARD_DEADLINE):
        secret = await client.CoreV1Api(api).read_namespaced_secret(
            f"sh.helm.release.v1.{release}.v{revision}", namespace, _request_timeout=_LOOKUP_DEADLINE
        )
    decoded = _decode_release(secret.data)
    if not decoded:
        raise ValueError(f"helm's storage Secret of {release} revision {revision} is not a release")
    return str(decoded.get("manifest") or "")


# Storage Secrets read per page of a namespace's deployed releases: a page is decoded (in a
# thread) before the next is asked for, so at most one page of whole releases is held.
_STORAGE_PAGE = 100


@dataclass
class ListingBudget:
    """What one list of a namespace's helm storage may decode. The namespace's storage is
    its tenant's to write: Secrets labelled like helm's cost the decoding of every one of
    them, not only of the releases tracked there; past the budget the list stops and each
    release left is read on its own (within `MAX_RELEASE_BYTES`, as after helm)."""

    secrets: int = 5000
    decoded_bytes: int = 64 << 20

    @property
    def spent(self) -> bool:
        return self.secrets <= 0 or self.decoded_bytes <= 0


async def deployed_manifests(
    api: client.ApiClient, namespace: str, budget: ListingBudget
) -> AsyncIterator[list[tuple[str, int, str]]]:
    """(release, revision, manifest) of the deployed revisions in `namespace`, from helm's
    storage Secrets (labels owner=helm,status=deployed), one page at a time within `budget`:
    one list instead of a read per release. Releases that cannot be decoded are left out: a
    read of their own says why. The caller parses only the manifests it takes."""
    path = f"/api/v1/namespaces/{namespace}/secrets"
    query = [("labelSelector", "owner=helm,status=deployed")]
    async for items, _version in list_pages(api, path, query, _STORAGE_PAGE):  # a deadline per page
        yield await asyncio.to_thread(_manifests_of, items, budget)
        if budget.spent:
            return


def _manifests_of(items: list[dict[str, Any]], budget: ListingBudget) -> list[tuple[str, int, str]]:
    found = []
    for item in items:
        if budget.spent:
            break
        release, size = _decode_sized(item.get("data"), min(MAX_RELEASE_BYTES, budget.decoded_bytes))
        budget.secrets -= 1
        budget.decoded_bytes -= size
        name, revision, manifest = release.get("name"), release.get("version"), release.get("manifest")
        if not (isinstance(name, str) and isinstance(revision, int) and isinstance(manifest, str)):
            continue
        # Only helm's own Secret for that revision speaks for it: another Secret in the namespace
        # labelled like helm's cannot claim a release's name (Secret names are unique).
        if (item.get("metadata") or {}).get("name") != f"sh.helm.release.v1.{name}.v{revision}":
            continue
        found.append((name, revision, manifest))
    return found
