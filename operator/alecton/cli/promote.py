"""`alecton approve`, `reject`, `promotions`, `promote` and `resume`: a person's part in promotion.

A Deployment with `spec.promotion` lets the operator choose its version; every change it
proposes is a `Promotion` object (reconcile/promotion.py). People approve or reject one
(a merge patch of `spec.approval`, for the Promotion's own digest; the API server stamps
`spec.approval.by`), propose a version by hand (the `alecton.dev/promote` annotation), and
lift a hold (the `alecton.dev/resume` annotation).

The pure parts (which Promotion is open, the patches, table rows, wait outcomes) come
first, so they are unit-tested without a cluster.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

import typer

from alecton.api.models import release_name
from alecton.cli.deploy import (
    ApplicationArgument,
    TargetArgument,
    TimeoutOption,
    find_deployment,
    require_deployment,
    wait_for,
)
from alecton.cli.logic import WaitOutcome, age, field_selector, running_version
from alecton.cli.output import (
    EXIT_CONFLICT,
    EXIT_ERROR,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    OutputFormat,
    emit,
    fail,
    table,
)
from alecton.cli.session import (
    CliError,
    ContextOption,
    KubeconfigOption,
    NamespaceOption,
    OutputOption,
    Target,
    handle_errors,
    run_api,
)
from alecton.kube.client import ApiException, KubeClient, api_error_message
from alecton.reconcile.promotion_choice import PROMOTE_ANNOTATION
from alecton.reconcile.promotion_hold import RESUME_ANNOTATION, Hold
from alecton.reconcile.promotion_records import (
    APPLIED,
    APPROVE,
    APPROVED,
    FAILED,
    PENDING,
    REJECT,
    REJECTED,
    SUPERSEDED,
    PromotionRecord,
)

# approve and reject keep exit 1 for "the promotion did not go through" (approve --wait):
# their errors are 2 or more, as `alecton diff`'s are.
EXIT_DECIDE_ERROR = 2

APPROVER_ROLE = "alecton-approver"
_OPEN_STATES = frozenset({PENDING, APPROVED})
_FINAL_FAILED = frozenset({SUPERSEDED, REJECTED, FAILED})
_PATCH_ATTEMPTS = 3


# ---------------------------------------------------------------------------
# Pure decisions


def _spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _status(obj: dict[str, Any]) -> dict[str, Any]:
    status = obj.get("status")
    return status if isinstance(status, dict) else {}


def _name(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def is_open(promotion: dict[str, Any]) -> bool:
    """Still waiting for something (Pending or Approved); the other states are final."""
    return PromotionRecord.parse(promotion).effective_state in _OPEN_STATES


def has_decision(promotion: dict[str, Any]) -> bool:
    """spec.approval is set: decided, and immutable from then on."""
    return _spec(promotion).get("approval") is not None


def awaiting_decision(promotion: dict[str, Any]) -> bool:
    """Open and nobody decided yet: what `alecton approve` and `reject` act on."""
    return is_open(promotion) and not has_decision(promotion)


def _newest_first(promotions: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    # RFC 3339 times in UTC sort as text; the name breaks ties of the same second.
    return sorted(
        promotions,
        key=lambda p: (str((p.get("metadata") or {}).get("creationTimestamp") or ""), _name(p)),
        reverse=True,
    )


def pick_open(
    promotions: Iterable[dict[str, Any]], deployment: str, version: str | None = None
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The Promotion of `deployment` to decide on, and the other ones awaiting a decision.

    The newest one awaiting a decision, or with `version` the newest one proposing that
    version. The others are returned so the caller can say they exist.
    """
    waiting = _newest_first(
        p for p in promotions if _spec(p).get("deployment") == deployment and awaiting_decision(p)
    )
    matching = [p for p in waiting if not version or _spec(p).get("toVersion") == version]
    if not matching:
        return None, waiting
    chosen = matching[0]
    return chosen, [p for p in waiting if p is not chosen]


def decided_open(
    promotions: Iterable[dict[str, Any]], deployment: str, version: str | None = None
) -> dict[str, Any] | None:
    """The newest Promotion of `deployment` that is decided but still open: the operator has
    not acted on the decision yet (or, approved automatically, it waits for a window)."""
    decided = _newest_first(
        p
        for p in promotions
        if _spec(p).get("deployment") == deployment
        and is_open(p)
        and has_decision(p)
        and (not version or _spec(p).get("toVersion") == version)
    )
    return decided[0] if decided else None


def decision_patch(promotion: dict[str, Any], decision: str, comment: str = "") -> dict[str, Any]:
    """The JSON merge patch that decides `promotion`: spec.approval for its own digest.

    `by` is never sent: the API server stamps it (deploy/promotion-approvals.yaml). The
    resourceVersion makes the patch fail (409) when the Promotion changed since it was read,
    so a decision is only ever taken on the state that was shown.
    """
    approval: dict[str, Any] = {"decision": decision, "digest": str(_spec(promotion).get("digest") or "")}
    if comment:
        approval["comment"] = comment
    patch: dict[str, Any] = {"spec": {"approval": approval}}
    resource_version = (promotion.get("metadata") or {}).get("resourceVersion")
    if resource_version:
        patch["metadata"] = {"resourceVersion": resource_version}
    return patch


def promote_patch(version: str) -> dict[str, Any]:
    """Propose `version` by hand: the operator picks it up from the annotation."""
    return {"metadata": {"annotations": {PROMOTE_ANNOTATION: version}}}


def resume_patch(request_id: str, deployment: dict[str, Any] | None = None) -> dict[str, Any]:
    """Lift a hold: end a held rollback and ask the operator to resume, in one patch.

    Ending a rollback keeps what runs: spec.version becomes the running (rolled-back-to)
    version, so automation goes forward from there and never re-deploys the version a
    person rolled back from."""
    spec: dict[str, Any] = {"rollback": None}
    if deployment is not None and _spec(deployment).get("rollback"):
        running = running_version(_status(deployment))
        if running:
            spec["version"] = running
    return {"metadata": {"annotations": {RESUME_ANNOTATION: request_id}}, "spec": spec}


def change_text(promotion: dict[str, Any]) -> str:
    """`web prod 1.4.0 -> 1.5.0`."""
    spec = _spec(promotion)
    where = " ".join(str(spec.get(k)) for k in ("application", "target") if spec.get(k))
    change = f"{spec.get('fromVersion') or '(none)'} -> {spec.get('toVersion') or '?'}"
    return f"{where} {change}" if where else f"{spec.get('deployment') or '?'} {change}"


def decided_text(promotion: dict[str, Any]) -> str:
    """`Approved by alice` (`by` is missing only where the admission policy is not installed)."""
    approval = _spec(promotion).get("approval") or {}
    return f"{approval.get('decision') or 'decided'} by {approval.get('by') or 'someone'}"


def nothing_to_decide(
    application: str,
    target: str,
    deployment: dict[str, Any] | None,
    name: str,
    waiting: Sequence[dict[str, Any]],
    version: str | None,
    verb: str,
) -> str:
    """Why there is no Promotion to approve or reject, in the words of the operator if it has them."""
    head = f"nothing to {verb} for {application} {target}"
    if deployment is None:
        return f"{head}: no Deployment {name}"
    if version and waiting:
        others = ", ".join(sorted({str(_spec(p).get("toVersion")) for p in waiting}))
        return f"{head}: no open Promotion to version {version} (open: {others})"
    if not isinstance(_spec(deployment).get("promotion"), dict):
        return f"{head}: {name} has no promotion policy (spec.promotion)"
    message = str((_status(deployment).get("promotion") or {}).get("message") or "")
    if version:
        return f"{head}: no open Promotion to version {version}" + (f"; {message}" if message else "")
    return f"{head}: {message or 'no Promotion waits for a decision'}"


def promotion_view(promotion: dict[str, Any]) -> dict[str, Any]:
    """What -o json|yaml prints of a Promotion."""
    metadata = promotion.get("metadata") or {}
    return {
        "name": metadata.get("name", ""),
        "namespace": metadata.get("namespace", ""),
        "created": metadata.get("creationTimestamp", ""),
        "spec": _spec(promotion),
        "status": _status(promotion),
    }


def deployment_view(deployment: dict[str, Any]) -> dict[str, Any]:
    """What -o json|yaml prints of a Deployment (as `alecton deploy` does)."""
    metadata = deployment.get("metadata") or {}
    return {
        "name": metadata.get("name", ""),
        "namespace": metadata.get("namespace", ""),
        "spec": _spec(deployment),
        "status": _status(deployment),
    }


def promotion_rows(
    promotions: Iterable[dict[str, Any]], application: str | None = None, include_final: bool = False
) -> list[dict[str, Any]]:
    """The rows of `alecton promotions`: open ones (all with `include_final`), by application
    and target, newest first within each."""
    rows = []
    for promotion in _newest_first(promotions):
        spec = _spec(promotion)
        if application and spec.get("application") != application:
            continue
        if not include_final and not is_open(promotion):
            continue
        record = PromotionRecord.parse(promotion)
        rows.append(
            {
                "name": record.name,
                "application": str(spec.get("application") or ""),
                "target": str(spec.get("target") or ""),
                "from": record.from_version,
                "to": record.to_version,
                "state": record.effective_state,
                "approvedBy": record.decided_by,
                "created": record.created,
            }
        )
    return sorted(rows, key=lambda r: (r["application"], r["target"]))  # stable: newest first stays


def promotion_outcome(promotion: dict[str, Any]) -> WaitOutcome:
    """Has the operator finished with an approved Promotion? ok: it was applied."""
    state = PromotionRecord.parse(promotion).effective_state
    message = str(_status(promotion).get("message") or "")
    text = f"{_name(promotion)}: {state}" + (f": {message}" if message else "")
    if state == APPLIED:
        return WaitOutcome(True, True, text)
    if state in _FINAL_FAILED:
        return WaitOutcome(True, False, text)
    return WaitOutcome(False, message=f"{state}: {message or 'waiting for the operator'}")


def already_proposed(deployment: dict[str, Any], version: str) -> bool:
    """The operator already handled a by-hand proposal of `version` (status.promotion.promoteRequest):
    proposing it again changes nothing, as the operator never acts twice on one request."""
    handled = (_status(deployment).get("promotion") or {}).get("promoteRequest")
    return bool(version) and handled == version


def hold_of(deployment: dict[str, Any]) -> Hold | None:
    """The hold recorded in the Deployment's status.promotion, if any."""
    return Hold.parse((_status(deployment).get("promotion") or {}).get("hold"))


def resume_notes(deployment: dict[str, Any]) -> list[str]:
    """What else ending a held rollback does to spec.version."""
    spec = _spec(deployment)
    if not spec.get("rollback"):
        return []
    version = str(spec.get("version") or "")
    running = running_version(_status(deployment))
    if running and running != version:
        return [f"spec.rollback removed: spec.version is now {running} (what runs), not {version}"]
    return [f"spec.rollback removed: version {version or '(none)'} from spec.version is deployed again"]


def forbidden(action: str, right: str, error: ApiException, namespace: str) -> str:
    return f"{action} needs {right} in namespace {namespace!r}: {api_error_message(error)}"


# ---------------------------------------------------------------------------
# API work


async def decide(
    client: KubeClient,
    namespace: str,
    application: str,
    target: str,
    version: str | None,
    decision: str,
    comment: str = "",
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Approve or reject the open Promotion of `<application>-<target>`: (it, the other open ones)."""
    verb = "approve" if decision == APPROVE else "reject"
    try:
        deployment = await find_deployment(client, namespace, application, target)
        name = _name(deployment) if deployment else release_name(application, target)
        promotions = await client.list(
            "Promotion", namespace, field_selector=field_selector(**{"spec.deployment": name})
        )
        chosen, others = pick_open(promotions, name, version)
        if chosen is None and (decided := decided_open(promotions, name, version)) is not None:
            raise CliError(
                f"nothing to {verb} for {application} {target}: {_name(decided)} ({change_text(decided)}) "
                f"is already decided: {decided_text(decided)}",
                EXIT_CONFLICT,
            )
        if chosen is None:
            raise CliError(
                nothing_to_decide(application, target, deployment, name, others, version, verb),
                EXIT_NOT_FOUND,
            )
        for _ in range(_PATCH_ATTEMPTS):
            try:
                patch = decision_patch(chosen, decision, comment)
                return await client.patch("Promotion", namespace, _name(chosen), patch), others
            except ApiException as error:
                # 409: changed since read (resourceVersion); 422: the CRD refused, which for an
                # approval set by someone else in between is its immutability rule.
                if error.status not in (409, 422):
                    raise
                current = await client.get("Promotion", namespace, _name(chosen))
                if has_decision(current):
                    raise CliError(
                        f"{_name(current)} ({change_text(current)}) is already decided: "
                        f"{decided_text(current)}",
                        EXIT_CONFLICT,
                    ) from None
                if error.status == 422:
                    raise
                if not awaiting_decision(current):
                    outcome = promotion_outcome(current)
                    raise CliError(
                        f"{_name(current)} changed while deciding and is final now: {outcome.message}",
                        EXIT_CONFLICT,
                    ) from None
                chosen = current
        raise CliError(f"{_name(chosen)} kept changing while deciding; try again", EXIT_CONFLICT)
    except ApiException as error:
        if error.status == 403:
            raise CliError(
                forbidden(
                    f"{'approving' if decision == APPROVE else 'rejecting'} a promotion",
                    f"the `patch` right (and get, list) on promotions.alecton.dev, i.e. the "
                    f"{APPROVER_ROLE} ClusterRole bound to you there",
                    error,
                    namespace,
                )
            ) from None
        raise


# ---------------------------------------------------------------------------
# Commands

VersionOption = Annotated[
    str | None,
    typer.Option(
        "--version",
        metavar="<version>",
        help="Decide on the open Promotion to this version (default: the newest open one).",
    ),
]


def _note_others(others: Sequence[dict[str, Any]], verb: str) -> None:
    if others:
        versions = ", ".join(str(_spec(p).get("toVersion")) for p in others)
        typer.secho(
            f"note: {len(others)} more open Promotion(s) ({versions}); {verb} one with --version",
            err=True,
            fg=typer.colors.YELLOW,
        )


def approve(
    application: ApplicationArgument,
    target: TargetArgument,
    version: VersionOption = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Wait until the operator applies the promotion (exit 0), or it is superseded, "
            "rejected or fails (exit 1); shows the Promotion's state meanwhile.",
        ),
    ] = False,
    timeout: TimeoutOption = 300.0,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Approve the version change the operator proposes for APPLICATION on TARGET.

    Approves the open Promotion of the Deployment `<application>-<target>` (the newest, or
    the one to --version) for exactly the inputs it proposes: if they change, the operator
    proposes again. The API server records who approved. Needs the `patch` right on
    promotions.alecton.dev (the alecton-approver role).

    Exit codes: 0 approved (with --wait: applied); 1 with --wait: superseded, rejected or
    failed; 2 an API error or no right to approve; 3 nothing to approve; 4 already decided
    (by someone else, or by the operator for approval Automatic); 5 --wait timed out."""
    where = Target.of(kubeconfig, context, namespace)

    async def run(client: KubeClient) -> tuple[dict[str, Any], list[dict[str, Any]], Any, dict[str, Any]]:
        promotion, others = await decide(client, where.namespace, application, target, version, APPROVE)
        if not wait:
            return promotion, others, None, promotion
        _print_decided(promotion, "approved", output)
        _note_others(others, "approve")
        result, final = await wait_for(
            client,
            where.namespace,
            _name(promotion),
            promotion_outcome,
            timeout,
            f"Waiting for the operator to apply {change_text(promotion)}",
            kind="Promotion",
        )
        return promotion, [], result, final

    promotion, others, result, final = run_api(run, where, EXIT_DECIDE_ERROR)
    if result is None:
        _print_decided(promotion, "approved", output)
        _note_others(others, "approve")
        if output is not OutputFormat.table:
            emit(promotion_view(promotion), output)
        return
    if output is not OutputFormat.table:
        emit(promotion_view(final), output)
    else:
        typer.echo(result.message)
    if not result.ok:
        typer.secho("the promotion was not applied", err=True, fg=typer.colors.RED)
        raise typer.Exit(EXIT_ERROR)


def _print_decided(promotion: dict[str, Any], what: str, output: OutputFormat) -> None:
    """The decision in words: on stdout for tables, on stderr beside -o json|yaml."""
    err = output is not OutputFormat.table
    typer.echo(f"{what} {_name(promotion)}: {change_text(promotion)}", err=err)
    reason = _spec(promotion).get("reason")
    if reason:
        typer.echo(f"  reason: {reason}", err=err)


def reject(
    application: ApplicationArgument,
    target: TargetArgument,
    version: VersionOption = None,
    reason: Annotated[
        str,
        typer.Option("--reason", metavar="<text>", help="Why (kept in spec.approval.comment)."),
    ] = "",
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Reject the version change the operator proposes for APPLICATION on TARGET.

    Rejects the open Promotion of the Deployment `<application>-<target>` (the newest, or the
    one to --version); the operator does not propose that version with those inputs again.
    Needs the `patch` right on promotions.alecton.dev (the alecton-approver role).

    Exit codes: 0 rejected; 2 an API error or no right to reject; 3 nothing to reject;
    4 already decided."""
    where = Target.of(kubeconfig, context, namespace)
    promotion, others = run_api(
        lambda c: decide(c, where.namespace, application, target, version, REJECT, reason),
        where,
        EXIT_DECIDE_ERROR,
    )
    _print_decided(promotion, "rejected", output)
    _note_others(others, "reject")
    if output is not OutputFormat.table:
        emit(promotion_view(promotion), output)


def promotions(
    application: Annotated[
        str | None, typer.Argument(metavar="APPLICATION", help="Only this Application.")
    ] = None,
    show_all: Annotated[
        bool,
        typer.Option("--all", help="Also the decided ones: Applied, Superseded, Rejected, Failed."),
    ] = False,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List the version changes the operator proposed (Promotions) and their state.

    Without --all only the open ones (Pending, Approved), which `alecton approve` and
    `alecton reject` act on. With -o json|yaml: the objects' name, namespace, spec and status."""
    where = Target.of(kubeconfig, context, namespace)
    found = run_api(lambda c: c.list("Promotion", where.namespace), where)
    rows = promotion_rows(found, application, include_final=show_all)
    if output is not OutputFormat.table:
        by_name = {_name(p): p for p in found}
        emit([promotion_view(by_name[row["name"]]) for row in rows], output)
        return
    table(
        ["NAME", "APPLICATION", "TARGET", "FROM", "TO", "STATE", "APPROVED BY", "AGE"],
        [
            [
                *(r[key] for key in ("name", "application", "target", "from", "to", "state", "approvedBy")),
                age(r["created"] or None),
            ]
            for r in rows
        ],
    )
    if not rows and not show_all:
        typer.echo("no open promotions (--all shows the decided ones too)", err=True)


def promote(
    application: ApplicationArgument,
    target: Annotated[str, typer.Option("--to", metavar="<target>", help="The target to propose it for.")],
    version: Annotated[
        str | None,
        typer.Argument(
            metavar="VERSION", help="The version to propose (default: the one running on --from)."
        ),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option("--from", metavar="<target>", help="Propose the version that runs on this target."),
    ] = None,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Propose a version for a target with a promotion policy by hand.

    VERSION (default: the version running on --from) is proposed for --to as a Promotion,
    whatever the policy's versions say; it goes through approval like any other. The
    Deployment `<application>-<to>` needs spec.promotion (else use `alecton deploy`), and an
    Image of the application with that version must exist. With -o json|yaml: the
    Deployment's name, namespace, spec and status, and `proposedVersion`.

    Exit codes: 0 proposed; 1 an API error; 2 wrong usage; 3 no such Deployment, no
    promotion policy, or no Image with that version; 4 that version was already proposed by
    hand and handled."""
    if not version and not source:
        fail("give VERSION, or --from TARGET to propose the version running there", EXIT_USAGE)
    if source == target:
        fail(f"--from and --to are both {target!r}: name two targets", EXIT_USAGE)
    where = Target.of(kubeconfig, context, namespace)

    async def run(client: KubeClient) -> tuple[dict[str, Any], str, str]:
        deployment = await require_deployment(client, where.namespace, application, target)
        name = _name(deployment)
        if not isinstance(_spec(deployment).get("promotion"), dict):
            raise CliError(
                f"{name} has no promotion policy (spec.promotion); "
                f"use alecton deploy {application} {target} VERSION",
                EXIT_NOT_FOUND,
            )
        chosen, origin = version or "", "given"
        if not chosen:
            assert source is not None
            from_deployment = await require_deployment(client, where.namespace, application, source)
            chosen = running_version(_status(from_deployment))
            if not chosen:
                raise CliError(
                    f"no known version runs on {application} {source} (nothing deployed there, or a "
                    "release alecton did not make); name the VERSION",
                    EXIT_NOT_FOUND,
                )
            origin = f"running on {source}"
        app = await client.get("Application", where.namespace, application)
        image_name = str(_spec(app).get("image") or "")
        selector = field_selector(**{"spec.name": image_name, "spec.version": chosen})
        images = [
            i
            for i in await client.list("Image", where.namespace, field_selector=selector)
            if _spec(i).get("name") == image_name and _spec(i).get("version") == chosen
        ]
        if not images:
            raise CliError(
                f"no Image {image_name!r} with version {chosen!r} in namespace {where.namespace!r}",
                EXIT_NOT_FOUND,
            )
        if already_proposed(deployment, chosen):
            raise CliError(
                f"version {chosen} was proposed by hand for {name} before and the operator has "
                f"handled it; it is not proposed twice (see `alecton promotions {application} --all`)",
                EXIT_CONFLICT,
            )
        try:
            patched = await client.patch("Deployment", where.namespace, name, promote_patch(chosen))
        except ApiException as error:
            if error.status == 403:
                raise CliError(
                    forbidden(
                        "proposing a version",
                        "the `patch` right on deployments.alecton.dev",
                        error,
                        where.namespace,
                    )
                ) from None
            raise
        return patched, chosen, origin

    deployment, chosen, origin = run_api(run, where)
    if output is not OutputFormat.table:
        emit({**deployment_view(deployment), "proposedVersion": chosen}, output)
    else:
        policy = (_status(deployment).get("promotion") or {}).get("policy")
        typer.echo(
            f"proposed version {chosen} ({origin}) for {application} {target}: the operator proposes "
            f"it as a Promotion{f' (policy: {policy})' if policy else ''}; "
            f"see it with `alecton promotions {application}`"
        )
    hold = hold_of(deployment)
    if hold is not None:
        typer.secho(
            f"note: promotion of {application} {target} is held ({hold.describe()}): nothing is "
            f"proposed until `alecton resume {application} {target}`",
            err=True,
            fg=typer.colors.YELLOW,
        )


def resume(
    application: ApplicationArgument,
    target: TargetArgument,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Let the operator choose the version of APPLICATION on TARGET again after a hold.

    A rollback someone asked for, or a version set by hand, holds promotion. Resuming removes
    spec.rollback (so the version in spec.version is deployed again) and asks the operator to
    take spec.version as its new starting point. Prints the hold that was lifted; exits 0
    also when nothing was held. With -o json|yaml: the Deployment's name, namespace, spec and
    status, and `liftedHold`."""
    where = Target.of(kubeconfig, context, namespace)

    async def run(client: KubeClient) -> tuple[dict[str, Any], dict[str, Any]]:
        before = await require_deployment(client, where.namespace, application, target)
        try:
            after = await client.patch(
                "Deployment", where.namespace, _name(before), resume_patch(uuid.uuid4().hex, before)
            )
        except ApiException as error:
            if error.status == 403:
                raise CliError(
                    forbidden(
                        "resuming", "the `patch` right on deployments.alecton.dev", error, where.namespace
                    )
                ) from None
            raise
        return before, after

    before, after = run_api(run, where)
    hold = hold_of(before)
    if output is not OutputFormat.table:
        emit({**deployment_view(after), "liftedHold": hold.as_status() if hold else None}, output)
    elif hold is not None:
        typer.echo(f"resumed {application} {target}: lifted the hold ({hold.describe()})")
    elif not isinstance(_spec(before).get("promotion"), dict):
        typer.echo(f"{application} {target} was not held: it has no promotion policy (spec.promotion)")
    else:
        typer.echo(f"{application} {target} was not held; the operator goes on choosing its version")
    for note in resume_notes(before):
        typer.secho(f"note: {note}", err=True, fg=typer.colors.YELLOW)


def register(app: typer.Typer) -> None:
    app.command("approve")(handle_errors(approve, EXIT_DECIDE_ERROR))
    app.command("reject")(handle_errors(reject, EXIT_DECIDE_ERROR))
    for command in (promotions, promote, resume):
        app.command(command.__name__)(handle_errors(command))
