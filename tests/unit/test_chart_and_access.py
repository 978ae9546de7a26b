from __future__ import annotations

from pathlib import Path

import pytest
from alecton.api.models import Application
from alecton.reconcile.chart import (
    ChartFetcher,
    ChartPolicy,
    ChartRefusedError,
    repository_hosts,
    resolve_chart,
)


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


DIGEST = "sha256:" + "c" * 64


def test_a_chart_digest_with_a_chart_version_is_refused_not_silently_one_of_them() -> None:
    """helm pulls `oci://...@sha256:` and drops spec.chartVersion without a word: the two
    disagree (or the version says nothing), so the pair is refused saying which to remove
    (the CRD refuses it too; objects stored before that rule reach this)."""
    pinned = f"oci://r.example.com/c/web@{DIGEST}"
    with pytest.raises(ChartRefusedError) as refused:
        resolve_chart(app(pinned, chartVersion="1.2.3"), ChartPolicy())
    assert str(refused.value) == (
        f"spec.chart {pinned!r} pins a digest, which helm pulls whatever spec.chartVersion ('1.2.3') "
        "says: remove chartVersion, or remove the @sha256:... from spec.chart to deploy chartVersion"
    )
    assert resolve_chart(app(pinned), ChartPolicy()).chart == pinned  # the digest alone
    alone = resolve_chart(app("oci://r.example.com/c/web", chartVersion="1.2.3"), ChartPolicy())
    assert (alone.chart, alone.version) == ("oci://r.example.com/c/web", "1.2.3")  # the version alone


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


INSECURE = "--allow-insecure-repositories (ALECTON_ALLOW_INSECURE_REPOSITORIES)"
ON_THE_OPERATOR = "deploys take the same switch on the operator"


@pytest.mark.parametrize(
    ("fetcher", "refuser", "enable", "elsewhere"),
    [
        (
            ChartFetcher.OPERATOR,
            "which the operator refuses",
            "ask an administrator to run the operator with",
            "diffs take the same switch on `alecton diff` and `alecton web`/`alecton dashboard`",
        ),
        (
            ChartFetcher.CLI,
            "which `alecton diff` (and `deploy --diff`) refuses",
            "run it with",
            ON_THE_OPERATOR,
        ),
        (ChartFetcher.DASHBOARD, "which `alecton dashboard` refuses", "start it with", ON_THE_OPERATOR),
        (
            ChartFetcher.WEB,
            "which `alecton web` refuses",
            "ask its administrator to start it with",
            ON_THE_OPERATOR,
        ),
    ],
)
def test_a_refusal_names_the_process_that_refused_and_where_the_switch_applies(
    fetcher: ChartFetcher, refuser: str, enable: str, elsewhere: str
) -> None:
    """Issue 27: the operator's advice ("run the operator with ...") was all a diff said."""
    url = "http://charts.example.com"
    with pytest.raises(ChartRefusedError) as plain:
        resolve_chart(app("web", repository=url), ChartPolicy(fetcher=fetcher))
    assert str(plain.value) == (
        f"chart source {url!r} uses plain http, {refuser}: use https, or {enable} {INSECURE}; {elsewhere}"
    )
    listed = ChartPolicy(None, True, frozenset({"b.example.com", "a.example.com"}), fetcher)
    with pytest.raises(ChartRefusedError) as host:
        resolve_chart(app("oci://evil.example.com/c/web"), listed)
    allows = refuser.removeprefix("which ").removesuffix(" refuses")
    assert str(host.value) == (
        f"chart host 'evil.example.com' is not in the repository hosts {allows} allows "
        f"(a.example.com, b.example.com): {enable} --allow-repository-host evil.example.com "
        f"(ALECTON_ALLOW_REPOSITORY_HOSTS); {elsewhere}"
    )
    assert resolve_chart(app("web", repository=url), ChartPolicy(None, True, fetcher=fetcher)).repository


def test_repository_hosts_are_compared_in_lower_case_and_blanks_dropped() -> None:
    assert repository_hosts([" Charts.Example.com ", "", "  ", "oci.example.com"]) == {
        "charts.example.com",
        "oci.example.com",
    }
    policy = ChartPolicy(None, False, repository_hosts(["Charts.Example.com"]))
    assert resolve_chart(app("web", repository="https://CHARTS.example.com"), policy).chart == "web"
