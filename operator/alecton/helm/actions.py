"""One small function per helm action: argv built here, run by HelmRunner, output parsed.

Values always travel in a 0600 temporary file that is deleted after the run.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from alecton.helm.release import HistoryEntry, ReleaseInfo, json_output, parse_history, parse_release
from alecton.helm.runner import HelmResult, HelmRunner
from alecton.kube.access import KubeAccess, private_file
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


def release_not_found(result: HelmResult) -> bool:
    """Helm's exact words for a release that does not exist (not any "not found": a
    missing namespace or CRD is an error to report, not an absent release)."""
    return result.error.rstrip().endswith("release: not found")


def _values_yaml(values: dict[str, Any]) -> bytes:
    # safe_dump quotes strings like "null", "true" or "1.0" so they stay strings.
    return yaml.safe_dump(values, sort_keys=True, allow_unicode=True).encode()


@contextlib.contextmanager
def registry_login(chart: ChartSource) -> Iterator[tuple[list[str], dict[str, str]]]:
    """An oci:// chart's registry login for one helm run: a 0600 registry config (Docker's
    format, named by HELM_REGISTRY_CONFIG, so the password is on no command line) and the
    Secret's CA as `--ca-file`, removed when the run ends. Every oci:// chart gets its own
    config, empty without a Secret: a tenant never borrows a login of the operator's home."""
    if not chart.chart.startswith("oci://"):
        yield [], {}
        return
    credentials = chart.credentials
    with contextlib.ExitStack() as files:
        config = credentials.registry_config() if credentials else b'{"auths": {}}'
        env = {"HELM_REGISTRY_CONFIG": str(files.enter_context(private_file(config, ".registry.json")))}
        args: list[str] = []
        if credentials and credentials.ca_pem:
            args = ["--ca-file", str(files.enter_context(private_file(credentials.ca_pem, ".ca.crt")))]
        yield args, env


@dataclass
class HelmActions:
    runner: HelmRunner
    history_max: int = 10
    # helm's client-side check of the rendered objects against the cluster's OpenAPI
    # schema: it fetches and parses the whole schema in every helm process, more than half
    # of helm's CPU per upgrade here (0.44 s -> 0.20 s). Off by default: the API server
    # validates what it is sent anyway (and with Helm 4's server-side apply refuses unknown
    # fields); `--helm-openapi-validation` turns it back on.
    openapi_validation: bool = False

    def _timeout(self) -> list[str]:
        # helm's own deadline; the runner kills the process only a margin after it.
        return ["--timeout", f"{int(self.runner.timeout)}s"]

    async def _run(self, args: list[str], kube: KubeAccess, env: dict[str, str] | None = None) -> HelmResult:
        # In-cluster credentials only when no kubeconfig is given: never as a fallback.
        return await self.runner.run(args, in_cluster=not kube.kubeconfig, env=env)

    def _upgrade_args(
        self,
        release: str,
        namespace: str,
        chart: ChartSource,
        values_file: Path,
        kube: KubeAccess,
        description: str,
        labels: dict[str, str],
    ) -> list[str]:
        """`helm upgrade --install` exactly as the operator runs it (a diff renders the same)."""
        args = [
            "upgrade",
            "--install",
            *kube.args(),
            "--namespace",
            namespace,
            "--reset-values",
            "--values",
            str(values_file),
            "--history-max",
            str(self.history_max),
            *self._timeout(),
            "--description",
            description,
            # The owner lives in helm's own release labels (kept on helm's storage).
            "--labels",
            ",".join(f"{key}={value}" for key, value in sorted(labels.items())),
            "--output",
            "json",
        ]
        if kube.create_namespace:
            args.append("--create-namespace")
        if not self.openapi_validation:
            args.append("--disable-openapi-validation")
        if chart.repository:
            args += ["--repo", chart.repository]
        if chart.version:
            args += ["--version", chart.version]
        # Positionals after `--`: a name can never be read as a flag.
        return [*args, "--", release, chart.chart]

    async def _upgrade(
        self,
        release: str,
        namespace: str,
        chart: ChartSource,
        values: dict[str, Any],
        kube: KubeAccess,
        description: str,
        labels: dict[str, str],
        dry_run: bool,
    ) -> HelmResult:
        with (
            private_file(_values_yaml(values), ".values.yaml") as values_file,
            registry_login(chart) as (login_args, login_env),
        ):
            args = self._upgrade_args(release, namespace, chart, values_file, kube, description, labels)
            extra = login_args + (["--dry-run=server"] if dry_run else [])
            args[args.index("--") : args.index("--")] = extra
            result = await self._run(args, kube, login_env)
        if not result.ok:
            raise HelmActionError("upgrade --dry-run=server" if dry_run else "upgrade", result)
        return result

    async def upgrade(
        self,
        release: str,
        namespace: str,
        chart: ChartSource,
        values: dict[str, Any],
        kube: KubeAccess,
        description: str,
        labels: dict[str, str],
    ) -> ReleaseInfo:
        result = await self._upgrade(release, namespace, chart, values, kube, description, labels, False)
        return parse_release(result.stdout)

    async def render(
        self,
        release: str,
        namespace: str,
        chart: ChartSource,
        values: dict[str, Any],
        kube: KubeAccess,
        description: str,
        labels: dict[str, str],
    ) -> str:
        """The manifest the upgrade would apply: helm's server-side dry run (the API server
        validates and defaults, nothing is stored)."""
        result = await self._upgrade(release, namespace, chart, values, kube, description, labels, True)
        data = json.loads(json_output(result.stdout) or "{}")
        return str(data.get("manifest") or "") if isinstance(data, dict) else ""

    async def manifest(self, release: str, namespace: str, kube: KubeAccess) -> str | None:
        """The deployed release's manifest; None when there is no release."""
        result = await self._run(
            ["get", "manifest", *kube.args(), "--namespace", namespace, "--", release], kube
        )
        if not result.ok:
            if release_not_found(result):
                return None
            raise HelmActionError("get manifest", result)
        return result.stdout

    async def rollback(self, release: str, namespace: str, revision: int, kube: KubeAccess) -> None:
        """`helm rollback` prints no JSON: callers read `history` afterwards."""
        result = await self._run(
            [
                "rollback",
                *kube.args(),
                "--namespace",
                namespace,
                "--history-max",
                str(self.history_max),
                *self._timeout(),
                "--",
                release,
                str(revision),
            ],
            kube,
        )
        if not result.ok:
            raise HelmActionError("rollback", result)

    async def history(self, release: str, namespace: str, kube: KubeAccess) -> list[HistoryEntry]:
        """Newest first; an empty list when the release does not exist."""
        result = await self._run(
            [
                "history",
                *kube.args(),
                "--namespace",
                namespace,
                "--max",
                str(self.history_max),
                "--output",
                "json",
                "--",
                release,
            ],
            kube,
        )
        if not result.ok:
            if release_not_found(result):
                return []
            raise HelmActionError("history", result)
        return parse_history(result.stdout)

    async def uninstall(self, release: str, namespace: str, kube: KubeAccess) -> bool:
        """True when a release was removed, False when there was none."""
        result = await self._run(
            ["uninstall", *kube.args(), "--namespace", namespace, *self._timeout(), "--", release],
            kube,
        )
        if not result.ok:
            if release_not_found(result):
                return False
            raise HelmActionError("uninstall", result)
        return True
