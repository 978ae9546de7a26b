"""What an Image's status says about its signature: one entry per Application whose policy
(spec.verify) judged it, and a `Verified` condition over them. Pure: the operator records
a verdict here each time it checks the Image for a deploy or a promotion
(`handlers/images.ImageVerifications`) and writes the status only when this says it changed.

Applications of a namespace may share an Image with different keys, so a verdict belongs to
its Application: the entries are keyed by Application name, and the condition is False while
any policy refuses the Image, Unknown while one could not judge it (its Secret is missing),
and True when every policy that judged it accepted it. Entries say the Secret by name and
the key by its file name and fingerprint prefix (the verdict's words), never key material.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alecton.api.models import VerifyPolicy
from alecton.reconcile.conditions import Condition, merge_conditions
from alecton.reconcile.image_policy import IMAGE_VERIFICATION_FAILED, VERIFICATION_SECRET_NOT_FOUND
from alecton.reconcile.signatures import Verdict
from alecton.reconcile.status import truncate

VERIFIED = "Verified"  # the condition's type, and its reason when True
MAX_ENTRY_MESSAGE = 1024  # an entry is one of several in the Image's status
MAX_ENTRIES = 64  # Applications of one namespace judging one Image; more are left out


@dataclass(frozen=True)
class ImageJudgement:
    """One Application's verdict on one Image, as status.verifications lists it."""

    application: str
    secret: str
    verified: bool | None  # None: not judged (the policy's Secret is missing)
    reason: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"application": self.application, "secret": self.secret}
        if self.verified is not None:  # absent, not null: not judged
            entry["verified"] = self.verified
        return {**entry, "reason": self.reason, "message": self.message}

    @classmethod
    def parse(cls, raw: Any) -> ImageJudgement | None:
        if not isinstance(raw, dict) or not isinstance(raw.get("application"), str):
            return None
        verified = raw.get("verified")
        return cls(
            raw["application"],
            str(raw.get("secret") or ""),
            verified if isinstance(verified, bool) else None,
            str(raw.get("reason") or ""),
            str(raw.get("message") or ""),
        )

    @property
    def says(self) -> str:
        return f"Application {self.application} (Secret {self.secret!r}): {self.message}"


def judgement(application: str, policy: VerifyPolicy, verdict: Verdict) -> ImageJudgement | None:
    """The entry `verdict` makes for `application`; None when it says nothing about the
    Image (its registry could not be asked: the Image keeps its last verdict)."""
    if not verdict.judged:
        return None
    if verdict.verified:
        verified: bool | None = True
        reason = VERIFIED
    elif verdict.waiting:
        verified, reason = None, VERIFICATION_SECRET_NOT_FOUND
    else:
        verified, reason = False, IMAGE_VERIFICATION_FAILED
    message = verdict.message
    if len(message) > MAX_ENTRY_MESSAGE:
        message = message[: MAX_ENTRY_MESSAGE - 3] + "..."
    return ImageJudgement(application, policy.secret, verified, reason, message)


def judgements(status: dict[str, Any]) -> list[ImageJudgement]:
    """The entries an Image's status holds (malformed ones dropped)."""
    raw = status.get("verifications")
    parsed = (ImageJudgement.parse(entry) for entry in raw) if isinstance(raw, list) else ()
    return [entry for entry in parsed if entry is not None]


def verified_condition(entries: list[ImageJudgement]) -> Condition:
    """False while one policy refuses the Image, Unknown while one could not judge it, True
    when every one accepted it; the message names the Applications that decide it."""
    refused = [e for e in entries if e.verified is False]
    unjudged = [e for e in entries if e.verified is None]
    if refused:
        return Condition(VERIFIED, False, refused[0].reason, "; ".join(e.says for e in refused))
    if unjudged:
        return Condition(VERIFIED, None, unjudged[0].reason, "; ".join(e.says for e in unjudged))
    return Condition(VERIFIED, True, VERIFIED, "; ".join(e.says for e in entries))


def verification_status(
    status: dict[str, Any], judged: ImageJudgement, generation: int, now: str
) -> dict[str, Any] | None:
    """The status patch that records `judged` on an Image whose status is `status`, or
    None when the status already says it (nothing to write)."""
    entries = {e.application: e for e in judgements(status)}
    if entries.get(judged.application) == judged and _has_condition(status, entries, generation):
        return None
    entries[judged.application] = judged
    ordered = sorted(_bounded(entries, judged), key=lambda e: e.application)
    conditions = merge_conditions(status.get("conditions"), [verified_condition(ordered)], generation, now)
    return {"verifications": [e.as_dict() for e in ordered], "conditions": conditions}


# Which entries the bound keeps first: refusals, then the unjudged, then the accepted, so
# that entries anyone can add (an Application naming a missing Secret) never push a
# refusal out of the status and turn the condition from False to Unknown or True.
_KEEP_FIRST = {False: 0, None: 1, True: 2}


def _bounded(entries: dict[str, ImageJudgement], judged: ImageJudgement) -> list[ImageJudgement]:
    """At most MAX_ENTRIES of `entries`, refusals first; the new verdict stays unless every
    entry kept weighs more than it."""
    by_weight = sorted(entries.values(), key=lambda e: (_KEEP_FIRST[e.verified], e.application))
    kept = by_weight[:MAX_ENTRIES]
    if judged not in kept and _KEEP_FIRST[judged.verified] <= _KEEP_FIRST[kept[-1].verified]:
        kept[-1] = judged  # over the bound: ours still counts
    return kept


def recorded_verdict(obj: dict[str, Any]) -> dict[str, str] | None:
    """The Image's Verified condition as `alecton image list` and ListImages show it
    (status, reason, message), or None when no policy has judged the Image."""
    status = obj.get("status") if isinstance(obj.get("status"), dict) else {}
    for found in status.get("conditions") or []:
        if isinstance(found, dict) and found.get("type") == VERIFIED:
            return {key: str(found.get(key) or "") for key in ("status", "reason", "message")}
    return None


def _has_condition(status: dict[str, Any], entries: dict[str, ImageJudgement], generation: int) -> bool:
    """Does status carry the condition its entries make, for this generation?"""
    wanted = verified_condition([entries[name] for name in sorted(entries)])
    found = next(
        (c for c in status.get("conditions") or [] if isinstance(c, dict) and c.get("type") == VERIFIED), None
    )
    if found is None:
        return False
    state = "Unknown" if wanted.status is None else str(wanted.status)
    return (
        found.get("status") == state
        and found.get("reason") == wanted.reason
        and found.get("message") == truncate(wanted.message)
        and found.get("observedGeneration") == generation
    )
