"""The rule for a registry's Bearer token realm (alecton.reconcile.token_realm)."""

from __future__ import annotations

import pytest
from alecton.reconcile.token_realm import origin, realm_address_refusal, realm_url_refusal


@pytest.mark.parametrize(
    ("registry", "realm"),
    [
        ("registry-1.docker.io", "https://auth.docker.io/token"),  # Docker Hub
        ("ghcr.io", "https://ghcr.io/token"),
        ("quay.io", "https://quay.io/v2/auth"),
        ("harbor.example.com", "https://harbor.example.com/service/token"),
        ("team.azurecr.io", "https://team.azurecr.io/oauth2/token"),
        ("europe-docker.pkg.dev", "https://europe-docker.pkg.dev/v2/token"),
        ("registry.gitlab.com", "https://gitlab.com/jwt/auth"),
        ("127.0.0.1:5000", "https://127.0.0.1:5000/token"),
        ("[::1]:5000", "https://[::1]:5000/token"),
    ],
)
def test_the_realms_of_the_registries_people_use_get_the_login(registry: str, realm: str) -> None:
    assert realm_url_refusal(registry, realm, with_login=True) is None


@pytest.mark.parametrize(
    ("registry", "realm"),
    [
        ("ghcr.io", "https://evil.example.com/token"),
        ("ghcr.io", "https://attacker.io/token"),  # a two-label host never widens to its TLD
        ("registry-1.docker.io", "https://docker.io.evil.com/token"),
        ("127.0.0.1:5000", "https://127.0.0.2/token"),
        ("10.0.0.5", "https://registry.example.com/token"),
        # The parent of these hosts is a public suffix (the Public Suffix List, private section
        # included): the name beside them belongs to another organisation.
        ("registry.co.uk", "https://evil.co.uk/token"),
        ("registry.co.uk", "https://co.uk/token"),
        ("team.github.io", "https://evil.github.io/token"),
        ("myteam.s3.amazonaws.com", "https://evil.s3.amazonaws.com/token"),
        ("registry.com.au", "https://auth.com.au/token"),
    ],
)
def test_the_login_never_goes_to_a_realm_outside_the_registrys_domain(registry: str, realm: str) -> None:
    why = realm_url_refusal(registry, realm, with_login=True)
    assert why is not None
    assert "never sent there" in why
    assert realm_url_refusal(registry, realm, with_login=False) is None  # anonymous: judged by address


@pytest.mark.parametrize(
    "realm",
    [
        "http://ghcr.io/token",
        "ftp://ghcr.io/token",
        "https:///token",
        "https://u:p@ghcr.io/token",
        "https://ghcr.io:99999/",
    ],
)
def test_a_realm_that_is_not_a_plain_https_url_is_refused(realm: str) -> None:
    assert realm_url_refusal("ghcr.io", realm, with_login=False) is not None


INTERNAL = ("127.0.0.1", "10.1.2.3", "192.168.0.1", "169.254.169.254", "::1", "fd00::1", "::ffff:10.0.0.1")


@pytest.mark.parametrize("address", [*INTERNAL, "0.0.0.0"])
def test_a_realm_elsewhere_than_the_registry_must_not_be_internal(address: str) -> None:
    why = realm_address_refusal("ghcr.io", "auth.example.com", 443, address)
    assert why is not None
    assert address not in why, "the status would tell a tenant what an internal name resolves to"


def test_the_registrys_own_host_and_port_is_allowed_wherever_it_is() -> None:
    assert realm_address_refusal("127.0.0.1:5000", "127.0.0.1", 5000, "127.0.0.1") is None
    assert realm_address_refusal("registry.cluster.local", "registry.cluster.local", 443, "10.0.0.5") is None
    # Another port of the same host is another service.
    assert realm_address_refusal("127.0.0.1:5000", "127.0.0.1", 5001, "127.0.0.1") is not None


def test_a_public_realm_is_allowed() -> None:
    assert realm_address_refusal("registry-1.docker.io", "auth.docker.io", 443, "54.1.2.3") is None


def test_origin_reads_host_and_port() -> None:
    assert origin("Registry.Example.com") == ("registry.example.com", 443)
    assert origin("[::1]:5000") == ("::1", 5000)
