from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
import time
from pathlib import Path

import pytest
from alecton.api.models import Application, Cluster, Image
from alecton.handlers.queue import WorkQueue
from alecton.helm.release import HelmOutputError, parse_history, parse_release
from alecton.helm.runner import HelmResult, HelmRunner, HelmTimeoutError
from alecton.kube.access import private_file
from alecton.reconcile import conditions as st
from alecton.reconcile.helm_failure import FailureClass, FailureKind
from alecton.reconcile.plan import Action, Plan, RecordedStatus, ReleaseLocation, Resolved, plan_release
from alecton.reconcile.release import owner_description, owner_from_description

from tests.unit.test_plan import APP, CHARTS, CLUSTER, deployment, image

HISTORY = [
    {
        "revision": 1,
        "updated": "t1",
        "status": "superseded",
        "chart": "webapp-1.0.0",
        "app_version": "1.0",
        "description": owner_description("1.0", "team/web-staging"),
    },
    {
        "revision": 2,
        "updated": "t2",
        "status": "superseded",
        "chart": "webapp-1.0.0",
        "app_version": "1.0",
        "description": owner_description("2.0", "team/web-staging"),
    },
    {
        "revision": 3,
        "updated": "t3",
        "status": "deployed",
        "chart": "webapp-1.0.0",
        "app_version": "1.0",
        "description": "Rollback to 1",
    },
]


def test_history_is_newest_first_with_versions_through_rollbacks() -> None:
    entries = parse_history(json.dumps(HISTORY))
    assert [(e.revision, e.version) for e in entries] == [(3, "1.0"), (2, "2.0"), (1, "1.0")]
    assert entries[0].as_status()["version"] == "1.0"
    assert owner_from_description(entries[1].description) == "team/web-staging"


def test_owner_of_hand_made_release_is_none() -> None:
    entries = parse_history(json.dumps([{**HISTORY[0], "description": "Install complete"}]))
    assert owner_from_description(entries[0].description) is None


def test_release_output_parsed_without_values() -> None:
    text = json.dumps(
        {
            "name": "web-staging",
            "namespace": "ns",
            "version": 4,
            "info": {"status": "deployed", "last_deployed": "t", "description": "d"},
            "chart": {"metadata": {"name": "webapp", "version": "1.0.0", "appVersion": "1.0"}},
            "config": {"password": "hunter2"},
        }
    )
    release = parse_release(text)
    assert (release.revision, release.chart, release.status) == (4, "webapp-1.0.0", "deployed")
    assert "hunter2" not in repr(release)
    with pytest.raises(HelmOutputError):
        parse_release("Error: not json")


def test_helm_error_line_is_surfaced() -> None:
    result = HelmResult(("upgrade",), 1, "", "WARNING: x\nError: UPGRADE FAILED: chart not found\n", 0.1)
    assert result.error == "UPGRADE FAILED: chart not found"


def test_multi_line_helm4_errors_are_joined() -> None:
    stderr = (
        "Error: webapp/templates/configmap.yaml:9:35\n"
        '  executing "webapp/templates/configmap.yaml" at <.Values.config>:\n'
        "    range can't iterate over notamap\n\nUse --debug flag to render out invalid YAML\n"
    )
    assert HelmResult(("upgrade",), 1, "", stderr, 0.1).error == (
        'webapp/templates/configmap.yaml:9:35 executing "webapp/templates/configmap.yaml" '
        "at <.Values.config>: range can't iterate over notamap"
    )


def test_a_values_schema_violation_keeps_its_detail() -> None:
    """helm prints what the schema refused on lines that are not indented; the status message
    lost them ("... in the following chart(s):" and nothing after)."""
    stderr = (
        "Error: values don't meet the specifications of the schema(s) in the following chart(s):\n"
        "webapp:\n- at '/replicaCount': got string, want integer\n\n"
    )
    assert HelmResult(("upgrade",), 1, "", stderr, 0.1).error == (
        "values don't meet the specifications of the schema(s) in the following chart(s): "
        "webapp: - at '/replicaCount': got string, want integer"
    )


def test_private_file_is_0600_and_removed() -> None:
    with private_file(b"secret", ".yaml") as path:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert path.read_bytes() == b"secret"
    assert not path.exists()


def test_runner_kills_on_timeout(tmp_path: Path) -> None:
    script = tmp_path / "slow-helm"
    script.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(30)\n")
    script.chmod(0o755)
    runner = HelmRunner(binary=str(script), timeout=0.5, kill_grace=1, deadline_margin=0)
    started = time.monotonic()
    with pytest.raises(HelmTimeoutError, match="did not finish within"):
        asyncio.run(runner.run(["upgrade"]))
    assert time.monotonic() - started < 5


def test_runner_passes_arguments_without_a_shell(tmp_path: Path) -> None:
    script = tmp_path / "echo-helm"
    script.write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    script.chmod(0o755)
    result = asyncio.run(HelmRunner(binary=str(script)).run(["upgrade", "a; rm -rf /", "$(id)"]))
    assert result.ok and json.loads(result.stdout) == ["upgrade", "a; rm -rf /", "$(id)"]


def test_private_dir_is_0700_and_emptied_at_start(tmp_path: Path) -> None:
    from alecton.kube import access

    private = tmp_path / "alecton-private"
    private.mkdir()
    (private / "alecton-left.kubeconfig").write_text("token: left by a killed operator")
    try:
        access.use_private_dir(private)
        assert list(private.iterdir()) == []
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
        with private_file(b"x", ".values.yaml") as path:
            assert path.parent == private
    finally:
        access._private_dir = None


def test_helm_environment_falls_back_to_in_cluster_only_without_a_kubeconfig(monkeypatch) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    runner = HelmRunner(binary="helm")
    assert "KUBERNETES_SERVICE_HOST" not in runner.process_env(in_cluster=False)
    assert runner.process_env(in_cluster=True)["KUBERNETES_SERVICE_PORT"] == "443"


def test_helm_runs_with_a_larger_gc_target_unless_told_otherwise(monkeypatch) -> None:
    monkeypatch.delenv("GOGC", raising=False)
    monkeypatch.delenv("GOMEMLIMIT", raising=False)
    env = HelmRunner(binary="helm").process_env(in_cluster=False)
    assert (env["GOGC"], env["GOMEMLIMIT"]) == ("400", "512MiB")
    monkeypatch.setenv("GOGC", "100")  # the operator's environment decides (the A/B bench row)
    assert HelmRunner(binary="helm").process_env(in_cluster=False)["GOGC"] == "100"


def test_conditions_keep_transition_time_when_status_is_unchanged() -> None:
    first = st.merge_conditions([], [st.Condition("Ready", True, "Succeeded", "ok")], 1, "t1")
    second = st.merge_conditions(first, [st.Condition("Ready", True, "Succeeded", "still ok")], 2, "t2")
    third = st.merge_conditions(second, [st.Condition("Ready", False, "Failed", "broken")], 3, "t3")
    assert second[0]["lastTransitionTime"] == "t1" and second[0]["observedGeneration"] == 2
    assert third[0]["lastTransitionTime"] == "t3" and third[0]["status"] == "False"


def test_succeeded_and_failed_status() -> None:
    dep = deployment()
    plan = plan_release(
        dep, RecordedStatus(), Resolved(APP, APP.targets[0], CLUSTER, image()), dep.ref, CHARTS
    )
    assert plan.desired is not None
    ctx = st.StatusContext(1, {}, "2026-01-01T00:00:00Z")
    history = parse_history(json.dumps(HISTORY[:1]))
    here = ReleaseLocation("target-b", "context:alecton-b", "web", "web-staging")
    ok = st.succeeded_status(ctx, Action.UPGRADE, plan.desired, history, lambda v: f"img:{v}", here)
    assert ok["phase"] == "Deployed" and ok["appliedFingerprint"] == plan.desired.fingerprint
    assert ok["release"]["clusterIdentity"] == "context:alecton-b" and ok["appliedVersion"] == "1.0"
    assert ok["release"]["revision"] == 1 and ok["release"]["image"] == "img:1.0"
    failed = st.failed_status(
        ctx, Action.UPGRADE, "helm upgrade failed: boom", 2, 10, plan.desired.fingerprint
    )
    assert failed["phase"] == "Failed" and failed["retryAfter"] == "2026-01-01T00:00:10Z"
    assert "boom" in failed["message"] and "retrying in 10 s" in failed["message"]
    # A failed upgrade forgets what was applied: reverting the inputs deploys again.
    assert failed["appliedFingerprint"] is None
    conditions = {c["type"]: c for c in failed["conditions"]}
    assert conditions["Stalled"]["status"] == "False" and failed["stalledFingerprint"] is None
    # Issue 16: inputs helm refused for themselves are not retried on a timer.
    refused = st.failed_status(
        ctx,
        Action.UPGRADE,
        'helm upgrade failed: template: webapp/templates/x.yaml:3: function "nope" not defined',
        3,
        20,
        plan.desired.fingerprint,
        stalled=FailureClass(FailureKind.INPUT, "TemplateError"),
        retry_hint="alecton retry web staging -n team",
    )
    conditions = {c["type"]: c for c in refused["conditions"]}
    assert conditions["Stalled"]["status"] == "True" and conditions["Stalled"]["reason"] == "TemplateError"
    assert refused["retryAfter"] is None and refused["stalledFingerprint"] == plan.desired.fingerprint
    assert "retrying" not in refused["message"]
    assert "until the inputs change, or `alecton retry web staging -n team`" in refused["message"]
    assert ok["stalledFingerprint"] is None  # a success clears it
    waiting = st.waiting_status(ctx, Plan(Action.WAIT, "ImageNotFound", "no image"))
    assert waiting["phase"] == "Pending"
    stalled = {
        c["type"]: c["status"]
        for c in st.waiting_status(ctx, Plan(Action.REFUSED, "ChartRefused", "x"))["conditions"]
    }
    assert stalled["Stalled"] == "True"


def test_work_queue_dedups_and_requeues_dirty_keys() -> None:
    async def scenario() -> list[str]:
        queue: WorkQueue[str] = WorkQueue()
        queue.add("a")
        queue.add("a")
        assert len(queue) == 1
        key = await queue.get()
        queue.add("a")  # changed while being processed
        assert len(queue) == 0
        queue.done(key)
        assert len(queue) == 1
        seen = [await queue.get()]
        queue.done("a")
        queue.add_after("b", 0.05)
        seen.append(await asyncio.wait_for(queue.get(), 1))
        return seen

    assert asyncio.run(scenario()) == ["a", "b"]


def test_work_queue_keeps_the_earliest_delayed_add() -> None:
    """Several parts schedule the same Deployment (a soak ending in 3 s, the next drift
    check in 10 min): the later request must not cancel the earlier one."""

    async def scenario() -> float:
        queue: WorkQueue[str] = WorkQueue()
        started = asyncio.get_running_loop().time()
        queue.add_after("d", 0.05)
        queue.add_after("d", 600)
        await asyncio.wait_for(queue.get(), 2)
        return asyncio.get_running_loop().time() - started

    assert asyncio.run(scenario()) < 1


def test_cluster_and_image_parse() -> None:
    cluster = Cluster.parse(
        {"metadata": {"namespace": "n", "name": "c"}, "spec": {"kubeconfigSecretRef": {"name": "s"}}}
    )
    assert cluster.kubeconfig_secret is not None and cluster.kubeconfig_secret.key == "kubeconfig"
    assert Image.parse({"metadata": {}, "spec": {"name": "w", "version": "1", "image": "r"}}).image == "r"
    split = Application.parse(
        {
            "metadata": {},
            "spec": {
                "chart": "c",
                "image": "i",
                "imageValues": {"repository": "image.repository", "tag": "image.tag"},
            },
        }
    )
    assert split.image_values.ref is None


def test_history_after_upgrade_matches_what_helm_would_list() -> None:
    from alecton.reconcile.history import history_after_upgrade
    from alecton.reconcile.release import ReleaseInfo

    previous = parse_history(json.dumps(HISTORY))  # revisions 3 (deployed), 2, 1
    release = ReleaseInfo(
        "web-staging",
        "ns",
        4,
        "deployed",
        "webapp-1.0.0",
        "1.0",
        "t4",
        owner_description("3.0", "team/web-staging"),
    )
    history = history_after_upgrade(previous, release, "3.0", limit=3)
    assert history is not None
    assert [(e.revision, e.status, e.version) for e in history] == [
        (4, "deployed", "3.0"),
        (3, "superseded", "1.0"),
        (2, "superseded", "2.0"),
    ]
    # A gap (someone ran helm by hand, or nothing was recorded yet): ask helm instead.
    assert history_after_upgrade(previous[1:], release, "3.0", limit=10) is None
    first = ReleaseInfo("web-staging", "ns", 1, "deployed", "webapp-1.0.0", "1.0", "t1", "d")
    assert [e.revision for e in history_after_upgrade([], first, "1", limit=10) or []] == [1]


def test_helm_skips_its_client_side_openapi_check_unless_asked() -> None:
    """The check fetches and parses the cluster's whole OpenAPI schema in every helm
    process (0.44 s -> 0.20 s of CPU per upgrade measured here); the API server validates
    what it is sent anyway."""
    from pathlib import Path

    from alecton.helm.actions import HelmActions
    from alecton.helm.runner import HelmRunner
    from alecton.kube.access import KubeAccess
    from alecton.reconcile.chart import ChartSource

    def args(actions: HelmActions) -> list[str]:
        return actions._upgrade_args(
            "web", "team", ChartSource("webapp"), Path("values.yaml"), KubeAccess("kubeconfig"), "d", {}
        )

    fast = args(HelmActions(HelmRunner("helm")))
    assert "--disable-openapi-validation" in fast and fast[-2:] == ["web", "webapp"]
    checked = args(HelmActions(HelmRunner("helm"), openapi_validation=True))
    assert "--disable-openapi-validation" not in checked
