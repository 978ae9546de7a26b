"""Promotion: which version a Deployment with `spec.promotion` runs next, and what to do about it.

A Deployment may carry a promotion policy instead of a fixed `spec.version`. The operator
then picks the version itself and records every change it proposes as a `Promotion`
resource, so a person can see, approve or reject it, and so the history of who moved which
target to which version survives restarts. Once a promotion is applied, the chosen version
is written into `spec.version` and the ordinary deploy path (helm, health checks, automatic
rollback) takes over.

The steps, each a pure function the controller calls in this order:

1. `hold_of`: a rollback someone asked for, or a version someone set by hand, holds the
   automation until `alecton resume` (the `RESUME_ANNOTATION`); people win over robots.
   Which versions the operator wrote itself is proven by a keyed record it writes with the
   version (`promoted_record`, `verify_promoted`), never by a name a client chooses.
2. `choose`: the version that qualifies now (newest Image, or what is healthy on the
   `from` target after the soak), or why none does and when to look again.
3. `act`: the Promotion objects to create, the state changes of existing ones and the
   version to write, so that calling it again after its actions were applied does nothing.
4. `status_of`: the `status.promotion` patch that records the step.

The policy is read in `promotion_policy.py`, Promotion objects and the keyed record in
`promotion_records.py`; the steps live in `promotion_hold.py`, `promotion_choice.py` and
`promotion_actions.py`, and `status_of` here.

Everything here is pure: time comes in as epoch seconds (`now`) or RFC 3339 (`now_text`),
Kubernetes objects as plain dicts, and decisions go out as data. Nothing is proposed twice
because Promotion names are derived from what they propose (`promotion_name`): a restarted
operator computes the same name, and creating an object that exists is a no-op.
"""

from __future__ import annotations

from typing import Any

from alecton.reconcile.promotion_actions import Actions
from alecton.reconcile.promotion_choice import Choice
from alecton.reconcile.promotion_hold import HoldDecision
from alecton.reconcile.promotion_policy import PromotionPolicy

# ---------------------------------------------------------------------------
# Status


def status_of(
    policy: PromotionPolicy,
    hold_decision: HoldDecision,
    choice: Choice,
    actions: Actions,
    now_text: str,
) -> dict[str, Any]:
    """The `status.promotion` patch of this step (a JSON merge patch: None clears a hold)."""
    hold = hold_decision.hold
    return {
        "policy": policy.describe(),
        "written": actions.write_version or hold_decision.written,
        "promoted": actions.write_version or hold_decision.promoted or None,
        "resumed": hold_decision.resumed,
        "hold": hold.as_status() if hold is not None else None,
        "candidate": choice.version or None,
        "message": actions.message,
        "checkedAt": now_text,
    }
