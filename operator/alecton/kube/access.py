"""How the operator's helm and API clients reach a target cluster, and the private
temporary files (kubeconfigs, values) they read."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class KubeAccess:
    """How helm reaches the target cluster: a kubeconfig file and optionally a context."""

    kubeconfig: str
    context: str = ""
    tenant_secret: bool = False  # a kubeconfig from a tenant's Secret (a temporary file)
    identity: str = ""  # which cluster this is (see reconcile.access.cluster_identity)
    impersonate: str = ""  # a user helm acts as (the tenant's ServiceAccount on the operator's cluster)
    credentials: str = ""  # a digest of a tenant kubeconfig: a rotated Secret means new API clients

    @property
    def create_namespace(self) -> bool:
        # An impersonated tenant may not create namespaces: the platform team makes them.
        return not self.impersonate

    def args(self) -> list[str]:
        # No kubeconfig: helm falls back to in-cluster credentials.
        args = ["--kubeconfig", self.kubeconfig] if self.kubeconfig else []
        if self.context:
            args += ["--kube-context", self.context]
        if self.impersonate:
            args += ["--kube-as-user", self.impersonate]
        return args


_private_dir: Path | None = None


def use_private_dir(path: Path) -> None:
    """Keep every temporary kubeconfig and values file in `path` (0700), emptied now:
    files a killed operator left behind (kubeconfigs, values with secrets) go at start."""
    global _private_dir
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    for leftover in path.iterdir():
        with contextlib.suppress(OSError):
            leftover.unlink()
    _private_dir = path


@contextlib.contextmanager
def private_file(content: bytes, suffix: str) -> Iterator[Path]:
    """A temporary file only the operator can read, removed when the block ends."""
    fd, name = tempfile.mkstemp(prefix="alecton-", suffix=suffix, dir=_private_dir)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        yield Path(name)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
