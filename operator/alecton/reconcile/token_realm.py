"""Where a registry's Bearer challenge may send the operator for a token.

A registry answers 401 with `WWW-Authenticate: Bearer realm="https://..."`; the client GETs a
token there and sends it back to the registry as `Authorization: Bearer <token>`. ORAS-go
(helm's registry client) asks whatever realm is named, with the login kept for the registry
host. For alecton the registry may be a tenant's, and the realm's answer goes back to it: a
realm inside the cluster network (an internal https service answering JSON with a `token`)
would be read by the tenant through the operator. So:

- the realm's host:port is the registry's own (GHCR, Quay, Harbor, ACR, GCR, a registry in
  the cluster): always allowed;
- any other host must resolve only to global unicast addresses (Docker Hub's auth.docker.io,
  gitlab.com for registry.gitlab.com), judged for every address a name resolves to and for
  every connection of the token request, redirects included;
- the registry's login goes only to a realm on the registry's own host name or a name under
  the registry's parent domain (registry-1.docker.io -> auth.docker.io), and only when that
  parent is not a public suffix (the Public Suffix List, its private section too, as the
  `publicsuffixlist` package bundles it): under registry.co.uk or team.github.io the name
  beside the registry is another organisation's. A shared domain the list does not name
  (team.azurecr.io: Azure's registries answer on their own host) still widens.

Pure: host names, ports and IP addresses in, the reason for a refusal (or None) out.
"""

from __future__ import annotations

import functools
import ipaddress
from urllib.parse import urlsplit

from publicsuffixlist import PublicSuffixList

from alecton.reconcile.notify_address import refusal as address_refusal


@functools.cache
def _public_suffixes() -> PublicSuffixList:
    """The list as the package bundles it (nothing is downloaded at run time); read on first
    use, not at import (50 ms, 2 MiB), since most registries need no realm elsewhere."""
    return PublicSuffixList()


def origin(host_port: str) -> tuple[str, int]:
    """`host[:port]` (IPv6 in brackets) as (host without brackets, lower case; port, 443 if none)."""
    parts = urlsplit(f"//{host_port}")
    return (parts.hostname or "").lower(), parts.port or 443


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _shares_domain(registry_host: str, realm_host: str) -> bool:
    """`realm_host` is the registry's host, or a name under the registry's parent domain (one
    label off, kept at two labels at least: ghcr.io never widens to every name in .io)."""
    if realm_host == registry_host:
        return True
    if _is_ip(registry_host) or _is_ip(realm_host):
        return False
    labels = registry_host.split(".")
    domain = ".".join(labels[1:]) if len(labels) >= 3 else registry_host
    if _public_suffixes().is_public(domain):
        return False
    return realm_host == domain or realm_host.endswith("." + domain)


def realm_url_refusal(registry: str, realm: str, with_login: bool) -> str | None:
    """Why the realm URL a registry (`host[:port]`, as its API answers) names is refused before
    any request: not https, credentials in it, no host, or (with a login) a host the
    registry's login must not go to. None: ask it (its addresses are judged at connect)."""
    try:
        parts = urlsplit(realm)
        _ = parts.port  # a bad port is a bad URL
    except ValueError:
        return f"registry {registry} names a token realm that is not a URL"
    if parts.scheme.lower() != "https":
        return f"registry {registry} names a token realm that is not https: refused"
    if not parts.hostname or parts.username is not None or parts.password is not None:
        return f"registry {registry} names a token realm without a host or with credentials in it: refused"
    registry_host, _ = origin(registry)
    realm_host = parts.hostname.lower()
    if with_login and not _shares_domain(registry_host, realm_host):
        return (
            f"registry {registry} names a token realm on {realm_host}, outside its own domain: "
            "its login is never sent there"
        )
    return None


def realm_address_refusal(registry: str, host: str, port: int, address: str) -> str | None:
    """Why the token request (or a redirect of it) must not connect to `address`, the IP that
    `host`:`port` resolved to. The registry's own host:port is the registry: allowed
    wherever it is. Elsewhere only global unicast addresses (notify_address's rule, with no
    allowed networks): an internal service's answer would go back to the registry."""
    if (host.lower(), port) == origin(registry):
        return None
    if address_refusal(address, (), plain_http=False) is None:
        return None
    # Neither the address nor its kind: the status would tell a tenant what internal names resolve to.
    return (
        f"registry {registry} names a token realm that is neither its own host:port nor a public "
        "address: refused"
    )
