"""Where a chart comes from, decided without touching the filesystem beyond path checks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from alecton.api.models import Application

if TYPE_CHECKING:
    from alecton.reconcile.registry_auth import RegistryCredentials


class ChartRefusedError(ValueError):
    """The Application names a chart the operator will not use."""


@dataclass(frozen=True)
class ChartSource:
    """What helm gets: the chart argument, plus `--repo` and `--version` when set, and an
    oci:// chart's registry credentials (never part of what decides an upgrade)."""

    chart: str
    repository: str = ""
    version: str = ""
    credentials: RegistryCredentials | None = field(default=None, repr=False, compare=False)


# The switches of the chart policy: the same flag and environment variable on every process
# that fetches charts (the operator for deploys; `alecton diff`, `web` and `dashboard` for diffs).
INSECURE_REPOSITORIES_FLAG = "--allow-insecure-repositories"
INSECURE_REPOSITORIES_ENV = "ALECTON_ALLOW_INSECURE_REPOSITORIES"
REPOSITORY_HOSTS_FLAG = "--allow-repository-host"
REPOSITORY_HOSTS_ENV = "ALECTON_ALLOW_REPOSITORY_HOSTS"


class ChartFetcher(StrEnum):
    """The process that fetches the chart and holds the policy: a refusal names its switch."""

    OPERATOR = "operator"  # `alecton operator run`: deploys
    CLI = "cli"  # `alecton diff`, `alecton deploy --diff`: diffs on the caller's machine
    DASHBOARD = "dashboard"  # `alecton dashboard`: its diffs, on the person's machine
    WEB = "web"  # `alecton web`: its diffs, in a cluster


@dataclass(frozen=True)
class _Holder:
    name: str  # who refuses
    enable: str  # how to set its switch, completed by the switch
    elsewhere: str  # where the same switch applies for the other kind of render


_DIFFS_ELSEWHERE = "diffs take the same switch on `alecton diff` and `alecton web`/`alecton dashboard`"
_DEPLOYS_ELSEWHERE = "deploys take the same switch on the operator"
_HOLDERS = {
    ChartFetcher.OPERATOR: _Holder(
        "the operator", "ask an administrator to run the operator with", _DIFFS_ELSEWHERE
    ),
    ChartFetcher.CLI: _Holder("`alecton diff` (and `deploy --diff`)", "run it with", _DEPLOYS_ELSEWHERE),
    ChartFetcher.DASHBOARD: _Holder("`alecton dashboard`", "start it with", _DEPLOYS_ELSEWHERE),
    ChartFetcher.WEB: _Holder("`alecton web`", "ask its administrator to start it with", _DEPLOYS_ELSEWHERE),
}


def plain_http_refusal(url: str, fetcher: ChartFetcher) -> str:
    """Why an http:// chart source is refused, and which switch allows it where."""
    holder = _HOLDERS[fetcher]
    return (
        f"chart source {url!r} uses plain http, which {holder.name} refuses: use https, or "
        f"{holder.enable} {INSECURE_REPOSITORIES_FLAG} ({INSECURE_REPOSITORIES_ENV}); {holder.elsewhere}"
    )


def host_refusal(host: str, allowed: frozenset[str], fetcher: ChartFetcher) -> str:
    """Why a chart host not on the list is refused, and which switch adds it where."""
    holder = _HOLDERS[fetcher]
    return (
        f"chart host {host!r} is not in the repository hosts {holder.name} allows "
        f"({', '.join(sorted(allowed))}): {holder.enable} {REPOSITORY_HOSTS_FLAG} {host} "
        f"({REPOSITORY_HOSTS_ENV}); {holder.elsewhere}"
    )


def digest_and_version_refusal(chart: str, version: str) -> str:
    return (
        f"spec.chart {chart!r} pins a digest, which helm pulls whatever spec.chartVersion "
        f"({version!r}) says: remove chartVersion, or remove the @sha256:... from spec.chart to "
        "deploy chartVersion"
    )


def repository_hosts(given: Iterable[str]) -> frozenset[str]:
    """The hosts `--allow-repository-host` names (repeatable, or space-separated in the
    environment variable), compared as URL hosts are: lower case."""
    return frozenset(h.strip().lower() for h in given if h.strip())


@dataclass(frozen=True)
class ChartPolicy:
    """Where charts may come from: the process that fetches them (`fetcher`) does so from its
    own network position, so plain http and unexpected hosts are refused unless it allows them."""

    charts_dir: Path | None = None
    allow_insecure_repositories: bool = False  # accept http:// repositories
    repository_hosts: frozenset[str] = frozenset()  # empty: any host
    fetcher: ChartFetcher = ChartFetcher.OPERATOR

    def check_remote(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme == "http" and not self.allow_insecure_repositories:
            raise ChartRefusedError(plain_http_refusal(url, self.fetcher))
        host = (parts.hostname or "").lower()
        if self.repository_hosts and host not in self.repository_hosts:
            raise ChartRefusedError(host_refusal(host, self.repository_hosts, self.fetcher))


def resolve_chart(app: Application, policy: ChartPolicy) -> ChartSource:
    chart = app.chart
    if chart.startswith("-"):
        # Never let a chart name become a helm flag (the schema refuses it too).
        raise ChartRefusedError(f"spec.chart must not start with '-': {chart!r}")
    if app.repository:
        if "/" in chart or chart.startswith("."):
            raise ChartRefusedError(
                f"with spec.repository, spec.chart must be a chart name, not a path: {chart!r}"
            )
        policy.check_remote(app.repository)
        return ChartSource(chart, app.repository, app.chart_version)
    if chart.startswith("oci://"):
        policy.check_remote(chart)
        if "@" in chart and app.chart_version:
            # helm pulls the digest and would drop the version without a word (the CRD
            # refuses this too; objects stored before that rule are refused here).
            raise ChartRefusedError(digest_and_version_refusal(chart, app.chart_version))
        return ChartSource(chart, "", app.chart_version)
    if "://" in chart:
        raise ChartRefusedError(
            f"unsupported chart reference {chart!r}: use oci://..., a chart name with "
            "spec.repository, or a chart bundled with the operator"
        )
    # A bundled chart: a directory inside the operator's charts directory, never
    # anywhere else on the operator's filesystem.
    charts_dir = policy.charts_dir
    if charts_dir is None:
        raise ChartRefusedError(
            f"chart {chart!r} is a local chart, but the operator has no charts directory "
            "configured (--charts-dir)"
        )
    return ChartSource(bundled_chart(charts_dir, chart), "", app.chart_version)


def bundled_chart(charts_dir: Path, chart: str) -> str:
    """The real path of bundled chart `chart`, checked to be inside `charts_dir`. Found ones
    are remembered: resolving the paths costs syscalls on every pass (0.7 ms, a tenth of a
    restart's reconcile of 1000 releases); a chart not found is looked for again each time."""
    found = _BUNDLED.get((charts_dir, chart))
    if found is not None:
        return found
    root = charts_dir.resolve()
    candidate = (root / chart).resolve()
    if candidate == root or root not in candidate.parents:
        raise ChartRefusedError(
            f"chart path {chart!r} is outside the operator's charts directory: "
            "only charts bundled with the operator can be used by name"
        )
    if not (candidate / "Chart.yaml").is_file():
        raise ChartRefusedError(f"no bundled chart named {chart!r} (no {chart}/Chart.yaml)")
    if len(_BUNDLED) < _BUNDLED_MAX:
        _BUNDLED[(charts_dir, chart)] = str(candidate)
    return str(candidate)


# (charts directory, chart name) -> real path: bounded by the charts an operator bundles.
_BUNDLED: dict[tuple[Path, str], str] = {}
_BUNDLED_MAX = 1024
