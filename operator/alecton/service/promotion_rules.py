"""Which Promotion a person approves or rejects, and the patches that say so: pure
decisions over the custom resources' JSON, so they are unit-tested without a cluster.

A Deployment with `spec.promotion` lets the operator choose its version; every change it
proposes is a `Promotion` object (reconcile/promotion.py). People approve or reject one
(a merge patch of `spec.approval`, for the Promotion's own digest; the API server stamps
`spec.approval.by`), propose a version by hand (the `alecton.dev/promote` annotation), and
lift a hold (the `alecton.dev/resume` annotation).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from alecton.reconcile.promotion_choice import PROMOTE_ANNOTATION
from alecton.reconcile.promotion_hold import RESUME_ANNOTATION, Hold
from alecton.reconcile.promotion_records import (
    APPLIED,
    APPROVED,
    FAILED,
    PENDING,
    REJECTED,
    SUPERSEDED,
    PromotionRecord,
)
from alecton.service.outcomes import WaitOutcome
from alecton.service.resources import name_of, spec_of, status_of
from alecton.service.status import running_version

_OPEN_STATES = frozenset({PENDING, APPROVED})
_FINAL_FAILED = frozenset({SUPERSEDED, REJECTED, FAILED})


def is_open(promotion: dict[str, Any]) -> bool:
    """Still waiting for something (Pending or Approved); the other states are final."""
    return PromotionRecord.parse(promotion).effective_state in _OPEN_STATES


def has_decision(promotion: dict[str, Any]) -> bool:
    """spec.approval is set: decided, and immutable from then on."""
    return spec_of(promotion).get("approval") is not None


def awaiting_decision(promotion: dict[str, Any]) -> bool:
    """Open and nobody decided yet: what `alecton approve` and `reject` act on."""
    return is_open(promotion) and not has_decision(promotion)


def _newest_first(promotions: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    # RFC 3339 times in UTC sort as text; the name breaks ties of the same second.
    return sorted(
        promotions,
        key=lambda p: (str((p.get("metadata") or {}).get("creationTimestamp") or ""), name_of(p)),
        reverse=True,
    )


def pick_open(
    promotions: Iterable[dict[str, Any]], deployment: str, version: str | None = None
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The Promotion of `deployment` to decide on, and the other ones awaiting a decision.

    The newest one awaiting a decision, or with `version` the newest one proposing that
    version. The others are returned so the caller can say they exist.
    """
    waiting = _newest_first(
        p for p in promotions if spec_of(p).get("deployment") == deployment and awaiting_decision(p)
    )
    matching = [p for p in waiting if not version or spec_of(p).get("toVersion") == version]
    if not matching:
        return None, waiting
    chosen = matching[0]
    return chosen, [p for p in waiting if p is not chosen]


def awaiting_operator(
    promotions: Iterable[dict[str, Any]], deployment: str, version: str | None = None
) -> dict[str, Any] | None:
    """The newest Promotion of `deployment` that is decided but still open: the operator has
    not acted on the decision yet (or, approved automatically, it waits for a window)."""
    decided = _newest_first(
        p
        for p in promotions
        if spec_of(p).get("deployment") == deployment
        and is_open(p)
        and has_decision(p)
        and (not version or spec_of(p).get("toVersion") == version)
    )
    return decided[0] if decided else None


def decision_patch(promotion: dict[str, Any], decision: str, comment: str = "") -> dict[str, Any]:
    """The JSON merge patch that decides `promotion`: spec.approval for its own digest.

    `by` is never sent: the API server stamps it (deploy/promotion-approvals.yaml). The
    resourceVersion makes the patch fail (409) when the Promotion changed since it was read,
    so a decision is only ever taken on the state that was shown.
    """
    approval: dict[str, Any] = {"decision": decision, "digest": str(spec_of(promotion).get("digest") or "")}
    if comment:
        approval["comment"] = comment
    patch: dict[str, Any] = {"spec": {"approval": approval}}
    resource_version = (promotion.get("metadata") or {}).get("resourceVersion")
    if resource_version:
        patch["metadata"] = {"resourceVersion": resource_version}
    return patch


def promote_patch(version: str) -> dict[str, Any]:
    """Propose `version` by hand: the operator picks it up from the annotation."""
    return {"metadata": {"annotations": {PROMOTE_ANNOTATION: version}}}


def resume_patch(request_id: str, deployment: dict[str, Any] | None = None) -> dict[str, Any]:
    """Lift a hold: end a held rollback and ask the operator to resume, in one patch.

    Ending a rollback keeps what runs: spec.version becomes the running (rolled-back-to)
    version, so automation goes forward from there and never re-deploys the version a
    person rolled back from."""
    spec: dict[str, Any] = {"rollback": None}
    if deployment is not None and spec_of(deployment).get("rollback"):
        running = running_version(status_of(deployment))
        if running:
            spec["version"] = running
    return {"metadata": {"annotations": {RESUME_ANNOTATION: request_id}}, "spec": spec}


def change_text(promotion: dict[str, Any]) -> str:
    """`web prod 1.4.0 -> 1.5.0`."""
    spec = spec_of(promotion)
    where = " ".join(str(spec.get(k)) for k in ("application", "target") if spec.get(k))
    change = f"{spec.get('fromVersion') or '(none)'} -> {spec.get('toVersion') or '?'}"
    return f"{where} {change}" if where else f"{spec.get('deployment') or '?'} {change}"


def decision_text(promotion: dict[str, Any]) -> str:
    """`Approved by alice` (`by` is missing only where the admission policy is not installed)."""
    approval = spec_of(promotion).get("approval") or {}
    return f"{approval.get('decision') or 'decided'} by {approval.get('by') or 'someone'}"


def nothing_to_decide(
    application: str,
    target: str,
    deployment: dict[str, Any] | None,
    name: str,
    waiting: Sequence[dict[str, Any]],
    version: str | None,
    verb: str,
) -> str:
    """Why there is no Promotion to approve or reject, in the words of the operator if it has them."""
    head = f"nothing to {verb} for {application} {target}"
    if deployment is None:
        return f"{head}: no Deployment {name}"
    if version and waiting:
        others = ", ".join(sorted({str(spec_of(p).get("toVersion")) for p in waiting}))
        return f"{head}: no open Promotion to version {version} (open: {others})"
    if not isinstance(spec_of(deployment).get("promotion"), dict):
        return f"{head}: {name} has no promotion policy (spec.promotion)"
    message = str((status_of(deployment).get("promotion") or {}).get("message") or "")
    if version:
        return f"{head}: no open Promotion to version {version}" + (f"; {message}" if message else "")
    return f"{head}: {message or 'no Promotion waits for a decision'}"


def promotion_rows(
    promotions: Iterable[dict[str, Any]], application: str | None = None, include_final: bool = False
) -> list[dict[str, Any]]:
    """The rows of `alecton promotions`: open ones (all with `include_final`), by application
    and target, newest first within each."""
    rows = []
    for promotion in _newest_first(promotions):
        spec = spec_of(promotion)
        if application and spec.get("application") != application:
            continue
        if not include_final and not is_open(promotion):
            continue
        record = PromotionRecord.parse(promotion)
        rows.append(
            {
                "name": record.name,
                "application": str(spec.get("application") or ""),
                "target": str(spec.get("target") or ""),
                "from": record.from_version,
                "to": record.to_version,
                "state": record.effective_state,
                "approvedBy": record.decided_by,
                "created": record.created,
            }
        )
    return sorted(rows, key=lambda r: (r["application"], r["target"]))  # stable: newest first stays


def promotion_outcome(promotion: dict[str, Any]) -> WaitOutcome:
    """Has the operator finished with an approved Promotion? ok: it was applied."""
    state = PromotionRecord.parse(promotion).effective_state
    message = str(status_of(promotion).get("message") or "")
    text = f"{name_of(promotion)}: {state}" + (f": {message}" if message else "")
    if state == APPLIED:
        return WaitOutcome(True, True, text)
    if state in _FINAL_FAILED:
        return WaitOutcome(True, False, text)
    return WaitOutcome(False, message=f"{state}: {message or 'waiting for the operator'}")


def already_proposed(deployment: dict[str, Any], version: str) -> bool:
    """The operator already handled a by-hand proposal of `version` (status.promotion.promoteRequest):
    proposing it again changes nothing, as the operator never acts twice on one request."""
    handled = (status_of(deployment).get("promotion") or {}).get("promoteRequest")
    return bool(version) and handled == version


def hold_of(deployment: dict[str, Any]) -> Hold | None:
    """The hold recorded in the Deployment's status.promotion, if any."""
    return Hold.parse((status_of(deployment).get("promotion") or {}).get("hold"))


def resume_notes(deployment: dict[str, Any]) -> list[str]:
    """What else ending a held rollback does to spec.version."""
    spec = spec_of(deployment)
    if not spec.get("rollback"):
        return []
    version = str(spec.get("version") or "")
    running = running_version(status_of(deployment))
    if running and running != version:
        return [f"spec.rollback removed: spec.version is now {running} (what runs), not {version}"]
    return [f"spec.rollback removed: version {version or '(none)'} from spec.version is deployed again"]
