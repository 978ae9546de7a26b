"""The failures of an action that are about the target or its inputs: reported in status
(with backoff), never raised out of the controller."""

from __future__ import annotations

from alecton.handlers.access import ClusterAccessError
from alecton.handlers.actions.unlock import ReleaseLockedError
from alecton.helm.actions import HelmActionError
from alecton.helm.runner import HelmTimeoutError
from alecton.kube.releases import ReleaseLookupError

ACTION_ERRORS = (
    HelmActionError,
    HelmTimeoutError,
    ClusterAccessError,
    ReleaseLookupError,
    ReleaseLockedError,
)
