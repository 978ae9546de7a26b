"""Claim: may this Deployment act on the release at this place?

Ownership is the whole place (cluster identity, namespace, release name) and is read
from helm's storage (the owner labels alecton gives every revision), never from a
name recorded once in status.
"""

from __future__ import annotations

from typing import Any

from alecton.api.models import ObjectRef
from alecton.kube.access import KubeAccess
from alecton.kube.releases import ReleaseStorage, StoredRelease
from alecton.reconcile.plan import ReleaseLocation

ADOPT_ANNOTATION = "alecton.dev/adopt"


def ownership_conflict(
    stored: StoredRelease,
    deployment: ObjectRef,
    location: ReleaseLocation,
    annotations: dict[str, Any],
    allow_adopt: bool,
) -> str | None:
    """Why this Deployment may not act on the stored release; None when it may. Pure."""
    if not stored.exists or stored.owner == str(deployment):
        return None
    where = location.describe()
    if stored.owner is not None:
        return f"{where} belongs to alecton Deployment {stored.owner}; it is not taken over"
    wants_adoption = annotations.get(ADOPT_ANNOTATION) == "true"
    if wants_adoption and allow_adopt:
        return None
    if wants_adoption:
        return (
            f"{where} was not made by alecton, and taking it over needs the operator's "
            "permission: an administrator must run the operator with --allow-adopt"
        )
    return (
        f"{where} already exists and was not made by alecton; it is not taken over "
        f"(with an operator run with --allow-adopt, annotate this Deployment "
        f"{ADOPT_ANNOTATION}=true to take it over: kubectl annotate deployments.alecton.dev "
        f"{deployment.name} -n {deployment.namespace} {ADOPT_ANNOTATION}=true)"
    )


async def check_ownership(
    storage: ReleaseStorage,
    access: KubeAccess,
    location: ReleaseLocation,
    deployment: ObjectRef,
    annotations: dict[str, Any],
    allow_adopt: bool,
) -> str | None:
    """Read the owner at `location` (ReleaseLookupError when it cannot be read)."""
    stored = await storage.lookup(access, location.name, location.namespace)
    return ownership_conflict(stored, deployment, location, annotations, allow_adopt)
