"""What the health informers keep of a live object (reconcile/projection.py). That the kept
fields give the same verdict is checked by every test of test_health.py (its `check`)."""

from __future__ import annotations

import json
from typing import Any

from alecton.api.objects import ObjectKey
from alecton.reconcile.assess import assess
from alecton.reconcile.health import State
from alecton.reconcile.projection import health_projection

MANAGED = [{"manager": "kube-controller-manager", "operation": "Update", "fieldsV1": {"f:status": {}}}] * 5


def live_deployment() -> dict[str, Any]:
    """A Deployment as the API server sends it (abridged, but with what makes it heavy)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "team",
            "uid": "u-1",
            "resourceVersion": "42",
            "generation": 3,
            "labels": {"app.kubernetes.io/managed-by": "Helm"},
            "annotations": {"meta.helm.sh/release-name": "web", "deployment.kubernetes.io/revision": "3"},
            "managedFields": MANAGED,
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{"name": "app", "image": "r/web:3", "env": [{"name": "A", "value": "1"}]}]
                },
            },
            "strategy": {"type": "RollingUpdate"},
        },
        "status": {
            "observedGeneration": 3,
            "replicas": 2,
            "updatedReplicas": 2,
            "readyReplicas": 2,
            "availableReplicas": 2,
            "conditions": [
                {
                    "type": "Available",
                    "status": "True",
                    "reason": "MinimumReplicasAvailable",
                    "message": "Deployment has minimum availability.",
                    "lastUpdateTime": "2026-12-01T00:00:00Z",
                    "lastTransitionTime": "2026-12-01T00:00:00Z",
                }
            ],
        },
    }


def live_pod(waiting: str = "") -> dict[str, Any]:
    state: dict[str, Any] = (
        {"waiting": {"reason": waiting, "message": "back-off"}}
        if waiting
        else {"running": {"startedAt": "t"}}
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-5d8-abc",
            "namespace": "team",
            "labels": {"app": "web", "pod-template-hash": "5d8"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "web-5d8",
                    "uid": "rs",
                    "controller": True,
                }
            ],
            "managedFields": MANAGED,
        },
        "spec": {"containers": [{"name": "app", "image": "r/web:3"}], "nodeName": "kwok-node-0"},
        "status": {
            "phase": "Running",
            "podIP": "10.0.0.1",
            "conditions": [{"type": "Ready", "status": "False" if waiting else "True"}],
            "containerStatuses": [
                {
                    "name": "app",
                    "image": "r/web:3",
                    "imageID": "sha256:abc",
                    "restartCount": 4,
                    "ready": not waiting,
                    "state": state,
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
                }
            ],
        },
    }


def test_deployment_keeps_counters_conditions_and_selector_only() -> None:
    slim = health_projection(live_deployment(), "apps", "Deployment")
    counters_and_conditions = live_deployment()["status"]
    for condition in counters_and_conditions["conditions"]:  # the times are not kept
        del condition["lastUpdateTime"], condition["lastTransitionTime"]
    assert slim == {
        "metadata": {
            "name": "web",
            "namespace": "team",
            "uid": "u-1",
            "resourceVersion": "42",
            "generation": 3,
        },
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}},
        "status": counters_and_conditions,
    }


def test_pod_keeps_labels_owners_and_waiting_reasons() -> None:
    slim = health_projection(live_pod("CrashLoopBackOff"), "", "Pod")
    assert slim["metadata"]["labels"] == {"app": "web", "pod-template-hash": "5d8"}
    assert slim["metadata"]["ownerReferences"] == [{"kind": "ReplicaSet", "name": "web-5d8"}]
    assert slim["status"]["containerStatuses"] == [
        {
            "name": "app",
            "restartCount": 4,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
        }
    ]
    assert "spec" not in slim and "managedFields" not in slim["metadata"]


def test_projection_is_a_fraction_of_the_object() -> None:
    for obj, group, kind in ((live_deployment(), "apps", "Deployment"), (live_pod(), "", "Pod")):
        assert len(json.dumps(health_projection(obj, group, kind))) * 3 < len(json.dumps(obj))


def test_same_verdict_on_a_live_workload_and_its_pods() -> None:
    key = ObjectKey("apps/v1", "Deployment", "team", "web")
    deployment = live_deployment()
    deployment["status"]["readyReplicas"] = 1
    pods = [live_pod("ImagePullBackOff"), live_pod()]
    whole = assess(deployment, key, pods)
    slim = assess(
        health_projection(deployment, "apps", "Deployment"),
        key,
        [health_projection(p, "", "Pod") for p in pods],
    )
    assert whole == slim
    assert whole.state is State.FAILED


def test_other_kinds_keep_conditions_and_observed_generation() -> None:
    widget = {
        "metadata": {"name": "w", "namespace": "team", "generation": 2, "annotations": {"a": "b"}},
        "spec": {"size": 3},
        "status": {"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "True"}], "url": "x"},
    }
    assert health_projection(widget, "example.com", "Widget") == {
        "metadata": {"name": "w", "namespace": "team", "generation": 2},
        "status": {"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "True"}]},
    }


def test_fields_of_unexpected_types_are_kept_as_they_are() -> None:
    odd = {
        "metadata": {"name": "w", "ownerReferences": "nope"},
        "status": {"conditions": ["x", {"type": "Ready"}]},
    }
    assert health_projection(odd, "example.com", "Widget") == odd
