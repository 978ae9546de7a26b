"""One release upgraded one revision at a time: what the overhead and the cost of a deploy
are measured on."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from harness import Bench, Operator, image_doc, new_namespace, workload

RELEASE = "web0-t0"  # the workload's only Deployment


@contextlib.contextmanager
def single_release(bench: Bench, name: str, health: bool = False) -> Iterator[tuple[str, Operator]]:
    """Namespace `name` with one Deployment (releasing into `<name>-web`), Deployed at
    version and revision 1 by an operator of its own, stopped on exit. `health`: Deployed
    only once its pod is Ready."""
    namespace = new_namespace(bench, name)
    bench.apply(workload(namespace, 1, f"{name}-web", health=health), namespace)
    operator = Operator(bench, 4, namespace)
    try:
        bench.wait(lambda: bench.status(namespace, RELEASE).get("phase") == "Deployed", 60, 0.1)
        yield namespace, operator
    finally:
        operator.stop()


def add_image(bench: Bench, namespace: str, revision: int) -> None:
    """The Image of version `revision`: version N is deployed as helm revision N, revision 1
    being the install of version 1."""
    bench.apply([image_doc(str(revision))], namespace)


def upgrade(bench: Bench, namespace: str, revision: int, poll: float) -> None:
    """Point the Deployment at version `revision` (its Image applied) and wait until it is
    Deployed as that revision."""
    bench.set_version(namespace, RELEASE, str(revision))
    bench.wait(lambda: _deployed_at(bench.status(namespace, RELEASE), revision), 60, poll)


def _deployed_at(status: dict[str, Any], revision: int) -> bool:
    return status.get("phase") == "Deployed" and status.get("release", {}).get("revision") == revision
