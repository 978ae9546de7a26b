"""Which kubeconfigs from a tenant's Secret are safe for the operator to use.

A tenant may deploy through a kubeconfig of its own only when that kubeconfig names a real
https cluster and cannot make the operator run programs or read its files (the same stance
as Flux's insecure-kubeconfig flags). Everything here is pure: no I/O, so callers decide
what to read and what to log.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml

# User fields that run a program or read the operator's filesystem, checked on every
# entry: what the file holds, not just what one context uses, is what may be loaded.
_UNSAFE_USER_FIELDS = {
    "exec": "an exec credential plugin (it would run a program inside the operator)",
    "auth-provider": "an auth-provider plugin",
    "tokenFile": "a token file path on the operator's filesystem",
    "client-certificate": "a client certificate path on the operator's filesystem",
    "client-key": "a client key path on the operator's filesystem",
}
_UNSAFE_CLUSTER_FIELDS = {
    "certificate-authority": "a CA file path on the operator's filesystem",
}
_EMBED_HINT = {
    "user": "embed credentials as data (token, client-certificate-data, ...) instead",
    "cluster": "embed the CA as certificate-authority-data instead",
}
_SECTIONS = (("clusters", "cluster"), ("contexts", "context"), ("users", "user"))


class KubeconfigRefusedError(ValueError):
    """A tenant's kubeconfig cannot be used. The message says why and what to change,
    and never quotes the file's content beyond entry names: it holds credentials."""


@dataclass(frozen=True)
class TargetKubeconfig:
    """What a checked kubeconfig points at: the context helm will use and its server."""

    context: str
    server: str
    # What helm is given: the checked content as JSON (which client-go reads as it is), so
    # no YAML feature can make helm read something other than what was checked.
    checked: bytes = field(default=b"", repr=False, compare=False)  # credentials: never shown


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader minus the YAML features a kubeconfig never needs and that a YAML
    parser other than client-go's could read differently: duplicate keys (which value
    wins?), aliases, merge keys, explicit tags (`!!binary dG9rZW5GaWxl` is bytes here and
    the key `tokenFile` to client-go) and keys that are not strings. Refusing them keeps
    what is checked here the same as what helm loads, and aliases cannot blow up memory."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise KubeconfigRefusedError("the kubeconfig uses YAML aliases (*name), which are not accepted")
        event = self.peek_event()
        if getattr(event, "tag", None) not in (None, "!"):
            raise KubeconfigRefusedError(
                f"the kubeconfig uses an explicit YAML tag (line {event.start_mark.line + 1}), "
                "which is not accepted; write plain values"
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen = []
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise KubeconfigRefusedError(
                    "the kubeconfig uses YAML merge keys (<<), which are not accepted"
                )
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise KubeconfigRefusedError(
                    f"the kubeconfig has a key that is not a string (line {key_node.start_mark.line + 1})"
                )
            if key in seen:  # a list: keys may be unhashable, which SafeLoader refuses below
                # The line, not the key: a key is content too.
                raise KubeconfigRefusedError(
                    f"the kubeconfig repeats a key in one mapping (line {key_node.start_mark.line + 1})"
                )
            seen.append(key)
        return super().construct_mapping(node, deep=deep)


def _quote(name: str) -> str:
    """An entry name for a message, cut short: names are echoed, never other values."""
    text = repr(name)
    return text if len(text) <= 80 else text[:76] + "...'"


def _kind(value: object) -> str:
    """The YAML word for a value's shape, for messages that must not show the value."""
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__


def _load(raw: bytes) -> Mapping[Any, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise KubeconfigRefusedError("the kubeconfig is not UTF-8 text (UnicodeDecodeError)") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        # Only the error's type and position: its message would quote the file.
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise KubeconfigRefusedError(
            f"the kubeconfig is not valid YAML ({type(error).__name__}{where})"
        ) from None
    if not isinstance(data, Mapping):
        raise KubeconfigRefusedError(f"the kubeconfig is {_kind(data)}, not a mapping")
    return data


def _entries(data: Mapping[Any, Any], section: str, body_key: str) -> dict[str, Mapping[Any, Any]]:
    """`section` as name -> body, refusing every shape client-go would not read as
    intended: a wrong shape must never be quietly skipped, since what is skipped here
    would not be checked."""
    items = data.get(section)
    if items is None:  # absent, or `users: null` as kubectl writes an empty list
        return {}
    if not isinstance(items, list):
        raise KubeconfigRefusedError(f"'{section}' in the kubeconfig is {_kind(items)}, not a list")
    entries: dict[str, Mapping[Any, Any]] = {}
    for index, item in enumerate(items):
        where = f"{section}[{index}]"
        if not isinstance(item, Mapping):
            raise KubeconfigRefusedError(f"{where} in the kubeconfig is {_kind(item)}, not a mapping")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise KubeconfigRefusedError(f"{where} in the kubeconfig has no name (a non-empty string)")
        body = item.get(body_key)
        if not isinstance(body, Mapping):
            raise KubeconfigRefusedError(
                f"{where} ({_quote(name)}) in the kubeconfig has '{body_key}' as {_kind(body)}, not a mapping"
            )
        if name in entries:
            # Which one would client-go use? Refuse rather than check the other.
            raise KubeconfigRefusedError(f"{section} in the kubeconfig has two entries named {_quote(name)}")
        entries[name] = body
    return entries


def _names(entries: Mapping[str, Any]) -> str:
    # Quoted only when needed, so that a name with a line break keeps the message on one line.
    names = [name if name.isprintable() else _quote(name) for name in entries]
    shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
    return shown or "none"


def _refuse_unsafe_fields(
    clusters: Mapping[str, Mapping[Any, Any]], users: Mapping[str, Mapping[Any, Any]]
) -> None:
    for section, entries, fields in (
        ("user", users, _UNSAFE_USER_FIELDS),
        ("cluster", clusters, _UNSAFE_CLUSTER_FIELDS),
    ):
        for name, body in entries.items():
            for unsafe, what in fields.items():
                if unsafe in body:
                    raise KubeconfigRefusedError(
                        f"{section} {_quote(name)} in the kubeconfig uses {what} ({unsafe}); "
                        f"{_EMBED_HINT[section]}"
                    )


def _check_server(name: str, body: Mapping[Any, Any]) -> str:
    server = body.get("server")
    if not isinstance(server, str) or not server:
        # Without a server, helm and client-go fall back to the operator's own
        # in-cluster identity: the tenant would act as the operator.
        raise KubeconfigRefusedError(
            f"cluster {_quote(name)} in the kubeconfig has no server (an https:// URL)"
        )
    try:
        parts = urlsplit(server)
        host = parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        parts, host = None, None
    if parts is None or not host or not server.lower().startswith("https://"):
        # The value itself is not shown: a malformed URL may be a pasted token.
        raise KubeconfigRefusedError(
            f"cluster {_quote(name)} in the kubeconfig has a server that is not an https:// URL "
            "with a host (plain http would send the credentials unencrypted)"
        )
    if "@" in parts.netloc:
        # The server URL is recorded as the cluster's identity: it must hold no secret.
        raise KubeconfigRefusedError(
            f"cluster {_quote(name)} in the kubeconfig has credentials in its server URL; "
            "put them in the user entry instead"
        )
    return server


def check_kubeconfig(raw: bytes, context: str = "", allow_insecure: bool = False) -> TargetKubeconfig:
    """Check a tenant's kubeconfig before helm uses it, through `context` (empty: the
    file's current-context), and say which context and server it reaches.

    Strict on purpose: when a kubeconfig is incomplete, helm and client-go fall back to
    the operator's own in-cluster identity, so whatever is not clearly a complete
    https cluster is refused. `allow_insecure` (the administrator's opt-out) lets
    through file paths, plugins, insecure-skip-tls-verify and proxy-url, never a
    malformed file, a missing context or a non-https server.
    """
    data = _load(raw)
    clusters, contexts, users = (_entries(data, section, key) for section, key in _SECTIONS)
    current = data.get("current-context")
    if current is not None and not isinstance(current, str):
        raise KubeconfigRefusedError(f"current-context in the kubeconfig is {_kind(current)}, not a string")
    if not allow_insecure:
        _refuse_unsafe_fields(clusters, users)

    selected = context or current or ""
    if not selected:
        raise KubeconfigRefusedError(
            "the kubeconfig has no current-context and the Cluster names no context; set one of them"
        )
    if selected not in contexts:
        raise KubeconfigRefusedError(
            f"context {_quote(selected)} not found in the kubeconfig (contexts: {_names(contexts)})"
        )
    body = contexts[selected]

    cluster_name = body.get("cluster")
    if not isinstance(cluster_name, str) or not cluster_name:
        raise KubeconfigRefusedError(f"context {_quote(selected)} in the kubeconfig names no cluster")
    if cluster_name not in clusters:
        raise KubeconfigRefusedError(
            f"context {_quote(selected)} names cluster {_quote(cluster_name)}, which is not in the "
            f"kubeconfig (clusters: {_names(clusters)})"
        )
    cluster = clusters[cluster_name]
    server = _check_server(cluster_name, cluster)
    insecure = cluster.get("insecure-skip-tls-verify")
    if insecure is not None and not isinstance(insecure, bool):
        raise KubeconfigRefusedError(
            f"cluster {_quote(cluster_name)} in the kubeconfig has insecure-skip-tls-verify as "
            f"{_kind(insecure)}, not true or false"
        )
    if insecure and not allow_insecure:
        raise KubeconfigRefusedError(
            f"cluster {_quote(cluster_name)} in the kubeconfig sets insecure-skip-tls-verify; "
            "give its CA as certificate-authority-data instead"
        )
    if cluster.get("proxy-url") not in (None, "") and not allow_insecure:
        # The operator's network position is not the tenant's: a proxy of their choice
        # would receive the credentials and reach what the operator can reach.
        raise KubeconfigRefusedError(
            f"cluster {_quote(cluster_name)} in the kubeconfig sets proxy-url, which is not accepted"
        )

    user_name = body.get("user")
    if user_name is not None and not isinstance(user_name, str):
        raise KubeconfigRefusedError(
            f"context {_quote(selected)} in the kubeconfig has user as {_kind(user_name)}, not a string"
        )
    if user_name and user_name not in users:
        raise KubeconfigRefusedError(
            f"context {_quote(selected)} names user {_quote(user_name)}, which is not in the "
            f"kubeconfig (users: {_names(users)})"
        )
    return TargetKubeconfig(selected, server, _as_json(data))


def _as_json(data: Mapping[Any, Any]) -> bytes:
    try:
        return json.dumps(data, separators=(",", ":")).encode()
    except (TypeError, ValueError):
        # An unquoted date or time is one in YAML and a string to client-go.
        raise KubeconfigRefusedError(
            "the kubeconfig has a value that is not a string, number, boolean, list or mapping "
            "(an unquoted date?); quote it"
        ) from None
