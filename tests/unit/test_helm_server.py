"""HelmServer (the "server" helm driver) against a fake helmd: a small Python program that
speaks helmd's protocol, so multiplexing, deadlines, cancels, crashes and the fallback to
the CLI are checked without Go or a cluster."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from pathlib import Path

import pytest
from alecton.helm.runner import HelmClosedError, HelmRunner, HelmTimeoutError
from alecton.helm.server import HelmServer, use_driver
from alecton.metrics import Metrics

# Commands: `echo ARGS...` answers at once; `sleep SECONDS` answers after that long, or
# "context canceled" when cancelled (and notes the cancel); `crash` exits without answering;
# anything else is not served. Each start appends the pid to $FAKE_DIR/starts.
FAKE_HELMD = """
import asyncio, json, os, signal, sys

DIR = os.environ["FAKE_DIR"]
with open(os.path.join(DIR, "starts"), "a") as f:
    f.write(f"{os.getpid()}\\n")

tasks = {}

def reply(message):
    sys.stdout.write(json.dumps(message) + "\\n")
    sys.stdout.flush()

async def serve(request):
    rid, args = request["id"], request["args"]
    if args[0] == "echo":
        reply({"id": rid, "code": 0, "stdout": json.dumps(request), "stderr": ""})
    elif args[0] == "sleep":
        with open(os.path.join(DIR, "received"), "a") as f:
            f.write(f"{rid}\\n")
        try:
            await asyncio.sleep(float(args[1]))
            reply({"id": rid, "code": 0, "stdout": f"slept {args[1]}", "stderr": ""})
        except asyncio.CancelledError:
            with open(os.path.join(DIR, "cancelled"), "a") as f:
                f.write(f"{rid}\\n")
            error = "Error: UPGRADE FAILED: context canceled\\n"
            reply({"id": rid, "code": 1, "stdout": "", "stderr": error})
    elif args[0] == "crash":
        os._exit(3)
    else:
        reply({"id": rid, "code": 2, "stdout": "", "stderr": f"Error: helmd does not serve {args[0]!r}\\n"})

async def read(reader):
    while line := await reader.readline():
        message = json.loads(line)
        if "cancel" in message:
            task = tasks.get(message["cancel"])
            if task:
                task.cancel()
        else:
            tasks[message["id"]] = asyncio.ensure_future(serve(message))

async def main():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    reading = asyncio.ensure_future(read(reader))
    loop.add_signal_handler(signal.SIGTERM, reading.cancel)  # as helmd: cancel all, then exit
    await asyncio.gather(reading, return_exceptions=True)
    for task in tasks.values():
        task.cancel()
    await asyncio.gather(*tasks.values(), return_exceptions=True)

asyncio.run(main())
"""


def executable(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FAKE_DIR", str(tmp_path))
    executable(tmp_path / "helmd", f"#!{sys.executable}\n{FAKE_HELMD}")
    return tmp_path


def server(fake: Path, **kwargs: float) -> HelmServer:
    return HelmServer(str(fake / "helmd"), {**os.environ}, **kwargs)


def runner_with(fake: Path, timeout: float = 60.0, **kwargs: float) -> HelmRunner:
    runner = HelmRunner(binary="/bin/false", timeout=timeout, deadline_margin=0, metrics=Metrics())
    runner.server = server(fake, **kwargs)
    return runner


async def until_received(fake: Path) -> None:
    """Until the fake helmd holds a `sleep` request (a condition, not a guess of time)."""
    async with asyncio.timeout(20):
        while not (fake / "received").exists():  # noqa: ASYNC110 (another process writes it)
            await asyncio.sleep(0.02)


def starts(fake: Path) -> list[str]:
    path = fake / "starts"
    return path.read_text().split() if path.exists() else []


def test_requests_are_multiplexed_on_one_helmd_and_answered_by_id(fake: Path) -> None:
    async def scenario() -> list[str]:
        runner = runner_with(fake)
        results = await asyncio.gather(
            runner.run(["sleep", "0.6"]), runner.run(["sleep", "0.1"]), runner.run(["echo", "x"])
        )
        await runner.stop_all()
        return [r.stdout for r in results]

    slow, fast, echo = asyncio.run(scenario())
    assert (slow, fast) == ("slept 0.6", "slept 0.1")
    assert '"args": ["echo", "x"]' in echo
    assert len(starts(fake)) == 1  # started lazily, once, for all three


def test_a_request_carries_the_helm_directories_and_in_cluster(fake: Path, tmp_path: Path) -> None:
    async def scenario() -> str:
        runner = runner_with(fake)
        runner.home = tmp_path / "home"
        result = await runner.run(["echo"], in_cluster=True)
        await runner.stop_all()
        return result.stdout

    stdout = asyncio.run(scenario())
    assert f'"HELM_CACHE_HOME": "{tmp_path / "home" / "cache"}"' in stdout
    assert '"inCluster": true' in stdout and "PATH" not in stdout


def test_deadline_cancels_the_request_then_raises_a_timeout(fake: Path) -> None:
    async def scenario() -> None:
        runner = runner_with(fake, timeout=0.3)
        try:
            with pytest.raises(HelmTimeoutError):
                await runner.run(["sleep", "30"])
        finally:
            await runner.stop_all()

    asyncio.run(scenario())
    assert (fake / "cancelled").read_text().split() == ["1"]  # helm was told, not left running


def test_a_cancelled_caller_cancels_its_request(fake: Path) -> None:
    async def scenario() -> str:
        runner = runner_with(fake)
        task = asyncio.ensure_future(runner.run(["sleep", "30"]))
        await until_received(fake)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        answer = await runner.run(["echo", "after"])  # the same helmd still serves
        await runner.stop_all()
        return answer.stdout

    assert "after" in asyncio.run(scenario())
    assert (fake / "cancelled").exists()
    assert len(starts(fake)) == 1


def test_a_crash_answers_in_flight_requests_like_a_killed_helm_and_restarts(fake: Path) -> None:
    async def scenario() -> tuple[int, str, str]:
        runner = runner_with(fake, backoff_start=0.2)
        waiting = asyncio.ensure_future(runner.run(["sleep", "30"]))
        await until_received(fake)
        crashed = await runner.run(["crash"])
        lost = await waiting
        again = await runner.run(["echo", "again"])
        await runner.stop_all()
        assert crashed.returncode == -1
        return lost.returncode, lost.error, again.stdout

    code, error, again = asyncio.run(scenario())
    assert (code, error) == (-1, "helm exited with code -1")  # classified as Interrupted
    assert "again" in again
    assert len(starts(fake)) == 2


def test_stop_all_cancels_what_runs_stops_helmd_and_refuses_more(fake: Path) -> None:
    async def scenario() -> int:
        runner = runner_with(fake)
        waiting = asyncio.ensure_future(runner.run(["sleep", "30"]))
        await until_received(fake)
        await runner.stop_all(grace=5)
        result = await waiting
        with pytest.raises(HelmClosedError):
            await runner.run(["echo"])
        return result.returncode

    assert asyncio.run(scenario()) == 1  # helmd cancelled it: helm marks the release failed
    assert (fake / "cancelled").exists()
    pid = int(starts(fake)[0])
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_arguments_helmd_does_not_serve_run_the_cli(fake: Path, tmp_path: Path) -> None:
    async def scenario() -> tuple[str, str]:
        runner = runner_with(fake)
        runner.binary = executable(tmp_path / "helm", "#!/bin/sh\necho cli $1\n")
        unserved = await runner.run(["version"])
        served = await runner.run(["echo", "y"])
        await runner.stop_all()
        return unserved.stdout, served.stdout

    unserved, served = asyncio.run(scenario())
    assert unserved == "cli version\n"
    assert '"echo", "y"' in served


@pytest.mark.parametrize(("version", "driver"), [("v4.3.1", "server"), ("v3.22.0", "cli")])
def test_the_server_driver_serves_helm_4_only(fake: Path, tmp_path: Path, version: str, driver: str) -> None:
    helm = executable(tmp_path / "helm", f"#!/bin/sh\nprintf '{version}'\n")
    runner = HelmRunner(binary=helm)
    assert asyncio.run(use_driver(runner, "server")) == driver  # helmd found beside helm
    assert (runner.server is not None) == (driver == "server")
    assert asyncio.run(use_driver(HelmRunner(binary=helm), "cli")) == "cli"


def test_a_helm_without_helmd_beside_it_keeps_the_cli(
    fake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `--helm` that is a wrapper elsewhere is what the user wants run: a helmd found on
    PATH would bypass it (and may answer for another helm), so only one beside it or named
    by --helmd serves."""
    wrapper = tmp_path / "wrapper"
    wrapper.mkdir()
    helm = executable(wrapper / "helm", "#!/bin/sh\nprintf 'v4.3.1'\n")
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")  # a helmd on PATH
    assert asyncio.run(use_driver(HelmRunner(binary=helm), "server")) == "cli"
    assert asyncio.run(use_driver(HelmRunner(binary=helm), "server", str(fake / "helmd"))) == "server"
