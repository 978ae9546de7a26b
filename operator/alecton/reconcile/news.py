"""What happened, as typed news: one `News` per release transition, for people and systems.

The summary (`reconcile.summary.summarize`) is the only producer: it calls `news_of` with
the step, the outcome and the summary it built, so a notification, an audit line and a
DORA figure all come from the same place as the status and the Kubernetes Events. The
fields are facts the operator already holds; nothing secret is in them (messages are the
redacted ones the status carries). Pure.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Protocol

from alecton.reconcile.cause import cause_of
from alecton.reconcile.decide import Do, Observed, Step
from alecton.reconcile.freeze import FREEZE_OVERRIDE_ANNOTATION as _FREEZE_OVERRIDE_ANNOTATION
from alecton.reconcile.freeze import FREEZE_OVERRIDE_BY_ANNOTATION, override_reason
from alecton.reconcile.freeze import FROZEN_REASON as _FROZEN_REASON
from alecton.reconcile.outcomes import (
    Claimed,
    DriftChecked,
    Outcome,
    Promoted,
    Released,
    ReleaseFailed,
    Uninstalled,
    UninstallFailed,
)
from alecton.reconcile.plan import Action, RecordedStatus
from alecton.reconcile.release import AUTOMATIC_ROLLBACK

CHANGED_BY_ANNOTATION = "alecton.dev/changed-by"  # stamped by the API server on spec changes
# Defined with the freezes (reconcile.freeze, which decide reads); named here as well, as
# the shared contract of the news promised.
FREEZE_OVERRIDE_ANNOTATION = _FREEZE_OVERRIDE_ANNOTATION  # a reason to deploy during a freeze
FROZEN_REASON = _FROZEN_REASON  # the plan reason of a change a freeze holds


class Kind(StrEnum):
    DEPLOY_STARTED = "DeployStarted"
    DEPLOYED = "Deployed"  # helm succeeded; `verifying` says whether health checks follow
    HEALTHY = "Healthy"
    DEGRADED = "Degraded"
    FAILED = "Failed"  # helm failed, or health checks failed (reason says which)
    ROLLED_BACK = "RolledBack"  # cause "automatic" (health) or "rollback" (asked for)
    HELD = "Held"
    DRIFT_DETECTED = "DriftDetected"
    DRIFT_CORRECTED = "DriftCorrected"
    PROMOTION_PROPOSED = "PromotionProposed"
    PROMOTION_APPROVED = "PromotionApproved"
    PROMOTION_REJECTED = "PromotionRejected"
    PROMOTION_APPLIED = "PromotionApplied"
    FREEZE_BLOCKED = "FreezeBlocked"
    UNINSTALLED = "Uninstalled"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


@dataclass(frozen=True)
class News:
    """One transition of one Deployment. `as_dict` is the wire and audit form (camelCase)."""

    kind: Kind
    severity: Severity
    namespace: str
    deployment: str
    application: str
    target: str
    time: str  # RFC 3339
    message: str = ""
    reason: str = ""  # the failure class or Event reason
    cluster: str = ""
    version: str = ""
    image: str = ""
    revision: int = 0
    previous_version: str = ""
    cause: str = ""  # what made the revision (deploy, promotion, rollback, automatic, ...)
    requested_by: str = ""  # the API server's word: who last changed the Deployment's spec
    input_digest: str = ""  # the fingerprint of chart, values, image and cluster
    chart: str = ""
    verifying: bool = False  # DEPLOYED: health checks follow
    promotion: str = ""  # the Promotion object, for promotion news
    generation: int = 0
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> str:
        """A deduplication key: a News delivered or recorded twice (a retry) has one key. The
        time is part of it: the same revision can degrade and recover twice, and each episode
        is news of its own (the summary says a transition once, when its status is written)."""
        material = "\0".join(
            [self.namespace, self.deployment, self.kind, str(self.revision), self.version,
             self.promotion, self.input_digest, str(self.generation), self.reason, self.time]
        )  # fmt: skip
        return hashlib.sha256(material.encode()).hexdigest()[:32]

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": str(self.kind),
            "severity": str(self.severity),
            "namespace": self.namespace,
            "deployment": self.deployment,
            "application": self.application,
            "target": self.target,
            "time": self.time,
            "key": self.key,
        }
        optional = {
            "message": self.message,
            "reason": self.reason,
            "cluster": self.cluster,
            "version": self.version,
            "image": self.image,
            "revision": self.revision,
            "previousVersion": self.previous_version,
            "cause": self.cause,
            "requestedBy": self.requested_by,
            "inputDigest": self.input_digest,
            "chart": self.chart,
            "verifying": self.verifying,
            "promotion": self.promotion,
            "generation": self.generation,
        }
        out.update({k: v for k, v in optional.items() if v})
        if self.extra:
            out["extra"] = dict(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> News:
        return cls(
            kind=Kind(data["kind"]),
            severity=Severity(data["severity"]),
            namespace=str(data.get("namespace", "")),
            deployment=str(data.get("deployment", "")),
            application=str(data.get("application", "")),
            target=str(data.get("target", "")),
            time=str(data.get("time", "")),
            message=str(data.get("message", "")),
            reason=str(data.get("reason", "")),
            cluster=str(data.get("cluster", "")),
            version=str(data.get("version", "")),
            image=str(data.get("image", "")),
            revision=int(data.get("revision") or 0),
            previous_version=str(data.get("previousVersion", "")),
            cause=str(data.get("cause", "")),
            requested_by=str(data.get("requestedBy", "")),
            input_digest=str(data.get("inputDigest", "")),
            chart=str(data.get("chart", "")),
            verifying=bool(data.get("verifying", False)),
            promotion=str(data.get("promotion", "")),
            generation=int(data.get("generation") or 0),
            extra={str(k): str(v) for k, v in (data.get("extra") or {}).items()},
        )


class NewsSink(Protocol):
    """Where news goes once its status is written (notifiers, the audit trail, DORA metrics).
    `publish` never blocks and never raises: a slow receiver must not delay a reconcile."""

    def publish(self, news: list[News]) -> None: ...


class Fanout:
    """Every sink gets every piece of news; a sink that raises is logged by the caller's
    logger and does not keep the others from theirs."""

    def __init__(self, *sinks: NewsSink) -> None:
        self.sinks: list[NewsSink] = list(sinks)

    def add(self, sink: NewsSink) -> None:
        self.sinks.append(sink)

    def publish(self, news: list[News]) -> None:
        if not news:
            return
        errors: list[Exception] = []
        for sink in self.sinks:
            try:
                sink.publish(news)
            except Exception as error:
                errors.append(error)
        if errors:
            raise ExceptionGroup("news sinks failed", errors)


def news_of(
    observed: Observed,
    step: Step,
    outcome: Outcome,
    status: dict[str, Any] | None,
    event_reasons: list[str],
    now: str,
) -> list[News]:
    """The news of one summarized step. `status` is the patch the summary writes (None:
    nothing changes) and `event_reasons` the reasons of the Events it posts: a transition
    that writes nothing and posts nothing is no news (a waiting Deployment stays quiet)."""
    base = _base(observed, step, status, now)
    if base is None:
        return []
    found: list[News] = []
    for reason in event_reasons:
        news = _from_reason(base, reason, observed, step, outcome, status)
        if news is not None:
            found.append(news)
    found.extend(_promotion_states(base, outcome))
    claimed = isinstance(outcome, Claimed) and status is not None and step.plan is not None
    if claimed and step.plan is not None and step.plan.action is Action.UPGRADE:
        found.insert(0, _with(base, Kind.DEPLOY_STARTED, Severity.INFO, status, "DeployStarted"))
    return found


def _base(observed: Observed, step: Step, status: dict[str, Any] | None, now: str) -> News | None:
    deployment = observed.deployment
    if deployment is None:
        return None
    previous = observed.status
    desired = step.plan.desired if step.plan is not None else None
    release = {**(previous.get("release") or {}), **((status or {}).get("release") or {})}
    revision = int(release.get("revision") or 0)
    return News(
        kind=Kind.HELD,  # replaced by each caller
        severity=Severity.INFO,
        namespace=deployment.ref.namespace,
        deployment=deployment.ref.name,
        application=deployment.application,
        target=deployment.target,
        time=now,
        cluster=(desired.cluster.ref.name if desired is not None else str(release.get("cluster") or "")),
        version=(desired.version if desired is not None else deployment.version),
        image=(desired.image if desired is not None else str(previous.get("image") or "")),
        revision=revision,
        previous_version=str(previous.get("appliedVersion") or ""),
        cause=_default_cause(observed, step, revision),
        # The API server stamps who changed the spec; nobody stamps a DELETE (admission cannot
        # change a deleted object), so news of a deletion names nobody rather than the last
        # person who deployed. The API server's own audit log says who deleted.
        requested_by=""
        if deployment.deleting
        else str(observed.annotations.get(CHANGED_BY_ANNOTATION) or ""),
        input_digest=(desired.fingerprint if desired is not None else ""),
        chart=(desired.chart.chart if desired is not None else ""),
        generation=observed.generation,
        extra=_override(observed),
    )


def _override(observed: Observed) -> dict[str, str]:
    """The freeze override given for the generation this News is about, and who wrote it (the
    API server's stamp; it may be another person than `requestedBy`): a release past a freeze
    says so in its record and notifications. Empty without one."""
    annotations = observed.annotations
    reason = override_reason(annotations.get(FREEZE_OVERRIDE_ANNOTATION), observed.generation)
    if not reason:
        return {}
    return {
        "freezeOverride": reason,
        "freezeOverrideBy": str(annotations.get(FREEZE_OVERRIDE_BY_ANNOTATION) or ""),
    }


def _default_cause(observed: Observed, step: Step, revision: int) -> str:
    """What made the transition when no kind says better: the cause of the helm action the
    plan runs (deploy, promotion, retry, rollback), else the recorded cause of the revision
    the release is at (a health verdict or drift is about that revision)."""
    if step.plan is not None and observed.deployment is not None:
        planned = cause_of(step.plan, observed.deployment, RecordedStatus.parse(observed.status))
        if planned:
            return _NEWS_CAUSES.get(planned, planned)
    for entry in observed.status.get("history") or []:
        if isinstance(entry, dict) and int(entry.get("revision") or 0) == revision and revision:
            return _NEWS_CAUSES.get(str(entry.get("cause") or ""), str(entry.get("cause") or ""))
    return ""


_NEWS_CAUSES = {AUTOMATIC_ROLLBACK: "automatic"}  # status.history's name -> the News's (see Kind)


def _with(base: News, kind: Kind, severity: Severity, status: dict[str, Any] | None, reason: str,
          message: str = "", **fields: Any) -> News:  # fmt: skip
    text = message or str((status or {}).get("message") or "")
    return replace(base, kind=kind, severity=severity, reason=reason, message=text, **fields)


def _newest_cause(status: dict[str, Any] | None) -> tuple[int, str, str]:
    history = (status or {}).get("history") or []
    if not history:
        return 0, "", ""
    newest = max(history, key=lambda entry: int(entry.get("revision") or 0))
    return int(newest.get("revision") or 0), str(newest.get("cause") or ""), str(newest.get("version") or "")


_DRIFT_REASONS = {"DriftDetected", "Drifted"}


def _from_reason(
    base: News,
    reason: str,
    observed: Observed,
    step: Step,
    outcome: Outcome,
    status: dict[str, Any] | None,
) -> News | None:
    plan = step.plan
    if reason.endswith("Succeeded") and isinstance(outcome, Released) and plan is not None:
        revision, cause, version = _newest_cause(status)
        fields: dict[str, Any] = {"revision": revision or base.revision, "cause": cause or base.cause}
        if version:
            fields["version"] = version
        if plan.action is Action.ROLLBACK:
            return _with(
                base, Kind.ROLLED_BACK, Severity.WARNING, status, reason, **{**fields, "cause": "rollback"}
            )
        return _with(
            base, Kind.DEPLOYED, Severity.INFO, status, reason, verifying=bool(outcome.verify_until), **fields
        )
    if reason == "AutomaticRollback" and isinstance(outcome, Released):
        revision, _cause, version = _newest_cause(status)
        fields = {"revision": revision or base.revision, "version": version or base.version}
        return _with(base, Kind.ROLLED_BACK, Severity.WARNING, status, reason, cause="automatic", **fields)
    if isinstance(outcome, ReleaseFailed):
        if reason == "HealthCheckFailed":
            return _with(base, Kind.FAILED, Severity.ERROR, status, reason)
        failure_class = outcome.reason or (outcome.stalled.reason if outcome.stalled else "") or reason
        return _with(base, Kind.FAILED, Severity.ERROR, status, failure_class, message=outcome.error)
    if isinstance(outcome, UninstallFailed):
        return _with(base, Kind.FAILED, Severity.ERROR, status, reason, message=outcome.error)
    if isinstance(outcome, Uninstalled):
        return _with(base, Kind.UNINSTALLED, Severity.INFO, status, reason, message=outcome.message)
    if step.do is Do.FAIL_HEALTH and reason == "HealthCheckFailed":
        return _with(base, Kind.FAILED, Severity.ERROR, status, reason)
    if step.do is Do.VERIFY and reason == "Healthy":
        return _with(base, Kind.HEALTHY, Severity.INFO, status, reason, version=_applied(observed, base))
    if step.do is Do.VERIFY and reason == "Degraded":
        return _with(base, Kind.DEGRADED, Severity.WARNING, status, reason, version=_applied(observed, base))
    if isinstance(outcome, DriftChecked):
        return _drift_news(base, reason, outcome, status)
    if step.do is Do.REPORT and plan is not None:
        if plan.reason == FROZEN_REASON:
            return _with(base, Kind.FREEZE_BLOCKED, Severity.WARNING, status, reason, message=plan.message)
        if plan.action is Action.HELD:
            return _with(base, Kind.HELD, Severity.WARNING, status, reason, message=plan.message)
    if isinstance(outcome, Promoted):
        return _promotion_note(base, reason, outcome, status)
    return None


def _applied(observed: Observed, base: News) -> str:
    return str(observed.status.get("appliedVersion") or base.version)


def _drift_news(base: News, reason: str, outcome: DriftChecked, status: dict[str, Any] | None) -> News | None:
    revision = outcome.revision or base.revision
    summary = outcome.summary or str((status or {}).get("message") or "")
    if reason == "DriftCorrected":
        return _with(
            base, Kind.DRIFT_CORRECTED, Severity.INFO, status, reason, message=summary, revision=revision
        )
    if outcome.drifted and reason in _DRIFT_REASONS:
        return _with(
            base, Kind.DRIFT_DETECTED, Severity.WARNING, status, reason, message=summary, revision=revision
        )
    if outcome.correction is not None and reason != "DriftCorrected":
        return _with(base, Kind.FAILED, Severity.ERROR, status, reason, revision=revision)
    return None


def _promotion_note(base: News, reason: str, outcome: Promoted, status: dict[str, Any] | None) -> News | None:
    note = next((n for n in outcome.notes if n.reason == reason), None)
    message = note.message if note is not None else ""
    if reason == "PromotionProposed":
        return _with(base, Kind.PROMOTION_PROPOSED, Severity.INFO, status, reason, message=message,
                     version=_to_version(message, base.version), cause="promotion")  # fmt: skip
    if reason == "Promoted":
        version = outcome.step.actions.write_version if outcome.step is not None else None
        return _with(base, Kind.PROMOTION_APPLIED, Severity.INFO, status, reason, message=message,
                     version=version or base.version, cause="promotion")  # fmt: skip
    if reason == "PromotionHeld":
        return _with(base, Kind.HELD, Severity.WARNING, status, reason, message=message)
    return None


def _to_version(message: str, default: str) -> str:
    """ "FROM -> TO: why" (the PromotionProposed note's form) -> TO."""
    head = message.split(":", 1)[0]
    return head.split("->", 1)[1].strip() if "->" in head else default


def _promotion_states(base: News, outcome: Outcome) -> list[News]:
    """A person's (or the operator's own) approval or rejection, when first acted on."""
    if not isinstance(outcome, Promoted) or outcome.step is None:
        return []
    kinds = {"Approved": Kind.PROMOTION_APPROVED, "Rejected": Kind.PROMOTION_REJECTED}
    messages = {name: message for name, _state, message in outcome.step.actions.states}
    found = []
    for name, decision, by in outcome.step.actions.decided:
        kind = kinds.get(decision)
        if kind is None:
            continue
        severity = Severity.WARNING if kind is Kind.PROMOTION_REJECTED else Severity.INFO
        version = outcome.step.choice.version or base.version
        fields = {"promotion": name, "version": version, "cause": "promotion", "requested_by": by}
        found.append(
            replace(
                base, kind=kind, severity=severity, reason=decision, message=messages.get(name, ""), **fields
            )
        )
    return found
