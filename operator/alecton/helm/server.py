"""The "server" helm driver: one long-lived helmd (hack/helmd, a Go program on the Helm 4
SDK) serves every helm action, instead of one helm process per action.

helmd reads one JSON request per line on stdin and answers one JSON line per request on
stdout, in the order they finish: {"id", "code", "stdout", "stderr"}, what the helm CLI would
have returned for the same argv. This side multiplexes the requests by id, enforces the same
deadline as a CLI run (then sends {"cancel": id}: helm marks the release failed), restarts a
helmd that died (with backoff; what was in flight gets code -1, like a killed helm), and
stops it when leadership is lost. Arguments helmd does not serve are answered with code 2;
the runner then runs the CLI for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alecton.helm.runner import HelmClosedError, HelmResult, HelmTimeoutError, die_with_parent

if TYPE_CHECKING:
    from alecton.helm.runner import HelmRunner

log = logging.getLogger(__name__)

UNSERVED_PREFIX = "Error: helmd does not serve"

# The largest answer line read from helmd (a release's manifest with its chart, as JSON).
MAX_LINE = 256 * 1024 * 1024

# helmd lives long: the GC target of a short-lived helm (runner.HELM_GOGC) would let its heap
# grow four times over between collections, for good. 50, not Go's 100: a wave of 1000
# releases (health on) peaked at 263 MiB for operator + helmd with 100, 243 MiB with 50 and
# 227 MiB with 25, for about 10 % and then 50 % more CPU (docs/benchmarks.md).
HELMD_GOGC = "50"

DRIVERS = ("cli", "server")


@dataclass
class HelmServer:
    binary: str
    env: dict[str, str]  # helmd's process environment (the runner's, in-cluster variables kept)
    kill_grace: float = 10.0  # after a cancel: how long helm may take to mark its release failed
    backoff_start: float = 0.5
    backoff_max: float = 30.0
    closed: bool = False
    _process: asyncio.subprocess.Process | None = None
    _reader: asyncio.Task[None] | None = None
    _pending: dict[int, asyncio.Future[tuple[int, str, str]]] = field(default_factory=dict)
    _next_id: int = 0
    _start_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _crashes: int = 0
    _restart_at: float = 0.0

    async def run(
        self, args: list[str], limit: float, started: float, env: dict[str, str], in_cluster: bool
    ) -> HelmResult | None:
        """helm's answer for `args`, None when helmd does not serve them (run the CLI)."""
        if self.closed:
            raise HelmClosedError(args[0])
        process, reader = await self._ensure_started(args[0])
        self._next_id += 1
        request_id = self._next_id
        answer: asyncio.Future[tuple[int, str, str]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = answer
        if reader.done():  # helmd died since it was started: no answer will come
            answer.set_result((-1, "", ""))
        try:
            await self._send(process, {"id": request_id, "args": args, "env": env, "inCluster": in_cluster})
            code, stdout, stderr = await asyncio.wait_for(asyncio.shield(answer), timeout=limit)
        except TimeoutError:
            await self._cancel(process, request_id, answer)
            raise HelmTimeoutError(args[0], limit) from None
        except asyncio.CancelledError:
            await asyncio.shield(self._cancel(process, request_id, answer))
            raise
        finally:
            self._pending.pop(request_id, None)
        if code == 2 and stderr.startswith(UNSERVED_PREFIX):
            log.debug("helmd: %s", stderr.strip())
            return None
        return HelmResult(tuple(args), code, stdout, stderr, time.monotonic() - started)

    async def stop(self, grace: float = 3.0) -> None:
        """No request any more; helmd cancels what is in flight (helm marks those releases
        failed) and exits; SIGKILL after `grace`."""
        self.closed = True  # no start either: _ensure_started checks it under its lock
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        if self._reader is not None:  # every pending request has its answer or -1
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._reader), 1.0)

    async def _ensure_started(self, action: str) -> tuple[asyncio.subprocess.Process, asyncio.Task[None]]:
        """The running helmd and the task reading its answers (done once it has died)."""
        async with self._start_lock:
            if self.closed:
                raise HelmClosedError(action)
            if self._process is not None and self._reader is not None and not self._reader.done():
                return self._process, self._reader
            delay = self._restart_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)  # a helmd that keeps dying is not restarted hot
            self._process = await asyncio.create_subprocess_exec(
                self.binary,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self.env,
                limit=MAX_LINE,
                # Dies with the operator's process, as a CLI helm does (see runner.py).
                preexec_fn=die_with_parent,
            )
            log.info("helmd started (pid %d)", self._process.pid)
            self._reader = asyncio.ensure_future(self._read(self._process))
            return self._process, self._reader

    async def _send(self, process: asyncio.subprocess.Process, message: dict[str, Any]) -> None:
        line = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        assert process.stdin is not None
        async with self._write_lock:
            try:
                process.stdin.write(line)
                await process.stdin.drain()
            except (ConnectionError, RuntimeError):
                pass  # helmd is gone: its reader answers every pending request with -1

    async def _cancel(
        self, process: asyncio.subprocess.Process, request_id: int, answer: asyncio.Future[Any]
    ) -> None:
        """Cancel a request and give helm `kill_grace` to mark its release failed, as a CLI
        helm gets between SIGTERM and SIGKILL."""
        await self._send(process, {"cancel": request_id})
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(answer), self.kill_grace)

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None and process.stderr is not None
        errors = asyncio.ensure_future(_log_lines(process.stderr))
        try:
            while line := await process.stdout.readline():
                self._answer(line)
        except (ValueError, asyncio.LimitOverrunError) as error:
            log.error("helmd: unreadable answer (%s); restarting it", error)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        code = await process.wait()
        errors.cancel()
        self._died(code)

    def _answer(self, line: bytes) -> None:
        try:
            message = json.loads(line)
            answer = self._pending.get(int(message["id"]))
            result = (int(message["code"]), str(message["stdout"]), str(message["stderr"]))
        except (ValueError, KeyError, TypeError):
            log.error("helmd: an answer that is not the protocol's: %.200r", line)
            return
        if answer is not None and not answer.done():
            answer.set_result(result)

    def _died(self, code: int) -> None:
        """Every request still waiting gets what a killed helm gives: code -1 and no output."""
        for answer in self._pending.values():
            if not answer.done():
                answer.set_result((-1, "", ""))
        if self.closed:
            return
        self._crashes += 1
        backoff = min(self.backoff_max, self.backoff_start * 2 ** (self._crashes - 1))
        self._restart_at = time.monotonic() + backoff
        log.warning("helmd exited with code %s; the next request starts it again in %.1f s", code, backoff)


async def _log_lines(stream: asyncio.StreamReader) -> None:
    # helm's process-wide warnings (a deprecated chart...); a request's own output comes back
    # in its answer. Debug only: helm may quote what it was given.
    while line := await stream.readline():
        log.debug("helmd: %s", line.decode(errors="replace").rstrip())


def default_helmd(helm_binary: str) -> str | None:
    """helmd next to the helm binary (as `make tools` and the image put them), if there is
    one. Never one from PATH: a `--helm` elsewhere (a wrapper, another version) is what
    the user asked to run, and a helmd beside another helm would bypass it."""
    found = shutil.which(helm_binary)
    beside = Path(found).parent / "helmd" if found else None
    return str(beside) if beside is not None and os.access(beside, os.X_OK) else None


_VERSION = re.compile(r"v(\d+)\.")


async def helm_major_version(binary: str, timeout: float = 20.0) -> int | None:
    """The major version of a helm binary (3 or 4), None when it cannot be told."""
    try:
        process = await asyncio.create_subprocess_exec(
            binary,
            "version",
            "--template",
            "{{.Version}}",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
    except OSError:
        return None
    try:
        stdout, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        return None
    match = _VERSION.match(stdout.decode(errors="replace").strip())
    return int(match.group(1)) if match else None


async def use_driver(runner: HelmRunner, driver: str, helmd: str | None = None) -> str:
    """Give `runner` the driver asked for; the one it then uses. helmd serves Helm 4 only:
    with a Helm 3 binary (or no helmd) the runner keeps running the CLI, and says why once."""
    if driver != "server":
        return "cli"
    binary = helmd or default_helmd(runner.binary)
    if binary is None:
        log.warning(
            "--helm-driver server: no helmd beside %s (see --helmd); running the helm CLI", runner.binary
        )
        return "cli"
    if not (shutil.which(binary) or os.access(binary, os.X_OK)):
        log.warning("--helm-driver server: no helmd at %s; running the helm CLI", binary)
        return "cli"
    major = await helm_major_version(runner.binary)
    if major != 4:
        log.warning(
            "--helm-driver server: helmd serves Helm 4 only and %s is Helm %s; running the helm CLI",
            runner.binary,
            major or "of an unknown version",
        )
        return "cli"
    env = runner.process_env(in_cluster=True)
    env["GOGC"] = os.environ.get("GOGC", HELMD_GOGC)
    runner.server = HelmServer(binary, env, kill_grace=runner.kill_grace)
    log.info("helm driver: server (%s, answering as %s)", binary, runner.binary)
    return "server"
