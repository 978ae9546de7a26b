"""`alecton approve`, `reject`, `promotions`, `promote` and `resume`: the pure decisions, and
the commands against a fake API server (the real `run_api`, with `Target.client` faked)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from alecton.cli import deploy
from alecton.cli.main import app
from alecton.kube.client import ApiException
from alecton.reconcile.promotion_choice import PROMOTE_ANNOTATION
from alecton.reconcile.promotion_hold import RESUME_ANNOTATION
from alecton.service import session
from alecton.service.outcomes import WaitOutcome
from alecton.service.promotion_rules import (
    awaiting_decision,
    awaiting_operator,
    change_text,
    decision_patch,
    nothing_to_decide,
    pick_open,
    promote_patch,
    promotion_outcome,
    promotion_rows,
    resume_notes,
    resume_patch,
)
from alecton.service.session import Target
from typer.testing import CliRunner

NS = "team"


def promotion(
    name: str,
    to: str,
    *,
    created: str = "2030-01-01T10:00:00Z",
    state: str | None = "Pending",
    approval: dict[str, Any] | None = None,
    deployment: str = "web-prod",
    application: str = "web",
    target: str = "prod",
    message: str = "",
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "deployment": deployment,
        "application": application,
        "target": target,
        "fromVersion": "1.4.0",
        "toVersion": to,
        "reason": f"{to} has been healthy on staging for 12m (soak 10m)",
        "digest": f"digest-{to}",
    }
    if approval is not None:
        spec["approval"] = approval
    status = {"state": state, "message": message} if state else {}
    return {
        "apiVersion": "alecton.dev/v1alpha1",
        "kind": "Promotion",
        "metadata": {"name": name, "namespace": NS, "creationTimestamp": created, "resourceVersion": "1"},
        "spec": spec,
        "status": status,
    }


POLICY = {"versions": {"semver": ">=1.4.0 <2"}, "from": "staging", "soak": "10m", "approval": "Manual"}


def deployment(
    name: str = "web-prod",
    target: str = "prod",
    *,
    policy: dict[str, Any] | None = POLICY,
    promotion_status: dict[str, Any] | None = None,
    history: list[dict[str, Any]] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    body_spec: dict[str, Any] = {"application": "web", "target": target, "version": "1.4.0", **spec}
    if policy is not None:
        body_spec["promotion"] = policy
    status: dict[str, Any] = {"phase": "Deployed", "history": history or []}
    if promotion_status is not None:
        status["promotion"] = promotion_status
    return {
        "metadata": {"name": name, "namespace": NS, "resourceVersion": "1", "annotations": {}},
        "spec": body_spec,
        "status": status,
    }


# ---------------------------------------------------------------------------
# Pure decisions


def test_the_newest_promotion_awaiting_a_decision_is_picked() -> None:
    old = promotion("old", "1.5.0", created="2030-01-01T09:00:00Z")
    new = promotion("new", "1.6.0", created="2030-01-01T10:00:00Z")
    chosen, others = pick_open([old, new], "web-prod")
    assert chosen is new and others == [old]
    chosen, others = pick_open([old, new], "web-prod", version="1.5.0")
    assert chosen is old and others == [new]


@pytest.mark.parametrize(
    ("candidate", "open_"),
    [
        (promotion("p", "1.5.0", state=None), True),  # no state written yet: Pending
        (promotion("p", "1.5.0", state="Pending"), True),
        (promotion("p", "1.5.0", state="Approved"), True),  # Approved without a decision
        (promotion("p", "1.5.0", approval={"decision": "Approved", "digest": "digest-1.5.0"}), False),
        (promotion("p", "1.5.0", state="Approved", approval={"decision": "Approved", "digest": "x"}), False),
        (promotion("p", "1.5.0", state="Superseded"), False),
        (promotion("p", "1.5.0", state="Applied"), False),
        (promotion("p", "1.5.0", state="Rejected"), False),
        (promotion("p", "1.5.0", state="Failed"), False),
    ],
)
def test_only_open_undecided_promotions_await_a_decision(candidate: dict[str, Any], open_: bool) -> None:
    assert awaiting_decision(candidate) is open_
    assert (pick_open([candidate], "web-prod")[0] is candidate) is open_


def test_promotions_of_other_deployments_are_not_picked() -> None:
    other = promotion("other", "1.5.0", deployment="web-staging")
    assert pick_open([other], "web-prod") == (None, [])
    # With --version and no match, the ones that wait are returned to name them.
    mine = promotion("mine", "1.6.0")
    assert pick_open([mine, other], "web-prod", version="9.9.9") == (None, [mine])


def test_the_decision_patch_names_the_digest_and_the_version_read_never_who() -> None:
    p = promotion("p", "1.5.0")
    assert decision_patch(p, "Approved") == {
        "spec": {"approval": {"decision": "Approved", "digest": "digest-1.5.0"}},
        "metadata": {"resourceVersion": "1"},
    }
    patch = decision_patch(p, "Rejected", "breaks checkout")
    assert patch["spec"]["approval"] == {
        "decision": "Rejected",
        "digest": "digest-1.5.0",
        "comment": "breaks checkout",
    }
    del p["metadata"]["resourceVersion"]
    assert "metadata" not in decision_patch(p, "Approved")


def test_annotation_patches() -> None:
    assert promote_patch("1.5.0") == {"metadata": {"annotations": {PROMOTE_ANNOTATION: "1.5.0"}}}
    assert resume_patch("abc") == {
        "metadata": {"annotations": {RESUME_ANNOTATION: "abc"}},
        "spec": {"rollback": None},
    }


def test_rows_are_open_by_default_and_grouped_newest_first() -> None:
    found = [
        promotion("web-prod-a", "1.5.0", created="2030-01-01T09:00:00Z", state="Superseded"),
        promotion("web-prod-b", "1.6.0", created="2030-01-01T10:00:00Z"),
        promotion(
            "web-prod-c",
            "1.6.1",
            created="2030-01-01T11:00:00Z",
            state="Applied",
            approval={"decision": "Approved", "digest": "digest-1.6.1", "by": "alice"},
        ),
        promotion("api-prod-a", "2.0.0", deployment="api-prod", application="api"),
    ]
    assert [r["name"] for r in promotion_rows(found)] == ["api-prod-a", "web-prod-b"]
    rows = promotion_rows(found, "web", include_final=True)
    assert [r["name"] for r in rows] == ["web-prod-c", "web-prod-b", "web-prod-a"]
    assert rows[0] == {
        "name": "web-prod-c",
        "application": "web",
        "target": "prod",
        "from": "1.4.0",
        "to": "1.6.1",
        "state": "Applied",
        "approvedBy": "alice",
        "created": "2030-01-01T11:00:00Z",
    }


@pytest.mark.parametrize(
    ("state", "outcome"),
    [
        ("Applied", WaitOutcome(True, True, "p: Applied: done")),
        ("Superseded", WaitOutcome(True, False, "p: Superseded: done")),
        ("Rejected", WaitOutcome(True, False, "p: Rejected: done")),
        ("Failed", WaitOutcome(True, False, "p: Failed: done")),
        ("Pending", WaitOutcome(False, message="Pending: done")),
        ("Approved", WaitOutcome(False, message="Approved: done")),
    ],
)
def test_wait_outcomes(state: str, outcome: WaitOutcome) -> None:
    assert promotion_outcome(promotion("p", "1.5.0", state=state, message="done")) == outcome


def test_nothing_to_decide_says_why() -> None:
    dep = deployment(promotion_status={"message": "1.5.0 is healthy on staging; soak 10m ends in 3m"})
    assert (
        nothing_to_decide("web", "prod", dep, "web-prod", [], None, "approve")
        == "nothing to approve for web prod: 1.5.0 is healthy on staging; soak 10m ends in 3m"
    )
    assert "no Deployment web-prod" in nothing_to_decide("web", "prod", None, "web-prod", [], None, "approve")
    no_policy = nothing_to_decide("web", "prod", deployment(policy=None), "web-prod", [], None, "reject")
    assert no_policy == "nothing to reject for web prod: web-prod has no promotion policy (spec.promotion)"
    waiting = [promotion("p", "1.6.0")]
    assert "no open Promotion to version 1.5.0 (open: 1.6.0)" in nothing_to_decide(
        "web", "prod", dep, "web-prod", waiting, "1.5.0", "approve"
    )


def test_resume_keeps_the_rolled_back_version_running() -> None:
    history = [{"revision": 3, "status": "deployed", "version": "1.4.0"}]
    held = deployment(version="1.5.0", rollback={"revision": 1, "requestId": "r"}, history=history)
    assert resume_notes(held) == ["spec.rollback removed: spec.version is now 1.4.0 (what runs), not 1.5.0"]
    assert resume_patch("abc", held)["spec"] == {"rollback": None, "version": "1.4.0"}
    assert resume_notes(deployment()) == []


def test_change_text() -> None:
    assert change_text(promotion("p", "1.5.0")) == "web prod 1.4.0 -> 1.5.0"


# ---------------------------------------------------------------------------
# The commands, against a fake API server


def api_error(status: int, message: str) -> ApiException:
    error = ApiException(status=status, reason=message)
    error.body = json.dumps({"kind": "Status", "message": message, "code": status})
    return error


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(result.get(key), value)
    return result


class FakeKube:
    """Custom objects by (kind, name) in one namespace; merge patches with a resourceVersion
    precondition, the Promotion CRD's approval rules and the admission policy's `by`."""

    def __init__(self, *objects: tuple[str, dict[str, Any]], user: str = "alice") -> None:
        self.objects = {(kind, obj["metadata"]["name"]): copy.deepcopy(obj) for kind, obj in objects}
        self.user = user
        self.patches: list[tuple[str, str, dict[str, Any]]] = []
        self.lists: list[tuple[str, str]] = []
        self.fail: dict[tuple[str, str], ApiException] = {}  # (verb, kind) -> error, once
        self.before_patch: Callable[[FakeKube], None] | None = None
        self.on_get: Callable[[FakeKube, dict[str, Any]], None] | None = None

    def _raise(self, verb: str, kind: str) -> None:
        if (verb, kind) in self.fail:
            raise self.fail.pop((verb, kind))

    async def close(self) -> None:
        pass

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        self._raise("get", kind)
        if (kind, name) not in self.objects:
            raise api_error(404, f'{kind.lower()}s.alecton.dev "{name}" not found')
        obj = self.objects[(kind, name)]
        if self.on_get:
            self.on_get(self, obj)
        return copy.deepcopy(obj)

    async def list(
        self, kind: str, namespace: str | None, field_selector: str = "", label_selector: str = ""
    ) -> list[dict[str, Any]]:
        self._raise("list", kind)
        self.lists.append((kind, field_selector))
        wanted = [term.split("=", 1) for term in field_selector.split(",") if term]

        def value(obj: dict[str, Any], path: str) -> Any:
            for part in path.split("."):
                obj = (obj or {}).get(part)  # type: ignore[assignment]
            return obj

        return [
            copy.deepcopy(obj)
            for (k, _), obj in self.objects.items()
            if k == kind and all(str(value(obj, path)) == v for path, v in wanted)
        ]

    async def patch(self, kind: str, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self._raise("patch", kind)
        if self.before_patch:
            self.before_patch(self)
        self.patches.append((kind, name, copy.deepcopy(patch)))
        old = self.objects[(kind, name)]
        expected = (patch.get("metadata") or {}).get("resourceVersion")
        if expected and expected != old["metadata"]["resourceVersion"]:
            raise api_error(
                409, "the object has been modified; please apply your changes to the latest version"
            )
        new = merge(old, patch)
        if kind == "Promotion":
            old_approval, approval = old["spec"].get("approval"), new["spec"].get("approval")
            if old_approval is None and approval is not None:
                approval["by"] = self.user  # the MutatingAdmissionPolicy
            if old_approval is not None and approval != old_approval:
                raise api_error(422, "spec.approval: Invalid value: the approval is already decided")
        new["metadata"]["resourceVersion"] = str(int(old["metadata"]["resourceVersion"]) + 1)
        self.objects[(kind, name)] = new
        return copy.deepcopy(new)

    def set_state(self, name: str, state: str, message: str = "") -> None:
        obj = self.objects[("Promotion", name)]
        obj["status"] = {"state": state, "message": message}
        obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)


@pytest.fixture(autouse=True)
def no_kubeconfig(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setattr(session, "current_namespace", lambda kubeconfig, context: "context-namespace")
    monkeypatch.setattr(deploy, "_POLL_SECONDS", 0.01)


@pytest.fixture
def use(monkeypatch: pytest.MonkeyPatch) -> Callable[[FakeKube], FakeKube]:
    def install(kube: FakeKube) -> FakeKube:
        async def client(self: Target) -> FakeKube:
            assert self.namespace == NS
            return kube

        monkeypatch.setattr(Target, "client", client)
        return kube

    return install


def alecton(*args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(app, [*args, "-n", NS])
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result


def test_approve_patches_the_newest_open_promotion_for_its_digest(use: Callable) -> None:
    kube = use(
        FakeKube(
            ("Deployment", deployment()),
            ("Promotion", promotion("web-prod-1-5-0", "1.5.0", created="2030-01-01T09:00:00Z")),
            ("Promotion", promotion("web-prod-1-6-0", "1.6.0", created="2030-01-01T10:00:00Z")),
            ("Promotion", promotion("web-staging-1-6-0", "1.6.0", deployment="web-staging")),
        )
    )
    result = alecton("approve", "web", "prod")
    assert kube.patches == [
        (
            "Promotion",
            "web-prod-1-6-0",
            {
                "spec": {"approval": {"decision": "Approved", "digest": "digest-1.6.0"}},
                "metadata": {"resourceVersion": "1"},
            },
        )
    ]
    assert ("Promotion", "spec.deployment=web-prod") in kube.lists
    assert result.stdout.splitlines() == [
        "approved web-prod-1-6-0: web prod 1.4.0 -> 1.6.0",
        "  reason: 1.6.0 has been healthy on staging for 12m (soak 10m)",
    ]
    assert "1 more open Promotion(s) (1.5.0); approve one with --version" in result.stderr


def test_approve_a_given_version_and_print_the_object(use: Callable) -> None:
    kube = use(
        FakeKube(
            ("Deployment", deployment()),
            ("Promotion", promotion("web-prod-1-5-0", "1.5.0", created="2030-01-01T09:00:00Z")),
            ("Promotion", promotion("web-prod-1-6-0", "1.6.0", created="2030-01-01T10:00:00Z")),
        )
    )
    result = alecton("approve", "web", "prod", "--version", "1.5.0", "-o", "json")
    shown = json.loads(result.stdout)
    assert shown["name"] == "web-prod-1-5-0"
    assert shown["spec"]["approval"] == {"decision": "Approved", "digest": "digest-1.5.0", "by": "alice"}
    assert [name for _, name, _ in kube.patches] == ["web-prod-1-5-0"]
    assert "approved web-prod-1-5-0" in result.stderr


def test_nothing_to_approve_exits_3_with_the_operators_message(use: Callable) -> None:
    dep = deployment(promotion_status={"message": "at 1.4.0, the version healthy on staging; nothing newer"})
    kube = use(
        FakeKube(
            ("Deployment", dep),
            ("Promotion", promotion("done", "1.4.0", state="Applied")),
            (
                "Promotion",
                promotion(
                    "decided",
                    "1.5.0",
                    state="Rejected",
                    approval={"decision": "Rejected", "digest": "digest-1.5.0"},
                ),
            ),
        )
    )
    result = alecton("approve", "web", "prod", code=3)
    assert (
        "nothing to approve for web prod: at 1.4.0, the version healthy on staging; nothing newer"
        in result.stderr
    )
    assert kube.patches == []


def test_a_decision_the_operator_has_not_acted_on_yet_is_named(use: Callable) -> None:
    decided = promotion(
        "p", "1.5.0", approval={"decision": "Rejected", "digest": "digest-1.5.0", "by": "carol"}
    )
    kube = use(
        FakeKube(("Deployment", deployment(promotion_status={"message": "stale"})), ("Promotion", decided))
    )
    result = alecton("approve", "web", "prod", code=4)
    assert (
        "nothing to approve for web prod: p (web prod 1.4.0 -> 1.5.0) is already decided: Rejected by carol"
        in (result.stderr)
    )
    assert kube.patches == []
    assert awaiting_operator([decided], "web-prod", "1.6.0") is None


def test_approving_without_the_right_says_which_right(use: Callable) -> None:
    kube = use(FakeKube(("Deployment", deployment()), ("Promotion", promotion("p", "1.5.0"))))
    kube.fail[("patch", "Promotion")] = api_error(
        403, 'promotions.alecton.dev "p" is forbidden: User "bob" cannot patch resource "promotions"'
    )
    result = alecton("approve", "web", "prod", code=2)
    assert "the `patch` right" in result.stderr and "promotions.alecton.dev" in result.stderr
    assert "alecton-approver" in result.stderr and 'User "bob" cannot patch' in result.stderr


def test_approving_what_someone_else_just_decided_says_who(use: Callable) -> None:
    kube = use(FakeKube(("Deployment", deployment()), ("Promotion", promotion("p", "1.5.0"))))

    def carol_rejects_first(kube: FakeKube) -> None:
        kube.before_patch = None
        obj = kube.objects[("Promotion", "p")]
        obj["spec"]["approval"] = {"decision": "Rejected", "digest": "digest-1.5.0", "by": "carol"}
        obj["metadata"]["resourceVersion"] = "2"

    kube.before_patch = carol_rejects_first
    result = alecton("approve", "web", "prod", code=4)
    assert "p (web prod 1.4.0 -> 1.5.0) is already decided: Rejected by carol" in result.stderr


def test_the_immutability_rule_of_the_crd_is_reported_as_already_decided(use: Callable) -> None:
    p = promotion("p", "1.5.0")
    del p["metadata"]["resourceVersion"]  # no precondition: the CRD's rule refuses (422)
    kube = use(FakeKube(("Deployment", deployment()), ("Promotion", p)))

    def bob_rejects_first(kube: FakeKube) -> None:
        kube.before_patch = None
        kube.objects[("Promotion", "p")]["spec"]["approval"] = {
            "decision": "Rejected",
            "digest": "digest-1.5.0",
            "by": "bob",
        }
        kube.objects[("Promotion", "p")]["metadata"]["resourceVersion"] = "2"

    kube.before_patch = bob_rejects_first
    assert "already decided: Rejected by bob" in alecton("approve", "web", "prod", code=4).stderr


def test_a_state_change_in_between_is_retried_on_the_new_version(use: Callable) -> None:
    kube = use(FakeKube(("Deployment", deployment()), ("Promotion", promotion("p", "1.5.0"))))

    def operator_writes_state(kube: FakeKube) -> None:
        kube.before_patch = None
        kube.set_state("p", "Pending", "waits for approval: alecton approve web prod")

    kube.before_patch = operator_writes_state
    alecton("approve", "web", "prod")
    assert [p[2]["metadata"]["resourceVersion"] for p in kube.patches] == ["1", "2"]
    assert kube.objects[("Promotion", "p")]["spec"]["approval"]["by"] == "alice"


def test_a_promotion_superseded_in_between_is_not_approved(use: Callable) -> None:
    kube = use(FakeKube(("Deployment", deployment()), ("Promotion", promotion("p", "1.5.0"))))

    def operator_supersedes(kube: FakeKube) -> None:
        kube.before_patch = None
        kube.set_state("p", "Superseded", "superseded by 1.6.0")

    kube.before_patch = operator_supersedes
    result = alecton("approve", "web", "prod", code=4)
    assert "final now: p: Superseded: superseded by 1.6.0" in result.stderr
    assert "approval" not in kube.objects[("Promotion", "p")]["spec"]


@pytest.mark.parametrize(
    ("final", "code"), [("Applied", 0), ("Superseded", 1), ("Rejected", 1), ("Failed", 1)]
)
def test_approve_wait_follows_the_promotion_to_its_final_state(use: Callable, final: str, code: int) -> None:
    kube = use(FakeKube(("Deployment", deployment()), ("Promotion", promotion("p", "1.5.0"))))
    gets = []

    def operator(kube: FakeKube, obj: dict[str, Any]) -> None:
        gets.append(obj["status"].get("state"))
        if len(gets) == 1:
            obj["status"] = {"state": "Approved", "message": "approved; deploying"}
        elif len(gets) == 3:
            obj["status"] = {"state": final, "message": "the operator's words"}

    kube.on_get = operator
    result = alecton("approve", "web", "prod", "--wait", code=code)
    assert result.stdout.splitlines()[-1] == f"p: {final}: the operator's words"
    if code:
        assert "the promotion was not applied" in result.stderr


def test_approve_wait_times_out_with_exit_5(use: Callable) -> None:
    use(FakeKube(("Deployment", deployment()), ("Promotion", promotion("p", "1.5.0"))))
    result = alecton("approve", "web", "prod", "--wait", "--timeout", "1", code=5)
    assert "timed out after 1 s" in result.stderr and "last state: Pending" in result.stderr


def test_reject_keeps_the_reason(use: Callable) -> None:
    kube = use(FakeKube(("Deployment", deployment()), ("Promotion", promotion("p", "1.5.0"))))
    result = alecton("reject", "web", "prod", "--reason", "breaks checkout")
    assert kube.objects[("Promotion", "p")]["spec"]["approval"] == {
        "decision": "Rejected",
        "digest": "digest-1.5.0",
        "comment": "breaks checkout",
        "by": "alice",
    }
    assert result.stdout.startswith("rejected p: web prod 1.4.0 -> 1.5.0")


def test_reject_without_a_deployment_exits_3(use: Callable) -> None:
    use(FakeKube())
    assert (
        "nothing to reject for web prod: no Deployment web-prod"
        in alecton("reject", "web", "prod", code=3).stderr
    )


def test_promotions_table_and_objects(use: Callable) -> None:
    use(
        FakeKube(
            (
                "Promotion",
                promotion("web-prod-a", "1.5.0", state="Superseded", created="2030-01-01T09:00:00Z"),
            ),
            (
                "Promotion",
                promotion(
                    "web-prod-b",
                    "1.6.0",
                    state="Approved",
                    approval={"decision": "Approved", "digest": "digest-1.6.0", "by": "alice"},
                ),
            ),
            ("Promotion", promotion("api-prod-a", "2.0.0", application="api", deployment="api-prod")),
        )
    )
    header, *rows = alecton("promotions", "web").stdout.splitlines()
    assert header.split() == ["NAME", "APPLICATION", "TARGET", "FROM", "TO", "STATE", "APPROVED", "BY", "AGE"]
    assert [row.split()[:7] for row in rows] == [
        ["web-prod-b", "web", "prod", "1.4.0", "1.6.0", "Approved", "alice"]
    ]
    assert len(alecton("promotions", "--all").stdout.splitlines()) == 4
    shown = json.loads(alecton("promotions", "web", "--all", "-o", "json").stdout)
    assert [p["name"] for p in shown] == ["web-prod-b", "web-prod-a"]  # as the table: newest first
    assert set(shown[0]) == {"name", "namespace", "created", "spec", "status"}


def test_no_open_promotions_says_how_to_see_the_others(use: Callable) -> None:
    use(FakeKube(("Promotion", promotion("p", "1.5.0", state="Applied"))))
    result = alecton("promotions")
    header = ["NAME", "APPLICATION", "TARGET", "FROM", "TO", "STATE", "APPROVED", "BY", "AGE"]
    assert result.stdout.split() == header and "--all" in result.stderr


def image(version: str) -> dict[str, Any]:
    return {
        "metadata": {"name": f"web-{version}"},
        "spec": {"name": "web", "version": version, "image": "r/w"},
    }


def application() -> dict[str, Any]:
    return {"metadata": {"name": "web"}, "spec": {"image": "web", "targets": []}}


def staging(running: str = "1.5.0") -> dict[str, Any]:
    history = [{"revision": 2, "status": "deployed", "version": running}] if running else []
    return deployment("web-staging", "staging", policy=None, history=history, version="1.6.0")


def test_promote_proposes_the_version_running_on_the_source(use: Callable) -> None:
    kube = use(
        FakeKube(
            ("Deployment", deployment(promotion_status={"policy": "semver >=1.4.0 <2 from staging"})),
            ("Deployment", staging("1.5.0")),
            ("Application", application()),
            ("Image", image("1.5.0")),
            ("Image", image("1.6.0")),
        )
    )
    result = alecton("promote", "web", "--from", "staging", "--to", "prod")
    assert kube.patches == [("Deployment", "web-prod", promote_patch("1.5.0"))]
    assert ("Image", "spec.name=web,spec.version=1.5.0") in kube.lists
    assert "proposed version 1.5.0 (running on staging) for web prod" in result.stdout
    assert "alecton promotions web" in result.stdout


def test_promote_a_given_version_without_a_source(use: Callable) -> None:
    kube = use(
        FakeKube(("Deployment", deployment()), ("Application", application()), ("Image", image("1.6.0")))
    )
    shown = json.loads(alecton("promote", "web", "1.6.0", "--to", "prod", "-o", "json").stdout)
    assert shown["proposedVersion"] == "1.6.0"
    assert shown["name"] == "web-prod"
    assert kube.objects[("Deployment", "web-prod")]["metadata"]["annotations"] == {
        PROMOTE_ANNOTATION: "1.6.0"
    }


def test_promote_refuses_a_target_without_a_policy(use: Callable) -> None:
    kube = use(
        FakeKube(
            ("Deployment", deployment(policy=None)), ("Application", application()), ("Image", image("1.6.0"))
        )
    )
    result = alecton("promote", "web", "1.6.0", "--to", "prod", code=3)
    assert (
        "web-prod has no promotion policy (spec.promotion); use alecton deploy web prod VERSION"
        in result.stderr
    )
    assert kube.patches == []


def test_promote_refuses_a_version_without_an_image(use: Callable) -> None:
    kube = use(
        FakeKube(("Deployment", deployment()), ("Application", application()), ("Image", image("1.6.0")))
    )
    result = alecton("promote", "web", "1.7.0", "--to", "prod", code=3)
    assert "no Image 'web' with version '1.7.0'" in result.stderr
    assert kube.patches == []


def test_promote_when_nothing_known_runs_on_the_source(use: Callable) -> None:
    use(FakeKube(("Deployment", deployment()), ("Deployment", staging("")), ("Application", application())))
    result = alecton("promote", "web", "--from", "staging", "--to", "prod", code=3)
    assert "no known version runs on web staging" in result.stderr


def test_promote_does_not_claim_a_proposal_the_operator_ignores(use: Callable) -> None:
    handled = deployment(promotion_status={"promoteRequest": "1.6.0"})
    kube = use(FakeKube(("Deployment", handled), ("Application", application()), ("Image", image("1.6.0"))))
    result = alecton("promote", "web", "1.6.0", "--to", "prod", code=4)
    assert "proposed by hand for web-prod before" in result.stderr
    assert kube.patches == []


def test_promote_notes_a_hold(use: Callable) -> None:
    hold = {"reason": "Rollback", "by": "kubectl", "since": "2030-01-01T10:00:00Z", "version": "1.5.0"}
    use(
        FakeKube(
            ("Deployment", deployment(promotion_status={"hold": hold})),
            ("Application", application()),
            ("Image", image("1.6.0")),
        )
    )
    result = alecton("promote", "web", "1.6.0", "--to", "prod")
    assert "is held (rollback requested by kubectl since 2030-01-01T10:00:00Z)" in result.stderr
    assert "alecton resume web prod" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["promote", "web", "--from", "staging"], "Missing option '--to'"),
        (["promote", "web", "--to", "prod"], "give VERSION, or --from TARGET"),
        (["promote", "web", "--from", "prod", "--to", "prod"], "name two targets"),
    ],
)
def test_promote_usage_errors(use: Callable, args: list[str], message: str) -> None:
    use(FakeKube())
    assert message in alecton(*args, code=2).stderr


def test_resume_lifts_the_hold_in_one_patch(use: Callable) -> None:
    hold = {"reason": "Rollback", "by": "alice", "since": "2030-01-01T10:00:00Z", "version": "1.5.0"}
    history = [{"revision": 3, "status": "deployed", "version": "1.4.0"}]
    held = deployment(
        version="1.5.0",
        rollback={"revision": 1, "requestId": "r"},
        history=history,
        promotion_status={"hold": hold},
    )
    kube = use(FakeKube(("Deployment", held)))
    result = alecton("resume", "web", "prod")
    [(kind, name, patch)] = kube.patches
    assert (kind, name, patch["spec"]) == ("Deployment", "web-prod", {"rollback": None, "version": "1.4.0"})
    request = patch["metadata"]["annotations"][RESUME_ANNOTATION]
    assert len(request) == 32 and int(request, 16) >= 0
    assert "rollback" not in kube.objects[("Deployment", "web-prod")]["spec"]
    assert result.stdout.strip() == (
        "resumed web prod: lifted the hold (rollback requested by alice since 2030-01-01T10:00:00Z)"
    )
    assert "spec.version is now 1.4.0 (what runs), not 1.5.0" in result.stderr
    # A new request id each time: the operator acts on a value it has not seen.
    alecton("resume", "web", "prod")
    assert kube.patches[1][2]["metadata"]["annotations"][RESUME_ANNOTATION] != request


def test_resume_when_not_held_exits_0(use: Callable) -> None:
    use(FakeKube(("Deployment", deployment())))
    assert "was not held" in alecton("resume", "web", "prod").stdout
    shown = json.loads(alecton("resume", "web", "prod", "-o", "json").stdout)
    assert shown["liftedHold"] is None and shown["name"] == "web-prod"


def test_resume_without_a_deployment_exits_3(use: Callable) -> None:
    use(FakeKube())
    assert "no Deployment of application 'web'" in alecton("resume", "web", "prod", code=3).stderr
