"""Tenant input cannot stall the event loop (issue 23): version patterns, helm's error text,
helm's storage and release manifests are bounded in time and size.

The timed checks run the work in a forked child and give up on it after the bound, so a
regression fails in about a second instead of hanging the suite (the old code took minutes).
"""

from __future__ import annotations

import asyncio
import base64
import json
import multiprocessing
import struct
import time
import tracemalloc
import zlib
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from alecton.api.models import ObjectRef
from alecton.handlers.ownership import ownership_conflict
from alecton.helm.release import parse_history
from alecton.helm.runner import MAX_ERROR_LENGTH, HelmResult
from alecton.kube import informers
from alecton.kube.releases import MAX_RELEASE_BYTES, _decode_release, stored_release
from alecton.reconcile.helm_failure import FailureClass, FailureKind, classify_helm_failure
from alecton.reconcile.manifest import MAX_MANIFEST_CHARS, manifest_documents, manifest_objects
from alecton.reconcile.plan import ReleaseLocation
from alecton.reconcile.redact import REDACTED, Redactor
from alecton.reconcile.release import owner_description, owner_from_description
from alecton.reconcile.versions import VersionPolicy

MiB = 1 << 20
BOUND = 0.5  # seconds


def finishes_within(seconds: float, work: Callable[[], Any]) -> bool:
    """Whether `work()` returns within `seconds`, run in a forked child (killed if not)."""
    child = multiprocessing.get_context("fork").Process(target=work, daemon=True)
    child.start()
    child.join(seconds)
    if child.is_alive():
        child.kill()
        child.join()
        return False
    return child.exitcode == 0


# ---------------------------------------------------------------------------
# 1. Version patterns run on RE2

EVIL_PATTERN = "^(a+)+$"
EVIL_VERSION = "a" * 48 + "_"  # 49 characters, inside the CRD's pattern and maxLength


def test_a_catastrophic_pattern_is_matched_in_linear_time() -> None:
    policy = VersionPolicy.parse({"pattern": EVIL_PATTERN})
    assert finishes_within(BOUND, lambda: policy.newest([EVIL_VERSION, "aaa"]))
    started = time.monotonic()
    assert not policy.qualifies(EVIL_VERSION)
    assert policy.newest([EVIL_VERSION, "aaa"]) == "aaa"
    assert time.monotonic() - started < BOUND


@pytest.mark.parametrize(
    ("pattern", "construct"),
    [
        (r"^(\d+)-\1$", r"a backreference (\1)"),
        (r"^(?P<n>\d+)-(?P=n)$", "a named backreference"),
        (r"^build-(?=\d)(\d+)$", "a lookahead"),
        (r"^build-(?!0)(\d+)$", "a negative lookahead"),
        (r"(?<=build-)\d+$", "a lookbehind"),
        (r"(?<!rc)\d+$", "a negative lookbehind"),
        (r"^(?>a+)b$", "an atomic group"),
        (r"^a++$", "a possessive quantifier (++)"),
        (r"^v\d+\Z", r"\Z"),
    ],
)
def test_a_pattern_re2_refuses_is_rejected_at_parse_time_naming_the_construct(
    pattern: str, construct: str
) -> None:
    with pytest.raises(ValueError) as caught:
        VersionPolicy.parse({"pattern": pattern}, field="spec.promotion.versions")
    message = str(caught.value)
    assert message.startswith(f"spec.promotion.versions.pattern: {pattern!r} uses {construct}")
    assert "RE2" in message
    assert "\n" not in message


def test_re2_semantics_the_policy_relies_on() -> None:
    policy = VersionPolicy.parse({"pattern": r"^(?P<branch>[a-z]+)-(?P<order>\d+)$", "order": "Numerical"})
    assert policy.newest(["main-9", "main-10", "dev-11x"]) == "main-10"
    # RE2's $ matches only at the very end (Python's also before a trailing newline).
    assert not VersionPolicy.parse({"pattern": r"^build-\d+$"}).qualifies("build-1\n")
    # Versions longer than any Image's never qualify.
    assert not VersionPolicy.parse({"pattern": "a"}).qualifies("a" * 129)


# ---------------------------------------------------------------------------
# 2. helm's error text: classification, the message, redaction

FAIL_PREFIX = "Error: UPGRADE FAILED: execution error at (bigfail/templates/fail.yaml:1:4): "
HINT = "\n\nUse --debug flag to render out invalid YAML\n"


def chart_fail(size: int) -> str:
    """helm's stderr for a chart's `fail` with a message of about `size` characters."""
    words = "the tenant wrote a very long failure message on purpose "
    return FAIL_PREFIX + (words * (size // len(words) + 1))[:size] + HINT


@pytest.mark.parametrize(
    "stderr",
    [
        pytest.param(chart_fail(MiB), id="1MB-fail-message"),
        pytest.param(FAIL_PREFIX + "did not finish within " * (MiB // 22) + HINT, id="timeout-prefixes"),
        pytest.param(FAIL_PREFIX + "execution error at (" * (MiB // 20) + HINT, id="required-prefixes"),
        pytest.param("Error: " + 'FetchReference" on source: ' * (MiB // 27), id="fetch-prefixes"),
    ],
)
def test_classifying_a_megabyte_of_stderr_takes_no_time(stderr: str) -> None:
    assert finishes_within(BOUND, lambda: classify_helm_failure(stderr))


def test_a_megabyte_fail_message_is_still_a_template_error() -> None:
    assert classify_helm_failure(chart_fail(MiB)) == FailureClass(FailureKind.INPUT, "TemplateError")
    # The tail counts too: a deadline after a long message is still transient.
    stderr = chart_fail(MiB).rstrip() + ": context deadline exceeded\n"
    assert classify_helm_failure(stderr).kind is FailureKind.TRANSIENT


def test_the_error_message_of_a_megabyte_of_stderr_is_capped() -> None:
    result = HelmResult(("upgrade",), 1, "", chart_fail(MiB), 1.0)
    started = time.monotonic()
    message = result.error
    assert time.monotonic() - started < BOUND
    assert len(message) <= MAX_ERROR_LENGTH
    assert message.startswith("UPGRADE FAILED: execution error at (bigfail/templates/fail.yaml:1:4): the")
    assert message.endswith(" [...]")
    # Many lines, each continuing the error: the same cap.
    lines = "Error: first line\n" + "  one more line\n" * (MiB // 16)
    assert len(HelmResult(("upgrade",), 1, "", lines, 1.0).error) <= MAX_ERROR_LENGTH


def test_the_cap_never_cuts_a_secret_in_two() -> None:
    secret = "s3cr3t-" + "x" * 40
    for shift in range(0, 60, 7):
        stderr = "Error: " + "word " * ((MAX_ERROR_LENGTH - 30 - shift) // 5) + secret + " tail" * 1000
        message = Redactor([secret]).redact(HelmResult(("upgrade",), 1, "", stderr, 1.0).error)
        assert "s3cr3t" not in message
        assert len(message) <= MAX_ERROR_LENGTH


def test_redacting_the_message_of_a_megabyte_of_stderr_with_many_secrets_takes_no_time() -> None:
    secrets = [f"secret-value-{i:05d}" for i in range(2000)]
    redactor = Redactor(secrets)
    stderr = FAIL_PREFIX + " ".join(secrets[i % 2000] + " is wrong" for i in range(MiB // 30)) + HINT
    error = str(HelmResult(("upgrade",), 1, "", stderr, 1.0).error)

    def redact() -> None:
        assert "secret-value" not in redactor.redact(error)

    assert finishes_within(BOUND, redact)
    assert REDACTED in redactor.redact(error)


# ---------------------------------------------------------------------------
# 3. helm's storage: a gzip bomb, a huge description


def gzip_of_zeros(size: int) -> bytes:
    """A valid gzip stream of `size` zero bytes (a multiple of 1 MiB), built from one
    compressed MiB repeated: about 1 KB per MiB, never the expanded data in memory."""
    zero = bytes(MiB)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    head = compressor.compress(zero) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(zero) + compressor.flush(zlib.Z_FULL_FLUSH)  # the same every MiB
    crc = 0
    for _ in range(size // MiB):
        crc = zlib.crc32(zero, crc)
    end = compressor.flush(zlib.Z_FINISH)[:-8]  # the compressor's trailer covers 2 MiB only
    return head + block * (size // MiB - 1) + end + struct.pack("<II", crc, size & 0xFFFFFFFF)


def secret_data(release: bytes) -> dict[str, str]:
    """A helm storage Secret's `data`: base64 (the API's) of base64 (helm's) of the release."""
    return {"release": base64.b64encode(base64.b64encode(release)).decode()}


def storage_secret(release: bytes, labels: dict[str, str]) -> Any:
    return SimpleNamespace(metadata=SimpleNamespace(labels=labels), data=secret_data(release))


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return gzip_of_zeros(1024 * MiB)  # 1 GiB expanded, about 1 MB here


def test_a_gzip_bomb_in_helms_storage_is_refused_within_the_limit(bomb: bytes) -> None:
    assert len(bomb) < 2 * MiB
    assert zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(bomb, MiB) == bytes(MiB)  # it is gzip
    data = secret_data(bomb)
    tracemalloc.start()
    try:
        started = time.monotonic()
        decoded = _decode_release(data)
        seconds = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert decoded == {}
    assert peak < MAX_RELEASE_BYTES + 8 * MiB  # the old code held all 1 GiB
    assert seconds < 2


def test_a_refused_release_is_never_nobodys(bomb: bytes) -> None:
    stored = stored_release([storage_secret(bomb, {"owner": "helm", "name": "web", "version": "3"})])
    assert stored.exists
    assert stored.owner is None  # not alecton's: it is not taken over
    location = ReleaseLocation("c", "id", "web", "web")
    conflict = ownership_conflict(stored, ObjectRef("team", "web"), location, {}, False)
    assert conflict is not None and "not made by alecton" in conflict


def test_an_honest_release_still_decodes() -> None:
    release = {"info": {"description": owner_description("1.0", "team/web")}, "manifest": "a: b\n" * 1000}
    data = json.dumps(release).encode()
    assert _decode_release(secret_data(zlib.compress(data, wbits=16 + zlib.MAX_WBITS))) == release
    assert _decode_release(secret_data(data)) == release  # helm may store it uncompressed
    # Two gzip members (what gzip.decompress also read).
    half = len(data) // 2
    members = b"".join(zlib.compress(part, wbits=16 + zlib.MAX_WBITS) for part in (data[:half], data[half:]))
    assert _decode_release(secret_data(members)) == release
    stored = stored_release([storage_secret(zlib.compress(data, wbits=31), {"version": "1"})])
    assert stored.owner == "team/web"


def test_a_cut_or_nested_release_reads_as_unreadable() -> None:
    data = zlib.compress(b'{"info": {}}', wbits=16 + zlib.MAX_WBITS)
    assert _decode_release(secret_data(data[:-6])) == {}
    assert _decode_release(secret_data(b"[" * 100_000 + b"]" * 100_000)) == {}


def test_a_huge_release_description_is_no_owner_and_takes_no_time() -> None:
    description = "alecton: deployed version v for " + "a/" * 30_000 + "\n\n"
    assert finishes_within(BOUND, lambda: owner_from_description(description))
    assert owner_from_description(description) is None
    history = json.dumps([{"revision": 1, "description": description}])
    assert finishes_within(BOUND, lambda: parse_history(history))


# ---------------------------------------------------------------------------
# Release manifests: aliases and size


def nested_list_bomb(levels: int = 5, fanout: int = 30) -> str:
    """990 bytes of `List` items aliasing the level below: fanout**levels ConfigMaps."""
    lines = ["apiVersion: v1", "kind: List"]
    lines.append("x0: &l0 {kind: List, items: [{kind: ConfigMap, apiVersion: v1, metadata: {name: x}}]}")
    for level in range(1, levels):
        lines.append(f"x{level}: &l{level} {{kind: List, items: [{', '.join([f'*l{level - 1}'] * fanout)}]}}")
    lines.append(f"items: [{', '.join([f'*l{levels - 1}'] * fanout)}]")
    return "\n".join(lines) + "\n"


def nested_mapping_bomb(levels: int = 22) -> str:
    """A ConfigMap whose data doubles at every alias level: 2**levels nodes in 651 bytes."""
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata: {name: bomb}", "x0: &a0 {k: v}"]
    lines += [f"x{i}: &a{i} {{l: *a{i - 1}, r: *a{i - 1}}}" for i in range(1, levels)]
    lines.append(f"data: *a{levels - 1}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("manifest", [nested_list_bomb(), nested_mapping_bomb()], ids=["lists", "mappings"])
def test_a_yaml_alias_bomb_in_a_manifest_is_refused_at_once(manifest: str) -> None:
    def parse() -> None:
        with pytest.raises(ValueError, match="aliases that expand it by more than"):
            manifest_objects(manifest, "web")

    assert finishes_within(BOUND, parse)


def test_a_manifest_with_a_few_aliases_and_a_loop_is_read() -> None:
    manifest = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: &d {a: '1', b: '2'}\nextra: *d\n"
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: loop}\ndata: &e\n  again: *e\n"
    )
    assert len(manifest_documents(manifest)) == 2


def test_an_oversized_manifest_is_refused_before_it_is_parsed() -> None:
    manifest = "a: b\n" * (MAX_MANIFEST_CHARS // 5 + 1)
    started = time.monotonic()
    with pytest.raises(ValueError, match="more than the"):
        manifest_documents(manifest)
    assert time.monotonic() - started < 0.1


# ---------------------------------------------------------------------------
# Responses of a target cluster's API server


class _Content:
    def __init__(self, chunks: int, size: int) -> None:
        self.chunks, self.size, self.read_bytes = chunks, size, 0

    async def iter_any(self) -> Any:
        for _ in range(self.chunks):
            self.read_bytes += self.size
            yield b" " * self.size


class _Response:
    """An aiohttp response of 100 MiB that says nothing of its length."""

    status = 200
    reason = "OK"
    content_length = None

    def __init__(self) -> None:
        self.content = _Content(100, MiB)

    async def read(self) -> bytes:  # what the old code called: all of it
        return b"{}" + b" " * (self.content.chunks * self.content.size)

    def release(self) -> None:
        pass


def test_a_huge_api_response_is_refused_past_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(informers, "MAX_RESPONSE_BYTES", 8 * MiB, raising=False)
    response = _Response()
    with pytest.raises(ValueError, match="larger than 8 MiB"):
        asyncio.run(informers.json_body(response))
    assert response.content.read_bytes <= 9 * MiB
