"""Which version qualifies for promotion now: the newest Image, or what is healthy on the
`from` target after the soak; or why none does and when to look again.

Pure: time comes in as epoch seconds, statuses as plain dicts.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from alecton.reconcile.promotion_policy import PromotionPolicy, duration_text
from alecton.reconcile.status import DEPLOYED, READY
from alecton.reconcile.times import epoch

# `alecton promote` sets this to a version to propose it by hand.
PROMOTE_ANNOTATION = "alecton.dev/promote"


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
            f"soak {duration_text(policy.soak)} ends at {_rfc3339(ends)}",
            wait=ends - now,
        )
    soak = f"soak {duration_text(policy.soak)}" if policy.soak else "no soak"
    return Choice(
        version,
        f"{version} has been healthy on {target} for {duration_text(now - source.healthy_since)} "
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


def _rfc3339(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
