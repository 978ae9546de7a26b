"""Finding the pinned binaries that `make tools` builds into `.tools/bin/`."""

from __future__ import annotations

import os
from pathlib import Path

REQUIRED_TOOLS = ("etcd", "kube-apiserver", "kubectl", "helm", "helm3")


class ToolsMissingError(RuntimeError):
    """The Go-built toolchain is not there: the fix is always `make tools`."""


def _candidates() -> list[Path]:
    found: list[Path] = []
    if env := os.environ.get("ALECTON_TOOLS_BIN"):
        found.append(Path(env))
    # A checkout: walk up from the working directory and from this package.
    for start in (Path.cwd(), Path(__file__).resolve()):
        for parent in (start, *start.parents):
            found.append(parent / ".tools" / "bin")
    return found


def tools_bin(required: tuple[str, ...] = REQUIRED_TOOLS) -> Path:
    """The directory holding all `required` binaries, or a clear error saying what to run."""
    for candidate in _candidates():
        if all(os.access(candidate / name, os.X_OK) for name in required):
            return candidate
    raise ToolsMissingError(
        f"the binaries {', '.join(required)} were not found in .tools/bin/ "
        "(or $ALECTON_TOOLS_BIN): run `make tools` in the alecton checkout to build them"
    )


def tool(name: str) -> Path:
    return tools_bin((name,)) / name
