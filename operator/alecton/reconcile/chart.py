"""Where a chart comes from, decided without touching the filesystem beyond path checks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alecton.api.models import Application


class ChartRefusedError(ValueError):
    """The Application names a chart the operator will not use."""


@dataclass(frozen=True)
class ChartSource:
    """What helm gets: the chart argument, plus `--repo` and `--version` when set."""

    chart: str
    repository: str = ""
    version: str = ""


def resolve_chart(app: Application, charts_dir: Path | None) -> ChartSource:
    chart = app.chart
    if app.repository:
        if "/" in chart or chart.startswith("."):
            raise ChartRefusedError(
                f"with spec.repository, spec.chart must be a chart name, not a path: {chart!r}"
            )
        return ChartSource(chart, app.repository, app.chart_version)
    if chart.startswith("oci://"):
        return ChartSource(chart, "", app.chart_version)
    if "://" in chart:
        raise ChartRefusedError(
            f"unsupported chart reference {chart!r}: use oci://..., a chart name with "
            "spec.repository, or a chart bundled with the operator"
        )
    # A bundled chart: a directory inside the operator's charts directory, never
    # anywhere else on the operator's filesystem.
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
