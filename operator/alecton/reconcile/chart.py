"""Where a chart comes from, decided without touching the filesystem beyond path checks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from alecton.api.models import Application


class ChartRefusedError(ValueError):
    """The Application names a chart the operator will not use."""


@dataclass(frozen=True)
class ChartSource:
    """What helm gets: the chart argument, plus `--repo` and `--version` when set."""

    chart: str
    repository: str = ""
    version: str = ""


@dataclass(frozen=True)
class ChartPolicy:
    """Where charts may come from: the operator fetches them from its own network position,
    so plain http and unexpected hosts are refused unless the operator allows them."""

    charts_dir: Path | None = None
    allow_insecure_repositories: bool = False  # accept http:// repositories
    repository_hosts: frozenset[str] = frozenset()  # empty: any host

    def check_remote(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme == "http" and not self.allow_insecure_repositories:
            raise ChartRefusedError(
                f"chart source {url!r} uses plain http: use https, or ask an administrator to "
                "run the operator with --allow-insecure-repositories"
            )
        host = (parts.hostname or "").lower()
        if self.repository_hosts and host not in self.repository_hosts:
            allowed = ", ".join(sorted(self.repository_hosts))
            raise ChartRefusedError(
                f"chart host {host!r} is not in the operator's allowed repository hosts ({allowed}); "
                f"an administrator can add --allow-repository-host {host}"
            )


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
    root = charts_dir.resolve()
    candidate = (root / chart).resolve()
    if candidate == root or root not in candidate.parents:
        raise ChartRefusedError(
            f"chart path {chart!r} is outside the operator's charts directory: "
            "only charts bundled with the operator can be used by name"
        )
    if not (candidate / "Chart.yaml").is_file():
        raise ChartRefusedError(f"no bundled chart named {chart!r} (no {chart}/Chart.yaml)")
    return ChartSource(str(candidate), "", app.chart_version)
