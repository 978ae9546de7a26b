"""Which receiver addresses a Notifier may reach (a tenant must not make the operator call
its cloud's metadata service, the API server's loopback port or a private network).

Pure: `refusal` judges one IP address. The delivery code asks it for the IP literal in a URL
and, through its resolver, for every address a host name resolves to at connect time, so a
name that resolves to a public address when checked and a private one when used (DNS
rebinding) is refused too.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from yarl import URL

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefusedError(ValueError):
    """A receiver address the operator will not connect to; the message says why."""


def parse_networks(cidrs: list[str] | tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """--notify-allow-cidr values; a bad one raises ValueError naming it."""
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise ValueError(f"--notify-allow-cidr {cidr!r} is not a CIDR (such as 10.0.0.0/8)") from None
    return tuple(networks)


# IPv6 prefixes whose last 32 bits are an IPv4 address a network may translate to: NAT64
# (RFC 6052, and the local-use 64:ff9b:1::/48), IPv4-compatible (::a.b.c.d) and SIIT
# (::ffff:0:a.b.c.d). 6to4 (2002::/16) carries it in bits 16-48 (`sixtofour`).
_EMBEDDING = tuple(
    ipaddress.ip_network(net) for net in ("64:ff9b::/96", "64:ff9b:1::/48", "::/96", "::ffff:0:0:0/96")
)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if int(ip) > 1 and any(ip in net for net in _EMBEDDING):  # not :: or ::1
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


# Ranges that are not reachable on the internet but that `ipaddress.is_global` (Python 3.11)
# calls global, or calls merely "private": refused whatever the Python version says, and
# named for what they are (red team R27B-6: fec0::/10 passed as public).
_SPECIAL_PURPOSE = tuple(
    (ipaddress.ip_network(net), what)
    for net, what in (
        ("100.64.0.0/10", "the shared address space (carrier-grade NAT)"),
        ("192.0.2.0/24", "documentation"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("198.18.0.0/15", "benchmarking"),
        ("192.88.99.0/24", "6to4 relay anycast (deprecated)"),
        ("fec0::/10", "site-local (deprecated, yet routed inside some networks)"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("2001::/32", "Teredo (its IPv4 address is hidden)"),
        ("5f00::/16", "segment routing (SRv6) identifiers"),
        ("100:0:0:1::/64", "dummy prefix"),
        ("64:ff9b:1::/48", "local-use NAT64 (the network translates it as it likes)"),
    )
)


def _special_purpose(ip: IPAddress) -> str | None:
    return next((f"in {net}, {what}" for net, what in _SPECIAL_PURPOSE if ip in net), None)


def _internal(ip: IPAddress) -> bool:
    return not ip.is_global or ip.is_multicast or _special_purpose(ip) is not None


def _kind(ip: IPAddress) -> str:
    """What an internal address is, after "is" or "embeds 10.0.0.1,"."""
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local (cloud metadata) address"
    if ip.is_multicast:
        return "a multicast address"
    special = _special_purpose(ip)
    if special is not None:
        return special
    if ip.is_private:
        return "a private address"
    return "a not publicly routable address"


def refusal(address: str, allowed: tuple[IPNetwork, ...], plain_http: bool) -> str | None:
    """Why the operator must not connect to IP `address` (None: it may). Allowed networks
    win; otherwise only global unicast addresses, and plain http only to allowed ones."""
    try:
        ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip.version == net.version and ip in net for net in allowed):
        return None
    inner = _embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
    inner_allowed = inner is not None and any(inner in net for net in allowed if net.version == 4)
    if inner is not None and _internal(inner) and not inner_allowed:
        return f"{ip} embeds {inner}, {_kind(inner)} (the operator allows it only with --notify-allow-cidr)"
    if _internal(ip):
        return f"{ip} is {_kind(ip)} (the operator allows it only with --notify-allow-cidr)"
    if plain_http:
        return f"http:// to {ip} is refused: use https (plain http only to --notify-allow-cidr addresses)"
    return None


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # without brackets
    port: int

    @property
    def plain_http(self) -> bool:
        return self.scheme == "http"

    def literal_ip(self) -> str | None:
        try:
            ipaddress.ip_address(self.host.split("%", 1)[0])
        except ValueError:
            return None
        return self.host


def parse_target(url: str) -> Target:
    """Scheme, host and port of a receiver URL; refuses what is not an http(s) URL with a host
    or that carries credentials."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise AddressRefusedError(f"not a valid URL: {error}") from None
    if parts.scheme not in ("http", "https"):
        raise AddressRefusedError("the address must be an https:// URL")
    if not parts.hostname:
        raise AddressRefusedError("the address has no host")
    if parts.username or parts.password:
        raise AddressRefusedError("the address must not carry credentials (user:password@)")
    try:
        # The host as aiohttp will connect to it: yarl normalises (IDNA, NFKC) what urllib
        # keeps, so fullwidth digits become an IP literal, which aiohttp never resolves.
        host = URL(url).host
    except ValueError as error:
        raise AddressRefusedError(f"not a valid URL: {error}") from None
    if not host:
        raise AddressRefusedError("the address has no host")
    return Target(parts.scheme, host, port or (443 if parts.scheme == "https" else 80))


def check_literal(url: str, allowed: tuple[IPNetwork, ...]) -> Target:
    """The URL's target, refused early when its host is a forbidden IP literal (a host name is
    judged when it resolves)."""
    target = parse_target(url)
    literal = target.literal_ip()
    if literal is not None:
        why = refusal(literal, allowed, target.plain_http)
        if why:
            raise AddressRefusedError(why)
    return target
