"""What an action reports back: plain data the summary turns into status and Events.

Actions never build status or Events themselves; they say what happened, in these types,
and `reconcile.summary.summarize` says what it means for the Deployment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from alecton.reconcile.helm_failure import FailureClass
from alecton.reconcile.plan import RecordedStatus, ReleaseLocation
from alecton.reconcile.promotion_actions import Actions
from alecton.reconcile.promotion_choice import Choice
from alecton.reconcile.promotion_hold import HoldDecision
from alecton.reconcile.promotion_policy import PromotionPolicy
from alecton.reconcile.release import HistoryEntry


@dataclass(frozen=True)
class Note:
    """A fact worth an Event of its own (a repaired lock, a moved release, a new Promotion)."""

    reason: str
    message: str
    warning: bool = False


@dataclass(frozen=True)
class Done:
    """The outcome of an action with nothing more to report than its notes."""

    result: str = ""  # overrides the step's result label (e.g. "throttled")
    wait: float | None = None  # look again after this many seconds
    notes: tuple[Note, ...] = ()


@dataclass(frozen=True)
class Claimed:
    """The owner check before a helm action passed: the place is this Deployment's to act on.
    `new_place`: the claim is of a place status did not hold (its revision is cleared)."""

    location: ReleaseLocation
    new_place: bool
    moved_from: ReleaseLocation | None = None


@dataclass(frozen=True)
class Released:
    """helm upgrade --install or rollback succeeded."""

    location: ReleaseLocation
    history: list[HistoryEntry]
    image: str = ""  # the image of the newest revision's version
    verify_until: str | None = None  # health checks on: Verifying until then
    repaired: str = ""  # what unlocking did first
    after: str = ""  # what happened after (the old place of a move removed)
    rollback_record: dict[str, Any] | None = None
    notes: tuple[Note, ...] = ()
    before: RecordedStatus | None = None  # status as it was before the claim


@dataclass(frozen=True)
class ReleaseFailed:
    error: str  # redacted
    reason: str = ""  # overrides <Action>Failed (e.g. ClusterRefused)
    stalled: FailureClass | None = None  # helm refused the inputs: no timer
    rollback_record: dict[str, Any] | None = None
    notes: tuple[Note, ...] = ()
    before: RecordedStatus | None = None  # status as it was before the claim


@dataclass(frozen=True)
class Conflict:
    """Helm's storage names another owner at the place."""

    message: str


@dataclass(frozen=True)
class Uninstalled:
    message: str


@dataclass(frozen=True)
class UninstallFailed:
    error: str  # redacted


@dataclass(frozen=True)
class DriftChecked:
    """A drift check (and correction) ran; `drift` is status.drift as the check found it."""

    revision: int
    drifted: bool
    summary: str
    objects: list[dict[str, Any]]
    requested: str
    correction: dict[str, Any] | None = None


@dataclass(frozen=True)
class PromotionFacts:
    """What the promotion step decided, for status.promotion."""

    policy: PromotionPolicy
    hold: HoldDecision
    choice: Choice
    actions: Actions
    checked_at: str
    promote_request: str | None  # the `alecton promote` request handled so far


@dataclass(frozen=True)
class Promoted:
    """The promotion step's result (`step` None: nothing was decided, nothing to record)."""

    wrote_version: bool = False
    refused: str = ""
    waiting: str = ""
    step: PromotionFacts | None = None
    notes: tuple[Note, ...] = ()
    wait: float | None = None


@dataclass(frozen=True)
class Tracked:
    """Health tracking of the recorded revision started (or could not: `result`, `wait`)."""

    result: str = ""
    wait: float | None = None


Outcome = Done | Claimed | Released | ReleaseFailed | Conflict | Uninstalled | UninstallFailed
Outcome |= DriftChecked | Promoted | Tracked  # type: ignore[assignment]


@dataclass(frozen=True)
class Event:
    type: str  # Normal or Warning
    reason: str
    message: str


@dataclass(frozen=True)
class Summary:
    """What to write: a status merge patch (None: nothing), Events, when to look again."""

    status: dict[str, Any] | None = None
    events: list[Event] = field(default_factory=list)
    wait: float | None = None
    remove_finalizer: bool = False
    # reconcile.news.News: what people and systems are told (not compared: derived)
    news: list[Any] = field(default_factory=list, compare=False)
