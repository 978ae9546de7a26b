from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
from alecton.api.ignore import IgnoreRule, parse_rules
from alecton.api.objects import ObjectKey
from alecton.reconcile.diff import (
    Change,
    DiffResult,
    ObjectDiff,
    compare,
    diff_release,
    key_of,
    parse_manifest,
)
from alecton.reconcile.diff_normalise import redact_secret
from alecton.reconcile.manifest import manifest_objects

NS = "team"
IMAGE_POINTER = "/spec/template/spec/containers/0/image"
CHANGED, DELETED, UNCHANGED = Change.CHANGED, Change.DELETED, Change.UNCHANGED
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


# ---------------------------------------------------------------------------
# Builders


def container(name: str = "web", image: str = "web:1", **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": image, **extra}


def deployment(
    name: str = "web", image: str = "web:1", replicas: Any = 2, containers: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS, "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {"containers": containers if containers is not None else [container(name, image)]},
            },
        },
    }


def secret(name: str = "creds", data: dict[str, str] | None = None, **fields: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NS}}
    if data is not None:
        obj["data"] = {key: b64(value) for key, value in data.items()}
    return {**obj, **fields}


def configmap(name: str = "settings", data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NS},
        "data": data or {},
    }


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def as_live(obj: dict[str, Any]) -> dict[str, Any]:
    """What the API server returns for `obj`: defaults, server metadata, status."""
    live = copy.deepcopy(obj)
    metadata = live["metadata"]
    metadata.update(
        uid="0b7d9c3e",
        resourceVersion="4711",
        generation=3,
        creationTimestamp="2024-05-01T10:00:00Z",
        managedFields=[{"manager": "helm", "operation": "Update"}],
    )
    metadata.setdefault("annotations", {}).update(
        {
            "meta.helm.sh/release-name": "web",
            "meta.helm.sh/release-namespace": NS,
            "deployment.kubernetes.io/revision": "7",
        }
    )
    metadata.setdefault("labels", {})["app.kubernetes.io/managed-by"] = "Helm"
    live["status"] = {"replicas": 2, "readyReplicas": 2}
    if live["kind"] == "Deployment":
        spec = live["spec"]
        spec.update(revisionHistoryLimit=10, progressDeadlineSeconds=600, strategy={"type": "RollingUpdate"})
        pod = spec["template"]["spec"]
        pod.update(restartPolicy="Always", dnsPolicy="ClusterFirst", schedulerName="default-scheduler")
        for item in pod["containers"]:
            item.update(imagePullPolicy="IfNotPresent", terminationMessagePath="/dev/termination-log")
    return live


def key(obj: dict[str, Any]) -> ObjectKey:
    return key_of(obj)


def run(desired: dict[str, Any], live: dict[str, Any] | None, **options: Any) -> ObjectDiff:
    return compare(desired, live, key(desired), **options)


def changed_fields(desired: dict[str, Any], live: dict[str, Any] | None, **options: Any) -> tuple[str, ...]:
    result = run(desired, live, **options)
    assert result.change is Change.CHANGED, result
    return result.fields


def removed_and_added(diff: str) -> tuple[list[str], list[str]]:
    lines = [line for line in diff.splitlines() if not line.startswith(("---", "+++"))]
    return (
        [line[1:].strip() for line in lines if line.startswith("-")],
        [line[1:].strip() for line in lines if line.startswith("+")],
    )


# ---------------------------------------------------------------------------
# Comparison


def test_defaults_server_metadata_and_status_are_not_differences() -> None:
    desired = deployment()
    result = run(desired, as_live(desired))
    assert result == ObjectDiff(key(desired), Change.UNCHANGED, (), "")


def test_image_change_is_reported_with_its_pointer_and_a_unified_diff() -> None:
    result = run(deployment(image="web:2"), as_live(deployment(image="web:1")))
    assert result.change is Change.CHANGED
    assert result.fields == (IMAGE_POINTER,)
    assert result.diff.startswith("--- live\n+++ desired\n")
    # Only the real difference shows: live defaults are not part of the projection.
    assert removed_and_added(result.diff) == (["- image: web:1"], ["- image: web:2"])


def test_replicas_change() -> None:
    desired = deployment(replicas=3)
    assert changed_fields(desired, as_live(deployment(replicas=2))) == ("/spec/replicas",)


def test_added_env_var_is_the_new_list_item() -> None:
    old = container(env=[{"name": "A", "value": "1"}])
    new = container(env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
    result = run(deployment(containers=[new]), as_live(deployment(containers=[old])))
    assert result.fields == ("/spec/template/spec/containers/0/env/1",)
    assert removed_and_added(result.diff)[1] == ["- name: B", "value: '2'"]


def test_named_lists_match_by_name_and_ignore_extra_live_items() -> None:
    desired = deployment(containers=[container("web"), container("worker", "worker:1")])
    sidecar, worker = container("mesh-proxy", "proxy:9"), container("worker", "worker:1")
    live = as_live(deployment(containers=[sidecar, worker]))
    live["spec"]["template"]["spec"]["containers"].append(container("web"))  # other order, injected sidecar
    assert run(desired, live).change is Change.UNCHANGED

    desired["spec"]["template"]["spec"]["containers"][1]["image"] = "worker:2"
    # The pointer counts in the desired list, not in the live one.
    assert changed_fields(desired, live) == ("/spec/template/spec/containers/1/image",)


def test_a_named_item_missing_live_is_a_difference() -> None:
    desired = deployment(containers=[container("web"), container("worker", "worker:1")])
    live = as_live(deployment(containers=[container("web")]))
    assert changed_fields(desired, live) == ("/spec/template/spec/containers/1",)


@pytest.mark.parametrize(
    ("desired_args", "live_args", "fields"),
    [
        (["serve", "--port=80"], ["serve"], ("/spec/template/spec/containers/0/args",)),
        (["serve"], ["serve", "--debug"], ("/spec/template/spec/containers/0/args",)),
        (["serve", "--port=80"], ["serve", "--port=81"], ("/spec/template/spec/containers/0/args/1",)),
    ],
)
def test_unnamed_lists_compare_by_index_and_length(
    desired_args: list[str], live_args: list[str], fields: tuple[str, ...]
) -> None:
    desired = deployment(containers=[container(args=desired_args)])
    live = as_live(deployment(containers=[container(args=live_args)]))
    assert changed_fields(desired, live) == fields


def test_numbers_normalise_but_booleans_stay_strict() -> None:
    assert run(deployment(replicas=2.0), as_live(deployment(replicas=2))).change is Change.UNCHANGED
    limits = container(resources={"limits": {"cpu": 1, "memory": "64Mi"}})
    live_limits = container(resources={"limits": {"cpu": "1", "memory": "64Mi"}})
    assert run(deployment(containers=[limits]), as_live(deployment(containers=[live_limits]))).change is (
        Change.UNCHANGED
    )
    quantity = container(resources={"limits": {"cpu": "0.5"}})
    live_quantity = container(resources={"limits": {"cpu": "500m"}})
    assert changed_fields(deployment(containers=[quantity]), as_live(deployment(containers=[live_quantity])))

    flag = configmap(data={"enabled": True})
    assert changed_fields(flag, as_live(configmap(data={"enabled": 1}))) == ("/data/enabled",)


def test_empty_and_null_desired_values_match_absent_live_fields() -> None:
    desired = deployment(containers=[container(args=[], env=None, resources={}, workingDir="")])
    desired["metadata"]["annotations"] = {}
    assert run(desired, as_live(deployment())).change is Change.UNCHANGED


def test_type_mismatch_is_a_difference() -> None:
    assert changed_fields(configmap(data={"a": "x"}), {**configmap(), "data": "oops"}) == ("/data",)


def test_cluster_scoped_namespace_is_not_compared() -> None:
    desired = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps", "namespace": NS}}
    live = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}
    assert key(desired).namespace == ""
    assert run(desired, live).change is Change.UNCHANGED


def test_self_referencing_yaml_fails_cleanly() -> None:
    (looped,) = parse_manifest(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: loop}\ndata: &d\n  again: *d\n", NS
    )
    for live in (looped, None):
        with pytest.raises(ValueError, match="ConfigMap loop: nested more than"):
            run(looped, live)


def test_unknown_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown diff mode 'dry'"):
        run(deployment(), None, mode="dry")


# ---------------------------------------------------------------------------
# Releases


def test_created_changed_deleted_and_their_order() -> None:
    web, api, jobs, old_a, old_b = (
        deployment("web", "web:2"),
        deployment("api"),
        configmap("jobs"),
        configmap("old-a"),
        configmap("old-b"),
    )
    live = {key(web): as_live(deployment("web", "web:1")), key(api): as_live(api)}
    result = diff_release([web, jobs, api], live, previous=[old_b, api, old_a])

    assert [(item.key.name, item.change) for item in result.objects] == [
        ("web", Change.CHANGED),
        ("jobs", Change.CREATED),
        ("api", Change.UNCHANGED),
        ("old-b", Change.DELETED),
        ("old-a", Change.DELETED),
    ]
    created, deleted = result.objects[1], result.objects[3]
    assert created.fields == deleted.fields == ()
    assert created.diff.startswith("--- live\n+++ desired\n")
    assert "+kind: ConfigMap\n" in created.diff and "\n-" not in created.diff
    assert "-kind: ConfigMap\n" in deleted.diff and "\n+" not in deleted.diff.split("+++ desired\n")[1]
    assert result.changed
    assert result.summary == "1 changed, 1 created, 2 deleted, 1 unchanged"


def test_drift_mode_reports_missing_objects_and_ignores_previous() -> None:
    release = [deployment("web"), configmap("settings")]
    live = {key(release[0]): as_live(release[0]), key(release[1]): None}
    result = diff_release(release, live, previous=[configmap("gone")], mode="drift")
    assert [item.change for item in result.objects] == [Change.UNCHANGED, Change.MISSING]
    assert result.objects[1].diff.startswith("--- live\n+++ release\n")
    assert result.summary == "1 missing, 1 unchanged"


def test_drift_diff_is_against_the_release() -> None:
    result = diff_release([deployment(replicas=3)], {key(deployment()): as_live(deployment())}, mode="drift")
    assert result.objects[0].diff.startswith("--- live\n+++ release\n")


def test_a_key_absent_from_live_is_created_and_repeated_objects_count_once() -> None:
    web = deployment()
    result = diff_release([web, deployment(image="web:9")], {})
    assert [item.change for item in result.objects] == [Change.CREATED]


@pytest.mark.parametrize(
    ("changes", "summary"),
    [
        ([], "no changes"),
        ([UNCHANGED] * 3, "no changes"),
        ([Change.CREATED], "1 created"),
        (
            [UNCHANGED, DELETED, CHANGED, UNCHANGED, CHANGED, Change.CREATED],
            "2 changed, 1 created, 1 deleted, 2 unchanged",
        ),
    ],
)
def test_summary(changes: list[Change], summary: str) -> None:
    objects = tuple(
        ObjectDiff(ObjectKey("v1", "ConfigMap", NS, f"c{index}"), change, (), "")
        for index, change in enumerate(changes)
    )
    result = DiffResult(objects)
    assert result.summary == summary
    assert result.changed is (summary != "no changes")


def test_text_has_a_header_per_object_that_is_not_unchanged() -> None:
    web = deployment("web-staging", "web:2")
    same = configmap("same")
    live = {key(web): as_live(deployment("web-staging", "web:1")), key(same): same}
    result = diff_release([same, web, configmap("new")], live)
    text = result.text()
    assert text.startswith("Deployment web-staging (changed)\n--- live\n+++ desired\n")
    assert "\nConfigMap new (created)\n--- live\n" in text
    assert "same" not in text
    assert DiffResult(()).text() == ""


def test_as_status_caps_fields_at_twenty() -> None:
    desired = configmap(data={f"k{index:02}": "new" for index in range(25)})
    result = run(desired, configmap(data={f"k{index:02}": "old" for index in range(25)}))
    assert len(result.fields) == 25
    status = result.as_status()
    assert status == {
        "kind": "ConfigMap",
        "name": "settings",
        "namespace": NS,
        "change": "changed",
        "fields": [f"/data/k{index:02}" for index in range(20)],
    }


# ---------------------------------------------------------------------------
# Ignore rules


def test_ignore_pointer_hides_replicas_but_not_other_fields() -> None:
    raw = [{"kind": "Deployment", "name": "web*", "jsonPointers": ["/spec/replicas"]}]
    rules = parse_rules(raw, "ignore")
    live = as_live(deployment(replicas=5))
    assert run(deployment(replicas=2), live, ignore=rules).change is Change.UNCHANGED
    result = run(deployment(replicas=2, image="web:2"), live, ignore=rules)
    assert result.fields == (IMAGE_POINTER,)
    assert "replicas" not in result.diff
    # Another kind or name is not covered by the rule.
    assert changed_fields(deployment("api", replicas=2), as_live(deployment("api", replicas=5)), ignore=rules)


def test_ignore_pointers_unescape_and_reach_into_lists() -> None:
    desired = deployment(image="web:2")
    desired["metadata"]["labels"]["example.com/tier"] = "front"
    rules = parse_rules([{"jsonPointers": ["/metadata/labels/example.com~1tier", IMAGE_POINTER]}], "ignore")
    assert run(desired, as_live(deployment()), ignore=rules).change is Change.UNCHANGED


def test_ignore_whole_object() -> None:
    rules = parse_rules([{"kind": "ConfigMap", "name": "settings"}], "ignore")
    assert rules == (IgnoreRule("ConfigMap", "settings", ""),)
    result = diff_release(
        [configmap(data={"a": "1"}), configmap("other")],
        {},
        previous=[configmap(data={"a": "0"})],
        ignore=rules,
    )
    assert [(item.key.name, item.change) for item in result.objects] == [
        ("settings", Change.UNCHANGED),
        ("other", Change.CREATED),
    ]
    drift = diff_release([configmap()], {}, ignore=rules, mode="drift")
    assert not drift.changed


def test_rules_parse_one_rule_per_pointer_with_glob_defaults() -> None:
    raw = [{"name": "web-*", "jsonPointers": ["/spec/replicas", "/metadata/labels/a~0b"]}]
    rules = parse_rules(raw, "ignore")
    assert rules == (
        IgnoreRule("*", "web-*", "/spec/replicas"),
        IgnoreRule("*", "web-*", "/metadata/labels/a~0b"),
    )
    assert rules[1].tokens == ("metadata", "labels", "a~b")
    assert parse_rules([], "ignore") == ()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"kind": "Deployment"}, r"spec\.ignore: expected a list"),
        (["Deployment"], r"spec\.ignore\[0\]: expected a mapping"),
        ([{"kind": "Deployment", "pointers": ["/a"]}], r"spec\.ignore\[0\]: unknown key 'pointers'"),
        ([{}], r"spec\.ignore\[0\]: an empty rule"),
        ([{"kind": ""}], r"spec\.ignore\[0\]\.kind: expected a non-empty string"),
        ([{"name": 5}], r"spec\.ignore\[0\]\.name: expected a non-empty string"),
        ([{"jsonPointers": "/spec"}], r"spec\.ignore\[0\]\.jsonPointers: expected a list"),
        ([{"jsonPointers": []}], r"spec\.ignore\[0\]\.jsonPointers: empty"),
        (
            [{"kind": "A"}, {"jsonPointers": ["spec/replicas"]}],
            r"spec\.ignore\[1\]\.jsonPointers\[0\]: .*start",
        ),
        ([{"jsonPointers": ["/a", None]}], r"spec\.ignore\[0\]\.jsonPointers\[1\]: None is not"),
        ([{"jsonPointers": ["/a~2b"]}], r"spec\.ignore\[0\]\.jsonPointers\[0\]: .*'~'"),
    ],
)
def test_rule_parsing_errors_name_the_place(raw: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rules(raw, "spec.ignore")


# ---------------------------------------------------------------------------
# Secrets


def test_secret_values_only_ever_appear_as_hashes() -> None:
    old, new = "hunter2-old-password", "correct-horse-battery"
    desired = secret(data={"password": new, "user": "admin-user"})
    live = as_live(secret(data={"password": old, "user": "admin-user"}))
    live["metadata"]["annotations"][LAST_APPLIED] = f'{{"data":{{"password":"{b64(old)}"}}}}'
    result = diff_release([desired], {key(desired): live})

    item = result.objects[0]
    assert item.fields == ("/data/password",)
    assert redact_secret(desired)["data"]["password"] in item.diff
    assert redact_secret(live)["data"]["password"] in item.diff
    shown = [result.text(), repr(result), str(item.as_status()), result.summary]
    for value in (old, new, "admin-user"):
        for form in (value, b64(value)):
            assert not any(form in text for text in shown), form


def test_created_and_deleted_secrets_are_redacted_too() -> None:
    new = secret("new", data={"token": "new-token-value"})
    gone = secret("gone", data={"token": "old-token-value"})
    text = diff_release([new], {}, previous=[gone]).text()
    assert "hmac:" in text
    for value in ("new-token-value", "old-token-value"):
        assert value not in text and b64(value) not in text


def test_string_data_equals_the_same_value_in_data() -> None:
    desired = secret(stringData={"password": "s3cret-value"})
    live = as_live(secret(data={"password": "s3cret-value"}))
    assert run(desired, live).change is Change.UNCHANGED
    assert redact_secret(desired)["stringData"] == redact_secret(live)["data"]
    assert changed_fields(secret(stringData={"password": "other-value"}), live) == ("/data/password",)


def test_redact_secret_hashes_values_and_leaves_the_input_alone() -> None:
    original = secret(data={"a": "abc"}, stringData={"b": "abc"}, type="Opaque")
    before = copy.deepcopy(original)
    redacted = redact_secret(original)
    assert original == before
    assert redacted["data"]["a"] == redacted["stringData"]["b"]
    assert redacted["data"]["a"].startswith("hmac:") and len(redacted["data"]["a"]) == len("hmac:") + 12
    assert redacted["type"] == "Opaque"


def test_last_applied_annotation_is_redacted_on_any_kind() -> None:
    obj = deployment()
    obj["metadata"]["annotations"] = {LAST_APPLIED: '{"password": "hunter22"}', "team": "blue"}
    redacted = redact_secret(obj)
    assert redacted["metadata"]["annotations"] == {LAST_APPLIED: "[redacted]", "team": "blue"}
    assert obj["metadata"]["annotations"][LAST_APPLIED] == '{"password": "hunter22"}'
    assert "hunter22" not in run(obj, None).diff


# ---------------------------------------------------------------------------
# Manifests and keys

MANIFEST = f"""
# Source: chart/templates/empty.yaml
---
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: elsewhere
  namespace: other
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: reader
  namespace: {NS}
---
apiVersion: v1
kind: ConfigMapList
items:
  - apiVersion: v1
    kind: ConfigMap
    metadata:
      name: listed
  - just a string
---
apiVersion: v1
kind: ConfigMap
metadata: {{}}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: elsewhere
  namespace: other
data:
  duplicate: "true"
"""


def test_parse_manifest_fills_namespaces_and_skips_what_is_not_an_object() -> None:
    objects = parse_manifest(MANIFEST, NS)
    assert [(obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace")) for obj in objects] == [
        ("Deployment", "web", NS),
        ("ConfigMap", "elsewhere", "other"),
        ("ClusterRole", "reader", NS),  # kept as written; its key has no namespace
        ("ConfigMap", "listed", NS),
    ]
    assert "data" not in objects[1]  # the first of two identical keys wins
    assert [key_of(obj, NS) for obj in objects] == manifest_objects(MANIFEST, NS)


def test_parse_manifest_rejects_invalid_yaml_and_accepts_nothing() -> None:
    assert parse_manifest("", NS) == []
    with pytest.raises(ValueError, match="not valid YAML"):
        parse_manifest("a: [b", NS)


def test_key_of() -> None:
    assert key_of(deployment()) == ObjectKey("apps/v1", "Deployment", NS, "web")
    bare = {"kind": "ConfigMap", "metadata": {"name": "c"}}
    assert key_of(bare, "dflt") == ObjectKey("", "ConfigMap", "dflt", "c")
    assert (
        key_of({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}, "dflt").namespace == ""
    )
    with pytest.raises(ValueError, match=r"metadata\.name"):
        key_of({"kind": "ConfigMap", "metadata": {}})
