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

Everything here is pure: time comes in as epoch seconds (`now`) or RFC 3339 (`now_text`),
Kubernetes objects as plain dicts, and decisions go out as data. Nothing is proposed twice
because Promotion names are derived from what they propose (`promotion_name`): a restarted
operator computes the same name, and creating an object that exists is a no-op.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from alecton.api.durations import parse_duration
from alecton.reconcile.status import DEPLOYED, READY
from alecton.reconcile.times import epoch
from alecton.reconcile.versions import VersionPolicy
from alecton.reconcile.window import Window, next_opening, windows_open

# Who approves a promotion: the operator itself, or a person (`alecton approve`).
AUTOMATIC = "Automatic"
MANUAL = "Manual"

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

# Why automation is held.
ROLLBACK_HOLD = "Rollback"
MANUAL_DEPLOY_HOLD = "ManualDeploy"

# The field manager the operator writes spec.version with. Any client can name itself so
# (`kubectl apply --field-manager=alecton-promotion`), so it only says who a hold names;
# whether the operator wrote a version is told by `PROMOTED_ANNOTATION`.
FIELD_MANAGER = "alecton-promotion"
# Written by the same patch as spec.version: "<version>@<promotion>@<mac>", an
# HMAC (keyed with a secret only the operator reads) over the Deployment's namespace, name,
# uid and the generation that write makes, the version and the Promotion. See `verify_promoted`.
PROMOTED_ANNOTATION = "alecton.dev/promoted"
# `alecton resume` sets this to a new request id to lift a hold.
RESUME_ANNOTATION = "alecton.dev/resume"
# `alecton promote` sets this to a version to propose it by hand.
PROMOTE_ANNOTATION = "alecton.dev/promote"

# States in which a promotion still waits for something; the others are final (Superseded
# only until its exact proposal qualifies again, see `act`).
_OPEN = frozenset({PENDING, APPROVED})

_POLICY_FIELDS = ("versions", "from", "soak", "approval", "windows")
_APPROVALS = (AUTOMATIC, MANUAL)
_DECISIONS = frozenset({APPROVE, REJECT})
_HOLD_REASONS = frozenset({ROLLBACK_HOLD, MANUAL_DEPLOY_HOLD})

_MAX_NAME = 253  # a DNS subdomain, what Kubernetes allows for object names
_MAX_SLUG = 40
_HASH_CHARS = 10
_ASCII_DIGITS = frozenset("0123456789")


# ---------------------------------------------------------------------------
# The policy


@dataclass(frozen=True)
class PromotionPolicy:
    """What `spec.promotion` asks for; build it with `PromotionPolicy.parse`.

    `source` is the target whose healthy version is promoted ("" to take the newest Image),
    `soak` how long (seconds) it must have been healthy there first, `approval` whether the
    operator approves its own proposals, and `windows` when automatic deploys may start.
    """

    versions: VersionPolicy
    source: str = ""
    soak: float = 0.0
    approval: str = AUTOMATIC
    windows: tuple[Window, ...] = ()

    @classmethod
    def parse(cls, raw: Any, where: str = "spec.promotion") -> PromotionPolicy:
        """The policy a `spec.promotion` object describes.

        Raises ValueError whose message starts with the offending field, so the person who
        wrote the Deployment can fix it. Fields whose value is null count as absent, as the
        API server treats them; unknown fields are errors, because a typo ("approvals")
        would otherwise silently deploy without the approval its author asked for.
        """
        if not isinstance(raw, Mapping):
            raise ValueError(
                f"{where}: must be an object with versions (and optionally from, soak, approval, "
                f"windows), not {raw!r}"
            )
        given = {key: value for key, value in raw.items() if value is not None}
        for key in given:
            if key not in _POLICY_FIELDS:
                raise ValueError(
                    f"{where}.{key}: not a field of a promotion (it takes {', '.join(_POLICY_FIELDS)})"
                )
        if "versions" not in given:
            raise ValueError(f"{where}.versions: required (e.g. {{semver: '>=1.4.0 <2'}})")
        versions = VersionPolicy.parse(given["versions"], field=f"{where}.versions")
        source = given.get("from", "")
        if "from" in given and (not isinstance(source, str) or not source or source != source.strip()):
            raise ValueError(f"{where}.from: must be the name of a target of the application, not {source!r}")
        soak = 0.0
        if "soak" in given:
            if not source:
                raise ValueError(f"{where}.soak: needs from (a soak is time spent healthy on that target)")
            soak = _parse_soak(given["soak"], f"{where}.soak")
        approval = given.get("approval", AUTOMATIC)
        if approval not in _APPROVALS:
            raise ValueError(f"{where}.approval: must be Automatic or Manual, not {approval!r}")
        windows = given.get("windows", [])
        if not isinstance(windows, list | tuple):
            raise ValueError(f"{where}.windows: must be a list of windows, not {windows!r}")
        parsed = tuple(Window.parse(spec, field=f"{where}.windows[{i}]") for i, spec in enumerate(windows))
        return cls(versions=versions, source=source, soak=soak, approval=approval, windows=parsed)

    def describe(self) -> str:
        """One line for `status.promotion.policy` and `alecton status`."""
        text = self.versions.describe()
        if self.source:
            text += f" from {self.source}"
            if self.soak:
                text += f" after {_duration(self.soak)}"
        text += f", approval {self.approval}"
        if self.windows:
            spans = (
                f"{w.schedule} for {_duration(w.duration.total_seconds())} {w.time_zone}"
                for w in self.windows
            )
            text += ", windows " + "; ".join(spans)
        return text


def _parse_soak(value: Any, field_name: str) -> float:
    """Seconds in a soak duration; unlike health timeouts, zero is allowed ("0", "0s")."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return float(value)  # YAML `soak: 600`: a plain number of seconds
    if isinstance(value, str):
        try:
            return parse_duration(value, field=field_name)
        except ValueError:
            # parse_duration refuses zero. Writing a zero with every digit turned into a 1
            # keeps its syntax, so a well-formed zero ("0", "0s", "0.0m") parses that way.
            digits = [char for char in value if char in _ASCII_DIGITS]
            if digits and set(digits) == {"0"}:
                try:
                    parse_duration(value.replace("0", "1"), field=field_name)
                except ValueError:
                    pass
                else:
                    return 0.0
    raise ValueError(f"{field_name}: must be a duration like 30m, 2h or 0, not {value!r}")


# ---------------------------------------------------------------------------
# The source target


@dataclass(frozen=True)
class Source:
    """The `from` target as promotion sees it: the version that runs healthy there, if any.

    `why` says why nothing usable runs there ("" when `version` is set), for status messages.
    """

    target: str
    version: str = ""  # "" when nothing usable runs there
    healthy_since: float = 0.0  # epoch seconds; 0 when not healthy
    why: str = ""


def source_of(target: str, status: dict[str, Any] | None, generation_ok: bool = True) -> Source:
    """What the Deployment of `target` offers for promotion, from its status.

    Only a Deployment in phase Deployed whose Ready condition is True offers its
    `appliedVersion`: RolledBack, Degraded, Verifying, Failed... offer nothing, so a version
    is never promoted from a target where it is not (or no longer) proven good.
    `generation_ok` is False while the status describes an older spec (the controller has
    not reconciled the latest change yet); then the status says nothing about what is asked.

    `healthy_since` is the Ready condition's lastTransitionTime, but never earlier than the
    release's `lastDeployed`: with health checks off, Ready stays True across an upgrade and
    keeps the time of an *earlier* version, which would skip the soak of the new one.
    """
    status = status if isinstance(status, Mapping) else {}
    phase = str(status.get("phase") or "")
    version = str(status.get("appliedVersion") or "")
    ready = next(
        (c for c in status.get("conditions") or [] if isinstance(c, Mapping) and c.get("type") == READY),
        None,
    )
    if not generation_ok:
        return Source(target, why=f"{target} has not reconciled its latest spec yet")
    if phase != DEPLOYED:
        return Source(target, why=f"{target} is {phase or 'not deployed yet'}")
    if ready is None or ready.get("status") != "True":
        return Source(target, why=f"{target} is not Ready")
    if not version:
        return Source(target, why=f"{target} records no applied version")
    ready_since = epoch(ready.get("lastTransitionTime"))
    if not ready_since:
        # Since when is unknown, so the soak cannot be checked: wait rather than guess.
        return Source(target, why=f"{target} does not say since when it is Ready")
    release = status.get("release")
    deployed = epoch(release.get("lastDeployed")) if isinstance(release, Mapping) else 0.0
    return Source(target, version=version, healthy_since=max(ready_since, deployed))


# ---------------------------------------------------------------------------
# Promotion objects


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
        metadata = _mapping(body.get("metadata")) if isinstance(body, Mapping) else {}
        spec = _mapping(body.get("spec")) if isinstance(body, Mapping) else {}
        status = _mapping(body.get("status")) if isinstance(body, Mapping) else {}
        approval = _mapping(spec.get("approval"))
        decision = _text(approval.get("decision"))
        return cls(
            name=_text(metadata.get("name")),
            deployment=_text(spec.get("deployment")),
            to_version=_text(spec.get("toVersion")),
            from_version=_text(spec.get("fromVersion")),
            digest=_text(spec.get("digest")),
            state=_text(status.get("state")),
            decision=decision if decision in _DECISIONS else "",
            decision_digest=_text(approval.get("digest")),
            decided_by=_text(approval.get("by")),
            created=_text(metadata.get("creationTimestamp")),
            reason=_text(spec.get("reason")),
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
# Holds


@dataclass(frozen=True)
class Hold:
    """Automation stopped because a person acted: a rollback, or a version set by hand."""

    reason: str  # ROLLBACK_HOLD or MANUAL_DEPLOY_HOLD
    by: str = ""  # the field manager who made the change ("" when unknown)
    since: str = ""  # RFC 3339
    version: str = ""  # spec.version when the hold began

    def as_status(self) -> dict[str, str]:
        return {"reason": self.reason, "by": self.by, "since": self.since, "version": self.version}

    @classmethod
    def parse(cls, raw: Any) -> Hold | None:
        """The hold recorded in status, or None (also for a record this version cannot read)."""
        if not isinstance(raw, Mapping) or raw.get("reason") not in _HOLD_REASONS:
            return None
        return cls(
            reason=str(raw["reason"]),
            by=_text(raw.get("by")),
            since=_text(raw.get("since")),
            version=_text(raw.get("version")),
        )

    def describe(self) -> str:
        who = self.by or "someone"
        if self.reason == ROLLBACK_HOLD:
            return f"rollback requested by {who} since {self.since}"
        return f"version {self.version or '(none)'} set by {who} since {self.since}"


@dataclass(frozen=True)
class RecordedPromotion:
    """What the last step recorded in `status.promotion`."""

    written: str = ""  # the baseline: the version the operator last wrote, or resumed at
    hold: Hold | None = None
    resumed: str = ""  # the last resume request id handled
    promoted: str = ""  # the version the operator wrote itself, while spec.version still has it

    @classmethod
    def parse(cls, status: dict[str, Any] | None) -> RecordedPromotion:
        """Read `status.promotion` from a Deployment's status (absent: nothing recorded)."""
        recorded = _mapping(_mapping(status).get("promotion"))
        return cls(
            written=_text(recorded.get("written")),
            hold=Hold.parse(recorded.get("hold")),
            resumed=_text(recorded.get("resumed")),
            promoted=_text(recorded.get("promoted")),
        )


@dataclass(frozen=True)
class HoldDecision:
    """The hold after this step, and what to record so the next step decides the same."""

    hold: Hold | None
    resumed: str  # the resume request id to record
    written: str  # the `written` baseline to record
    lifted: bool = False  # a new resume request was handled in this step
    promoted: str = ""  # spec.version, when the operator wrote it itself ("" otherwise)


def hold_of(
    spec_version: str,
    rollback_requested: bool,
    recorded: RecordedPromotion,
    resume_request: str,
    version_by: str,
    rollback_by: str,
    now_text: str,
    *,
    verified: str = "",
) -> HoldDecision:
    """Whether automation is held, because a person rolled back or deployed by hand.

    A person's action wins: the operator must not roll forward right after someone rolled
    back, nor overwrite a version someone chose. Only a new resume request (`alecton
    resume`) lifts a hold; then the version in the spec becomes the new baseline.

    A spec.version that differs from the one the operator recorded is a change by hand unless
    `verified` names a Promotion: `verify_promoted` found the operator's own keyed record of
    writing exactly this version at this generation of this Deployment (it wrote the spec and
    crashed before recording that in status). Who managedFields say set the field
    (`version_by`) never counts: any client may call itself `FIELD_MANAGER`.
    """
    # The version the operator wrote itself, as long as spec.version still holds it.
    promoted = spec_version if verified or recorded.promoted == spec_version else ""
    if resume_request and resume_request != recorded.resumed:
        return HoldDecision(None, resume_request, spec_version, lifted=True, promoted=promoted)
    if recorded.hold is not None:
        return HoldDecision(recorded.hold, recorded.resumed, recorded.written, promoted=promoted)
    if rollback_requested:
        hold = Hold(ROLLBACK_HOLD, by=rollback_by, since=now_text, version=spec_version)
        return HoldDecision(hold, recorded.resumed, recorded.written, promoted=promoted)
    if recorded.written and spec_version != recorded.written:
        if verified:
            return HoldDecision(None, recorded.resumed, spec_version, promoted=promoted)
        # The operator did not write it: whoever calls itself by its manager name is a person.
        by = f"{version_by} (unverified)" if version_by == FIELD_MANAGER else version_by
        hold = Hold(MANUAL_DEPLOY_HOLD, by=by, since=now_text, version=spec_version)
        return HoldDecision(hold, recorded.resumed, recorded.written)
    # A version given when the Deployment was created is the baseline, not a hold.
    return HoldDecision(None, recorded.resumed, recorded.written or spec_version, promoted=promoted)


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


def field_manager_of(managed_fields: list[dict[str, Any]] | None, path: tuple[str, ...]) -> str:
    """Who last set the field at `path` (e.g. ("spec", "version")), from metadata.managedFields.

    The manager of the newest entry (by `time`) whose fieldsV1 holds the field; "" when no
    entry does. Used to tell the operator's own writes from a person's.
    """
    best_manager, best_key = "", (-math.inf, -1)
    for index, entry in enumerate(managed_fields or []):
        if not isinstance(entry, Mapping):
            continue
        node: Any = entry.get("fieldsV1")
        for part in path:
            if not isinstance(node, Mapping) or f"f:{part}" not in node:
                break
            node = node[f"f:{part}"]
        else:
            key = (epoch(entry.get("time")), index)
            if key > best_key:
                best_manager, best_key = _text(entry.get("manager")), key
    return best_manager


# ---------------------------------------------------------------------------
# Choosing


@dataclass(frozen=True)
class Choice:
    """The version that qualifies now, or None, and why (for the Promotion and the status).

    `wait` is how long until the answer may change by time alone (the soak ending), in
    seconds; None when only an event (a new Image, a status change) can change it.
    """

    version: str | None
    reason: str
    wait: float | None = None


def choose(
    policy: PromotionPolicy,
    current: str,
    image_versions: Iterable[str],
    failed: Collection[str],
    source: Source | None,
    now: float,
    requested: str = "",
) -> Choice:
    """The version to propose for a Deployment now running `current` ("" for none).

    `failed` holds the versions that failed their health check on any target of the
    application: they are never chosen automatically. `requested` is a version a person
    proposed (`PROMOTE_ANNOTATION`): it is chosen whenever an Image has it, whatever the
    policy says, because a person decided; it still goes through approval.
    Automatically, only a newer version is chosen: a downgrade is a person's decision.
    """
    images = list(dict.fromkeys(image_versions))
    excluded = frozenset(failed)
    if requested:
        if requested not in images:
            return Choice(None, f"{requested} was proposed by hand but no Image has that version")
        notes = []
        if requested in excluded:
            notes.append("it failed its health check before")
        if not policy.versions.qualifies(requested):
            notes.append(f"it does not match {policy.versions.describe()}")
        return Choice(requested, "proposed by hand" + (f" ({'; '.join(notes)})" if notes else ""))
    if policy.source:
        return _choose_from_source(policy, current, images, excluded, source, now)
    return _choose_newest(policy, current, images, excluded)


def _choose_from_source(
    policy: PromotionPolicy,
    current: str,
    images: list[str],
    failed: frozenset[str],
    source: Source | None,
    now: float,
) -> Choice:
    """The version healthy on the source target, once it qualifies and has soaked."""
    target = policy.source
    matching = policy.versions.describe()
    if source is None:
        return Choice(None, f"nothing to promote from {target}: no Deployment for that target")
    version = source.version
    if not version:
        return Choice(None, f"nothing to promote from {target}: {source.why or 'nothing healthy runs there'}")
    if not policy.versions.qualifies(version):
        return Choice(None, f"{version} runs on {target} but does not match {matching}")
    if version in failed:
        return Choice(None, f"{version} runs on {target} but failed its health check before; not promoted")
    if version not in images:
        return Choice(None, f"{version} runs on {target} but no Image has that version any more")
    if current and not policy.versions.is_newer(version, current):
        if version == current:
            return Choice(None, f"at {current}, the version healthy on {target}; nothing newer")
        return Choice(None, f"{version} runs on {target} and is not newer than {current}; nothing newer")
    ends = source.healthy_since + policy.soak
    if now < ends:
        return Choice(
            None,
            f"{version} is healthy on {target} since {_rfc3339(source.healthy_since)}; "
            # A fixed time, not a countdown: the message (and so status) stays the same
            # on every reconcile until the soak ends.
            f"soak {_duration(policy.soak)} ends at {_rfc3339(ends)}",
            wait=ends - now,
        )
    soak = f"soak {_duration(policy.soak)}" if policy.soak else "no soak"
    return Choice(
        version,
        f"{version} has been healthy on {target} for {_duration(now - source.healthy_since)} "
        f"({soak}) and matches {matching}",
    )


def _choose_newest(
    policy: PromotionPolicy, current: str, images: list[str], failed: frozenset[str]
) -> Choice:
    """The newest Image version that qualifies and did not fail, if newer than `current`."""
    matching = policy.versions.describe()
    newest = policy.versions.newest(images, exclude=failed)
    if newest is None:
        skipped = " that did not fail its health check" if any(v in failed for v in images) else ""
        return Choice(None, f"no Image version matches {matching}{skipped}")
    skipped_failed = sorted(v for v in failed if v in images and policy.versions.is_newer(v, newest))
    note = f" (skipping {', '.join(skipped_failed[:3])}: failed its health check)" if skipped_failed else ""
    if current and not policy.versions.is_newer(newest, current):
        if newest == current or not policy.versions.is_newer(current, newest):
            return Choice(None, f"{current} is the newest version matching {matching}{note}; nothing newer")
        return Choice(
            None, f"{newest} is the newest Image version matching {matching}{note}; not newer than {current}"
        )
    return Choice(newest, f"{newest} is the newest Image version matching {matching}{note}")


# ---------------------------------------------------------------------------
# Acting


@dataclass(frozen=True)
class Actions:
    """What the controller does after `act`; applying them and calling `act` again does nothing.

    `create` holds Promotion objects to create, each `{name, deployment, fromVersion,
    toVersion, reason, digest}` plus `approval` when the operator approves them itself.
    `states` holds (Promotion name, new state, message) for real state changes only,
    including those of promotions in `create`. Write spec.version before the states, so a
    crash in between leaves a promotion that `act` recognises as applied.
    """

    create: list[dict[str, Any]] = field(default_factory=list)
    states: list[tuple[str, str, str]] = field(default_factory=list)
    write_version: str | None = None
    wait: float | None = None
    message: str = ""
    write_promotion: str = ""  # the Promotion `write_version` applies ("" when nothing is written)


def act(
    policy: PromotionPolicy,
    deployment: str,
    current: str,
    choice: Choice,
    digest: str,
    promotions: Sequence[PromotionRecord],
    failed: Collection[str],
    now: float,
    hold: Hold | None,
    *,
    application: str = "",
    target: str = "",
) -> Actions:
    """Turn a choice into Promotion objects, state changes and the version to write.

    `digest` identifies the inputs the chosen version would deploy with; an approval holds
    for those inputs only, so a change after approval proposes the version again.
    `promotions` are the Promotion objects of the cluster (those of other Deployments are
    ignored). `application` and `target` only fill in the CLI commands in messages.

    With a hold nothing is proposed or written. Otherwise the promotion for exactly
    (choice.version, digest) is created or carried forward (approval, window, apply), and
    every other open promotion is superseded. Windows gate automatic approvals only: a
    person who approves has already decided when.
    """
    cli = f"{application or 'APP'} {target or 'TARGET'}"
    failed_versions = frozenset(failed)
    ours = [p for p in promotions if p.deployment == deployment]
    changes: dict[str, tuple[str, str]] = {}

    def change(record: PromotionRecord, state: str, message: str) -> None:
        if record.effective_state != state:
            changes[record.name] = (state, message)

    for record in ours:
        if record.effective_state == APPLIED and record.to_version in failed_versions:
            change(record, FAILED, f"version {record.to_version} failed its health check")
    if hold is not None:
        message = f"promotion held: {hold.describe()}; run `alecton resume {cli}` to resume it"
        return Actions(states=_listed(changes), message=message)

    create: list[dict[str, Any]] = []
    write: str | None = None
    write_promotion = ""
    window_wait: float | None = None
    message = choice.reason
    version = choice.version
    chosen: PromotionRecord | None = None
    if version is not None:
        name = promotion_name(deployment, version, digest)
        same = [p for p in ours if p.to_version == version and p.digest == digest]
        chosen = next((p for p in same if p.name == name), same[0] if same else None)
        if chosen is None:
            automatic = policy.approval == AUTOMATIC
            spec: dict[str, Any] = {
                "name": name,
                "deployment": deployment,
                "fromVersion": current,
                "toVersion": version,
                "reason": choice.reason,
                "digest": digest,
            }
            if automatic:
                spec["approval"] = {"decision": APPROVE, "digest": digest}
            create.append(spec)
            chosen = PromotionRecord(
                name=name,
                deployment=deployment,
                to_version=version,
                from_version=current,
                digest=digest,
                decision=APPROVE if automatic else "",
                decision_digest=digest if automatic else "",
                reason=choice.reason,
            )
        write, window_wait, message = _carry_forward(policy, chosen, current, choice, now, cli, change)
        write_promotion = chosen.name if write else ""

    for record in ours:
        if record.name == (chosen.name if chosen else None) or record.effective_state not in _OPEN:
            continue
        if current and record.to_version == current and record.to_version != version:
            # spec.version already has it: the operator wrote it and then failed to record the
            # state (a crash), or someone deployed it by hand and resumed since.
            if record.approved:
                change(record, APPLIED, f"version {current} is in spec.version")
            else:
                change(record, SUPERSEDED, f"already at {current}")
            continue
        change(record, SUPERSEDED, _superseded_because(record, choice, chosen))

    waits = [w for w in (choice.wait, window_wait) if w is not None]
    return Actions(
        create=create,
        states=_listed(changes),
        write_version=write,
        wait=min(waits) if waits else None,
        message=message,
        write_promotion=write_promotion,
    )


def _carry_forward(
    policy: PromotionPolicy,
    record: PromotionRecord,
    current: str,
    choice: Choice,
    now: float,
    cli: str,
    change: Callable[[PromotionRecord, str, str], None],
) -> tuple[str | None, float | None, str]:
    """The next step for the promotion of the chosen version: (version to write, wait, message).

    A Superseded promotion whose exact proposal is chosen again (the inputs changed and
    changed back) comes back to life: its name is taken, and an approval it carries was
    given for exactly these inputs.
    """
    version = record.to_version
    state = record.effective_state
    if state == APPLIED:
        if current == version:
            return None, None, f"at {version}"
        return None, None, f"{version} was applied before ({record.name}); now at {current or 'no version'}"
    if state == REJECTED:
        return None, None, f"{version} was rejected by {record.decided_by or 'someone'} ({record.name})"
    if state == FAILED:
        return None, None, f"{version} failed its health check ({record.name}); not proposed again"
    if record.decision == REJECT:
        change(record, REJECTED, f"rejected by {record.decided_by or 'someone'}")
        return None, None, f"{version} was rejected by {record.decided_by or 'someone'} ({record.name})"
    if policy.approval == MANUAL and not record.approved:
        change(record, PENDING, f"waits for approval: alecton approve {cli}")
        if record.decision == APPROVE:
            return (
                None,
                None,
                f"the approval of {record.name} was for other inputs; "
                f"version {version} waits for approval again: alecton approve {cli}",
            )
        return None, None, f"version {version} waits for approval: alecton approve {cli}"
    if policy.approval == AUTOMATIC:
        opening = _window_wait(policy.windows, now)
        if opening is not None:
            wait, opens_at = opening
            text = f"version {version} is approved; waiting for the window; opens at {opens_at}"
            change(record, APPROVED, text)
            return None, wait, text
    change(record, APPLIED, f"wrote version {version} into spec.version (was {current or 'none'})")
    if current == version:
        return None, None, f"at {version}"
    return version, None, f"promoting {current or 'nothing'} to {version}: {choice.reason}"


def _superseded_because(record: PromotionRecord, choice: Choice, chosen: PromotionRecord | None) -> str:
    if choice.version is None or chosen is None:
        return f"no longer qualifies: {choice.reason}"
    if record.to_version != choice.version:
        return f"superseded by {choice.version}"
    if record.digest == chosen.digest:
        return f"duplicate of {chosen.name}"
    if record.decision == APPROVE:
        return f"the inputs changed after approval; proposed again as {chosen.name}"
    return f"the inputs changed; proposed again as {chosen.name}"


def _window_wait(windows: Sequence[Window], now: float) -> tuple[float, str] | None:
    """None when a deploy may start now, else (seconds until a window opens, when as RFC 3339)."""
    moment = datetime.fromtimestamp(now, UTC)
    if windows_open(windows, moment):
        return None
    opening = next_opening(windows, moment)
    assert opening is not None  # windows_open was False, so there are windows
    return max(0.0, (opening - moment).total_seconds()), opening.strftime("%Y-%m-%dT%H:%M:%SZ")


def _listed(changes: Mapping[str, tuple[str, str]]) -> list[tuple[str, str, str]]:
    return [(name, state, message) for name, (state, message) in changes.items()]


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


# ---------------------------------------------------------------------------
# Small helpers


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _rfc3339(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _duration(seconds: float) -> str:
    """A duration as people write it ("1h30m", "7m", "45s")."""
    total = max(0, math.floor(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n]
    return "".join(parts) or "0s"
