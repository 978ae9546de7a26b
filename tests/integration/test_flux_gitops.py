"""Flux as the GitOps client of alecton, for real: source-controller pulls a directory of alecton
manifests pushed as a Flux OCI artifact to the local registry (TLS from the local CA, a login),
kustomize-controller applies it to cluster alecton-a and waits on alecton's Deployments through
kstatus (their `Ready`/`Stalled`/`Reconciling` conditions and `status.observedGeneration`), and
Flux and the operator's promotion each keep to their own fields."""

from __future__ import annotations

import base64
import datetime
import gzip
import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from alecton.local.configuration import REGISTRY_USER
from alecton.local.flux import FluxControllers, crds_dir

from tests.integration import resources as r
from tests.integration.harness import Cluster, OperatorProcess, module_operator, wait_for, wait_phase
from tests.integration.test_oci_registry import Registry, push_manifest

pytestmark = pytest.mark.local_plane("Flux's controllers and the OCI registry run next to `alecton local up`")

FLUX_TOOLS = ("flux-source-controller", "flux-kustomize-controller")
SOURCE_API = "source.toolkit.fluxcd.io/v1"
KUSTOMIZE_API = "kustomize.toolkit.fluxcd.io/v1"
# Flux's artifact format (github.com/fluxcd/pkg/oci: what `flux push artifact` writes).
FLUX_CONFIG_TYPE = "application/vnd.cncf.flux.config.v1+json"
FLUX_CONTENT_TYPE = "application/vnd.cncf.flux.content.v1.tar+gzip"
GOOD = "ghcr.io/stefanprodan/podinfo:6.7.0"
CRASH = "ghcr.io/stefanprodan/podinfo:6.7.0-crash"  # kwok: CrashLoopBackOff (kwok-stages.yaml)


@dataclass
class GitOps:
    """Flux on its namespace (its sources, Kustomizations and the registry's Secrets live
    there) and the registry the manifests are pushed to."""

    cluster: Cluster
    operator: OperatorProcess
    flux: FluxControllers
    registry: Registry
    namespace: str

    def push(self, repository: str, manifests: list[dict[str, Any]], revision: str) -> str:
        """The manifests as one YAML file in a Flux artifact; its digest."""
        return push_manifest(
            self.registry,
            repository,
            "main",
            (FLUX_CONFIG_TYPE, b"{}"),
            (FLUX_CONTENT_TYPE, artifact_layer({"alecton.yaml": yaml.safe_dump_all(manifests)})),
            annotations={
                "org.opencontainers.image.revision": revision,
                "org.opencontainers.image.created": now(),
            },
        )

    def sync(self, name: str, repository: str, target_namespace: str, **spec: Any) -> None:
        """An OCIRepository and a Kustomization of it, as a Flux user writes them."""
        self.cluster.apply(
            {
                "apiVersion": SOURCE_API,
                "kind": "OCIRepository",
                "metadata": {"name": name},
                "spec": {
                    "url": f"oci://{self.registry.host}/{repository}",
                    "ref": {"tag": "main"},
                    "interval": "10m",
                    "secretRef": {"name": "registry-login"},
                    "certSecretRef": {"name": "registry-ca"},
                },
            },
            {
                "apiVersion": KUSTOMIZE_API,
                "kind": "Kustomization",
                "metadata": {"name": name},
                "spec": {
                    "sourceRef": {"kind": "OCIRepository", "name": name},
                    "path": "./",
                    "interval": "10m",
                    "prune": True,
                    "targetNamespace": target_namespace,
                    "wait": True,
                    "timeout": "5m",
                    **spec,
                },
            },
            namespace=self.namespace,
        )

    def kustomization(self, name: str) -> dict[str, Any]:
        return self.cluster.get(f"kustomizations.{KUSTOMIZE_API.split('/')[0]}", name, self.namespace) or {}

    def reconcile_now(self, name: str) -> str:
        """`flux reconcile kustomization --with-source`: the requestedAt annotation on both."""
        stamp = now()
        for kind in (
            "ocirepositories.source.toolkit.fluxcd.io",
            "kustomizations.kustomize.toolkit.fluxcd.io",
        ):
            self.cluster.kubectl(
                "annotate", "--overwrite", "-n", self.namespace, kind, name,
                f"reconcile.fluxcd.io/requestedAt={stamp}",
            )  # fmt: skip
        return stamp


def artifact_layer(files: dict[str, str]) -> bytes:
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    return gzip.compress(tar.getvalue(), mtime=0)


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    """A condition written for the object's current generation (else {})."""
    status = obj.get("status") or {}
    generation = (obj.get("metadata") or {}).get("generation")
    for found in status.get("conditions") or []:
        if found.get("type") == kind and found.get("observedGeneration", generation) == generation:
            return dict(found)
    return {}


def registry_secrets(registry: Registry) -> list[dict[str, Any]]:
    """`kubectl create secret docker-registry` and a Secret with the CA, as Flux's docs say."""
    login = f"{REGISTRY_USER}:{registry.password}"
    auths = {registry.host: {"username": REGISTRY_USER, "password": registry.password,
                             "auth": base64.b64encode(login.encode()).decode()}}  # fmt: skip
    config = json.dumps({"auths": auths})
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": "registry-login"},
            "stringData": {".dockerconfigjson": config},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "registry-ca"},
            "stringData": {"ca.crt": registry.ca_file.read_text()},
        },
    ]


@pytest.fixture(scope="module")
def gitops(
    request: pytest.FixtureRequest, crds: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GitOps]:
    cluster = crds
    for tool in FLUX_TOOLS:
        cluster.kubectl("apply", "--server-side", "-f", str(crds_dir(cluster.bin, tool)))
    cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    with module_operator(
        cluster,
        "helm",
        tmp_path_factory.mktemp("operator"),
        extra_args=("--allow-context", "*=alecton-b@operator", "--allow-adopt"),
    ) as operator:
        namespace = cluster.new_namespace("flux-system")
        registry = Registry(cluster)
        cluster.apply(*registry_secrets(registry), namespace=namespace)
        workdir = Path(tmp_path_factory.mktemp("flux"))
        flux = FluxControllers(cluster.bin, cluster.kubeconfig, namespace, workdir, FLUX_TOOLS)
        try:
            yield GitOps(cluster, operator, flux, registry, namespace)
            # While Flux runs: its finalizers prune what it applied (alecton's finalizers then
            # uninstall the releases) and let the namespace go.
            cluster.kubectl("delete", "namespace", namespace, "--timeout=150s")
        finally:
            flux.stop()
            if request.session.testsfailed:
                print(flux.log_tail())


def manifests(target_ns: str, app: str, image: str, **app_spec: Any) -> list[dict[str, Any]]:
    """What a team keeps in Git for one application on cluster alecton-b."""
    return [
        r.cluster(),
        r.application(app, target_ns, image_name=app, **app_spec),
        r.image(app, "1.0.0", image),
        r.deployment(app, "1.0.0"),
    ]


def ready_after_deployed(gitops: GitOps, name: str, namespace: str, deployment: str) -> dict[str, Any]:
    """Wait for Kustomization `name` to be Ready, watching that it never was while alecton's
    Deployment was not Deployed yet (kstatus: alecton's observedGeneration and conditions)."""
    seen: list[tuple[str, str]] = []  # (Kustomization Ready, alecton phase), as both moved

    def ready() -> dict[str, Any] | None:
        kustomization = gitops.kustomization(name)
        found = gitops.cluster.get("deployments.alecton.dev", deployment, namespace) or {}
        state = (
            condition(kustomization, "Ready").get("status", ""),
            str((found.get("status") or {}).get("phase")),
        )
        if not seen or seen[-1] != state:
            seen.append(state)
        return kustomization if state[0] == "True" else None

    kustomization = wait_for(ready, 180, f"the Kustomization {name} to be Ready")
    assert all(phase == "Deployed" for flux, phase in seen if flux == "True"), seen
    return kustomization


def managed(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    """An alecton Deployment with its managedFields (kubectl hides them by default)."""
    found = cluster.kubectl(
        "get", "deployments.alecton.dev", name, "-n", namespace, "-o", "json", "--show-managed-fields"
    )
    return dict(json.loads(found.stdout))


def test_a_kustomization_is_ready_only_once_alectons_deployment_is_deployed(gitops: GitOps) -> None:
    cluster = gitops.cluster
    ns = cluster.new_namespace("flux-web")
    digest = gitops.push("flux/web", manifests(f"{ns}-web", "web", GOOD), "main@sha1:1111111")
    gitops.sync("web", "flux/web", ns)

    kustomization = ready_after_deployed(gitops, "web", ns, "web-staging")
    deployed = wait_phase(cluster, ns, "web-staging", "Deployed")
    alecton_ready = condition(deployed, "Ready")
    flux_ready = condition(kustomization, "Ready")
    assert flux_ready["lastTransitionTime"] >= alecton_ready["lastTransitionTime"], (
        flux_ready,
        alecton_ready,
    )
    # Flux patches its conditions and the rest of its status one after the other.
    kustomization = wait_for(
        lambda: (
            (k := gitops.kustomization("web"))["status"].get("lastAppliedRevision") == f"main@{digest}" and k
        ),
        30,
        "the applied revision and inventory",
    )
    inventory = {entry["id"] for entry in kustomization["status"]["inventory"]["entries"]}
    assert f"{ns}_web-staging_alecton.dev_Deployment" in inventory, inventory
    assert {f"{ns}_web_alecton.dev_Application", f"{ns}_web-1.0.0_alecton.dev_Image"} <= inventory
    workload = cluster.kubectl("get", "deployment", "web-staging", "-n", f"{ns}-web", context="alecton-b")
    assert "web-staging" in workload.stdout


def test_a_deploy_that_fails_fails_the_kustomizations_health_check(gitops: GitOps) -> None:
    cluster = gitops.cluster
    ns = cluster.new_namespace("flux-bad")
    bad = manifests(f"{ns}-bad", "bad", CRASH, healthTimeout="30s")
    gitops.push("flux/bad", bad, "main@sha1:2222222")
    # This time the health check names the Deployment (`healthChecks` instead of `wait`);
    # timeout 5m: the failure must come long before it.
    check = {"apiVersion": r.API, "kind": "Deployment", "name": "bad-staging", "namespace": ns}
    gitops.sync("bad", "flux/bad", ns, wait=False, healthChecks=[check])

    def failed() -> dict[str, Any] | None:
        ready = condition(gitops.kustomization("bad"), "Ready")
        return (
            ready if ready.get("status") == "False" and ready.get("reason") == "HealthCheckFailed" else None
        )

    ready = wait_for(failed, 150, "the Kustomization's health check to fail")
    # kstatus saw alecton's Stalled=True (the health check failed): Failed, not a timeout.
    assert f"Deployment/{ns}/bad-staging status: 'Failed'" in ready["message"], ready
    assert "timeout" not in ready["message"].lower(), ready
    deployment = wait_phase(cluster, ns, "bad-staging", "Failed")
    assert condition(deployment, "Stalled")["status"] == "True", deployment["status"]


def managers_of_version(obj: dict[str, Any]) -> set[str]:
    """The field managers that own `spec.version` (managedFields, fieldsV1 form)."""
    return {
        entry["manager"]
        for entry in obj["metadata"].get("managedFields") or []
        if "f:version" in ((entry.get("fieldsV1") or {}).get("f:spec") or {})
    }


def test_flux_and_promotion_never_fight_over_spec_version(gitops: GitOps) -> None:
    cluster = gitops.cluster
    ns = cluster.new_namespace("flux-promo")
    promoted = r.promoted("promo", {"versions": {"semver": ">=1.0.0 <2"}})
    first = [*manifests(f"{ns}-promo", "promo", GOOD)[:3], promoted]
    gitops.push("flux/promo", first, "main@sha1:3333333")
    gitops.sync("promo", "flux/promo", ns)
    ready_after_deployed(gitops, "promo", ns, "promo-staging")
    deployed = managed(cluster, ns, "promo-staging")
    assert deployed["spec"]["version"] == "1.0.0"
    assert managers_of_version(deployed) == {"alecton-promotion"}, deployed["metadata"]["managedFields"]

    # A new revision in the registry (CI recorded 1.1.0 in Git): Flux applies it, alecton
    # promotes to it; Flux never reverts or removes the version alecton wrote.
    second = [*first, r.image("promo", "1.1.0", GOOD)]
    digest = gitops.push("flux/promo", second, "main@sha1:4444444")
    gitops.reconcile_now("promo")

    def applied(revision: str, stamp: str | None = None) -> dict[str, Any] | None:
        kustomization = gitops.kustomization("promo")
        status = kustomization.get("status") or {}
        if (
            status.get("lastAppliedRevision") != revision
            or condition(kustomization, "Ready").get("status") != "True"
        ):
            return None
        return kustomization if stamp is None or status.get("lastHandledReconcileAt") == stamp else None

    wait_for(lambda: applied(f"main@{digest}"), 180, "Flux to apply the new revision")
    wait_for(
        lambda: (
            (cluster.get("deployments.alecton.dev", "promo-staging", ns) or {})["spec"].get("version")
            == "1.1.0"
        ),
        120,
        "alecton to promote 1.1.0",
    )
    wait_phase(cluster, ns, "promo-staging", "Deployed", timeout=120)
    # Flux applies again on its own (the next interval, here asked for at once): same answer.
    stamp = gitops.reconcile_now("promo")
    wait_for(lambda: applied(f"main@{digest}", stamp), 120, "Flux to apply again")
    after = managed(cluster, ns, "promo-staging")
    assert after["spec"]["version"] == "1.1.0", after["spec"]
    assert managers_of_version(after) == {"alecton-promotion"}, after["metadata"]["managedFields"]
    flux_fields = next(
        e for e in after["metadata"]["managedFields"] if e["manager"] == "kustomize-controller"
    )
    assert set(flux_fields["fieldsV1"]["f:spec"]) == {"f:application", "f:target", "f:promotion"}, flux_fields
    assert after["status"]["phase"] == "Deployed", after["status"]


def test_a_deployment_reads_as_in_progress_before_the_operator_wrote_its_status(crds: Cluster) -> None:
    """The API server drops a status sent on create; without one kstatus calls any object
    Current. The CRD's status default (observedGeneration 0, applied when read) makes the
    object as created already say "not observed yet"."""
    ns = crds.new_namespace("flux-fresh")
    created = crds.kubectl(
        "create", "-n", ns, "-o", "json", "-f", "-", stdin=json.dumps(r.deployment("fresh", "1.0.0"))
    )
    fresh = json.loads(created.stdout)
    assert fresh["status"]["observedGeneration"] < fresh["metadata"]["generation"], fresh.get("status")
