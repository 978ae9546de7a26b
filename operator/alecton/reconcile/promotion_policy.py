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
4. `reconcile.summary.promotion_status`: the `status.promotion` patch that records the step
   (the summary builds all status).

The policy is read here, Promotion objects and the keyed record in `promotion_records.py`;
the steps live in `promotion_hold.py`, `promotion_choice.py` and `promotion_actions.py`;
`handlers/actions/promote.py` carries them out.

Everything here is pure: time comes in as epoch seconds (`now`) or RFC 3339 (`now_text`),
Kubernetes objects as plain dicts, and decisions go out as data. Nothing is proposed twice
because Promotion names are derived from what they propose (`promotion_name`): a restarted
operator computes the same name, and creating an object that exists is a no-op.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from alecton.api.durations import parse_duration
from alecton.reconcile.versions import VersionPolicy
from alecton.reconcile.window import Window

# Who approves a promotion: the operator itself, or a person (`alecton approve`).
AUTOMATIC = "Automatic"
MANUAL = "Manual"

_POLICY_FIELDS = ("versions", "from", "soak", "approval", "windows")
_APPROVALS = (AUTOMATIC, MANUAL)
_ASCII_DIGITS = frozenset("0123456789")


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
                text += f" after {duration_text(self.soak)}"
        text += f", approval {self.approval}"
        if self.windows:
            spans = (
                f"{w.schedule} for {duration_text(w.duration.total_seconds())} {w.time_zone}"
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


def duration_text(seconds: float) -> str:
    """A duration as people write it ("1h30m", "7m", "45s")."""
    total = max(0, math.floor(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n]
    return "".join(parts) or "0s"
