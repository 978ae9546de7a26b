"""An oci:// chart's registry Secret: parsed without a cluster, handed to helm in a 0600 file
named by HELM_REGISTRY_CONFIG (never on a command line), kept out of the fingerprint."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
import sys
from pathlib import Path

import pytest
from alecton.api.models import Application
from alecton.helm.actions import HelmActions, registry_login
from alecton.helm.release import json_output, parse_release
from alecton.helm.runner import HelmRunner
from alecton.kube.access import KubeAccess
from alecton.reconcile.chart import ChartRefusedError, ChartSource
from alecton.reconcile.registry_auth import (
    RegistryCredentials,
    RepositorySecretMissingError,
    registry_host,
    repository_credentials,
)

CHART = "oci://Registry.example.com:5000/charts/webapp"
CA = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def basic(
    username: str = "robot",
    password: str = "pa:ss",
    ca: bytes = b"",
    registry: str = "registry.example.com:5000",
) -> dict[str, bytes]:
    data = {"username": username.encode(), "password": password.encode(), "registry": registry.encode()}
    return data | ({"ca.crt": ca} if ca else {})


def docker(auths: dict[str, dict[str, str]]) -> dict[str, bytes]:
    return {".dockerconfigjson": json.dumps({"auths": auths}).encode()}


def test_basic_auth_and_docker_config_give_the_same_login() -> None:
    assert registry_host(CHART) == "registry.example.com:5000"
    plain = repository_credentials(CHART, "reg", basic(ca=CA))
    assert plain == RegistryCredentials("registry.example.com:5000", "robot", "pa:ss", CA)
    token = base64.b64encode(b"robot:pa:ss").decode()
    for key in ("registry.example.com:5000", "https://registry.example.com:5000/v1/"):
        found = repository_credentials(CHART, "reg", docker({key: {"auth": token}}))
        assert found is not None and (found.username, found.password) == ("robot", "pa:ss")
    split = repository_credentials(
        CHART, "reg", docker({"registry.example.com:5000": {"username": "robot", "password": "pa:ss"}})
    )
    assert split is not None and split.password == "pa:ss"
    assert plain is not None
    config = json.loads(plain.registry_config())
    assert config == {"auths": {"registry.example.com:5000": {"auth": token}}}


def test_no_secret_named_is_no_login_and_a_missing_secret_waits() -> None:
    assert repository_credentials(CHART, "", None) is None
    with pytest.raises(
        RepositorySecretMissingError, match=r"'reg'.*does not exist.*create it in this namespace"
    ):
        repository_credentials(CHART, "reg", None)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"username": b"robot"}, "has no key 'password'"),
        ({"password": b"x"}, "has no key 'username'"),
        ({"other": b"x"}, "has none of username and password"),
        ({"username": b"\xff", "password": b"x"}, "not UTF-8"),
        (basic(ca=b"not pem"), "not a PEM certificate bundle"),
        ({"username": b"robot", "password": b"pa:ss"}, "no key 'registry' naming the registry"),
        (
            basic(registry="evil.example.com"),
            "for registry 'evil.example.com', not for 'registry.example.com:5000'",
        ),
        ({".dockerconfigjson": b"{"}, "is not JSON"),
        ({".dockerconfigjson": b"[]"}, 'no "auths"'),
        (
            docker({"other.example.com": {"auth": "eDp5"}}),
            "no credentials for registry 'registry.example.com:5000'",
        ),
        (docker({"registry.example.com:5000": {"auth": "!!"}}), "not base64"),
        (
            docker({"registry.example.com:5000": {"auth": base64.b64encode(b"nocolon").decode()}}),
            "not base64",
        ),
        (docker({"registry.example.com:5000": {}}), "neither"),
    ],
)
def test_a_malformed_secret_is_refused_without_showing_its_values(
    data: dict[str, bytes], message: str
) -> None:
    with pytest.raises(ChartRefusedError, match=message) as refused:
        repository_credentials(CHART, "reg", data)
    assert "robot" not in str(refused.value) and "pa:ss" not in str(refused.value)


def test_the_password_is_in_no_repr() -> None:
    credentials = repository_credentials(CHART, "reg", basic(password="s3cret-value"))
    source = ChartSource(CHART, credentials=credentials)
    assert "s3cret-value" not in repr(credentials) + repr(source)
    # Credentials never decide an upgrade: a rotated password is not a new release.
    assert source == ChartSource(CHART)


def test_the_application_names_its_secret_in_its_own_namespace() -> None:
    body = {
        "metadata": {"name": "web", "namespace": "team"},
        "spec": {"chart": CHART, "image": "web", "repositorySecretRef": {"name": "reg"}},
    }
    assert Application.parse(body).repository_secret == "reg"
    body["spec"]["repositorySecretRef"] = {"namespace": "other"}
    with pytest.raises(ValueError, match="repositorySecretRef must be an object with a name"):
        Application.parse(body)


def test_registry_login_is_a_private_file_for_oci_charts_only() -> None:
    with registry_login(ChartSource("webapp")) as (args, env):
        assert (args, env) == ([], {})
    credentials = RegistryCredentials("r.example.com", "robot", "s3cret", CA)
    with registry_login(ChartSource("oci://r.example.com/c/web", credentials=credentials)) as (args, env):
        config = Path(env["HELM_REGISTRY_CONFIG"])
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        assert "s3cret" not in " ".join(args)
        assert args[0] == "--ca-file" and Path(args[1]).read_bytes() == CA
        kept = (config, Path(args[1]))
    assert not any(path.exists() for path in kept)
    # An oci:// chart without a Secret logs in as nobody (never as the operator's helm home).
    with registry_login(ChartSource("oci://r.example.com/c/web")) as (args, env):
        assert args == [] and json.loads(Path(env["HELM_REGISTRY_CONFIG"]).read_text()) == {"auths": {}}


def test_helm_gets_the_login_in_its_environment_not_its_arguments(tmp_path: Path) -> None:
    script = tmp_path / "helm"
    script.write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        "config = open(os.environ['HELM_REGISTRY_CONFIG']).read()\n"
        "print('Pulled: r.example.com/c/web:1.0.0')\nprint('Digest: sha256:00')\n"
        "print(json.dumps({'name': 'web', 'namespace': 'team', 'version': 1, 'info': {'status': 'deployed'},"
        " 'chart': {'metadata': {'name': 'web', 'version': '1.0.0'}}, 'argv': sys.argv, 'config': config}))\n"
    )
    script.chmod(0o755)
    credentials = RegistryCredentials("r.example.com", "robot", "s3cret", CA)
    chart = ChartSource("oci://r.example.com/c/web", version="1.0.0", credentials=credentials)
    actions = HelmActions(HelmRunner(str(script)))
    release = asyncio.run(actions.upgrade("web", "team", chart, {}, KubeAccess("kubeconfig"), "d", {}))
    assert (release.revision, release.chart) == (1, "web-1.0.0")
    result = asyncio.run(
        actions._upgrade("web", "team", chart, {}, KubeAccess("kubeconfig"), "d", {}, dry_run=False)
    )
    printed = json.loads(json_output(result.stdout))
    assert "s3cret" not in " ".join(printed["argv"]) and "--ca-file" in printed["argv"]
    assert (
        json.loads(printed["config"])["auths"]["r.example.com"]["auth"]
        == base64.b64encode(b"robot:s3cret").decode()
    )
    assert "HELM_REGISTRY_CONFIG" not in os.environ


def test_the_registry_clients_lines_before_helms_json_are_skipped() -> None:
    """Helm prints "Pulled:" and "Digest:" on stdout before the JSON when it pulls an oci://
    chart (Helm 3's CLI and helmd alike); the parse failed on them before."""
    text = 'Pulled: r.example.com/c/web:1.0.0\nDigest: sha256:ab\n{"name": "web", "version": 2, "info": {}}'
    assert parse_release(text).revision == 2
    assert json_output('{"a": 1}') == '{"a": 1}'


def test_a_login_goes_only_to_the_registry_its_secret_names() -> None:
    """Red team (issue 27): an Application's author who cannot read the namespace's Secrets
    names the team's registry Secret and points the chart at a host of theirs: the login
    would have gone there. Now a username/password Secret names its registry (a
    .dockerconfigjson is bound by its hosts), and any other host is refused."""
    secret = basic(registry="registry.example.com:5000")
    with pytest.raises(ChartRefusedError, match="never sent to another registry") as refused:
        repository_credentials("oci://attacker.example.net/charts/web", "reg", secret)
    assert "pa:ss" not in str(refused.value)
    bound = repository_credentials(CHART, "reg", secret)
    assert bound is not None and bound.password == "pa:ss"
    # https://host/ as docker writes it names the same registry.
    assert repository_credentials(CHART, "reg", basic(registry="https://Registry.example.com:5000/")) == bound
