"""Health of a release's objects after helm installs or upgrades it (kstatus semantics).

The handlers read the release manifest (`manifest.py`), watch the objects it names and pass
the cached copies (plus the live Pods of each namespace) to `assess.py`, which decides
whether each object is Current, still InProgress, already Failed or not yet seen; this
module sums that up for the release. Nothing here touches the network or helm: objects are
plain JSON dicts as the API server returns them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from alecton.api.objects import ObjectKey


class State(enum.Enum):
    CURRENT = "Current"  # healthy / reconciled
    IN_PROGRESS = "InProgress"  # still converging
    FAILED = "Failed"  # will not converge without a change (early failure)
    NOT_FOUND = "NotFound"  # object from the manifest is not (yet) in the cache


@dataclass(frozen=True)
class ObjectHealth:
    key: ObjectKey
    state: State
    message: str


@dataclass(frozen=True)
class ReleaseHealth:
    state: State
    objects: tuple[ObjectHealth, ...]

    @property
    def message(self) -> str:
        pending = self._not_current()
        if self.state is State.CURRENT or not pending:
            count = len(self.objects)
            if count == 0:
                return "no objects to assess"
            return "1 object healthy" if count == 1 else f"all {count} objects healthy"
        first = pending[0]
        line = f"{first.key.describe()}: {first.message}"
        if self.state is State.FAILED:
            return line
        more = f", and {len(pending) - 1} more" if len(pending) > 1 else ""
        return f"waiting for {line}{more}"

    @property
    def progressing(self) -> list[str]:
        return [f"{health.key.describe()}: {health.message}" for health in self._not_current()]

    def _not_current(self) -> list[ObjectHealth]:
        # Failed objects first: they are what a person has to fix; the rest keep manifest order.
        failed = [health for health in self.objects if health.state is State.FAILED]
        waiting = [health for health in self.objects if health.state not in (State.FAILED, State.CURRENT)]
        return failed + waiting


def release_health(objects: Iterable[ObjectHealth]) -> ReleaseHealth:
    assessed = tuple(objects)
    states = {health.state for health in assessed}
    if State.FAILED in states:
        state = State.FAILED
    elif states <= {State.CURRENT}:
        state = State.CURRENT
    else:
        # NOT_FOUND counts as in progress: the watch may simply not have delivered it yet.
        state = State.IN_PROGRESS
    return ReleaseHealth(state, assessed)
