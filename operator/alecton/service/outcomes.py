"""Has the operator finished with a request? Pure decisions over a Deployment's status,
so every face waits the same way and they are unit-tested without a cluster."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alecton.reconcile.freeze import FROZEN_REASON
from alecton.reconcile.rollback_policy import ROLLBACK_REFUSED


@dataclass(frozen=True)
class WaitOutcome:
    done: bool
    ok: bool = False
    message: str = ""


def deploy_outcome(obj: dict[str, Any], generation: int) -> WaitOutcome:
    """Has the operator finished with generation `generation` of this Deployment? Done
    means healthy (or health checks off); an automatic rollback is a failed deploy."""
    status = obj.get("status") or {}
    phase = status.get("phase", "")
    message = status.get("message", "")
    if int(status.get("observedGeneration") or 0) < generation:
        return WaitOutcome(False, message="waiting for the operator to pick up the change")
    if phase == "Deployed":
        return WaitOutcome(True, True, message)
    if phase == "RolledBack":
        if (obj.get("spec") or {}).get("rollback"):
            return WaitOutcome(True, True, message)  # a rollback someone asked for, holding
        return WaitOutcome(True, False, f"RolledBack: {message}")
    if phase in ("Failed", "Conflict"):
        return WaitOutcome(True, False, f"{phase}: {message}")
    if any(
        c.get("type") == "Ready" and c.get("reason") == FROZEN_REASON for c in status.get("conditions") or []
    ):
        # Held by a freeze: released by itself when it ends, which may be days away.
        return WaitOutcome(True, False, f"{FROZEN_REASON}: {message}")
    stalled = any(
        c.get("type") == "Stalled" and c.get("status") == "True" for c in status.get("conditions") or []
    )
    if stalled:
        return WaitOutcome(True, False, f"Stalled: {message}")
    if phase == "Verifying":
        waiting = (status.get("health") or {}).get("progressing") or []
        shown = "; ".join(waiting[:3]) + (f" (and {len(waiting) - 3} more)" if len(waiting) > 3 else "")
        return WaitOutcome(False, message=f"Verifying: waiting for {shown or 'the first assessment'}")
    return WaitOutcome(False, message=f"{phase or 'Pending'}: {message}")


def rollback_outcome(obj: dict[str, Any], revision: int, request_id: str) -> WaitOutcome:
    status = obj.get("status") or {}
    last = status.get("lastRollback") or {}
    if last.get("requestId") != request_id or last.get("revision") != revision:
        phase = status.get("phase") or "Pending"
        generation = int((obj.get("metadata") or {}).get("generation") or 0)
        refused = any(
            c.get("type") == "Ready" and c.get("reason") == ROLLBACK_REFUSED
            for c in status.get("conditions") or []
        )
        if refused and int(status.get("observedGeneration") or 0) >= generation:
            # spec.verify refused the revision this generation asks for: helm did not run.
            return WaitOutcome(True, False, f"{ROLLBACK_REFUSED}: {status.get('message', '')}")
        return WaitOutcome(False, message=f"{phase}: {status.get('message', '')}")
    if last.get("result") == "Succeeded":
        phase = status.get("phase")
        if phase == "Verifying":  # helm rolled back; done once the old revision is healthy again
            return deploy_outcome(obj, 0)
        if phase == "Failed":
            return WaitOutcome(True, False, f"Failed: {status.get('message', '')}")
        return WaitOutcome(True, True, status.get("message", ""))
    return WaitOutcome(True, False, f"rollback failed: {status.get('message', '')}")


def drift_outcome(obj: dict[str, Any], request_id: str) -> WaitOutcome:
    """Has the operator answered drift check `request_id`? ok: in sync."""
    drift = (obj.get("status") or {}).get("drift") or {}
    if drift.get("requestId") != request_id:
        phase = (obj.get("status") or {}).get("phase") or "Pending"
        return WaitOutcome(False, message=f"waiting for the operator to compare ({phase})")
    lines = [f"revision {drift.get('revision')}: {drift.get('summary', '')}"]
    for item in drift.get("objects") or []:
        fields = ", ".join(item.get("fields") or [])
        lines.append(f"  {item.get('kind')} {item.get('name')} ({item.get('change')}): {fields}")
    correction = drift.get("lastCorrection") or {}
    if correction.get("at") and correction.get("revision") == drift.get("revision"):
        outcome, detail = correction.get("result"), correction.get("detail", "")
        lines.append(f"last correction {correction.get('at')}: {outcome}, {detail}")
    return WaitOutcome(True, not drift.get("drifted"), "\n".join(lines))
