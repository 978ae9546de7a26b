"""The promotion action: for a Deployment with spec.promotion, choose the version, propose
it as a Promotion, and (approved, inside its windows) write it into spec.version together
with the operator's keyed record of that write (`alecton.dev/promoted`). The decisions are
`reconcile/promotion.py`; this module gathers their inputs from the indexes and carries out
what they return. The ordinary reconcile then deploys spec.version like any other.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from kubernetes_asyncio.client.exceptions import ApiException

from alecton.api.models import Application, Deployment
from alecton.kube.client import api_error_message
from alecton.reconcile import status as st
from alecton.reconcile.plan import Action, owner_of
from alecton.reconcile.promotion import status_of
from alecton.reconcile.promotion_actions import Actions, act
from alecton.reconcile.promotion_choice import PROMOTE_ANNOTATION, Choice, Source, choose, source_of
from alecton.reconcile.promotion_hold import (
    FIELD_MANAGER,
    RESUME_ANNOTATION,
    RecordedPromotion,
    field_manager_of,
    hold_of,
)
from alecton.reconcile.promotion_policy import PromotionPolicy
from alecton.reconcile.promotion_records import (
    APPLIED,
    FAILED,
    MIN_KEY_BYTES,
    PENDING,
    PROMOTED_ANNOTATION,
    REJECTED,
    SUPERSEDED,
    DeploymentIdentity,
    PromotionRecord,
    promoted_record,
    promotion_name,
    verify_promoted,
)

if TYPE_CHECKING:
    from alecton.handlers.controller import Controller, DeploymentSnapshot

log = logging.getLogger("alecton.promotion")


@dataclass(frozen=True)
class PromotionStep:
    """What the step means for the rest of the reconcile."""

    wrote_version: bool = False  # spec.version changed: the update's own event deploys it
    refused: str = ""  # spec.promotion cannot be used: say so and do nothing else


class Promoter:
    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self._key: bytes | None = None
        self._key_lock = asyncio.Lock()

    async def key(self) -> bytes:
        """The secret that signs the operator's own spec.version writes: one key of the Secret
        `promotion_key_secret` in the operator's namespace, made (32 random bytes) when that
        does not exist yet, and kept for the life of the process. It lives in the cluster, not
        in memory, so a restarted operator (or another replica, or a shard) still recognises
        what it wrote; tenants have no right to read Secrets of the operator's namespace."""
        async with self._key_lock:
            if self._key is None:
                config = self.controller.config
                namespace, name = config.operator_namespace, config.promotion_key_secret
                try:
                    key = await self.controller.kube.read_or_create_secret_key(
                        namespace, name, "key", lambda: secrets.token_bytes(32)
                    )
                except (ApiException, LookupError) as error:
                    why = api_error_message(error) if isinstance(error, ApiException) else str(error)
                    raise RuntimeError(
                        f"cannot read or create the promotion key Secret {namespace}/{name}: {why}"
                    ) from None
                if len(key) < MIN_KEY_BYTES:
                    raise RuntimeError(
                        f"the promotion key in Secret {namespace}/{name} is shorter than "
                        f"{MIN_KEY_BYTES} bytes"
                    )
                self._key = key
            return self._key

    async def _verified(self, deployment: Deployment) -> str:
        """The Promotion for which the operator wrote the current spec.version, when the
        Deployment carries the operator's valid record of it ("" otherwise)."""
        record = deployment.annotations.get(PROMOTED_ANNOTATION, "")
        if not record or not deployment.version:
            return ""
        return verify_promoted(record, await self.key(), _identity(deployment), deployment.version)

    async def step(self, snap: DeploymentSnapshot, deployment: Deployment) -> PromotionStep:
        try:
            policy = PromotionPolicy.parse(deployment.promotion)
        except ValueError as error:
            return PromotionStep(refused=str(error))
        if policy.source == deployment.target:
            return PromotionStep(refused="spec.promotion.from: must be another target, not this one")
        indexes = self.controller.indexes
        ns = deployment.ref.namespace
        app = indexes.application(ns, deployment.application)
        if not isinstance(app, Application):
            return PromotionStep()  # the ordinary reconcile reports the missing Application
        if policy.source and app.target(policy.source) is None:
            return PromotionStep(
                refused=f"spec.promotion.from: Application {app.ref.name!r} has no target {policy.source!r}"
            )

        now, now_text = time.time(), st.now_rfc3339()
        status = snap.status
        recorded = RecordedPromotion.parse(status)
        managed = list(deployment.managed_fields)
        hold = hold_of(
            deployment.version,
            deployment.rollback is not None,
            recorded,
            deployment.annotations.get(RESUME_ANNOTATION, ""),
            field_manager_of(managed, ("spec", "version")),
            field_manager_of(managed, ("spec", "rollback")),
            now_text,
            # Only a version status does not know yet needs the record (and so the key).
            verified=await self._verified(deployment) if deployment.version != recorded.written else "",
        )
        siblings = [indexes.deployment(ref) for ref in indexes.of_application(ns, deployment.application)]
        failed = {
            str(entry.get("version"))
            for sibling in siblings
            if sibling is not None
            for entry in sibling.status.get("failedVersions") or []
            if isinstance(entry, dict) and entry.get("version")
        }
        own_failed = {
            str(entry.get("version"))
            for entry in status.get("failedVersions") or []
            if isinstance(entry, dict) and entry.get("version")
        }
        source = None
        if policy.source:
            owner = owner_of(indexes.deployments_for_pair(ns, deployment.application, policy.source))
            source_snap = indexes.deployment(owner.ref) if owner else None
            source = (
                source_of(
                    policy.source,
                    source_snap.status,
                    source_snap.status.get("observedGeneration")
                    == source_snap.body["metadata"].get("generation"),
                )
                if source_snap
                else Source(policy.source, why=f"no Deployment for target {policy.source!r}")
            )
        request = deployment.annotations.get(PROMOTE_ANNOTATION, "")
        handled = str((status.get("promotion") or {}).get("promoteRequest") or "")
        requested = request if request and request != handled else ""
        choice = choose(
            policy,
            deployment.version,
            indexes.image_versions(ns, app.image),
            failed,
            source,
            now,
            requested,
        )
        digest = ""
        if choice.version and hold.hold is None:  # held: nothing is proposed, no inputs to read
            digest = await self._digest(snap, deployment, choice.version, policy)
        if choice.version and hold.hold is None and not digest:
            return PromotionStep()  # the version's inputs are incomplete now: look again on the next change
        promotions = indexes.promotions_for(ns, deployment.ref.name)
        actions = act(
            policy,
            deployment.ref.name,
            deployment.version,
            choice,
            digest,
            promotions,
            own_failed,  # an Applied Promotion fails when its version fails *here*
            now,
            hold.hold,
            application=deployment.application,
            target=deployment.target,
        )
        changing = {name for name, _, _ in actions.states}
        for spec in actions.create:
            if await self._create(snap, deployment, spec) and spec["name"] not in changing:
                # A new Promotion shows its state at once (kubectl get aprom), not a blank.
                await self._set_state(ns, spec["name"], PENDING, choice.reason, now_text)
        if actions.write_version and actions.write_version != deployment.version:
            # The record of this write, in the same patch: bound to the generation the write
            # makes (this one changes spec.version, and the precondition below means nothing
            # else changed the spec in between), so it proves this write and no later spec.
            after = replace(_identity(deployment), generation=deployment.generation + 1)
            record = promoted_record(await self.key(), after, actions.write_version, actions.write_promotion)
            try:
                # The decision was made on this resourceVersion: if a person changed the
                # Deployment meanwhile, the patch fails (409) instead of overwriting them.
                # A merge patch, not a server-side apply: a client that applied under the
                # operator's manager name would own other fields (kubectl even moves a
                # client-side apply's fields to it), and our next apply would remove them.
                written = await self.controller.kube.patch(
                    "Deployment",
                    ns,
                    deployment.ref.name,
                    {
                        "metadata": {
                            "resourceVersion": str(snap.body["metadata"].get("resourceVersion") or ""),
                            "annotations": {PROMOTED_ANNOTATION: record},
                        },
                        "spec": {"version": actions.write_version},
                    },
                    field_manager=FIELD_MANAGER,
                )
            except ApiException as error:
                if error.status != 409:
                    raise
                self.controller.queue.add(deployment.ref)  # decide again on the new object
                return PromotionStep(wrote_version=True)
            generation = (written.get("metadata") or {}).get("generation")
            if generation != after.generation:
                # Status records the write below anyway; only a crash before that would now
                # read as a change by hand (a hold: the safe side).
                log.warning(
                    "%s/%s: writing version %s made generation %s, not %s; its record will not verify",
                    ns,
                    deployment.ref.name,
                    actions.write_version,
                    generation,
                    after.generation,
                )
            await self.controller._event(
                snap, "Normal", "Promoted", f"version {actions.write_version}: {choice.reason}"
            )
        for name, state, message in actions.states:
            await self._set_state(ns, name, state, message, now_text)
        patch = status_of(policy, hold, choice, actions, now_text)
        patch["promoteRequest"] = handled or None
        if requested and self._request_done(deployment, requested, choice, digest, promotions, actions):
            patch["promoteRequest"] = requested
        if hold.hold is not None and recorded.hold is None:
            await self.controller._event(snap, "Normal", "PromotionHeld", actions.message)
        if self._changed(status.get("promotion") or {}, patch):
            await self.controller._write_status(snap, {"promotion": patch})
        if actions.wait is not None:
            self.controller.queue.add_after(deployment.ref, actions.wait + 0.5)
        return PromotionStep(
            wrote_version=bool(actions.write_version and actions.write_version != deployment.version)
        )

    @staticmethod
    def _request_done(
        deployment: Deployment,
        requested: str,
        choice: Choice,
        digest: str,
        promotions: list[PromotionRecord],
        actions: Actions,
    ) -> bool:
        """A by-hand proposal is followed while its Promotion is open, and done once that
        is decided either way (or no Image has the version): then automation goes on."""
        if choice.version != requested:
            return True
        name = promotion_name(deployment.ref.name, requested, digest)
        state = {n: state for n, state, _ in actions.states}.get(name) or next(
            (p.effective_state for p in promotions if p.name == name), ""
        )
        return state in (APPLIED, REJECTED, SUPERSEDED, FAILED)

    @staticmethod
    def _changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
        """Skip writing status when only the time of the check would change."""
        keys = set(old) | set(new)
        return any(old.get(k) != new.get(k) for k in keys if k != "checkedAt")

    async def _digest(
        self, snap: DeploymentSnapshot, deployment: Deployment, version: str, policy: PromotionPolicy
    ) -> str:
        """The digest of the inputs `version` would deploy with: the fingerprint of the
        release the ordinary reconcile would make (chart, values with valuesFrom, image,
        cluster, target), and the approval mode, so that an approval the operator gave
        under `Automatic` is not taken for a person's after a switch to `Manual`."""
        plan = await self.controller._plan(replace(deployment, version=version, rollback=None), snap)
        if plan.desired is None or plan.action not in (Action.UPGRADE, Action.NOTHING, Action.HELD):
            return ""
        return hashlib.sha256(f"{plan.desired.fingerprint}\0{policy.approval}".encode()).hexdigest()[:32]

    async def _create(self, snap: DeploymentSnapshot, deployment: Deployment, spec: dict[str, Any]) -> bool:
        """Create the Promotion; False when it existed already."""
        name = spec["name"]
        body = {
            "apiVersion": snap.body.get("apiVersion"),
            "kind": "Promotion",
            "metadata": {
                "name": name,
                "labels": {"alecton.dev/deployment": deployment.ref.name[:63]},
                "ownerReferences": [
                    {
                        "apiVersion": snap.body.get("apiVersion"),
                        "kind": "Deployment",
                        "name": deployment.ref.name,
                        "uid": deployment.uid,
                    }
                ],
            },
            "spec": {
                **{k: v for k, v in spec.items() if k != "name"},
                "application": deployment.application,
                "target": deployment.target,
            },
        }
        try:
            await self.controller.kube.create("Promotion", deployment.ref.namespace, body)
        except ApiException as error:
            if error.status == 409:  # proposed before (a restart): nothing twice
                return False
            if error.status == 403 and "being terminated" in api_error_message(error):
                return False  # the namespace is going away with the Deployment
            raise
        await self.controller._event(
            snap,
            "Normal",
            "PromotionProposed",
            f"{spec.get('fromVersion') or '-'} -> {spec['toVersion']}: {spec.get('reason', '')}",
        )
        return True

    async def _set_state(self, namespace: str, name: str, state: str, message: str, now_text: str) -> None:
        try:
            await self.controller.kube.patch_status(
                "Promotion",
                namespace,
                name,
                {"state": state, "message": message[:1024], "changedAt": now_text},
            )
        except ApiException as error:
            if error.status != 404:
                raise


def _identity(deployment: Deployment) -> DeploymentIdentity:
    ref = deployment.ref
    return DeploymentIdentity(ref.namespace, ref.name, deployment.uid, deployment.generation)
