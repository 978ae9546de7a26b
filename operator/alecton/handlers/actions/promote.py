"""Promote: for a Deployment with spec.promotion, choose the version, propose it as a
Promotion, and (approved, inside its windows) write it into spec.version together with the
operator's keyed record of that write (`alecton.dev/promoted`). The choices are
`reconcile/promotion.py`'s; this module gathers their inputs from the indexes and carries
out what they return, and reports the status.promotion patch and its news as an outcome.
The ordinary reconcile then deploys spec.version like any other.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from alecton.api.models import Application, Deployment
from alecton.handlers.actions.context import Request
from alecton.handlers.config import OperatorConfig
from alecton.handlers.indexes import DeploymentSnapshot, Indexes
from alecton.kube.client import KubeClient, api_error_message
from alecton.reconcile import status as st
from alecton.reconcile.outcomes import Note, Promoted, PromotionFacts
from alecton.reconcile.plan import Action, Plan, owner_of
from alecton.reconcile.promotion_actions import Actions, act
from alecton.reconcile.promotion_choice import PROMOTE_ANNOTATION, Choice, Source, choose, source_of
from alecton.reconcile.promotion_hold import (
    FIELD_MANAGER,
    RESUME_ANNOTATION,
    HoldDecision,
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

log = logging.getLogger("alecton.promotion")

# The release plan of a Deployment as it would be (the observer's).
Planner = Callable[[Deployment, DeploymentSnapshot], Awaitable[Plan]]


class Promoter:
    """The promote action, with the promotion key it keeps for the life of the process."""

    def __init__(self, kube: KubeClient, config: OperatorConfig, indexes: Indexes, plan_for: Planner) -> None:
        self.kube = kube
        self.config = config
        self.indexes = indexes
        self.plan_for = plan_for
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
                config = self.config
                namespace, name = config.operator_namespace, config.promotion_key_secret
                try:
                    key = await self.kube.read_or_create_secret_key(
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

    async def run(self, request: Request) -> Promoted:
        snap, deployment = request.snap, request.deployment
        try:
            policy = PromotionPolicy.parse(deployment.promotion)
        except ValueError as error:
            return Promoted(refused=str(error))
        if policy.source == deployment.target:
            return Promoted(refused="spec.promotion.from: must be another target, not this one")
        app = self.indexes.application(deployment.ref.namespace, deployment.application)
        if not isinstance(app, Application):
            return self._seen(snap)  # the ordinary reconcile reports the missing Application
        if policy.source and app.target(policy.source) is None:
            return Promoted(
                refused=f"spec.promotion.from: Application {app.ref.name!r} has no target {policy.source!r}"
            )
        return await self._step(snap, deployment, policy, app)

    async def _step(
        self, snap: DeploymentSnapshot, deployment: Deployment, policy: PromotionPolicy, app: Application
    ) -> Promoted:
        ns, status = deployment.ref.namespace, snap.status
        now, now_text = time.time(), st.now_rfc3339()
        recorded = RecordedPromotion.parse(status)
        hold = await self._hold(deployment, recorded, now_text)
        request = deployment.annotations.get(PROMOTE_ANNOTATION, "")
        handled = str((status.get("promotion") or {}).get("promoteRequest") or "")
        requested = request if request and request != handled else ""
        choice = choose(
            policy,
            deployment.version,
            self.indexes.image_versions(ns, app.image),
            self._failed_versions(deployment),
            self._source(deployment, policy),
            now,
            requested,
        )
        digest = ""
        if choice.version and hold.hold is None:  # held: nothing is proposed, no inputs to read
            digest, why_not = await self._digest(snap, deployment, choice.version, policy)
            if not digest:  # incomplete or refused inputs (an unsigned image): look again on the next change
                why = f"version {choice.version} is not proposed: {why_not}"
                facts = PromotionFacts(policy, hold, choice, Actions(message=why), now_text, handled or None)
                return Promoted(waiting=why, step=facts)
        promotions = self.indexes.promotions_for(ns, deployment.ref.name)
        actions = act(
            policy,
            deployment.ref.name,
            deployment.version,
            choice,
            digest,
            promotions,
            _failed(status),  # an Applied Promotion fails when its version fails *here*
            now,
            hold.hold,
            application=deployment.application,
            target=deployment.target,
            freezes=self.indexes.active_freezes(deployment, now)[0],
        )
        notes = await self._propose(snap, deployment, actions, choice, now_text)
        wrote = await self._write_version(snap, deployment, actions, choice)
        if wrote is None:  # someone changed the Deployment meanwhile: decide again on the new object
            return Promoted(wrote_version=True, notes=tuple(notes), wait=0.0)
        notes.extend(wrote)
        for name, state, message in actions.states:
            await _set_state(self.kube, ns, name, state, message, now_text)
        promote_request = handled or None
        if requested and _request_done(deployment, requested, choice, digest, promotions, actions):
            promote_request = requested
        if hold.hold is not None and recorded.hold is None:
            notes.append(Note("PromotionHeld", actions.message))
        previous = status.get("promotion") or {}
        return Promoted(
            wrote_version=bool(actions.write_version and actions.write_version != deployment.version),
            waiting=str(actions.message or previous.get("message") or ""),
            step=PromotionFacts(policy, hold, choice, actions, now_text, promote_request),
            notes=tuple(notes),
            wait=actions.wait + 0.5 if actions.wait is not None else None,
        )

    @staticmethod
    def _seen(snap: DeploymentSnapshot) -> Promoted:
        """Nothing was written: status.promotion says why no version qualifies yet."""
        return Promoted(waiting=str((snap.status.get("promotion") or {}).get("message") or ""))

    async def _hold(self, deployment: Deployment, recorded: RecordedPromotion, now_text: str) -> HoldDecision:
        managed = list(deployment.managed_fields)
        return hold_of(
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

    def _failed_versions(self, deployment: Deployment) -> set[str]:
        """Versions that failed at any target of the Application."""
        ns = deployment.ref.namespace
        siblings = [
            self.indexes.deployment(ref) for ref in self.indexes.of_application(ns, deployment.application)
        ]
        return {version for sibling in siblings if sibling is not None for version in _failed(sibling.status)}

    def _source(self, deployment: Deployment, policy: PromotionPolicy) -> Source | None:
        if not policy.source:
            return None
        ns = deployment.ref.namespace
        owner = owner_of(self.indexes.deployments_for_pair(ns, deployment.application, policy.source))
        source_snap = self.indexes.deployment(owner.ref) if owner else None
        if source_snap is None:
            return Source(policy.source, why=f"no Deployment for target {policy.source!r}")
        settled = source_snap.status.get("observedGeneration") == source_snap.body["metadata"].get(
            "generation"
        )
        return source_of(policy.source, source_snap.status, settled)

    async def _propose(
        self,
        snap: DeploymentSnapshot,
        deployment: Deployment,
        actions: Actions,
        choice: Choice,
        now_text: str,
    ) -> list[Note]:
        notes = []
        changing = {name for name, _, _ in actions.states}
        for spec in actions.create:
            note = await _create(self.kube, snap, deployment, spec)
            if note is not None:
                notes.append(note)
                if spec["name"] not in changing:
                    # A new Promotion shows its state at once (kubectl get aprom), not a blank.
                    await _set_state(
                        self.kube, deployment.ref.namespace, spec["name"], PENDING, choice.reason, now_text
                    )
        return notes

    async def _write_version(
        self, snap: DeploymentSnapshot, deployment: Deployment, actions: Actions, choice: Choice
    ) -> list[Note] | None:
        """Write the approved version with its record; None when the Deployment changed
        meanwhile (409)."""
        if not actions.write_version or actions.write_version == deployment.version:
            return []
        ns = deployment.ref.namespace
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
            written = await self.kube.patch(
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
            return None
        generation = (written.get("metadata") or {}).get("generation")
        if generation != after.generation:
            # Status records the write anyway; only a crash before that would now read as a
            # change by hand (a hold: the safe side).
            log.warning(
                "%s/%s: writing version %s made generation %s, not %s; its record will not verify",
                ns,
                deployment.ref.name,
                actions.write_version,
                generation,
                after.generation,
            )
        return [Note("Promoted", f"version {actions.write_version}: {choice.reason}")]

    async def _digest(
        self, snap: DeploymentSnapshot, deployment: Deployment, version: str, policy: PromotionPolicy
    ) -> tuple[str, str]:
        """The digest of the inputs `version` would deploy with: the fingerprint of the
        release the ordinary reconcile would make (chart, values with valuesFrom, image,
        cluster, target), and the approval mode, so that an approval the operator gave
        under `Automatic` is not taken for a person's after a switch to `Manual`. ("", why)
        when those inputs are incomplete or refused (an image failing verification)."""
        plan = await self.plan_for(replace(deployment, version=version, rollback=None), snap)
        if plan.desired is None or plan.action not in (Action.UPGRADE, Action.NOTHING, Action.HELD):
            return "", plan.message or plan.reason or "its inputs are incomplete"
        digest = hashlib.sha256(f"{plan.desired.fingerprint}\0{policy.approval}".encode()).hexdigest()[:32]
        return digest, ""


def _failed(status: dict[str, Any]) -> set[str]:
    """The versions status.failedVersions lists."""
    return {
        str(entry.get("version"))
        for entry in status.get("failedVersions") or []
        if isinstance(entry, dict) and entry.get("version")
    }


def _identity(deployment: Deployment) -> DeploymentIdentity:
    ref = deployment.ref
    return DeploymentIdentity(ref.namespace, ref.name, deployment.uid, deployment.generation)


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


async def _create(
    kube: KubeClient, snap: DeploymentSnapshot, deployment: Deployment, spec: dict[str, Any]
) -> Note | None:
    """Create the Promotion; None when it existed already."""
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
        await kube.create("Promotion", deployment.ref.namespace, body)
    except ApiException as error:
        if error.status == 409:  # proposed before (a restart): nothing twice
            return None
        if error.status == 403 and "being terminated" in api_error_message(error):
            return None  # the namespace is going away with the Deployment
        raise
    return Note(
        "PromotionProposed",
        f"{spec.get('fromVersion') or '-'} -> {spec['toVersion']}: {spec.get('reason', '')}",
    )


async def _set_state(
    kube: KubeClient, namespace: str, name: str, state: str, message: str, now_text: str
) -> None:
    try:
        await kube.patch_status(
            "Promotion",
            namespace,
            name,
            {"state": state, "message": message[:1024], "changedAt": now_text},
        )
    except ApiException as error:
        if error.status != 404:
            raise
