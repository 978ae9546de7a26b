"""Bad input gets a clear rejection or condition, never a crash, hot loop or partial
deploy; tenants stay apart; no secret leaks. See docs/reliability.md."""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
import os
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from alecton.api.models import Application, Cluster, Deployment, Image, InvalidResourceError
from alecton.local.controlplane import free_port
from alecton.reconcile.promotion_records import PromotionRecord
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration import resources as r
from tests.integration.harness import Cluster as HarnessCluster
from tests.integration.harness import OperatorProcess, events, wait_for, wait_phase
from tests.integration.tenant import as_tenant

SECRET_MARKER = f"SUPERSECRET-{uuid.uuid4().hex}"
LOAD_DEPLOYMENTS = int(os.environ.get("ALECTON_LOAD_DEPLOYMENTS", "200"))


@pytest.fixture(scope="module")
def guarded(crds: HarnessCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """A cluster-wide operator with a context policy, probes, and its own TMPDIR."""
    before = crds.namespaces()
    tmpdir = tmp_path_factory.mktemp("operator-tmp")
    port = free_port()
    process = OperatorProcess(
        crds,
        "helm",
        tmp_path_factory.mktemp("guarded"),
        extra_args=(
            "--allow-context",
            "*=alecton-b@operator",
            "--probe-address",
            f"127.0.0.1:{port}",
            "--helm-concurrency",
            "2",
        ),
        env={"TMPDIR": str(tmpdir)},
    )
    process.port = port  # type: ignore[attr-defined]
    process.tmpdir = tmpdir  # type: ignore[attr-defined]
    process.start()
    try:
        yield process
        if not alive(process):  # the last test stops it
            process.start()
        # With the operator running, deleting the namespaces uninstalls what they deployed.
        crds.delete_namespaces_since(before)
    finally:
        process.stop()  # also when the cleanup fails: no operator outlives the module


def alive(operator: OperatorProcess) -> bool:
    return operator.proc is not None and operator.proc.poll() is None


# ----- schema and CEL, property-based ------------------------------------------------------

VALID = {
    "Image": {"name": "web", "version": "1.0", "image": "r/web:1"},
    "Application": {
        "chart": "webapp",
        "image": "web",
        "targets": [{"name": "staging", "cluster": "b", "namespace": "web"}],
    },
    "Cluster": {"context": "alecton-b"},
    "Deployment": {"application": "web", "target": "staging", "version": "1.0"},
    "Promotion": {
        "deployment": "web-staging",
        "application": "web",
        "target": "staging",
        "fromVersion": "1.0",
        "toVersion": "1.1",
        "reason": "newest",
        "digest": "d1",
    },
}
PARSERS = {
    "Image": Image,
    "Application": Application,
    "Cluster": Cluster,
    "Deployment": Deployment,
    "Promotion": PromotionRecord,
}

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.text(max_size=20),
    st.text(alphabet="abc-.", min_size=60, max_size=400),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@st.composite
def malformed(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    kind = draw(st.sampled_from(sorted(VALID)))
    spec = copy.deepcopy(VALID[kind])
    mutation = draw(st.sampled_from(["retype", "unknown", "drop", "dup-target", "long-name"]))
    name = "m-" + uuid.uuid4().hex[:8]
    if mutation == "retype":
        spec[draw(st.sampled_from(sorted(spec)))] = draw(junk)
    elif mutation == "unknown":
        spec[draw(st.text(alphabet="xyz", min_size=3, max_size=8))] = draw(junk)
    elif mutation == "drop" and spec:
        spec.pop(draw(st.sampled_from(sorted(spec))))
    elif mutation == "dup-target" and kind == "Application":
        spec["targets"] = spec["targets"] * 2
    elif mutation == "long-name":
        name = "a" * draw(st.integers(min_value=40, max_value=260))
        if kind == "Deployment":
            spec["target"] = "t" * draw(st.integers(min_value=10, max_value=60))
    return kind, {
        "apiVersion": "alecton.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=malformed())
def test_malformed_bodies_are_rejected_clearly_or_parsed_safely(
    crds: HarnessCluster, case: tuple[str, dict]
) -> None:
    kind, body = case
    proc = crds.kubectl(
        "apply", "-n", "default", "--dry-run=server", "-o", "json", "-f", "-",
        stdin=json.dumps(body), check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        # Rejected by the schema or CEL with a message a person can act on.
        assert "Internal error" not in proc.stderr and "panic" not in proc.stderr
        # A validation error from the API server, saying what is wrong with which field.
        assert "is invalid" in proc.stderr or "unknown field" in proc.stderr, proc.stderr
        return
    # Accepted by the API server: the operator's parser either understands the object the
    # server would store (defaults applied, unknown fields pruned) or reports
    # InvalidResourceError (which becomes a condition), never anything else.
    stored = json.loads(proc.stdout)
    assert stored["kind"] == kind and stored["metadata"]["name"] == body["metadata"]["name"]
    with contextlib.suppress(InvalidResourceError):
        PARSERS[kind].parse({**stored, "metadata": {"namespace": "default", **stored.get("metadata", {})}})


def test_operator_survives_accepted_odd_resources(guarded: OperatorProcess) -> None:
    cluster = guarded.cluster
    ns = cluster.new_namespace("odd")
    odd = [
        r.application("web", f"{ns}-web", values={"deep": {"a": [1, {"b": None}], "n": None}}),
        {"apiVersion": "alecton.dev/v1alpha1", "kind": "Cluster", "metadata": {"name": "empty"}, "spec": {}},
        r.deployment("nope", "1", target="x"),
        r.deployment("web", "1", target="missing"),
        r.image("web", "1", "r/web:1"),
    ]
    cluster.apply(r.cluster(), *odd, namespace=ns)
    # The duplicate in a later second: one created in the same second with another build
    # would make the version ambiguous (test_a_same_second_shadow_image_...).
    _after_the_creation_second_of(cluster, ns, "web-1")
    cluster.apply(r.image("web", "1", "r/web:other", object_name="web-1-dup"), namespace=ns)
    wait_phase(cluster, ns, "nope-x", "Pending")
    missing = wait_phase(cluster, ns, "web-missing", "Pending")
    assert "has no target 'missing'" in missing["status"]["message"]
    cluster.apply(r.deployment("web", "1"), namespace=ns)
    obj = wait_phase(cluster, ns, "web-staging", "Deployed")
    assert obj["status"]["release"]["image"] == "r/web:1"  # the first Image of a (name, version) wins
    # Issue 16: the later Image says why it is not used (it was ignored without a trace).
    duplicate = wait_for(
        lambda: [e for e in events(cluster, ns) if e["involvedObject"]["name"] == "web-1-dup"],
        30,
        "an Event on the duplicate Image",
    )
    assert [(e["type"], e["reason"]) for e in duplicate] == [("Warning", "DuplicateVersion")]
    assert "already recorded by Image web-1 (r/web:1)" in duplicate[0]["message"]
    assert not [e for e in events(cluster, ns) if e["involvedObject"]["name"] == "web-1"]
    assert alive(guarded)


def _created_epoch(cluster: HarnessCluster, ns: str, name: str) -> float:
    created = (cluster.get("images.alecton.dev", name, ns) or {})["metadata"]["creationTimestamp"]
    return dt.datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()


def _after_the_creation_second_of(cluster: HarnessCluster, ns: str, image: str) -> None:
    second = _created_epoch(cluster, ns, image)
    wait_for(lambda: time.time() >= second + 1.05, 5, f"the second Image {image} was created in to pass")


def test_a_same_second_shadow_image_makes_the_version_ambiguous_not_deployed(
    guarded: OperatorProcess,
) -> None:
    """R27B-8: CI bound to alecton-image-publisher (a leaked token) records a shadow of the
    team's next version in the same second as the team's Image, named to sort first, pointing
    at its own build. The version is ambiguous: nothing is deployed (the running release stays
    the team's), the Deployment says which Images and to delete the wrong one; once the team
    deletes it, the team's build deploys."""
    cluster = guarded.cluster
    ns = cluster.new_namespace("shadow")
    cluster.apply(r.cluster(), r.application("web", f"{ns}-web"), namespace=ns)
    team = as_tenant(cluster, ns, "alecton-deployer")
    attacker = as_tenant(cluster, ns, "alecton-image-publisher")
    team.apply(r.image("web", "1", "r/web:1"), r.deployment("web", "1"))
    wait_phase(cluster, ns, "web-staging", "Deployed")

    # Creation in one second is not controllable: both start just after a second begins, in
    # parallel; a pair that straddles a second is deleted and the next version tried.
    for attempt in range(2, 8):
        version = str(attempt)
        wait_for(lambda: time.time() % 1 < 0.1, 2, "a second to begin", interval=0.01)
        writes = [
            threading.Thread(target=team.apply, args=(r.image("web", version, f"r/web:{version}"),)),
            threading.Thread(
                target=attacker.apply,
                args=(
                    r.image("web", version, f"evil.example/web:{version}", object_name=f"a-shadow-{version}"),
                ),
            ),
        ]
        for write in writes:
            write.start()
        for write in writes:
            write.join()
        if _created_epoch(cluster, ns, f"web-{version}") == _created_epoch(
            cluster, ns, f"a-shadow-{version}"
        ):
            break
        team("delete", "images.alecton.dev", f"a-shadow-{version}")
    else:
        pytest.skip("no two Images were created in one second in 6 attempts")

    team("patch", "deployments.alecton.dev", "web-staging", "--type=merge", "-p",
         json.dumps({"spec": {"version": version}}))  # fmt: skip
    failed = wait_phase(cluster, ns, "web-staging", "Failed")
    ready = next(c for c in failed["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "ImageAmbiguous", ready
    for named in (f"a-shadow-{version} (evil.example/web:{version})", f"web-{version} (r/web:{version})"):
        assert named in ready["message"], ready["message"]
    assert "delete the wrong one" in ready["message"]
    assert failed["status"]["release"]["image"] == "r/web:1"  # the team's release runs on
    warned = wait_for(
        lambda: [e for e in events(cluster, ns) if e["reason"] == "ImageAmbiguous"],
        30,
        "an ImageAmbiguous Event",
    )
    assert "Image" in {e["involvedObject"]["kind"] for e in warned}  # and the Deployment's own

    attacker.forbidden("delete", "images.alecton.dev", f"web-{version}")  # it cannot settle it its way
    team("delete", "images.alecton.dev", f"a-shadow-{version}")
    deployed = wait_phase(cluster, ns, "web-staging", "Deployed")
    assert deployed["status"]["release"]["image"] == f"r/web:{version}"
    assert alive(guarded)


# ----- values and charts ------------------------------------------------------------------


def test_one_mib_of_values_works_or_is_refused_cleanly(guarded: OperatorProcess) -> None:
    cluster = guarded.cluster
    ns = cluster.new_namespace("bigvalues")
    big = {"config": {f"k{i}": os.urandom(512).hex() for i in range(1024)}}  # ~1 MiB of noise
    # `kubectl create`: a client-side apply would copy 1 MiB into an annotation (256 KiB max).
    docs = [r.cluster(), r.application("web", f"{ns}-web", values=big), r.image("web", "1", "r/web:1")]
    cluster.kubectl("create", "-n", ns, "-f", "-", stdin=yaml.safe_dump_all(docs))
    cluster.apply(r.deployment("web", "1"), namespace=ns)

    def settled() -> dict | None:
        obj = cluster.get("deployments.alecton.dev", "web-staging", ns) or {}
        return obj if (obj.get("status") or {}).get("phase") in ("Deployed", "Failed") else None

    obj = wait_for(settled, 120, "a result for 1 MiB of values")
    if obj["status"]["phase"] == "Failed":
        # Helm stores releases in a Secret (1 MiB limit): it says so, nothing half-done.
        assert "helm upgrade failed" in obj["status"]["message"]
        assert len(obj["status"]["message"]) <= 1024
    assert alive(guarded)


def test_chart_that_fails_to_render(guarded: OperatorProcess) -> None:
    cluster = guarded.cluster
    ns = cluster.new_namespace("render")
    cluster.apply(
        r.cluster(),
        r.application("web", f"{ns}-web", values={"config": "not-a-map"}),
        r.image("web", "1", "r/web:1"),
        r.deployment("web", "1"),
        namespace=ns,
    )
    obj = wait_phase(cluster, ns, "web-staging", "Failed")
    assert (
        "helm upgrade failed" in obj["status"]["message"]
        and "range can't iterate over" in obj["status"]["message"]
    )
    # Nothing was half-installed: the failed first install left no deployed revision.
    history = cluster.run(
        "helm",
        "history",
        "web-staging",
        "--kube-context",
        "alecton-b",
        "-n",
        f"{ns}-web",
        "-o",
        "json",
        check=False,
    )
    assert "deployed" not in history.stdout
    # Issue 16: it depends only on the inputs, so it waits for a change instead of a timer.
    conditions = {c["type"]: c for c in obj["status"]["conditions"]}
    assert conditions["Stalled"]["status"] == "True" and conditions["Stalled"]["reason"] == "TemplateError"
    assert "retryAfter" not in obj["status"] and "retrying in" not in obj["status"]["message"]
    assert f"alecton retry web staging -n {ns}" in obj["status"]["message"]
    # `alecton retry` runs it once more (the same failure: attempt 2), a fix deploys it.
    cluster.kubectl(
        "patch", "deployments.alecton.dev", "web-staging", "-n", ns, "--type=merge",
        "-p", '{"spec": {"retryRequestId": "again"}}',
    )  # fmt: skip
    wait_phase(cluster, ns, "web-staging", "Failed", failures=2, lastRetryRequestId="again")
    cluster.apply(r.application("web", f"{ns}-web", values={"config": {"a": "b"}}), namespace=ns)
    obj = wait_phase(cluster, ns, "web-staging", "Deployed")
    assert "stalledFingerprint" not in obj["status"]


# ----- tenant kubeconfigs -----------------------------------------------------------------


def unsafe_kubeconfig(user: dict) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }


def kubeconfig_secret(
    name: str, user: dict | None = None, raw: str | None = None, key: str = "kubeconfig"
) -> dict:
    return r.kubeconfig_secret(name, raw if raw is not None else unsafe_kubeconfig(user or {}), key)


@pytest.mark.parametrize(
    ("case", "secret", "expected"),
    [
        (
            "exec",
            kubeconfig_secret(
                "kc",
                {
                    "exec": {
                        "command": "/bin/sh",
                        "args": ["-c", f"echo {SECRET_MARKER}"],
                        "apiVersion": "client.authentication.k8s.io/v1",
                    }
                },
            ),
            "exec credential plugin",
        ),
        (
            "auth-provider",
            kubeconfig_secret(
                "kc", {"auth-provider": {"name": "oidc", "config": {"id-token": SECRET_MARKER}}}
            ),
            "auth-provider",
        ),
        (
            "token-file",
            kubeconfig_secret("kc", {"tokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token"}),
            "token file",
        ),
        (
            "client-cert-path",
            kubeconfig_secret("kc", {"client-certificate": "/etc/ssl/private/key.pem"}),
            "client certificate path",
        ),
        ("malformed", kubeconfig_secret("kc", raw=f"{SECRET_MARKER}: [unclosed"), "not valid YAML"),
        (
            "missing-key",
            kubeconfig_secret("kc", {"token": SECRET_MARKER}, key="other"),
            "key 'kubeconfig' does not exist",
        ),
    ],
)
def test_unsafe_tenant_kubeconfigs_are_refused(
    guarded: OperatorProcess, case: str, secret: dict, expected: str
) -> None:
    cluster = guarded.cluster
    ns = cluster.new_namespace(f"kc-{case}")
    cluster.apply(
        secret,
        r.cluster(name="b", context="", secret="kc"),
        r.application("web", f"{ns}-web", cluster_name="b"),
        r.image("web", "1", "r/web:1"),
        r.deployment("web", "1"),
        namespace=ns,
    )
    obj = wait_phase(cluster, ns, "web-staging", "Failed")
    assert expected in obj["status"]["message"]
    assert SECRET_MARKER not in json.dumps(obj)


# ----- tenants ------------------------------------------------------------------------------


def message_of(cluster: HarnessCluster, namespace: str, name: str) -> str:
    return str(
        ((cluster.get("deployments.alecton.dev", name, namespace) or {}).get("status") or {}).get(
            "message", ""
        )
    )


def test_references_never_cross_namespaces(guarded: OperatorProcess) -> None:
    cluster = guarded.cluster
    team_a, team_b = cluster.new_namespace("team-a"), cluster.new_namespace("team-b")
    cluster.apply(r.cluster(name="shared-looking"), r.image("web", "1", "r/web:1"), namespace=team_a)
    cluster.apply(
        r.application("web", f"{team_b}-web", cluster_name="shared-looking"),
        r.deployment("web", "1"),
        namespace=team_b,
    )
    obj = wait_phase(cluster, team_b, "web-staging", "Pending")
    assert (
        f"Cluster 'shared-looking' (target 'staging') does not exist in namespace '{team_b}'"
        in obj["status"]["message"]
    )
    cluster.apply(r.cluster(name="shared-looking"), namespace=team_b)
    # Still Pending, for the next missing reference: wait for the message, not the phase
    # (a Cluster of its own does not change the Deployment's generation).
    expected = f"no Image with name 'web' and version '1' in namespace '{team_b}'"
    wait_for(
        lambda: expected in message_of(cluster, team_b, "web-staging"), 60, "the missing Image to be named"
    )


def test_other_tenant_cannot_roll_back_a_release(guarded: OperatorProcess) -> None:
    cluster = guarded.cluster
    owner, intruder = cluster.new_namespace("owner"), cluster.new_namespace("intruder")
    shared_target = f"{owner}-web"
    cluster.apply(
        r.cluster(),
        r.application("web", shared_target),
        r.image("web", "1", "r/web:1"),
        r.image("web", "2", "r/web:2"),
        r.deployment("web", "1"),
        namespace=owner,
    )
    wait_phase(cluster, owner, "web-staging", "Deployed")
    cluster.patch_spec(owner, "web-staging", {"version": "2"})
    wait_for(
        lambda: (
            (cluster.get("deployments.alecton.dev", "web-staging", owner) or {})
            .get("status", {})
            .get("release", {})
            .get("revision")
            == 2
        ),
        30,
        "revision 2",
    )
    cluster.apply(
        r.cluster(),
        r.application("web", shared_target),
        r.image("web", "1", "r/web:1"),
        r.deployment("web", "1", rollback={"revision": 1}),
        namespace=intruder,
    )
    obj = wait_phase(cluster, intruder, "web-staging", "Conflict")
    assert f"belongs to alecton Deployment {owner}/web-staging" in obj["status"]["message"]
    history = cluster.helm_json("helm", "history", "web-staging", "--namespace", shared_target)
    assert max(h["revision"] for h in history) == 2  # no rollback happened


def test_context_not_granted_is_refused(guarded: OperatorProcess) -> None:
    cluster = guarded.cluster
    ns = cluster.new_namespace("ctx")
    cluster.apply(
        r.cluster(name="mgmt", context="alecton-a"),
        r.application("web", f"{ns}-web", cluster_name="mgmt"),
        r.image("web", "1", "r/web:1"),
        r.deployment("web", "1"),
        namespace=ns,
    )
    obj = wait_phase(cluster, ns, "web-staging", "Failed")
    assert f"--allow-context {ns}=alecton-a" in obj["status"]["message"]
    assert cluster.helm_json("helm", "list", "--all-namespaces", context="alecton-a") == []


# ----- secrets hygiene (runs after the tests above in this module) --------------------------


def test_no_secret_in_logs_events_or_status(guarded: OperatorProcess) -> None:
    cluster = guarded.cluster
    ns = cluster.new_namespace("hygiene")
    only_b = cluster.target_kubeconfig()
    only_b["users"][0]["user"]["token"] = (
        SECRET_MARKER  # unused by the server (cert auth wins), must not leak
    )
    secret = kubeconfig_secret("kc", raw=yaml.safe_dump(only_b))
    cluster.apply(
        secret,
        r.cluster(name="b", context="", secret="kc"),
        r.application("web", f"{ns}-web", cluster_name="b", values={"password": SECRET_MARKER}),
        r.image("web", "1", "r/web:1"),
        r.deployment("web", "1"),
        namespace=ns,
    )
    obj = wait_phase(cluster, ns, "web-staging", "Deployed")
    everything = (
        json.dumps(obj)
        + cluster.kubectl("get", "events", "-A", "-o", "json").stdout
        + guarded.log_since_start()
    )
    assert SECRET_MARKER not in everything


# ----- load ---------------------------------------------------------------------------------


def test_many_deployments_converge_and_liveness_stays_responsive(guarded: OperatorProcess) -> None:
    cluster = guarded.cluster
    ns = cluster.new_namespace("load")
    target_ns = f"{ns}-web"
    app = r.application("web", target_ns)
    app["spec"]["targets"] = [
        {"name": f"t{i}", "cluster": "target-b", "namespace": target_ns}
        for i in range(min(64, LOAD_DEPLOYMENTS))
    ]
    apps = []
    for index in range(0, LOAD_DEPLOYMENTS, 64):
        copy_app = copy.deepcopy(app)
        copy_app["metadata"]["name"] = f"web{index // 64}"
        copy_app["spec"]["targets"] = app["spec"]["targets"][: min(64, LOAD_DEPLOYMENTS - index)]
        apps.append(copy_app)
    cluster.apply(r.cluster(), r.image("web", "1", "r/web:1"), *apps, namespace=ns)
    deployments = [
        r.deployment(a["metadata"]["name"], "1", target=t["name"]) for a in apps for t in a["spec"]["targets"]
    ]
    assert len(deployments) == LOAD_DEPLOYMENTS
    latencies: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            started = time.monotonic()
            with urllib.request.urlopen(f"http://127.0.0.1:{guarded.port}/healthz", timeout=10) as response:  # type: ignore[attr-defined]
                assert response.status == 200
            latencies.append(time.monotonic() - started)
            time.sleep(0.25)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    started = time.monotonic()
    try:
        cluster.apply(*deployments, namespace=ns)

        def converged() -> bool:
            items = json.loads(
                cluster.kubectl("get", "deployments.alecton.dev", "-n", ns, "-o", "json").stdout
            )["items"]
            return sum((i.get("status") or {}).get("phase") == "Deployed" for i in items) == LOAD_DEPLOYMENTS

        wait_for(converged, 600, f"{LOAD_DEPLOYMENTS} Deployments to be Deployed", interval=2)
    finally:
        stop.set()
        prober.join(timeout=15)
    elapsed = time.monotonic() - started
    releases = cluster.run(
        "helm", "list", "--kube-context", "alecton-b", "-n", target_ns, "--max", "1000", "-q"
    ).stdout.split()
    assert len(releases) == LOAD_DEPLOYMENTS
    assert latencies and max(latencies) < 2.0, max(latencies)
    worst_ms = max(latencies) * 1000
    print(
        f"load: {LOAD_DEPLOYMENTS} Deployments, concurrency 2: {elapsed:.0f} s; /healthz max {worst_ms:.0f}ms"
    )


def test_temporary_files_are_gone_after_shutdown(guarded: OperatorProcess) -> None:
    """Last in this module: values files and tenant kubeconfigs exist only while helm runs
    (helm may still be retrying failures of the tests above, so stop the operator first)."""
    guarded.stop()
    tmpdir = Path(guarded.tmpdir)  # type: ignore[attr-defined]
    assert [p.name for p in tmpdir.iterdir() if p.name.startswith("alecton-") and p.is_file()] == []
    private = tmpdir / f"alecton-{os.getuid()}"  # where they live while helm runs
    assert private.is_dir() and list(private.iterdir()) == []
