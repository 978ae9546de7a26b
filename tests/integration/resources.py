"""Builders for alecton resources used by the integration tests."""

from __future__ import annotations

import base64
from typing import Any

import yaml

from tests.integration.external import PAIR, application_values

API = "alecton.dev/v1alpha1"


def image(name: str, version: str, ref: str, object_name: str | None = None) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Image",
        "metadata": {"name": object_name or f"{name}-{version}"},
        "spec": {"name": name, "version": version, "image": ref},
    }


def cluster(name: str = "target-b", context: str = "alecton-b", secret: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"context": context} if context else {}
    if secret:
        spec["kubeconfigSecretRef"] = {"name": secret, "key": "kubeconfig"}
    return {"apiVersion": API, "kind": "Cluster", "metadata": {"name": name}, "spec": spec}


def application(
    name: str,
    target_namespace: str,
    image_name: str = "web",
    chart: str = "webapp",
    values: dict[str, Any] | None = None,
    target_values: dict[str, Any] | None = None,
    cluster_name: str = "target-b",
    target: str = "staging",
    target_extra: dict[str, Any] | None = None,
    **spec_extra: Any,
) -> dict[str, Any]:
    """`spec_extra`: more spec fields (health, healthTimeout, onFailure); `target_extra`:
    more fields of the target. On an external pair the values ask for no replicas unless
    the test sets them (external.py says why)."""
    return {
        "apiVersion": API,
        "kind": "Application",
        "metadata": {"name": name},
        "spec": {
            "chart": chart,
            "image": image_name,
            "values": application_values(values, PAIR),
            **spec_extra,
            "targets": [
                {
                    "name": target,
                    "cluster": cluster_name,
                    "namespace": target_namespace,
                    "values": target_values or {},
                    **(target_extra or {}),
                }
            ],
        },
    }


def deployment(
    application_name: str,
    version: str,
    target: str = "staging",
    name: str | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Deployment",
        "metadata": {"name": name or f"{application_name}-{target}"},
        "spec": {"application": application_name, "target": target, "version": version, **spec},
    }


def promoted(
    application_name: str, promotion: dict[str, Any], target: str = "staging", **spec: Any
) -> dict[str, Any]:
    """A Deployment whose version the operator chooses (spec.promotion, no spec.version)."""
    return {
        "apiVersion": API,
        "kind": "Deployment",
        "metadata": {"name": f"{application_name}-{target}"},
        "spec": {"application": application_name, "target": target, "promotion": promotion, **spec},
    }


def kubeconfig_secret(name: str, kubeconfig: dict[str, Any] | str, key: str = "kubeconfig") -> dict[str, Any]:
    """A tenant's kubeconfig Secret (a dict is dumped as YAML, a string stored as is)."""
    text = kubeconfig if isinstance(kubeconfig, str) else yaml.safe_dump(kubeconfig)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "data": {key: base64.b64encode(text.encode()).decode()},
    }
