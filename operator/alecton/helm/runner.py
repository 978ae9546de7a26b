"""The one place that spawns helm: an asyncio subprocess, no shell, bounded in time.

On timeout or cancellation the child gets SIGTERM (helm then marks the release
failed instead of leaving it pending), a grace period, then SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from alecton.metrics import Metrics

if TYPE_CHECKING:
    from alecton.helm.server import HelmServer

log = logging.getLogger(__name__)

# Helm's own error lines start with this; we surface them to users verbatim.
_ERROR_PREFIX = "Error: "

# The longest error message HelmResult.error returns. Helm's stderr holds a tenant's words (a
# chart's `fail` message, values quoted back) and may be megabytes; the message is redacted,
# classified and written to status and Events on the event loop, which keep 1 KiB of it.
MAX_ERROR_LENGTH = 4096
_CUT_MARK = " [...]"


@dataclass(frozen=True)
class HelmResult:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def error(self) -> str:
        """Helm's error message (its last `Error: ...` line with the lines that continue it up
        to the first blank line: Helm 4 indents a template error's, a values-schema violation's
        are not indented), or the stderr tail. At most `MAX_ERROR_LENGTH` characters, and
        linear in the length of stderr: only the lines from the last `Error: ` one are read."""
        return _capped(_error_message(self.stderr, self.returncode))


def _error_message(stderr: str, returncode: int) -> str:
    at = stderr.rfind("\n" + _ERROR_PREFIX)
    start = at + 1 if at >= 0 else (0 if stderr.startswith(_ERROR_PREFIX) else -1)
    if start >= 0:
        lines = _lines_from(stderr, start)
        parts = [next(lines).removeprefix(_ERROR_PREFIX).strip()]
        length = len(parts[0])
        for line in lines:
            if not line.strip() or length > MAX_ERROR_LENGTH:
                break
            parts.append(line.strip())
            length += len(parts[-1]) + 1
        return " ".join(parts)
    tail = stderr.rstrip()
    last = tail[tail.rfind("\n") + 1 :].strip()
    return last or f"helm exited with code {returncode}"


def _lines_from(text: str, start: int) -> Iterator[str]:
    """The lines of `text` from offset `start` on, one at a time (no list of them all)."""
    while True:
        end = text.find("\n", start)
        if end < 0:
            yield text[start:]
            return
        yield text[start:end]
        start = end + 1


def _capped(message: str) -> str:
    """`message` cut to `MAX_ERROR_LENGTH` characters, at a space when there is one near the end:
    a secret quoted there is then kept whole for the redactor (or dropped), never cut in two
    with its first part left for a reader."""
    if len(message) <= MAX_ERROR_LENGTH:
        return message
    limit = MAX_ERROR_LENGTH - len(_CUT_MARK)
    space = message.rfind(" ", limit * 3 // 4, limit + 1)
    return message[: space if space > 0 else limit].rstrip() + _CUT_MARK


class HelmTimeoutError(Exception):
    def __init__(self, action: str, seconds: float) -> None:
        super().__init__(f"helm {action} did not finish within {seconds:.0f} s and was stopped")


class HelmClosedError(Exception):
    def __init__(self, action: str) -> None:
        super().__init__(f"helm {action} not started: this replica no longer leads")


_PR_SET_PDEATHSIG = 1


# Resolved once here: the child runs between fork and exec, where only a plain call is cheap
# and safe (looking a library up would start a process of its own in every child).
try:
    _PRCTL = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux
    _PRCTL = None


def die_with_parent() -> None:
    """In the child before exec: SIGTERM when the operator's process dies (helm then marks
    its release failed and exits, well before a standby's Lease lets it start)."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


HELM_GOGC = "400"
HELM_GOMEMLIMIT = "512MiB"


@dataclass
class HelmRunner:
    binary: str
    timeout: float = 300.0  # helm's own --timeout
    kill_grace: float = 10.0
    # The process is stopped only this long after helm's own deadline, so helm can mark
    # the release failed itself instead of leaving it pending.
    deadline_margin: float = 30.0
    # Shared cache/config dirs: helm reuses its repository index and OCI cache between
    # runs instead of starting cold each time.
    home: Path | None = None
    metrics: Metrics | None = None
    running: set[asyncio.subprocess.Process] = field(default_factory=set)
    # The "server" driver (helm/server.py): a long-lived helmd answers what it serves; None
    # (the "cli" driver): every action is a helm process.
    server: HelmServer | None = None

    closed: bool = False  # no helm starts any more (leadership lost)

    async def stop_all(self, grace: float = 3.0) -> None:
        """Stop every helm this process runs and start no other (leadership lost: before
        another replica may start). SIGTERM first: helm then marks its release failed
        instead of leaving it locked in pending-*; SIGKILL after `grace`."""
        self.closed = True
        if self.server is not None:
            await self.server.stop(grace)
        running = list(self.running)
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(p.wait() for p in running)), grace)
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.kill()

    def process_env(self, in_cluster: bool) -> dict[str, str]:
        passed = ["PATH", "TMPDIR", "HOME"]
        if in_cluster:
            # Only then: with a kubeconfig file, an incomplete one must fail, not fall back
            # to the operator's own in-cluster identity.
            passed += ["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"]
        env = {key: os.environ[key] for key in passed if key in os.environ}
        if self.home:
            env["HELM_CACHE_HOME"] = str(self.home / "cache")
            env["HELM_CONFIG_HOME"] = str(self.home / "config")
            env["HELM_DATA_HOME"] = str(self.home / "data")
        # helm is a short-lived Go process that frees everything at exit: a larger GC target
        # cuts its CPU by about a fifth (0.18 -> 0.14 s per upgrade of the bundled chart, for
        # 7 MB more peak memory); the soft memory limit keeps a huge chart from growing
        # unbounded. The operator's own environment may set either (docs/benchmarks.md).
        env["GOGC"] = os.environ.get("GOGC", HELM_GOGC)
        env["GOMEMLIMIT"] = os.environ.get("GOMEMLIMIT", HELM_GOMEMLIMIT)
        # KUBECONFIG is not passed on: every call names its kubeconfig, or none (in-cluster).
        return env

    def _homes(self) -> dict[str, str]:
        """The helm directories a helmd request names (its process has the rest)."""
        return {key: value for key, value in self.process_env(False).items() if key.startswith("HELM_")}

    async def run(
        self,
        args: list[str],
        timeout: float | None = None,
        in_cluster: bool = False,
        env: dict[str, str] | None = None,
    ) -> HelmResult:
        """`env`: variables of this run only (HELM_REGISTRY_CONFIG of a chart's registry
        Secret), over the runner's."""
        limit = (self.timeout if timeout is None else timeout) + self.deadline_margin
        started = time.monotonic()
        if self.metrics:
            self.metrics.helm_started()
        ok = False
        try:
            result = await self._run(args, limit, started, in_cluster, env or {})
            ok = result.ok
            return result
        finally:
            if self.metrics:
                self.metrics.helm_finished(args[0], started, ok)

    async def _run(
        self, args: list[str], limit: float, started: float, in_cluster: bool, env: dict[str, str]
    ) -> HelmResult:
        if self.closed:
            raise HelmClosedError(args[0])
        if self.server is not None:
            served = await self.server.run(args, limit, started, self._homes() | env, in_cluster)
            if served is not None:
                return served
        process = await asyncio.create_subprocess_exec(
            self.binary,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.process_env(in_cluster) | env,
            # helm stays in the operator's process group: when the operator's container
            # dies, helm dies with it rather than racing a restarted operator. And when
            # only the operator's process dies (kill -9 outside a container), the kernel
            # stops helm too: a standby taking over must never meet a helm still running.
            preexec_fn=die_with_parent,
        )
        self.running.add(process)
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=limit)
        except TimeoutError:
            await self._stop(process)
            raise HelmTimeoutError(args[0], limit) from None
        except asyncio.CancelledError:
            await asyncio.shield(self._stop(process))
            raise
        finally:
            self.running.discard(process)
        return HelmResult(
            args=tuple(args),
            returncode=process.returncode if process.returncode is not None else -1,
            stdout=stdout.decode(errors="replace"),
            stderr=stderr.decode(errors="replace"),
            seconds=time.monotonic() - started,
        )

    async def _stop(self, process: asyncio.subprocess.Process) -> None:
        if process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=self.kill_grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
