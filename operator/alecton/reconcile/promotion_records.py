"""Promotion objects as the decisions read them, their names, and the keyed record that
proves the operator wrote a version itself.

Pure: Kubernetes objects are plain dicts, keys are bytes the caller reads.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Promotion states (status.state of a Promotion; an unwritten state means Pending).
PENDING = "Pending"
APPROVED = "Approved"
APPLIED = "Applied"
SUPERSEDED = "Superseded"
REJECTED = "Rejected"
FAILED = "Failed"

# Decisions a person (or the operator, for Automatic approval) writes in spec.approval.
APPROVE = APPROVED
REJECT = REJECTED

# Written by the same patch as spec.version: "<version>@<promotion>@<mac>", an
# HMAC (keyed with a secret only the operator reads) over the Deployment's namespace, name,
# uid and the generation that write makes, the version and the Promotion. See `verify_promoted`.
PROMOTED_ANNOTATION = "alecton.dev/promoted"

_DECISIONS = frozenset({APPROVE, REJECT})

_MAX_NAME = 253  # a DNS subdomain, what Kubernetes allows for object names
_MAX_SLUG = 40
_HASH_CHARS = 10


@dataclass(frozen=True)
class PromotionRecord:
    """A Promotion object as the decisions need it; build it with `PromotionRecord.parse`.

    `state` "" means the operator has not written a state yet: Pending. `decision` is ""
    (none yet), Approved or Rejected; `decision_digest` the digest of the inputs that were
    approved, so an approval does not carry over to inputs nobody looked at.
    """

    name: str
    deployment: str
    to_version: str
    from_version: str = ""
    digest: str = ""
    state: str = ""
    decision: str = ""
    decision_digest: str = ""
    decided_by: str = ""
    created: str = ""
    reason: str = ""

    @classmethod
    def parse(cls, body: dict[str, Any]) -> PromotionRecord:
        """Read a Promotion object; missing fields are "" (the API server may omit them)."""
        metadata = as_mapping(body.get("metadata")) if isinstance(body, Mapping) else {}
        spec = as_mapping(body.get("spec")) if isinstance(body, Mapping) else {}
        status = as_mapping(body.get("status")) if isinstance(body, Mapping) else {}
        approval = as_mapping(spec.get("approval"))
        decision = as_text(approval.get("decision"))
        return cls(
            name=as_text(metadata.get("name")),
            deployment=as_text(spec.get("deployment")),
            to_version=as_text(spec.get("toVersion")),
            from_version=as_text(spec.get("fromVersion")),
            digest=as_text(spec.get("digest")),
            state=as_text(status.get("state")),
            decision=decision if decision in _DECISIONS else "",
            decision_digest=as_text(approval.get("digest")),
            decided_by=as_text(approval.get("by")),
            created=as_text(metadata.get("creationTimestamp")),
            reason=as_text(spec.get("reason")),
        )

    @property
    def effective_state(self) -> str:
        """The state, with the unwritten one read as Pending."""
        return self.state or PENDING

    @property
    def approved(self) -> bool:
        """Approved for exactly the inputs it proposes."""
        return self.decision == APPROVE and self.decision_digest == self.digest


def promotion_name(deployment: str, version: str, digest: str) -> str:
    """The name of the Promotion that proposes `version` with inputs `digest` for `deployment`.

    Deterministic, so a restarted operator recomputes it and creating it again is a no-op:
    that is how nothing is proposed twice. The version's slug keeps names readable; the
    hash (over all three, as versions with different slugs may collide and a long
    deployment name may be cut) keeps them unique. Always a valid DNS subdomain name.
    """
    material = "\0".join((deployment, version, digest)).encode("utf-8", "surrogatepass")
    tag = hashlib.sha256(material).hexdigest()[:_HASH_CHARS]
    slug = _slug(version)[:_MAX_SLUG].strip("-")
    tail = f"{slug}-{tag}" if slug else tag
    head = _subdomain(deployment)[: _MAX_NAME - len(tail) - 1].rstrip("-.")
    return f"{head}-{tail}" if head else tail


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _subdomain(text: str) -> str:
    """`text` as a DNS subdomain: dot-separated labels of [a-z0-9-] that start and end alphanumeric."""
    labels = (label.strip("-") for label in re.sub(r"[^a-z0-9.-]+", "-", text.lower()).split("."))
    return ".".join(label for label in labels if label)


# ---------------------------------------------------------------------------
# The keyed record of a version the operator wrote

_RECORD_PURPOSE = "alecton.dev/promoted/v1"  # so a MAC made for anything else never fits here
MIN_KEY_BYTES = 32


@dataclass(frozen=True)
class DeploymentIdentity:
    """One generation of one Deployment object: what a promoted record is bound to.

    The uid tells a Deployment from another one of the same name (deleted and created
    again); the generation tells this spec from every later one (the API server raises it
    on each spec change and never lowers it), so a record cannot be copied forward.
    """

    namespace: str
    name: str
    uid: str
    generation: int


def _record_mac(key: bytes, who: DeploymentIdentity, version: str, promotion: str) -> str:
    message = json.dumps(
        [_RECORD_PURPOSE, who.namespace, who.name, who.uid, who.generation, version, promotion],
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8", "surrogatepass")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def promoted_record(key: bytes, who: DeploymentIdentity, version: str, promotion: str) -> str:
    """The `PROMOTED_ANNOTATION` value the operator writes with spec.version = `version`.

    `who.generation` is the generation the write makes: one more than the generation the
    decision saw, since the write changes spec.version and carries that object's
    resourceVersion as a precondition (nothing else can change the spec in between).
    """
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the promotion key must have at least {MIN_KEY_BYTES} bytes")
    return f"{version}@{promotion}@{_record_mac(key, who, version, promotion)}"


def verify_promoted(value: str, key: bytes, who: DeploymentIdentity, version: str) -> str:
    """The Promotion the operator applied `version` for, if `value` proves it; else "".

    It proves it only when its MAC, keyed with the operator's secret, fits this Deployment
    (namespace, name, uid), its current generation and `version` (spec.version now). A
    record copied to another Deployment, kept across a later spec change (a person setting
    another version and then this one again), or edited to name another version or
    Promotion does not fit; nor does anything without the key.
    """
    if not value or len(key) < MIN_KEY_BYTES:
        return ""
    parts = value.rsplit("@", 2)  # a version may hold "@"; Promotion names and MACs do not
    if len(parts) != 3:
        return ""
    recorded_version, promotion, mac = parts
    if recorded_version != version or not promotion:
        return ""
    expected = _record_mac(key, who, version, promotion)
    return promotion if hmac.compare_digest(mac.encode(), expected.encode()) else ""


# ---------------------------------------------------------------------------
# Small helpers


def as_mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)
