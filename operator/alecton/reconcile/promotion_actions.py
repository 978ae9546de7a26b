"""What to do about a choice: the Promotion objects to create, the state changes of existing
ones and the version to write (`act`).

Pure: time comes in as epoch seconds, decisions go out as data.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from alecton.reconcile.freeze import ActiveFreeze
from alecton.reconcile.promotion_choice import Choice
from alecton.reconcile.promotion_hold import Hold
from alecton.reconcile.promotion_policy import AUTOMATIC, MANUAL, PromotionPolicy
from alecton.reconcile.promotion_records import (
    APPLIED,
    APPROVE,
    APPROVED,
    FAILED,
    PENDING,
    REJECT,
    REJECTED,
    SUPERSEDED,
    PromotionRecord,
    promotion_name,
)
from alecton.reconcile.window import Window, next_opening, windows_open

# States in which a promotion still waits for something; the others are final (Superseded
# only until its exact proposal qualifies again, see `act`).
_OPEN = frozenset({PENDING, APPROVED})
_DECIDED = frozenset({APPROVED, APPLIED, REJECTED})  # states a person's decision leads to


@dataclass(frozen=True)
class Actions:
    """What the controller does after `act`; applying them and calling `act` again does nothing.

    `create` holds Promotion objects to create, each `{name, deployment, fromVersion,
    toVersion, reason, digest}` plus `approval` when the operator approves them itself.
    `states` holds (Promotion name, new state, message) for real state changes only,
    including those of promotions in `create`. Write spec.version before the states, so a
    crash in between leaves a promotion that `act` recognises as applied.
    """

    create: list[dict[str, Any]] = field(default_factory=list)
    states: list[tuple[str, str, str]] = field(default_factory=list)
    write_version: str | None = None
    wait: float | None = None
    message: str = ""
    write_promotion: str = ""  # the Promotion `write_version` applies ("" when nothing is written)
    # (Promotion name, Approved or Rejected, who decided) for decisions acted on for the first time
    decided: list[tuple[str, str, str]] = field(default_factory=list)


def act(
    policy: PromotionPolicy,
    deployment: str,
    current: str,
    choice: Choice,
    digest: str,
    promotions: Sequence[PromotionRecord],
    failed: Collection[str],
    now: float,
    hold: Hold | None,
    *,
    application: str = "",
    target: str = "",
    freezes: Sequence[ActiveFreeze] = (),
) -> Actions:
    """Turn a choice into Promotion objects, state changes and the version to write.

    `digest` identifies the inputs the chosen version would deploy with; an approval holds
    for those inputs only, so a change after approval proposes the version again.
    `promotions` are the Promotion objects of the cluster (those of other Deployments are
    ignored). `application` and `target` only fill in the CLI commands in messages.

    With a hold nothing is proposed or written. Otherwise the promotion for exactly
    (choice.version, digest) is created or carried forward (approval, window, apply), and
    every other open promotion is superseded. Windows gate automatic approvals only: a
    person who approves has already decided when. Active `freezes` gate every write: an
    approved version waits until they end (a person who must deploy now deploys by hand,
    with an override reason).
    """
    cli = f"{application or 'APP'} {target or 'TARGET'}"
    failed_versions = frozenset(failed)
    ours = [p for p in promotions if p.deployment == deployment]
    changes: dict[str, tuple[str, str]] = {}
    decided: dict[str, tuple[str, str]] = {}

    def change(record: PromotionRecord, state: str, message: str) -> None:
        if record.effective_state != state:
            changes[record.name] = (state, message)
            if record.decision and state in _DECIDED and record.effective_state in _OPEN:
                decided[record.name] = (record.decision, record.decided_by)

    for record in ours:
        if record.effective_state == APPLIED and record.to_version in failed_versions:
            change(record, FAILED, f"version {record.to_version} failed its health check")
    if hold is not None:
        message = f"promotion held: {hold.describe()}; run `alecton resume {cli}` to resume it"
        return Actions(states=_listed(changes), message=message, decided=_listed(decided))

    create: list[dict[str, Any]] = []
    write: str | None = None
    write_promotion = ""
    window_wait: float | None = None
    message = choice.reason
    chosen: PromotionRecord | None = None
    if choice.version is not None:
        chosen, spec = _proposal(policy, deployment, current, choice.version, choice, digest, ours)
        if spec is not None:
            create.append(spec)
        write, window_wait, message = _carry_forward(
            policy, chosen, current, choice, now, cli, change, freezes
        )
        write_promotion = chosen.name if write else ""
    _close_others(ours, chosen, current, choice, change)

    waits = [w for w in (choice.wait, window_wait) if w is not None]
    return Actions(
        create=create,
        states=_listed(changes),
        write_version=write,
        wait=min(waits) if waits else None,
        message=message,
        write_promotion=write_promotion,
        decided=_listed(decided),
    )


def _proposal(
    policy: PromotionPolicy,
    deployment: str,
    current: str,
    version: str,
    choice: Choice,
    digest: str,
    ours: Sequence[PromotionRecord],
) -> tuple[PromotionRecord, dict[str, Any] | None]:
    """The promotion that proposes exactly (`version`, `digest`), and the spec to create it
    with when there is none yet (None when it exists)."""
    name = promotion_name(deployment, version, digest)
    same = [p for p in ours if p.to_version == version and p.digest == digest]
    chosen = next((p for p in same if p.name == name), same[0] if same else None)
    if chosen is not None:
        return chosen, None
    automatic = policy.approval == AUTOMATIC
    spec: dict[str, Any] = {
        "name": name,
        "deployment": deployment,
        "fromVersion": current,
        "toVersion": version,
        "reason": choice.reason,
        "digest": digest,
    }
    if automatic:
        spec["approval"] = {"decision": APPROVE, "digest": digest}
    chosen = PromotionRecord(
        name=name,
        deployment=deployment,
        to_version=version,
        from_version=current,
        digest=digest,
        decision=APPROVE if automatic else "",
        decision_digest=digest if automatic else "",
        reason=choice.reason,
    )
    return chosen, spec


def _close_others(
    ours: Sequence[PromotionRecord],
    chosen: PromotionRecord | None,
    current: str,
    choice: Choice,
    change: Callable[[PromotionRecord, str, str], None],
) -> None:
    """Every open promotion but the chosen one becomes Applied (spec.version already has its
    version) or Superseded."""
    for record in ours:
        if record.name == (chosen.name if chosen else None) or record.effective_state not in _OPEN:
            continue
        if current and record.to_version == current and record.to_version != choice.version:
            # spec.version already has it: the operator wrote it and then failed to record the
            # state (a crash), or someone deployed it by hand and resumed since.
            if record.approved:
                change(record, APPLIED, f"version {current} is in spec.version")
            else:
                change(record, SUPERSEDED, f"already at {current}")
            continue
        change(record, SUPERSEDED, _superseded_because(record, choice, chosen))


def _carry_forward(
    policy: PromotionPolicy,
    record: PromotionRecord,
    current: str,
    choice: Choice,
    now: float,
    cli: str,
    change: Callable[[PromotionRecord, str, str], None],
    freezes: Sequence[ActiveFreeze] = (),
) -> tuple[str | None, float | None, str]:
    """The next step for the promotion of the chosen version: (version to write, wait, message).

    A Superseded promotion whose exact proposal is chosen again (the inputs changed and
    changed back) comes back to life: its name is taken, and an approval it carries was
    given for exactly these inputs.
    """
    version = record.to_version
    state = record.effective_state
    if state == APPLIED:
        if current == version:
            return None, None, f"at {version}"
        return None, None, f"{version} was applied before ({record.name}); now at {current or 'no version'}"
    if state == REJECTED:
        return None, None, f"{version} was rejected by {record.decided_by or 'someone'} ({record.name})"
    if state == FAILED:
        return None, None, f"{version} failed its health check ({record.name}); not proposed again"
    if record.decision == REJECT:
        change(record, REJECTED, f"rejected by {record.decided_by or 'someone'}")
        return None, None, f"{version} was rejected by {record.decided_by or 'someone'} ({record.name})"
    if policy.approval == MANUAL and not record.approved:
        change(record, PENDING, f"waits for approval: alecton approve {cli}")
        if record.decision == APPROVE:
            return (
                None,
                None,
                f"the approval of {record.name} was for other inputs; "
                f"version {version} waits for approval again: alecton approve {cli}",
            )
        return None, None, f"version {version} waits for approval: alecton approve {cli}"
    if policy.approval == AUTOMATIC:
        opening = _window_wait(policy.windows, now)
        if opening is not None:
            wait, opens_at = opening
            text = f"version {version} is approved; waiting for the window; opens at {opens_at}"
            change(record, APPROVED, text)
            return None, wait, text
    if freezes and current != version:
        held_by = "; ".join(f.describe() for f in freezes)
        text = f"version {version} is approved; waiting for the end of {held_by}"
        change(record, APPROVED, text)
        ends = [f.until.timestamp() for f in freezes if f.until is not None]
        return None, max(0.0, min(ends) - now) if ends else None, text
    change(record, APPLIED, f"wrote version {version} into spec.version (was {current or 'none'})")
    if current == version:
        return None, None, f"at {version}"
    return version, None, f"promoting {current or 'nothing'} to {version}: {choice.reason}"


def _superseded_because(record: PromotionRecord, choice: Choice, chosen: PromotionRecord | None) -> str:
    if choice.version is None or chosen is None:
        return f"no longer qualifies: {choice.reason}"
    if record.to_version != choice.version:
        return f"superseded by {choice.version}"
    if record.digest == chosen.digest:
        return f"duplicate of {chosen.name}"
    if record.decision == APPROVE:
        return f"the inputs changed after approval; proposed again as {chosen.name}"
    return f"the inputs changed; proposed again as {chosen.name}"


def _window_wait(windows: Sequence[Window], now: float) -> tuple[float, str] | None:
    """None when a deploy may start now, else (seconds until a window opens, when as RFC 3339)."""
    moment = datetime.fromtimestamp(now, UTC)
    if windows_open(windows, moment):
        return None
    opening = next_opening(windows, moment)
    assert opening is not None  # windows_open was False, so there are windows
    return max(0.0, (opening - moment).total_seconds()), opening.strftime("%Y-%m-%dT%H:%M:%SZ")


def _listed(changes: Mapping[str, tuple[str, str]]) -> list[tuple[str, str, str]]:
    return [(name, state, message) for name, (state, message) in changes.items()]
