"""What made a Helm revision: recorded in status.history[].cause for people and the dashboard.

Helm's own description says "Upgrade complete" or "Rollback to 2"; it cannot say whether a
person deployed, a promotion did, or a failed health check rolled back.
"""

from __future__ import annotations

from alecton.api.models import Deployment
from alecton.reconcile.plan import Action, Plan, RecordedStatus, retry_pending
from alecton.reconcile.release import AUTOMATIC_ROLLBACK, DEPLOY, PROMOTION, RETRY, ROLLBACK


def cause_of(plan: Plan, deployment: Deployment, recorded: RecordedStatus) -> str:
    """The cause of the revision `plan`'s helm action makes ("" for other actions).

    A version is a promotion's only when the promotion step recorded that the operator wrote
    it itself (`status.promotion.promoted`, set when it writes spec.version or verifies its
    keyed `alecton.dev/promoted` record, cleared once spec.version holds anything else).
    Which field manager managedFields name for spec.version does not count: a client may
    choose any name, including the operator's.
    """
    if plan.action is Action.ROLLBACK:
        return AUTOMATIC_ROLLBACK if plan.rollback_to is not None else ROLLBACK
    if plan.action is not Action.UPGRADE:
        return ""
    if retry_pending(deployment, recorded) and deployment.version == recorded.applied_version:
        return RETRY
    promoted = recorded.promoted_version
    # Only the upgrade that brings the promoted version in is the promotion's: a later change
    # of the other inputs (values, chart, cluster) at the same version is someone's deploy,
    # never an approved promotion.
    brings_it_in = deployment.version != recorded.applied_version
    if deployment.promotion is not None and promoted and promoted == deployment.version and brings_it_in:
        return PROMOTION
    return DEPLOY
