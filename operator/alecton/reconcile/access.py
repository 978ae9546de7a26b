"""Which clusters a tenant namespace may reach, and which kubeconfigs are safe to use.

A namespace is a tenant. It may use a context of the operator's own kubeconfig only
when the operator's configuration grants it, and a kubeconfig from its own Secret
only when that kubeconfig cannot make the operator run programs or read its files
(the same stance as Flux's insecure-kubeconfig flags).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

# User fields that run a program or read the operator's filesystem.
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


class KubeconfigRefusedError(ValueError):
    pass


@dataclass(frozen=True)
class ContextPolicy:
    """`grants` maps a namespace (or `*` for every namespace) to the contexts it may use.

    With no grants at all, every context is allowed (a single-tenant or local setup).
    """

    grants: dict[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, entries: Iterable[str]) -> ContextPolicy:
        """Entries look like `team-a=prod-us,staging` or `*=alecton-b`."""
        grants: dict[str, set[str]] = {}
        for entry in entries:
            namespace, sep, contexts = entry.partition("=")
            if not sep or not namespace.strip():
                raise ValueError(f"context grant {entry!r} must look like NAMESPACE=CONTEXT[,CONTEXT]")
            names = {c.strip() for c in contexts.split(",") if c.strip()}
            grants.setdefault(namespace.strip(), set()).update(names)
        return cls({ns: frozenset(ctx) for ns, ctx in grants.items()})

    def allows(self, namespace: str, context: str) -> bool:
        if not self.grants:
            return True
        allowed = self.grants.get(namespace, frozenset()) | self.grants.get("*", frozenset())
        return context in allowed


def check_kubeconfig(raw: bytes, allow_insecure: bool = False) -> dict[str, Any]:
    """Parse a tenant's kubeconfig and refuse anything that reaches into the operator."""
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as error:
        raise KubeconfigRefusedError(f"the kubeconfig is not valid YAML ({type(error).__name__})") from None
    if not isinstance(data, dict) or not isinstance(data.get("clusters"), list):
        raise KubeconfigRefusedError("the kubeconfig has no clusters list")
    if allow_insecure:
        return data
    for section, fields, key in (
        ("users", _UNSAFE_USER_FIELDS, "user"),
        ("clusters", _UNSAFE_CLUSTER_FIELDS, "cluster"),
    ):
        for item in data.get(section) or []:
            body = (item or {}).get(key) or {}
            for unsafe, what in fields.items():
                if unsafe in body:
                    name = (item or {}).get("name", "?")
                    raise KubeconfigRefusedError(
                        f"{section[:-1]} {name!r} in the kubeconfig uses {what} ({unsafe}); "
                        "embed credentials as data (token, client-certificate-data, ...) instead"
                    )
    return data
