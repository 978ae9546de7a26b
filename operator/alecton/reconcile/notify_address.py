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


def _kind(ip: IPAddress) -> str:
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local (cloud metadata)"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private:
        return "private"
    return "not publicly routable"


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
    internal = inner is not None and (not inner.is_global or inner.is_multicast)
    if inner is not None and internal and not any(inner in net for net in allowed if net.version == 4):
        why = f"{ip} embeds {inner}, a {_kind(inner)} address"
        return f"{why} (the operator allows it only with --notify-allow-cidr)"
    if not ip.is_global or ip.is_multicast:
        return f"{ip} is a {_kind(ip)} address (the operator allows it only with --notify-allow-cidr)"
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
