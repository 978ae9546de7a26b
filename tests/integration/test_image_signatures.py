"""Only signed images go out (Application spec.verify): images pushed to the local test bed's
registry, signed by the real cosign (key pairs, no transparency log), and the operator's
own check of those signatures before helm runs. The correctly signed image deploys; an
unsigned one, one signed by another key, a re-tagged one and one whose signature was copied
from another digest are Failed with ImageVerificationFailed, and helm never runs for them."""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from alecton.local.configuration import REGISTRY_USER

from tests.integration import resources as r
from tests.integration.harness import OperatorProcess, events, wait_phase
from tests.integration.tenant import as_tenant
from tests.integration.test_cli import alecton
from tests.integration.test_oci_registry import ASKS_FOR_A_LOGIN, Registry, push_image, trusting
from tests.integration.test_redteam_issue26 import TenantServer

pytestmark = pytest.mark.local_plane("signatures are pushed to the registry of `alecton local up`")

SIGNATURE_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


class Cosign:
    """The real cosign, logged in to the local registry through a temporary DOCKER_CONFIG and
    trusting its CA through SSL_CERT_FILE; keys made with an empty COSIGN_PASSWORD."""

    def __init__(self, binary: Path, registry: Registry, work: Path) -> None:
        self.binary, self.work = binary, work
        token = base64.b64encode(f"{REGISTRY_USER}:{registry.password}".encode()).decode()
        (work / "config.json").write_text(json.dumps({"auths": {registry.host: {"auth": token}}}))
        self.env = {
            **os.environ,
            "DOCKER_CONFIG": str(work),
            "SSL_CERT_FILE": str(registry.ca_file),
            "COSIGN_PASSWORD": "",
            "HOME": str(work),  # cosign caches nothing in the real home
        }

    def run(self, *args: str, cwd: Path | None = None) -> str:
        proc = subprocess.run(
            [str(self.binary), *args], capture_output=True, text=True, env=self.env, cwd=cwd, timeout=120
        )
        assert proc.returncode == 0, f"cosign {' '.join(args)}: {proc.stderr}"
        return proc.stdout

    def key_pair(self, name: str) -> Path:
        where = self.work / name
        where.mkdir()
        self.run("generate-key-pair", cwd=where)
        return where

    def sign(self, keys: Path, reference: str) -> None:
        self.run("sign", "--key", str(keys / "cosign.key"), "--tlog-upload=false", "--yes", reference)


def signature_tag(digest: str) -> str:
    return digest.replace(":", "-") + ".sig"


def copy_signature(registry: Registry, repository: str, source: str, target: str) -> None:
    """Whoever can push to the repository copies one digest's signature manifest to
    another digest's signature tag (the blobs are already there)."""
    base = f"https://{registry.host}/v2/{repository}/manifests"
    trust = ssl.create_default_context(cafile=str(registry.ca_file))
    with httpx.Client(verify=trust, auth=(REGISTRY_USER, registry.password), timeout=30) as web:
        got = web.get(f"{base}/{signature_tag(source)}", headers={"Accept": SIGNATURE_MANIFEST})
        assert got.status_code == 200, got.text
        put = web.put(
            f"{base}/{signature_tag(target)}",
            content=got.content,
            headers={"Content-Type": got.headers["Content-Type"]},
        )
        assert put.status_code == 201, put.text


def signed_image(version: str, ref: str, digest: str) -> dict[str, Any]:
    image = r.image("web", version, ref)
    image["spec"]["digest"] = digest
    return image


def verify_secret(registry: Registry, keys: Path) -> dict[str, Any]:
    secret = registry.secret(name="cosign")
    secret["type"] = "Opaque"
    secret["data"]["cosign.pub"] = base64.b64encode((keys / "cosign.pub").read_bytes()).decode()
    return secret


def ready_condition(deployment: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in deployment["status"]["conditions"] if c["type"] == "Ready")


@pytest.fixture(scope="module")
def cosign(operator: OperatorProcess, tmp_path_factory: pytest.TempPathFactory) -> Cosign:
    binary = operator.cluster.bin / "cosign"
    assert binary.exists(), "cosign is not built: run `make tools` (TOOLS=cosign hack/build-tools.sh)"
    return Cosign(binary, Registry(operator.cluster), tmp_path_factory.mktemp("cosign"))


def test_only_images_signed_by_the_policys_key_are_deployed(
    operator: OperatorProcess, cosign: Cosign
) -> None:
    cluster = operator.cluster
    registry = Registry(cluster)
    ns = cluster.new_namespace("signed")
    target_ns = f"{ns}-web"
    repository = f"team/{ns}"
    ref = f"{registry.host}/{repository}"
    ours, theirs = cosign.key_pair("ours"), cosign.key_pair("theirs")

    good = push_image(registry, repository, "1.0.0", "signed by ours")
    cosign.sign(ours, f"{ref}@{good}")
    other_key = push_image(registry, repository, "2.0.0", "signed by theirs")
    cosign.sign(theirs, f"{ref}@{other_key}")
    unsigned = push_image(registry, repository, "3.0.0", "never signed")
    retagged = push_image(registry, repository, "1.0.0", "pushed over the signed tag")
    copied = push_image(registry, repository, "5.0.0", "a stolen signature")
    copy_signature(registry, repository, good, copied)
    images = {
        "good": ("1.0.0", f"{ref}:1.0.0", good),
        "other-key": ("2.0.0", f"{ref}:2.0.0", other_key),
        "unsigned": ("3.0.0", f"{ref}:3.0.0", unsigned),
        "retagged": ("4.0.0", f"{ref}:1.0.0", retagged),  # the signed tag, now naming another build
        "copied": ("5.0.0", f"{ref}:5.0.0", copied),
    }
    policy = {"provider": "cosign", "secretRef": {"name": "cosign"}}
    # The team's admin sets the policy; the Images and Deployments are a deployer's (the
    # shipped role, which cannot read the Secret): no account writes Images only.
    applications = [r.application(name, target_ns, verify=policy) for name in images]
    cluster.apply(r.cluster(), *applications, namespace=ns)
    deployer = as_tenant(cluster, ns, "alecton-deployer")
    deployer.apply(
        *(signed_image(version, image, digest) for version, image, digest in images.values()),
        *(r.deployment(name, version) for name, (version, _, _) in images.items()),
    )
    # The policy's Secret is not there yet: every Deployment waits for it, helm never runs.
    waiting = wait_phase(cluster, ns, "good-staging", "Pending", timeout=60)
    assert ready_condition(waiting)["reason"] == "VerificationSecretNotFound", waiting["status"]
    assert "Secret 'cosign' (spec.verify.secretRef) does not exist" in ready_condition(waiting)["message"]

    cluster.apply(verify_secret(registry, ours), namespace=ns)
    deployed = wait_phase(cluster, ns, "good-staging", "Deployed", timeout=120)
    assert deployed["status"]["release"]["image"] == f"{ref}:1.0.0@{good}"  # pinned to what was verified
    expected = {
        "other-key": "is signed by another key",
        "unsigned": "has no cosign signature",
        "retagged": "has no cosign signature",
        "copied": f"is a signature for another digest ({good})",
    }
    for name, words in expected.items():
        failed = wait_phase(cluster, ns, f"{name}-staging", "Failed", timeout=60)
        ready = ready_condition(failed)
        assert ready["reason"] == "ImageVerificationFailed", (name, ready)
        assert words in ready["message"] and images[name][2] in ready["message"], (name, ready)
        assert "release" not in failed["status"] or not failed["status"]["release"].get("revision"), failed
    releases = cluster.helm_json(operator.helm, "list", "--namespace", target_ns)
    assert [x["name"] for x in releases] == ["good-staging"], releases
    for name in expected:
        history = cluster.run(operator.helm, "history", f"{name}-staging", "--namespace", target_ns,
                              "--kube-context", "alecton-b", check=False)  # fmt: skip
        assert history.returncode != 0 and "not found" in history.stderr, (name, history.stdout)
    text = json.dumps(cluster.get("Deployment", "unsigned-staging", ns)) + json.dumps(events(cluster, ns))
    assert registry.password not in text

    # A diff checks the signature too (with the caller's rights on the Secret).
    diff = alecton(cluster, ns, "diff", "unsigned", "staging", "3.0.0")
    assert diff.returncode != 0 and "has no cosign signature" in diff.stderr, diff.stdout + diff.stderr


def test_a_tenant_cannot_verify_with_another_teams_keys_nor_send_the_policys_login_elsewhere(
    operator: OperatorProcess, cosign: Cosign, tmp_path: Path
) -> None:
    """Tenant B (deployer) names team A's verification Secret: never read, B waits for a
    Secret of its own. A deployer of team A names, in its Image, a registry of its own that
    the policy Secret's CA trusts: the Secret's registry login is never sent there, and the
    image is not deployed."""
    cluster = operator.cluster
    registry = Registry(cluster)
    team_a, team_b = cluster.new_namespace("verify-a"), cluster.new_namespace("verify-b")
    repository = f"team/{team_a}"
    ref = f"{registry.host}/{repository}"
    keys = cosign.key_pair(f"keys-{team_a}")
    good = push_image(registry, repository, "1.0.0", "signed by team a")
    cosign.sign(keys, f"{ref}@{good}")
    tenant_registry = TenantServer(tmp_path, ASKS_FOR_A_LOGIN)
    try:
        policy = {"provider": "cosign", "secretRef": {"name": "cosign"}}
        secret = trusting(verify_secret(registry, keys), tenant_registry.ca.cert_pem)
        a_app = r.application("web", f"{team_a}-web", verify=policy)
        cluster.apply(secret, r.cluster(), a_app, namespace=team_a)

        b_deployer = as_tenant(cluster, team_b, "alecton-deployer")
        b_app = r.application("web", f"{team_b}-web", verify=policy)
        b_app["spec"]["verify"]["secretRef"]["namespace"] = team_a  # not in the schema: pruned
        docs = [r.cluster(), b_app, signed_image("1.0.0", f"{ref}:1.0.0", good), r.deployment("web", "1.0.0")]
        b_deployer("apply", "--validate=false", "-f", "-", stdin=yaml.safe_dump_all(docs))
        waiting = wait_phase(cluster, team_b, "web-staging", "Pending", timeout=60)
        assert ready_condition(waiting)["reason"] == "VerificationSecretNotFound", waiting["status"]
        assert cluster.helm_json(operator.helm, "list", "--namespace", f"{team_b}-web") == []

        a_deployer = as_tenant(cluster, team_a, "alecton-deployer")
        elsewhere = f"127.0.0.1:{tenant_registry.server.server_port}/{repository}:1.0.0"
        a_deployer.apply(signed_image("1.0.0", elsewhere, good), r.deployment("web", "1.0.0"))
        failed = wait_phase(cluster, team_a, "web-staging", "Failed", timeout=60)
        assert ready_condition(failed)["reason"] == "ImageVerificationFailed", failed["status"]
        assert not any("Basic" in header for header in tenant_registry.authorizations), "the login was sent"
        assert "never sent to another registry" in ready_condition(failed)["message"], failed["status"]
        assert cluster.helm_json(operator.helm, "list", "--namespace", f"{team_a}-web") == []
        text = json.dumps(events(cluster, team_a)) + json.dumps(events(cluster, team_b))
        assert registry.password not in text + json.dumps(failed) + operator.log_since_start()
    finally:
        tenant_registry.close()
