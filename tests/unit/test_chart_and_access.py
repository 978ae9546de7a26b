from __future__ import annotations

from pathlib import Path

import pytest
from alecton.api.models import Application
from alecton.reconcile.chart import ChartPolicy, ChartRefusedError, resolve_chart


def app(chart: str, **spec: str) -> Application:
    return Application.parse(
        {"metadata": {"namespace": "t", "name": "web"}, "spec": {"chart": chart, "image": "web", **spec}}
    )


@pytest.fixture
def charts(tmp_path: Path) -> Path:
    (tmp_path / "charts" / "webapp").mkdir(parents=True)
    (tmp_path / "charts" / "webapp" / "Chart.yaml").write_text("name: webapp\n")
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "Chart.yaml").write_text("name: secret\n")
    return tmp_path / "charts"


def test_bundled_chart_resolves_inside_charts_dir(charts: Path) -> None:
    source = resolve_chart(app("webapp", chartVersion="1.0.0"), ChartPolicy(charts))
    assert source.chart == str(charts / "webapp") and source.version == "1.0.0"


@pytest.mark.parametrize("chart", ["../secret", "/etc", "webapp/../../secret", ".", "missing"])
def test_paths_outside_or_missing_are_refused(charts: Path, chart: str) -> None:
    with pytest.raises(ChartRefusedError):
        resolve_chart(app(chart), ChartPolicy(charts))


def test_oci_and_repository_charts() -> None:
    assert resolve_chart(app("oci://r.example.com/c/web"), ChartPolicy()).chart == "oci://r.example.com/c/web"
    source = resolve_chart(app("web", repository="https://charts.example.com"), ChartPolicy())
    assert (source.chart, source.repository) == ("web", "https://charts.example.com")
    with pytest.raises(ChartRefusedError):
        resolve_chart(app("../web", repository="https://charts.example.com"), ChartPolicy())
    with pytest.raises(ChartRefusedError):
        resolve_chart(app("file:///etc/passwd"), ChartPolicy())
    with pytest.raises(ChartRefusedError, match="no charts directory"):
        resolve_chart(app("webapp"), ChartPolicy())


def test_flags_plain_http_and_unlisted_hosts_are_refused() -> None:
    with pytest.raises(ChartRefusedError, match="must not start with '-'"):
        resolve_chart(app("--post-renderer=/bin/sh"), ChartPolicy())
    with pytest.raises(ChartRefusedError, match="--allow-insecure-repositories"):
        resolve_chart(app("web", repository="http://charts.example.com"), ChartPolicy())
    assert resolve_chart(app("web", repository="http://c.example.com"), ChartPolicy(None, True)).repository
    hosts = ChartPolicy(None, False, frozenset({"charts.example.com"}))
    assert resolve_chart(app("web", repository="https://charts.example.com/x"), hosts).chart == "web"
    with pytest.raises(ChartRefusedError, match=r"--allow-repository-host evil\.example\.com"):
        resolve_chart(app("oci://evil.example.com/c/web"), hosts)
