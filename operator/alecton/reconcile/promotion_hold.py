"""Holds: automation stops when a person rolls back or sets a version by hand, until `alecton resume`.

Pure: `now_text` is RFC 3339, Kubernetes objects are plain dicts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from alecton.reconcile.promotion_records import as_mapping, as_text
from alecton.reconcile.times import epoch

# Why automation is held.
ROLLBACK_HOLD = "Rollback"
MANUAL_DEPLOY_HOLD = "ManualDeploy"

# The field manager the operator writes spec.version with. Any client can name itself so
# (`kubectl apply --field-manager=alecton-promotion`), so it only says who a hold names;
# whether the operator wrote a version is told by `PROMOTED_ANNOTATION`.
FIELD_MANAGER = "alecton-promotion"
# `alecton resume` sets this to a new request id to lift a hold.
RESUME_ANNOTATION = "alecton.dev/resume"

_HOLD_REASONS = frozenset({ROLLBACK_HOLD, MANUAL_DEPLOY_HOLD})


@dataclass(frozen=True)
class Hold:
    """Automation stopped because a person acted: a rollback, or a version set by hand."""

    reason: str  # ROLLBACK_HOLD or MANUAL_DEPLOY_HOLD
    by: str = ""  # the field manager who made the change ("" when unknown)
    since: str = ""  # RFC 3339
    version: str = ""  # spec.version when the hold began

    def as_status(self) -> dict[str, str]:
        return {"reason": self.reason, "by": self.by, "since": self.since, "version": self.version}

    @classmethod
    def parse(cls, raw: Any) -> Hold | None:
        """The hold recorded in status, or None (also for a record this version cannot read)."""
        if not isinstance(raw, Mapping) or raw.get("reason") not in _HOLD_REASONS:
            return None
        return cls(
            reason=str(raw["reason"]),
            by=as_text(raw.get("by")),
            since=as_text(raw.get("since")),
            version=as_text(raw.get("version")),
        )

    def describe(self) -> str:
        who = self.by or "someone"
        if self.reason == ROLLBACK_HOLD:
            return f"rollback requested by {who} since {self.since}"
        return f"version {self.version or '(none)'} set by {who} since {self.since}"


@dataclass(frozen=True)
class RecordedPromotion:
    """What the last step recorded in `status.promotion`."""

    written: str = ""  # the baseline: the version the operator last wrote, or resumed at
    hold: Hold | None = None
    resumed: str = ""  # the last resume request id handled
    promoted: str = ""  # the version the operator wrote itself, while spec.version still has it

    @classmethod
    def parse(cls, status: dict[str, Any] | None) -> RecordedPromotion:
        """Read `status.promotion` from a Deployment's status (absent: nothing recorded)."""
        recorded = as_mapping(as_mapping(status).get("promotion"))
        return cls(
            written=as_text(recorded.get("written")),
            hold=Hold.parse(recorded.get("hold")),
            resumed=as_text(recorded.get("resumed")),
            promoted=as_text(recorded.get("promoted")),
        )


@dataclass(frozen=True)
class HoldDecision:
    """The hold after this step, and what to record so the next step decides the same."""

    hold: Hold | None
    resumed: str  # the resume request id to record
    written: str  # the `written` baseline to record
    lifted: bool = False  # a new resume request was handled in this step
    promoted: str = ""  # spec.version, when the operator wrote it itself ("" otherwise)


def hold_of(
    spec_version: str,
    rollback_requested: bool,
    recorded: RecordedPromotion,
    resume_request: str,
    version_by: str,
    rollback_by: str,
    now_text: str,
    *,
    verified: str = "",
) -> HoldDecision:
    """Whether automation is held, because a person rolled back or deployed by hand.

    A person's action wins: the operator must not roll forward right after someone rolled
    back, nor overwrite a version someone chose. Only a new resume request (`alecton
    resume`) lifts a hold; then the version in the spec becomes the new baseline.

    A spec.version that differs from the one the operator recorded is a change by hand unless
    `verified` names a Promotion: `verify_promoted` found the operator's own keyed record of
    writing exactly this version at this generation of this Deployment (it wrote the spec and
    crashed before recording that in status). Who managedFields say set the field
    (`version_by`) never counts: any client may call itself `FIELD_MANAGER`.
    """
    # The version the operator wrote itself, as long as spec.version still holds it.
    promoted = spec_version if verified or recorded.promoted == spec_version else ""
    if resume_request and resume_request != recorded.resumed:
        return HoldDecision(None, resume_request, spec_version, lifted=True, promoted=promoted)
    if recorded.hold is not None:
        return HoldDecision(recorded.hold, recorded.resumed, recorded.written, promoted=promoted)
    if rollback_requested:
        hold = Hold(ROLLBACK_HOLD, by=rollback_by, since=now_text, version=spec_version)
        return HoldDecision(hold, recorded.resumed, recorded.written, promoted=promoted)
    if recorded.written and spec_version != recorded.written:
        if verified:
            return HoldDecision(None, recorded.resumed, spec_version, promoted=promoted)
        # The operator did not write it: whoever calls itself by its manager name is a person.
        by = f"{version_by} (unverified)" if version_by == FIELD_MANAGER else version_by
        hold = Hold(MANUAL_DEPLOY_HOLD, by=by, since=now_text, version=spec_version)
        return HoldDecision(hold, recorded.resumed, recorded.written)
    # A version given when the Deployment was created is the baseline, not a hold.
    return HoldDecision(None, recorded.resumed, recorded.written or spec_version, promoted=promoted)


def field_manager_of(managed_fields: list[dict[str, Any]] | None, path: tuple[str, ...]) -> str:
    """Who last set the field at `path` (e.g. ("spec", "version")), from metadata.managedFields.

    The manager of the newest entry (by `time`) whose fieldsV1 holds the field; "" when no
    entry does. Used to tell the operator's own writes from a person's.
    """
    best_manager, best_key = "", (-math.inf, -1)
    for index, entry in enumerate(managed_fields or []):
        if not isinstance(entry, Mapping):
            continue
        node: Any = entry.get("fieldsV1")
        for part in path:
            if not isinstance(node, Mapping) or f"f:{part}" not in node:
                break
            node = node[f"f:{part}"]
        else:
            key = (epoch(entry.get("time")), index)
            if key > best_key:
                best_manager, best_key = as_text(entry.get("manager")), key
    return best_manager
