"""A registry login read from a Secret: an oci:// chart's (spec.repositorySecretRef), or the
one that fetches an image's signatures (spec.verify.secretRef, optional there).

Pure: the Secret's data in, what helm needs out (a registry config in Docker's format, which
helm reads through HELM_REGISTRY_CONFIG, and a CA bundle for `--ca-file`), so the password
never travels on a command line and never lands in anything alecton writes.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from alecton.reconcile.chart import ChartRefusedError

# Bounds a Secret must keep to be read at all (a Secret is at most 1 MiB anyway).
MAX_CREDENTIAL_CHARS = 4096
MAX_CA_BYTES = 256 * 1024
DOCKER_CONFIG_KEY = ".dockerconfigjson"
CA_KEY = "ca.crt"
REGISTRY_KEY = "registry"  # the host a username/password login is for


class RepositorySecretMissingError(ValueError):
    """The Secret is not there (yet): the Deployment waits for it, as for a valuesFrom Secret."""


@dataclass(frozen=True)
class RegistryCredentials:
    """Who helm logs in as at `host`; `repr` never shows the password."""

    host: str  # host[:port], as helm names the registry
    username: str = ""
    password: str = field(default="", repr=False)
    ca_pem: bytes = field(default=b"", repr=False)

    def registry_config(self) -> bytes:
        """Docker's config.json with this one registry, as helm's registry client reads it."""
        if not self.username and not self.password:
            return b'{"auths": {}}'
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return json.dumps({"auths": {self.host: {"auth": token}}}).encode()


def registry_host(chart: str) -> str:
    """`oci://host:port/path/chart` -> `host:port` (lower case, as registries compare hosts)."""
    return urlsplit(chart).netloc.lower()


def _text(data: dict[str, bytes], key: str, secret: str) -> str:
    raw = data.get(key)
    if raw is None:
        return ""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ChartRefusedError(f"Secret {secret!r} key {key!r} is not UTF-8 text") from None
    if len(text) > MAX_CREDENTIAL_CHARS:
        raise ChartRefusedError(
            f"Secret {secret!r} key {key!r} is longer than {MAX_CREDENTIAL_CHARS} characters"
        )
    return text


def _from_docker_config(raw: bytes, host: str, secret: str) -> tuple[str, str]:
    """The username and password of `host` in a `.dockerconfigjson` (`auth`, or `username`
    and `password`); ChartRefusedError when it has none for that host."""
    where = f"Secret {secret!r} key {DOCKER_CONFIG_KEY!r}"
    try:
        config = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ChartRefusedError(f"{where} is not JSON") from None
    auths = config.get("auths") if isinstance(config, dict) else None
    if not isinstance(auths, dict):
        raise ChartRefusedError(f'{where} has no "auths" object')
    # Docker writes hosts bare or as URLs (`https://host/v1/`): compare the host part.
    entry = next(
        (value for key, value in auths.items() if isinstance(key, str) and _config_host(key) == host),
        None,
    )
    if not isinstance(entry, dict):
        known = ", ".join(sorted(_config_host(k) for k in auths if isinstance(k, str))) or "none"
        raise ChartRefusedError(f"{where} has no credentials for registry {host!r} (it has: {known})")
    if isinstance(entry.get("auth"), str) and entry["auth"]:
        try:
            pair = base64.b64decode(entry["auth"], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ChartRefusedError(
                f'{where}: the "auth" of {host!r} is not base64 of user:password'
            ) from None
        username, sep, password = pair.partition(":")
        if not sep:
            raise ChartRefusedError(f'{where}: the "auth" of {host!r} is not base64 of user:password')
        return username, password
    username, password = entry.get("username"), entry.get("password")
    if isinstance(username, str) and isinstance(password, str):
        return username, password
    raise ChartRefusedError(f'{where}: the entry of {host!r} has neither "auth" nor username and password')


def _check_bound(bound: str, host: str, secret: str) -> None:
    """A login is only ever sent to the registry its Secret names: an Application's author
    who cannot read the namespace's Secrets must not point a chart at a host of theirs and
    receive the password (a `.dockerconfigjson` is bound by its `auths` keys)."""
    if not bound:
        raise ChartRefusedError(
            f"Secret {secret!r} has username and password but no key {REGISTRY_KEY!r} naming the "
            f"registry they are for ({host!r} here): add it, or use a docker-registry Secret "
            "(`kubectl create secret docker-registry ... --docker-server HOST`)"
        )
    if _config_host(bound) != host:
        raise ChartRefusedError(
            f"Secret {secret!r} holds a login for registry {_config_host(bound)!r}, not for {host!r}: "
            "it is never sent to another registry"
        )


def _config_host(key: str) -> str:
    return (urlsplit(key).netloc if "://" in key else key.split("/", 1)[0]).lower()


def repository_credentials(
    chart: str, secret: str, data: dict[str, bytes] | None
) -> RegistryCredentials | None:
    """The credentials for `chart` from Secret `secret`'s `data`: None when no Secret is
    named; RepositorySecretMissingError when it does not exist; ChartRefusedError (with a
    message a person can act on, never a value of the Secret) when it is malformed."""
    if not secret:
        return None
    if not chart.startswith("oci://"):
        raise ChartRefusedError("spec.repositorySecretRef is for oci:// charts only")
    if data is None:
        raise RepositorySecretMissingError(
            f"Secret {secret!r} (spec.repositorySecretRef) does not exist: create it in this "
            "namespace with username and password, or .dockerconfigjson"
        )
    return secret_credentials(registry_host(chart), secret, data, required=True)


def secret_credentials(
    host: str, secret: str, data: dict[str, bytes], required: bool
) -> RegistryCredentials | None:
    """The login for registry `host` in a Secret's `data`; None when not `required` and the
    Secret holds none (anonymous, trusted by the system's CAs)."""
    if not required and not {"username", "password", DOCKER_CONFIG_KEY, CA_KEY} & data.keys():
        return None
    ca_pem = data.get(CA_KEY, b"")
    if len(ca_pem) > MAX_CA_BYTES:
        raise ChartRefusedError(f"Secret {secret!r} key {CA_KEY!r} is larger than {MAX_CA_BYTES} bytes")
    if ca_pem and b"-----BEGIN CERTIFICATE-----" not in ca_pem:
        raise ChartRefusedError(f"Secret {secret!r} key {CA_KEY!r} is not a PEM certificate bundle")
    if DOCKER_CONFIG_KEY in data:
        username, password = _from_docker_config(data[DOCKER_CONFIG_KEY], host, secret)
    else:
        username, password = _text(data, "username", secret), _text(data, "password", secret)
        if bool(username) != bool(password):
            missing = "password" if username else "username"
            raise ChartRefusedError(
                f"Secret {secret!r} has no key {missing!r}: set both username and password"
            )
        if not username and not ca_pem:
            raise ChartRefusedError(
                f"Secret {secret!r} has none of username and password, {DOCKER_CONFIG_KEY}, {CA_KEY}"
            )
        if username:
            _check_bound(_text(data, REGISTRY_KEY, secret), host, secret)
    if len(username) > MAX_CREDENTIAL_CHARS or len(password) > MAX_CREDENTIAL_CHARS:
        raise ChartRefusedError(
            f"Secret {secret!r}: credentials longer than {MAX_CREDENTIAL_CHARS} characters"
        )
    return RegistryCredentials(host, username, password, ca_pem)
