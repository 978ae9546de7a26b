"""One small function per helm action: argv built here, run by HelmRunner, output parsed.

Values always travel in a 0600 temporary file that is deleted after the run.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from alecton.helm.release import HistoryEntry, ReleaseInfo, parse_history, parse_release
from alecton.helm.runner import HelmResult, HelmRunner
from alecton.reconcile.chart import ChartSource


class HelmActionError(Exception):
    """A helm command failed; the message is helm's own."""

    def __init__(self, action: str, result: HelmResult) -> None:
        super().__init__(f"helm {action} failed: {result.error}")
        self.result = result

    @property
    def release_locked(self) -> bool:
        """The last revision is pending-*: a killed helm left the release locked."""
        return "another operation (install/upgrade/rollback) is in progress" in self.result.stderr


@dataclass(frozen=True)
class KubeAccess:
    """How helm reaches the target cluster: a kubeconfig file and optionally a context."""

    kubeconfig: str
    context: str = ""
    tenant_secret: bool = False  # a kubeconfig from a tenant's Secret (a temporary file)

    def args(self) -> list[str]:
        # No kubeconfig: helm falls back to in-cluster credentials.
        args = ["--kubeconfig", self.kubeconfig] if self.kubeconfig else []
        if self.context:
            args += ["--kube-context", self.context]
        return args


@contextlib.contextmanager
def private_file(content: bytes, suffix: str) -> Iterator[Path]:
    """A temporary file only the operator can read, removed when the block ends."""
    fd, name = tempfile.mkstemp(prefix="alecton-", suffix=suffix)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        yield Path(name)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


def _values_yaml(values: dict[str, Any]) -> bytes:
    # safe_dump quotes strings like "null", "true" or "1.0" so they stay strings.
    return yaml.safe_dump(values, sort_keys=True, allow_unicode=True).encode()


@dataclass
class HelmActions:
    runner: HelmRunner
    history_max: int = 10

    async def upgrade(
        self,
        release: str,
        namespace: str,
        chart: ChartSource,
        values: dict[str, Any],
        kube: KubeAccess,
        description: str,
    ) -> ReleaseInfo:
        with private_file(_values_yaml(values), ".values.yaml") as values_file:
            args = [
                "upgrade",
                "--install",
                release,
                chart.chart,
                *kube.args(),
                "--namespace",
                namespace,
                "--create-namespace",
                "--reset-values",
                "--values",
                str(values_file),
                "--history-max",
                str(self.history_max),
                "--timeout",
                f"{int(self.runner.timeout)}s",
                "--description",
                description,
                "--output",
                "json",
            ]
            if chart.repository:
                args += ["--repo", chart.repository]
            if chart.version:
                args += ["--version", chart.version]
            result = await self.runner.run(args)
        if not result.ok:
            raise HelmActionError("upgrade", result)
        return parse_release(result.stdout)

    async def rollback(self, release: str, namespace: str, revision: int, kube: KubeAccess) -> None:
        """`helm rollback` prints no JSON: callers read `history` afterwards."""
        result = await self.runner.run(
            [
                "rollback",
                release,
                str(revision),
                *kube.args(),
                "--namespace",
                namespace,
                "--history-max",
                str(self.history_max),
                "--timeout",
                f"{int(self.runner.timeout)}s",
            ]
        )
        if not result.ok:
            raise HelmActionError("rollback", result)

    async def history(self, release: str, namespace: str, kube: KubeAccess) -> list[HistoryEntry]:
        """Newest first; an empty list when the release does not exist."""
        result = await self.runner.run(
            [
                "history",
                release,
                *kube.args(),
                "--namespace",
                namespace,
                "--max",
                str(self.history_max),
                "--output",
                "json",
            ]
        )
        if not result.ok:
            if "release: not found" in result.stderr:
                return []
            raise HelmActionError("history", result)
        return parse_history(result.stdout)

    async def uninstall(self, release: str, namespace: str, kube: KubeAccess) -> bool:
        """True when a release was removed, False when there was none."""
        result = await self.runner.run(
            [
                "uninstall",
                release,
                *kube.args(),
                "--namespace",
                namespace,
                "--timeout",
                f"{int(self.runner.timeout)}s",
            ]
        )
        if not result.ok:
            if "not found" in result.stderr:
                return False
            raise HelmActionError("uninstall", result)
        return True
