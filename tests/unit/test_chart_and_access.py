from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from alecton.api.models import Application
from alecton.reconcile.access import ContextPolicy, KubeconfigRefusedError, check_kubeconfig
from alecton.reconcile.chart import ChartRefusedError, resolve_chart


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
    source = resolve_chart(app("webapp", chartVersion="1.0.0"), charts)
    assert source.chart == str(charts / "webapp") and source.version == "1.0.0"


@pytest.mark.parametrize("chart", ["../secret", "/etc", "webapp/../../secret", ".", "missing"])
def test_paths_outside_or_missing_are_refused(charts: Path, chart: str) -> None:
    with pytest.raises(ChartRefusedError):
        resolve_chart(app(chart), charts)


def test_oci_and_repository_charts() -> None:
    assert resolve_chart(app("oci://r.example.com/c/web"), None).chart == "oci://r.example.com/c/web"
    source = resolve_chart(app("web", repository="https://charts.example.com"), None)
    assert (source.chart, source.repository) == ("web", "https://charts.example.com")
    with pytest.raises(ChartRefusedError):
        resolve_chart(app("../web", repository="https://charts.example.com"), None)
    with pytest.raises(ChartRefusedError):
        resolve_chart(app("file:///etc/passwd"), None)
    with pytest.raises(ChartRefusedError, match="no charts directory"):
        resolve_chart(app("webapp"), None)


def test_context_policy() -> None:
    assert ContextPolicy().allows("anyone", "prod")  # no grants: single-tenant setup
    policy = ContextPolicy.parse(["team-a=prod,staging", "*=shared"])
    assert policy.allows("team-a", "prod") and policy.allows("team-b", "shared")
    assert not policy.allows("team-b", "prod")
    with pytest.raises(ValueError, match="NAMESPACE=CONTEXT"):
        ContextPolicy.parse(["nonsense"])


def kubeconfig(user: dict, cluster: dict | None = None) -> bytes:
    return yaml.safe_dump(
        {
            "clusters": [{"name": "c", "cluster": {"server": "https://x", **(cluster or {})}}],
            "users": [{"name": "u", "user": user}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        }
    ).encode()


@pytest.mark.parametrize(
    ("user", "cluster"),
    [
        ({"exec": {"command": "/bin/sh"}}, None),
        ({"auth-provider": {"name": "gcp"}}, None),
        ({"tokenFile": "/var/run/secrets/token"}, None),
        ({"client-certificate": "/etc/cert", "client-key": "/etc/key"}, None),
        ({"token": "t"}, {"certificate-authority": "/etc/ca.crt"}),
    ],
)
def test_kubeconfig_reaching_into_the_operator_is_refused(user: dict, cluster: dict | None) -> None:
    raw = kubeconfig(user, cluster)
    with pytest.raises(KubeconfigRefusedError):
        check_kubeconfig(raw)
    assert check_kubeconfig(raw, allow_insecure=True)


def test_embedded_kubeconfig_is_accepted_and_garbage_is_not() -> None:
    assert check_kubeconfig(kubeconfig({"token": "abc", "client-certificate-data": "eA=="}))
    with pytest.raises(KubeconfigRefusedError):
        check_kubeconfig(b"\xff\xfe")
    with pytest.raises(KubeconfigRefusedError):
        check_kubeconfig(b"just: a map")
