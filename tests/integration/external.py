"""Running the integration suite against two clusters someone else runs (kind, a lab pair).

Selected by environment variables; without them the suite starts its own local control
plane as always:

    ALECTON_TEST_KUBECONFIG   a kubeconfig holding both contexts (turns the mode on)
    ALECTON_TEST_CONTEXT_A    the management cluster: CRDs, alecton's objects, the operator
    ALECTON_TEST_CONTEXT_B    the target cluster: where releases land

The tests name the two clusters `alecton-a` and `alecton-b` everywhere (kubectl contexts,
Cluster objects, `--allow-context` grants, kubeconfigs handed to tenants), so the suite
writes a kubeconfig of its own in which the chosen contexts, their cluster entries and
their users carry exactly those names; nothing else of the original file is copied.

Tests that need the local plane's own parts (restarting an API server, kwok's simulated
failures, its audit logs, its PKI, reading its processes) carry the `local_plane` marker
and are skipped here. On a real cluster no image of the tests (`r/web:1`, ...) can be
pulled, so every Application the tests build runs `replicaCount: 0` unless the test sets
a replica count itself: helm installs, upgrades and rolls back for real, alecton's health
check waits on real Deployment rollouts, and no pod ever needs an image.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

KUBECONFIG_VARIABLE = "ALECTON_TEST_KUBECONFIG"
CONTEXT_A_VARIABLE = "ALECTON_TEST_CONTEXT_A"
CONTEXT_B_VARIABLE = "ALECTON_TEST_CONTEXT_B"
VARIABLES = (KUBECONFIG_VARIABLE, CONTEXT_A_VARIABLE, CONTEXT_B_VARIABLE)

# The names the tests use for the two clusters (as `alecton local up` writes them).
SUITE_CONTEXTS = {"a": "alecton-a", "b": "alecton-b"}

# What an external pair runs instead of the tests' images (which do not exist).
EXTERNAL_VALUES: dict[str, Any] = {"replicaCount": 0}

LOCAL_PLANE_REASON = (
    f"needs the suite's own local control plane ({KUBECONFIG_VARIABLE} points at external clusters)"
)

# Kubeconfig fields holding file paths, which kubectl reads relative to the file's directory.
_CLUSTER_PATHS = ("certificate-authority",)
_USER_PATHS = ("client-certificate", "client-key", "tokenFile")


class ExternalPairError(ValueError):
    """The variables name no usable pair: said plainly, before any test runs."""


@dataclass(frozen=True)
class ExternalPair:
    kubeconfig: Path
    context_a: str
    context_b: str

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> ExternalPair | None:
        """The pair the variables select; None when ALECTON_TEST_KUBECONFIG is unset."""
        env = os.environ if environ is None else environ
        path = env.get(KUBECONFIG_VARIABLE, "").strip()
        if not path:
            stray = [name for name in (CONTEXT_A_VARIABLE, CONTEXT_B_VARIABLE) if env.get(name)]
            if stray:
                raise ExternalPairError(f"{' and '.join(stray)} set without {KUBECONFIG_VARIABLE}")
            return None
        missing = [name for name in (CONTEXT_A_VARIABLE, CONTEXT_B_VARIABLE) if not env.get(name, "").strip()]
        if missing:
            raise ExternalPairError(f"{KUBECONFIG_VARIABLE} is set: also set {' and '.join(missing)}")
        pair = cls(Path(path).expanduser().resolve(), env[CONTEXT_A_VARIABLE], env[CONTEXT_B_VARIABLE])
        if pair.context_a == pair.context_b:
            raise ExternalPairError(
                f"{CONTEXT_A_VARIABLE} and {CONTEXT_B_VARIABLE} name the same context: the suite "
                "needs two clusters"
            )
        return pair

    def suite_kubeconfig(self) -> dict[str, Any]:
        """The two contexts, renamed to the suite's names, with file paths made absolute."""
        try:
            original = yaml.safe_load(self.kubeconfig.read_text()) or {}
        except OSError as error:
            raise ExternalPairError(
                f"{KUBECONFIG_VARIABLE}: cannot read {self.kubeconfig}: {error}"
            ) from None
        return rename_contexts(
            original,
            {self.context_a: SUITE_CONTEXTS["a"], self.context_b: SUITE_CONTEXTS["b"]},
            self.kubeconfig.parent,
        )

    def write_suite_kubeconfig(self, directory: Path) -> str:
        path = directory / "kubeconfig"
        path.write_text(yaml.safe_dump(self.suite_kubeconfig()))
        path.chmod(0o600)  # it holds the clusters' credentials
        return str(path)


def rename_contexts(config: dict[str, Any], names: dict[str, str], base: Path) -> dict[str, Any]:
    """A kubeconfig of only the contexts in `names`, each renamed (context, cluster and user
    all take the new name, so two contexts sharing a user still get one entry each)."""

    def entry(kind: str, name: str) -> dict[str, Any]:
        found = [item for item in config.get(kind) or [] if item.get("name") == name]
        if not found:
            raise ExternalPairError(f"the kubeconfig has no {kind[:-1]} named {name!r}")
        return copy.deepcopy(found[0])

    result: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [],
        "users": [],
        "contexts": [],
    }
    for old, new in names.items():
        context = entry("contexts", old)["context"]
        cluster = entry("clusters", context["cluster"])["cluster"]
        user = entry("users", context["user"])["user"] if context.get("user") else {}
        _absolute(cluster, _CLUSTER_PATHS, base)
        _absolute(user, _USER_PATHS, base)
        result["clusters"].append({"name": new, "cluster": cluster})
        result["users"].append({"name": new, "user": user})
        renamed = {**context, "cluster": new, "user": new}
        result["contexts"].append({"name": new, "context": renamed})
    result["current-context"] = next(iter(names.values()))
    return result


def _absolute(section: dict[str, Any], keys: tuple[str, ...], base: Path) -> None:
    for key in keys:
        if section.get(key) and not Path(section[key]).is_absolute():
            section[key] = str(base / section[key])


def application_values(values: dict[str, Any] | None, pair: ExternalPair | None) -> dict[str, Any]:
    """An Application's values as the tests build them: on an external pair, no pod unless
    the test asks for replicas (the tests' images exist nowhere)."""
    if pair is None:
        return values or {}
    return {**EXTERNAL_VALUES, **(values or {})}


PAIR = ExternalPair.from_environment()
