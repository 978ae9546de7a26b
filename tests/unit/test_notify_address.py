"""The receiver address guard: loopback, link-local (metadata), private and unspecified
addresses are refused unless the operator allows them; plain http only to allowed ones."""

from __future__ import annotations

import pytest
from alecton.reconcile.notify_address import (
    AddressRefusedError,
    check_literal,
    parse_networks,
    parse_target,
    refusal,
)

LOOPBACK = parse_networks(["127.0.0.0/8"])


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("10.1.2.3", "private"),
        ("192.168.0.1", "private"),
        ("172.16.5.5", "private"),
        ("0.0.0.0", "unspecified"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fd00::1", "private"),
        ("::ffff:169.254.169.254", "link-local"),  # IPv4-mapped: judged as the IPv4 address
        ("224.0.0.1", "multicast"),
    ],
)
def test_internal_addresses_are_refused_by_default(address: str, kind: str) -> None:
    why = refusal(address, (), plain_http=False)
    assert why is not None and kind in why and "--notify-allow-cidr" in why


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        # Python 3.11's ipaddress calls these global; none is reachable on the internet (R27B-6).
        ("fec0::1", "site-local"),
        ("fec0::ffff:808:808", "site-local"),
        ("feff:ffff::1", "site-local"),
        ("3fff::1", "documentation"),
        ("5f00::1", "segment routing"),
        ("100:0:0:1::1", "dummy"),
        ("64:ff9b:1::808:808", "local-use NAT64"),
        ("192.88.99.1", "6to4 relay"),
        # Not global to ipaddress either, now named for what they are.
        ("100.64.0.1", "shared address space"),
        ("::ffff:100.64.0.1", "shared address space"),
        ("2002:6440:1::1", "embeds 100.64.0.1, in 100.64.0.0/10, the shared address space"),
        ("64:ff9b::6440:1", "embeds 100.64.0.1"),
        ("2001:db8::1", "documentation"),
        ("192.0.2.1", "documentation"),
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "Teredo"),
        ("2001:0:a00:1::1", "Teredo"),
        ("2002:a00:1::1", "embeds 10.0.0.1, a private"),
    ],
)
def test_every_address_that_is_not_global_is_refused_and_named(address: str, kind: str) -> None:
    why = refusal(address, (), plain_http=False)
    assert why is not None and kind in why and "--notify-allow-cidr" in why
    assert refusal(address, parse_networks(["::/0", "0.0.0.0/0"]), plain_http=False) is None


def test_public_addresses_are_allowed_over_https_only() -> None:
    assert refusal("93.184.216.34", (), plain_http=False) is None
    assert "use https" in (refusal("93.184.216.34", (), plain_http=True) or "")
    assert refusal("2606:2800:220:1::1", (), plain_http=False) is None


def test_allowed_networks_win_and_allow_plain_http() -> None:
    assert refusal("127.0.0.1", LOOPBACK, plain_http=True) is None
    assert refusal("127.9.9.9", LOOPBACK, plain_http=False) is None
    assert refusal("10.0.0.1", LOOPBACK, plain_http=False) is not None
    assert refusal("::1", LOOPBACK, plain_http=False) is not None  # an IPv4 network allows no IPv6


def test_bad_cidrs_are_named() -> None:
    with pytest.raises(ValueError, match="'nope' is not a CIDR"):
        parse_networks(["nope"])
    assert [str(n) for n in parse_networks(["10.0.0.1/8"])] == ["10.0.0.0/8"]


def test_urls_are_parsed_and_bad_ones_refused() -> None:
    target = parse_target("https://hooks.example.com/x")
    assert (target.scheme, target.host, target.port, target.plain_http) == (
        "https",
        "hooks.example.com",
        443,
        False,
    )
    assert parse_target("http://[::1]:8080/").host == "::1"
    for bad, why in [
        ("ftp://x", "https://"),
        ("https://", "no host"),
        ("https://u:p@x.example.com/", "credentials"),
        ("https://x:99999/", "not a valid URL"),
    ]:
        with pytest.raises(AddressRefusedError, match=why):
            parse_target(bad)


def test_ip_literals_are_judged_before_any_connection() -> None:
    with pytest.raises(AddressRefusedError, match="link-local"):
        check_literal("http://169.254.169.254/latest/meta-data", LOOPBACK)
    with pytest.raises(AddressRefusedError, match="unspecified"):
        check_literal("http://0.0.0.0:8080/", LOOPBACK)
    assert check_literal("http://127.0.0.1:8080/", LOOPBACK).port == 8080
    # A host name is judged when it resolves (at connect time): not here.
    assert check_literal("https://metadata.internal/", ()).host == "metadata.internal"
