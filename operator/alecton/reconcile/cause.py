"""What made a Helm revision: recorded in status.history[].cause for people and the dashboard.

Helm's own description says "Upgrade complete" or "Rollback to 2"; it cannot say whether a
person deployed, a promotion did, or a failed health check rolled back.
"""

from __future__ import annotations

from alecton.api.models import Deployment
from alecton.helm.release import AUTOMATIC_ROLLBACK, DEPLOY, PROMOTION, RETRY, ROLLBACK
from alecton.reconcile.plan import Action, Plan, RecordedStatus, retry_pending
from alecton.reconcile.promotion import FIELD_MANAGER, field_manager_of


def cause_of(plan: Plan, deployment: Deployment, recorded: RecordedStatus) -> str:
    """The cause of the revision `plan`'s helm action makes ("" for other actions)."""
    if plan.action is Action.ROLLBACK:
        return AUTOMATIC_ROLLBACK if plan.rollback_to is not None else ROLLBACK
    if plan.action is not Action.UPGRADE:
        return ""
    if retry_pending(deployment, recorded) and deployment.version == recorded.applied_version:
        return RETRY
    if field_manager_of(list(deployment.managed_fields), ("spec", "version")) == FIELD_MANAGER:
        return PROMOTION
    return DEPLOY
