"""A helm process never outlives the operator process that started it (issue 15): a
standby taking over must not meet a helm still running against the same release."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PARENT = """
import asyncio, sys
from alecton.helm.runner import HelmRunner
asyncio.run(HelmRunner("/bin/sh").run(["-c", "echo $$ > {pid_file}; exec sleep 120"]))
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purpose (it runs nothing); its parent is init now.
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


def test_helm_is_stopped_when_the_operator_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "helm.pid"
    parent = subprocess.Popen([sys.executable, "-c", PARENT.format(pid_file=pid_file)])
    deadline = time.monotonic() + 20
    while not (pid_file.exists() and pid_file.read_text().strip()):
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.05)
    child = int(pid_file.read_text())
    assert alive(child)
    os.kill(parent.pid, signal.SIGKILL)  # the operator's process only, not its group
    parent.wait()
    deadline = time.monotonic() + 10
    while alive(child):
        assert time.monotonic() < deadline, "helm outlived the operator"
        time.sleep(0.05)
