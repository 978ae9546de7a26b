"""Unlock: repair a release a killed helm left in pending-*, but never a live one."""

from __future__ import annotations

import logging
import time

from alecton.helm.actions import HelmActions
from alecton.kube.access import KubeAccess
from alecton.reconcile.retry import LiveLock, plan_repair


class ReleaseLockedError(Exception):
    """The release is locked by an operation that may still be running."""


async def unlock(
    helm: HelmActions,
    release: str,
    namespace: str,
    access: KubeAccess,
    stale_after: float,
    logger: logging.LoggerAdapter,
) -> str | None:
    """What was done to unlock the release; None when it was not locked after all.
    Raises ReleaseLockedError when the pending revision is too young to be abandoned."""
    repair = plan_repair(await helm.history(release, namespace, access), time.time(), stale_after)
    if repair is None:
        return None
    if isinstance(repair, LiveLock):
        raise ReleaseLockedError(repair.description)
    if repair.rollback_to is None:
        await helm.uninstall(release, namespace, access)
    else:
        await helm.rollback(release, namespace, repair.rollback_to, access)
    logger.warning("%s", repair.description)
    return repair.description
