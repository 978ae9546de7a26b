"""What the HTTP API answers, from the custom resources: pure functions over their JSON.

The seed's messages (Image, Application, Release, DeployResponse) and the dashboard's
views (overview rows, which image runs where, release history with causes) are made here
and unit-tested without a cluster; the routes (web/routes/) only call the service layer
and read objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from alecton.api.models import API_VERSION, ImageSource
from alecton.reconcile.image_verification import recorded_verdict
from alecton.reconcile.promotion_hold import Hold
from alecton.service.images import image_refs, image_sources
from alecton.service.outcomes import WaitOutcome
from alecton.service.promotion_rules import promotion_rows
from alecton.service.resources import name_of, spec_of, status_of
from alecton.service.status import running_version, status_rows

# Seed field names: an Application is `{"name": ..., **spec}`.
APPLICATION_NAME = "name"


# What a full replace of an Application keeps of the object it replaces: not spec (the
# seed's "no merge"), but what others own (finalizers, owners) and the optimistic lock.
_KEPT_METADATA = ("labels", "annotations", "finalizers", "ownerReferences", "resourceVersion")


class BadRequest(ValueError):
    """A request body the API refuses before asking Kubernetes (422, reason Invalid)."""


# ---------------------------------------------------------------------------
# The seed's messages


def image_message(obj: Mapping[str, Any]) -> dict[str, Any]:
    spec = spec_of(obj)
    message: dict[str, Any] = {"name": str(spec.get("name", "")), "version": str(spec.get("version", "")),
                               "image": str(spec.get("image", ""))}  # fmt: skip
    source = ImageSource.parse(spec.get("source"))
    if source is not None:
        message["source"] = source.as_dict()
    if spec.get("digest"):
        message["digest"] = str(spec["digest"])
    verdict = recorded_verdict(dict(obj))
    if verdict is not None:  # the Image's Verified condition (Applications with spec.verify)
        message["verified"] = verdict
    return message


def application_message(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {APPLICATION_NAME: name_of(obj), **spec_of(obj)}


def application_object(body: Mapping[str, Any], existing: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The Application resource for a Create/UpdateApplication body.

    The body is the whole Application (the seed's "no merge"): its spec replaces the old
    one. An existing object keeps its metadata (labels, annotations) and resourceVersion,
    so a replace that raced another change fails (409) instead of undoing it. The schema
    and CEL rules of the CRD judge the spec itself.
    """
    name = body.get(APPLICATION_NAME)
    if not isinstance(name, str) or not name:
        raise BadRequest(f"{APPLICATION_NAME}: required, the Application's name")
    spec = {key: value for key, value in body.items() if key != APPLICATION_NAME}
    metadata: dict[str, Any] = {"name": name}
    if existing is not None:
        old = existing.get("metadata") or {}
        metadata.update({k: old[k] for k in _KEPT_METADATA if old.get(k) is not None})
    return {"apiVersion": API_VERSION, "kind": "Application", "metadata": metadata, "spec": spec}


def release_message(
    entry: Mapping[str, Any], refs: Mapping[str, str], sources: Mapping[str, Mapping[str, str]] | None = None
) -> dict[str, Any]:
    """One Helm revision as the API shows it (ListReleases), with its Image's source if known."""
    version = str(entry.get("version") or "")
    source = (sources or {}).get(version)
    return {
        "revision": entry.get("revision"),
        "status": entry.get("status", ""),
        "version": version,
        "image": refs.get(version, ""),
        "chart": entry.get("chart", ""),
        # the oci:// chart pinned to the digest helm pulled (spec.verify.chart); "" by tag
        "chartReference": entry.get("chartReference", ""),
        "appVersion": entry.get("appVersion", ""),
        "updated": entry.get("updated", ""),
        "description": entry.get("description", ""),
        "healthy": entry.get("healthy"),
        "cause": entry.get("cause", ""),
        "corrections": entry.get("corrections") or [],
        **({"source": dict(source)} if source else {}),
    }


def releases(
    deployment: Mapping[str, Any],
    refs: Mapping[str, str],
    sources: Mapping[str, Mapping[str, str]] | None = None,
) -> list[dict[str, Any]]:
    history = status_of(deployment).get("history") or []
    return [release_message(e, refs, sources) for e in history if isinstance(e, dict)]


def current_release(deployment: Mapping[str, Any], refs: Mapping[str, str]) -> dict[str, Any] | None:
    """The revision that runs now (helm's `deployed` one), else the newest."""
    history = releases(deployment, refs)
    return next((r for r in history if r["status"] == "deployed"), history[0] if history else None)


def health_of(status: Mapping[str, Any]) -> dict[str, Any]:
    health = status.get("health") if isinstance(status.get("health"), dict) else {}
    return {
        "state": str(health.get("state") or ""),
        "message": str(health.get("message") or ""),
        "progressing": list(health.get("progressing") or []),
    }


def deployment_message(deployment: Mapping[str, Any]) -> dict[str, Any]:
    metadata = deployment.get("metadata") or {}
    spec, status = spec_of(deployment), status_of(deployment)
    release = status.get("release") if isinstance(status.get("release"), dict) else {}
    return {
        "name": metadata.get("name", ""),
        "namespace": metadata.get("namespace", ""),
        "application": spec.get("application", ""),
        "target": spec.get("target", ""),
        "version": spec.get("version", ""),
        "running": running_version(status),
        "phase": status.get("phase", "Pending"),
        "message": status.get("message", ""),
        "revision": release.get("revision"),
        "cluster": release.get("cluster", ""),
        "health": health_of(status),
        "promotion": status.get("promotion"),
        "lastDeployed": release.get("lastDeployed", ""),
        "observedGeneration": status.get("observedGeneration"),
        "generation": metadata.get("generation"),
    }


def deploy_response(
    deployment: Mapping[str, Any], refs: Mapping[str, str], outcome: WaitOutcome
) -> dict[str, Any]:
    """The seed's DeployResponse (the release) with the Deployment and the wait's outcome."""
    return {
        "release": current_release(deployment, refs),
        "deployment": deployment_message(deployment),
        "outcome": {"done": outcome.done, "ok": outcome.ok, "message": outcome.message},
    }


def outcome_status(outcome: WaitOutcome, waited: bool) -> int:
    """HTTP status of a deploy or rollback: 202 written (no wait), 200 done and healthy,
    502 failed in the target cluster, 504 still going when the wait ended."""
    if not waited:
        return 202
    if not outcome.done:
        return 504
    return 200 if outcome.ok else 502


# ---------------------------------------------------------------------------
# The dashboard


def promotions(
    items: Iterable[Mapping[str, Any]], application: str = "", include_final: bool = False
) -> list[dict[str, Any]]:
    by_name = {name_of(p): p for p in items}
    rows = promotion_rows(by_name.values(), application or None, include_final)
    return [{**row, **_promotion_extra(by_name.get(row["name"]) or {})} for row in rows]


def _promotion_extra(promotion: Mapping[str, Any]) -> dict[str, str]:
    return {
        "message": str(status_of(promotion).get("message") or ""),
        "reason": str(spec_of(promotion).get("reason") or ""),
    }


def _promotion_summary(status: Mapping[str, Any]) -> dict[str, Any] | None:
    promotion = status.get("promotion")
    if not isinstance(promotion, dict):
        return None
    return {
        "state": promotion.get("state", ""),
        "message": promotion.get("message", ""),
        "hold": hold.describe() if (hold := Hold.parse(promotion.get("hold"))) else "",
    }


def overview(
    namespace: str,
    applications: list[dict[str, Any]],
    deployments: list[dict[str, Any]],
    images: list[dict[str, Any]],
    promotion_objects: list[dict[str, Any]],
    generated_at: str,
) -> dict[str, Any]:
    """Everything the dashboard's first screen shows, from four lists of the namespace."""
    image_of_app = {name_of(a): str(spec_of(a).get("image") or "") for a in applications}
    refs_of_image = {name: image_refs(images, name) for name in set(image_of_app.values()) if name}
    sources_of_image = {name: image_sources(images, name) for name in refs_of_image}
    by_name = {name_of(d): d for d in deployments}
    rows = []
    for row in status_rows(applications, deployments):
        deployment = by_name.get(row["deployment"]) or {}
        status = status_of(deployment)
        release = status.get("release") if isinstance(status.get("release"), dict) else {}
        refs = refs_of_image.get(image_of_app.get(row["application"], ""), {})
        rows.append(
            {
                **row,
                "health": {k: v for k, v in health_of(status).items() if k != "progressing"},
                "image": str(release.get("image") or refs.get(row["running"], "")),
                "promotion": _promotion_summary(status),
            }
        )
    return {
        "namespace": namespace,
        "generatedAt": generated_at,
        "rows": rows,
        "images": image_placement(rows, image_of_app, sources_of_image),
        "promotions": promotions(promotion_objects),
    }


def with_namespace(answer: dict[str, Any], namespace: str) -> dict[str, Any]:
    """One namespace's overview whose rows and promotions say their namespace (the page
    finds a row by it when one object changes)."""
    return {
        **answer,
        "rows": [{**row, "namespace": namespace} for row in answer["rows"]],
        "promotions": [{**p, "namespace": namespace} for p in answer["promotions"]],
    }


def all_namespaces(parts: Mapping[str, Mapping[str, Any]], generated_at: str) -> dict[str, Any]:
    """The overviews of several namespaces as one (rows by namespace, then as each sorts)."""
    names = sorted(parts)
    return {
        "namespace": "",
        "allNamespaces": True,
        "namespaces": names,
        "generatedAt": generated_at,
        "rows": [row for ns in names for row in parts[ns]["rows"]],
        "images": [{**image, "namespace": ns} for ns in names for image in parts[ns]["images"]],
        "promotions": [p for ns in names for p in parts[ns]["promotions"]],
    }


def image_placement(
    rows: Iterable[Mapping[str, Any]],
    image_of_app: Mapping[str, str],
    sources_of_image: Mapping[str, Mapping[str, Mapping[str, str]]] | None = None,
) -> list[dict[str, Any]]:
    """Which version of each image runs on which cluster (and for which targets), with the
    source each version was built from when its Image records one."""
    placed: dict[str, dict[str, dict[str, list[str]]]] = {}
    for row in rows:
        image, version, cluster = (
            image_of_app.get(row["application"], ""),
            row.get("running"),
            row.get("cluster"),
        )
        if not (image and version and cluster):
            continue
        targets = placed.setdefault(image, {}).setdefault(cluster, {}).setdefault(version, [])
        targets.append(
            f"{row['application']}/{row['target']}" if row["application"] != image else row["target"]
        )
    return [
        {
            "image": image,
            "clusters": {
                cluster: [
                    {"version": v, "targets": sorted(t), **_source_of(sources_of_image, image, v)}
                    for v, t in sorted(versions.items())
                ]
                for cluster, versions in sorted(clusters.items())
            },
        }
        for image, clusters in sorted(placed.items())
    ]


def _source_of(
    sources_of_image: Mapping[str, Mapping[str, Mapping[str, str]]] | None, image: str, version: str
) -> dict[str, Any]:
    source = ((sources_of_image or {}).get(image) or {}).get(version)
    return {"source": dict(source)} if source else {}


def deployment_details(
    deployment: Mapping[str, Any],
    refs: Mapping[str, str],
    promotion_objects: list[dict[str, Any]],
    sources: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    status = status_of(deployment)
    name = name_of(deployment)
    return {
        "deployment": deployment_message(deployment),
        "releases": releases(deployment, refs, sources),
        "conditions": [c for c in status.get("conditions") or [] if isinstance(c, dict)],
        "failedVersions": [f for f in status.get("failedVersions") or [] if isinstance(f, dict)],
        "promotions": promotions(
            [p for p in promotion_objects if spec_of(p).get("deployment") == name], include_final=True
        )[:10],
    }
