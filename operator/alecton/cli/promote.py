"""`alecton approve`, `reject`, `promotions`, `promote` and `resume`: a person's part in promotion.

Which Promotion is open, the patches and the API work are `service/promotion_rules.py` and
`service/promotions.py`; these commands show what they did.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import typer

from alecton.cli.deploy import ApplicationArgument, TargetArgument, TimeoutOption, wait_for
from alecton.cli.output import EXIT_ERROR, EXIT_USAGE, OutputFormat, age, emit, fail, table
from alecton.cli.session import (
    ContextOption,
    KubeconfigOption,
    NamespaceOption,
    OutputOption,
    handle_errors,
    run_api,
)
from alecton.kube.client import KubeClient
from alecton.reconcile.promotion_records import APPROVE, REJECT
from alecton.service.promotion_rules import (
    change_text,
    hold_of,
    promotion_outcome,
    promotion_rows,
    resume_notes,
)
from alecton.service.promotions import propose_version, resume_automation, settle_promotion
from alecton.service.resources import name_of, spec_of, status_of
from alecton.service.session import Target

# approve and reject keep exit 1 for "the promotion did not go through" (approve --wait):
# their errors are 2 or more, as `alecton diff`'s are.
EXIT_DECIDE_ERROR = 2


def promotion_view(promotion: dict[str, Any]) -> dict[str, Any]:
    """What -o json|yaml prints of a Promotion."""
    metadata = promotion.get("metadata") or {}
    return {
        "name": metadata.get("name", ""),
        "namespace": metadata.get("namespace", ""),
        "created": metadata.get("creationTimestamp", ""),
        "spec": spec_of(promotion),
        "status": status_of(promotion),
    }


def deployment_view(deployment: dict[str, Any]) -> dict[str, Any]:
    """What -o json|yaml prints of a Deployment (as `alecton deploy` does)."""
    metadata = deployment.get("metadata") or {}
    return {
        "name": metadata.get("name", ""),
        "namespace": metadata.get("namespace", ""),
        "spec": spec_of(deployment),
        "status": status_of(deployment),
    }


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
        versions = ", ".join(str(spec_of(p).get("toVersion")) for p in others)
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
        promotion, others = await settle_promotion(
            client, where.namespace, application, target, version, APPROVE
        )
        if not wait:
            return promotion, others, None, promotion
        _print_decided(promotion, "approved", output)
        _note_others(others, "approve")
        result, final = await wait_for(
            client,
            where.namespace,
            name_of(promotion),
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
    typer.echo(f"{what} {name_of(promotion)}: {change_text(promotion)}", err=err)
    reason = spec_of(promotion).get("reason")
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
        lambda c: settle_promotion(c, where.namespace, application, target, version, REJECT, reason),
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
        by_name = {name_of(p): p for p in found}
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
    proposal = run_api(
        lambda c: propose_version(c, where.namespace, application, target, version, source), where
    )
    deployment, chosen, origin = proposal.deployment, proposal.version, proposal.origin
    if output is not OutputFormat.table:
        emit({**deployment_view(deployment), "proposedVersion": chosen}, output)
    else:
        policy = (status_of(deployment).get("promotion") or {}).get("policy")
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
    before, after = run_api(lambda c: resume_automation(c, where.namespace, application, target), where)
    hold = hold_of(before)
    if output is not OutputFormat.table:
        emit({**deployment_view(after), "liftedHold": hold.as_status() if hold else None}, output)
    elif hold is not None:
        typer.echo(f"resumed {application} {target}: lifted the hold ({hold.describe()})")
    elif not isinstance(spec_of(before).get("promotion"), dict):
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
