"""Rollbacks under spec.verify. `helm rollback` restores an older revision's values, and with
them the image that revision ran, and the chart it was made from, without the check a deploy
gets. Under an active policy a rollback (asked in spec.rollback, or automatic after a failed
health check) restores only a revision whose image, as status.history recorded it, is pinned
to a digest whose signature passes the policy now: a revision deployed before the policy was
switched on (by tag), or signed by a key since removed from the Secret, is refused. Under
spec.verify.chart the same holds for the revision's chart (status.history[].chartReference,
the oci:// chart pinned to the digest helm pulled): a revision deployed before verify.chart
(pulled by tag, so which manifest ran is not known), or whose chart a removed key signed, is
refused. Pure: the verdicts come from `handlers.observe` (registry.signatures)."""

from __future__ import annotations

from collections.abc import Mapping

from alecton.api.models import Application
from alecton.reconcile.chart_signature import verifies_chart
from alecton.reconcile.image_ref import pinned_digest
from alecton.reconcile.release import HistoryEntry
from alecton.reconcile.signatures import Verdict

ROLLBACK_REFUSED = "RollbackRefused"


def rollback_refusal(
    app: Application,
    revision: int,
    entry: HistoryEntry | None,
    verdicts: Mapping[int, Verdict],
    chart_verdicts: Mapping[int, Verdict] | None = None,
) -> str:
    """Why `app`'s spec.verify forbids restoring `revision` ("" when it may be restored, or
    when the Application verifies nothing). `entry` is the revision as status.history recorded
    it; `verdicts` the signature verdicts on the recorded images, `chart_verdicts` those on the
    recorded charts (spec.verify.chart), by revision: a revision without one is refused."""
    if app.verify is None:
        return ""
    if entry is None:
        return (
            f"revision {revision} is not in the release history the operator records "
            "(status.history), so the image it would run again is not known"
        )
    which = f"revision {revision}" + (f" (version {entry.version})" if entry.version else "")
    return _image_refusal(which, entry, verdicts.get(revision)) or (
        _chart_refusal(which, entry, (chart_verdicts or {}).get(revision)) if verifies_chart(app) else ""
    )


def _image_refusal(which: str, entry: HistoryEntry, verdict: Verdict | None) -> str:
    if not entry.image:
        return (
            f"{which} records no image (it was not made by alecton, or before alecton recorded "
            "images per revision), so the image it would run again is not known"
        )
    if not pinned_digest(entry.image):
        return (
            f"{which} runs {entry.image}, a tag not pinned to a digest: what the tag names now "
            "cannot be checked against a signature"
        )
    if verdict is None:
        return f"{which} runs {entry.image}, whose signature was not checked"
    if not verdict.verified:
        return f"{which} runs {entry.image}: {verdict.message}"
    return ""


def _chart_refusal(which: str, entry: HistoryEntry, verdict: Verdict | None) -> str:
    if not pinned_digest(entry.chart_reference):
        return (
            f"{which} records no chart digest (it was deployed before spec.verify.chart, when helm "
            "pulled the chart by its tag, or not by alecton), so the chart it would run again "
            "cannot be checked against a signature"
        )
    if verdict is None:
        return f"{which} runs chart {entry.chart_reference}, whose signature was not checked"
    if not verdict.verified:
        return f"{which} runs chart {entry.chart_reference}: {verdict.message}"
    return ""


def refused_rollback_message(
    app: Application, revision: int, why: str, running: int, deploy_hint: str
) -> str:
    """status.message of a spec.rollback the policy refuses: the revision, the image or chart,
    the fix."""
    stays = f"the release stays at revision {running}" if running else "the release is left as it is"
    checked = "an image and a chart that pass" if verifies_chart(app) else "an image that passes"
    return (
        f"rollback to revision {revision} refused: spec.verify lets a rollback restore only "
        f"{checked} it now, and {why}; {stays}. Deploy a verified version instead "
        f"(`{deploy_hint}`, which checks and pins its digest), or remove spec.rollback"
    )
