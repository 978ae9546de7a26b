"""Only signed images go out (Application spec.verify): images pushed to the local test bed's
registry, signed by the real cosign (key pairs, no transparency log), and the operator's
own check of those signatures before helm runs. The correctly signed image deploys; an
unsigned one, one signed by another key, a re-tagged one and one whose signature was copied
from another digest are Failed with ImageVerificationFailed, and helm never runs for them.
Each Image says the same in its own status: a `Verified` condition and one entry per
Application whose policy judged it. Keyless identities (spec.verify.identities): images signed
by the real cosign with Fulcio-like certificates of a local CA (no Fulcio, no Rekor); the
accepted identity deploys, another identity, another issuer, another CA's certificate and an
expired one are refused. Rollbacks under the policy (a person's and the automatic one) restore
only a revision whose recorded image passes it now."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import ssl
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from alecton.local import pki
from alecton.local.configuration import REGISTRY_USER

from tests.integration import resources as r
from tests.integration.harness import Cluster, OperatorProcess, events, wait_for, wait_phase
from tests.integration.tenant import Tenant, as_tenant
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

    def sign_with_certificate(
        self, name: str, certificate: pki.KeyPair, chain: bytes, reference: str
    ) -> None:
        """A keyless-style signature without Fulcio: the certificate's key imported into
        cosign's format, and the certificate and its chain attached to the signature."""
        where = self.work / name
        where.mkdir()
        pki.write_private(where / "leaf.key", certificate.key_pem)
        (where / "leaf.pem").write_bytes(certificate.cert_pem)
        (where / "chain.pem").write_bytes(chain)
        self.run("import-key-pair", "--key", "leaf.key", "--output-key-prefix", "cosign", cwd=where)
        self.run(
            "sign", "--key", "cosign.key", "--certificate", "leaf.pem", "--certificate-chain", "chain.pem",
            "--tlog-upload=false", "--yes", reference, cwd=where,
        )  # fmt: skip


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


def verify_secret(registry: Registry, keys: Path, name: str = "cosign") -> dict[str, Any]:
    secret = registry.secret(name=name)
    secret["type"] = "Opaque"
    secret["data"]["cosign.pub"] = base64.b64encode((keys / "cosign.pub").read_bytes()).decode()
    return secret


def ready_condition(deployment: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in deployment["status"]["conditions"] if c["type"] == "Ready")


def rollback_to_1_refused(deployer: Tenant, cluster: Cluster, ns: str) -> tuple[dict[str, Any], str]:
    """`alecton rollback web staging 1` as the deployer, refused under spec.verify: the CLI says
    so, the Deployment is Failed/RollbackRefused at revision 2 with the fix in its message.
    The status and the Ready message, for the caller's own checks."""
    refused = deployer.alecton("rollback", "web", "staging", "1", "--wait", "--timeout", "90")
    assert refused.returncode != 0, refused.stdout
    assert "RollbackRefused: rollback to revision 1 refused" in refused.stdout, (
        refused.stdout + refused.stderr
    )
    status = cluster.get("deployments.alecton.dev", "web-staging", ns)["status"]
    ready = ready_condition({"status": status})
    assert (status["phase"], ready["reason"]) == ("Failed", "RollbackRefused"), status
    assert (
        "the release stays at revision 2" in ready["message"]
        and "alecton deploy web staging" in ready["message"]
    )
    return status, ready["message"]


def image_verified(cluster: Cluster, ns: str, name: str, status: str) -> dict[str, Any]:
    """The Image's status once its Verified condition is `status`."""

    def check() -> dict[str, Any] | None:
        image = cluster.get("Image", name, ns) or {}
        conditions = (image.get("status") or {}).get("conditions") or []
        verified = next((c for c in conditions if c.get("type") == "Verified"), None)
        return image["status"] if verified and verified["status"] == status else None

    return wait_for(check, timeout=60, what=f"Image {name} Verified={status}")


def verified_condition(status: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == "Verified")


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
    # A second team's Application trusts the other key: the same Image, judged twice.
    theirs_policy = {"provider": "cosign", "secretRef": {"name": "theirs"}}
    applications.append(r.application("theirs", f"{ns}-theirs", verify=theirs_policy))
    cluster.apply(r.cluster(), *applications, namespace=ns)
    deployer = as_tenant(cluster, ns, "alecton-deployer")
    deployer.apply(
        *(signed_image(version, image, digest) for version, image, digest in images.values()),
        *(r.deployment(name, version) for name, (version, _, _) in images.items()),
        r.deployment("theirs", "2.0.0"),
        namespace=ns,
    )
    # The policy's Secret is not there yet: every Deployment waits for it, helm never runs.
    waiting = wait_phase(cluster, ns, "good-staging", "Pending", timeout=60)
    assert ready_condition(waiting)["reason"] == "VerificationSecretNotFound", waiting["status"]
    assert "Secret 'cosign' (spec.verify.secretRef) does not exist" in ready_condition(waiting)["message"]
    # The Image says so too: not judged yet (Unknown), and which Application waits for what.
    unjudged = verified_condition(image_verified(cluster, ns, "web-1.0.0", "Unknown"))
    assert unjudged["reason"] == "VerificationSecretNotFound", unjudged
    assert "Application good" in unjudged["message"] and "Secret 'cosign'" in unjudged["message"], unjudged

    cluster.apply(verify_secret(registry, ours), verify_secret(registry, theirs, "theirs"), namespace=ns)
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

    # Each Image says why in its own status, naming the Application and its Secret (never a key).
    verified = image_verified(cluster, ns, "web-1.0.0", "True")
    assert verified_condition(verified)["reason"] == "Verified", verified
    assert "Application good" in verified_condition(verified)["message"], verified
    assert verified["verifications"] == [
        {
            "application": "good",
            "secret": "cosign",
            "verified": True,
            "reason": "Verified",
            "message": verified["verifications"][0]["message"],
        }
    ], verified
    assert "is signed by key cosign.pub" in verified["verifications"][0]["message"], verified
    for name, version in (("other-key", "2.0.0"), ("unsigned", "3.0.0")):
        refused = image_verified(cluster, ns, f"web-{version}", "False")
        condition = verified_condition(refused)
        assert condition["reason"] == "ImageVerificationFailed", (name, condition)
        assert f"Application {name} (Secret 'cosign')" in condition["message"], (name, condition)
        assert expected[name] in condition["message"], (name, condition)
    # Judged by two policies: each says its verdict, and the condition is False while one refuses.
    wait_phase(cluster, ns, "theirs-staging", "Deployed", timeout=120)
    twice = wait_for(
        lambda: (
            len((s := image_verified(cluster, ns, "web-2.0.0", "False")).get("verifications") or []) == 2
            and s
        ),
        what="web-2.0.0 judged by both Applications",
    )
    assert [(v["application"], v["secret"], v["verified"]) for v in twice["verifications"]] == [
        ("other-key", "cosign", False),
        ("theirs", "theirs", True),
    ], twice
    assert "Application theirs" not in verified_condition(twice)["message"], twice
    public_key = (ours / "cosign.pub").read_text().splitlines()[1]
    images_text = json.dumps([cluster.get("Image", f"web-{v}", ns) for v, _, _ in images.values()])
    assert public_key not in images_text and registry.password not in images_text
    # Written on change only: another pass judges the Image the same (the operator verifies
    # before it plans, suspended or not) and leaves it as it was.
    before = cluster.get("Image", "web-3.0.0", ns)
    cluster.patch_spec(ns, "unsigned-staging", {"suspend": True})
    wait_phase(cluster, ns, "unsigned-staging", "Suspended", timeout=60)
    after = cluster.get("Image", "web-3.0.0", ns)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"], (before, after)
    cluster.patch_spec(ns, "unsigned-staging", {"suspend": False})

    # `alecton image list` shows it.
    listed = alecton(cluster, ns, "image", "list", "--name", "web")
    rows = {line.split()[1]: line for line in listed.stdout.splitlines()[1:]}
    assert "False (ImageVerificationFailed)" in rows["3.0.0"] and " True " in rows["1.0.0"], listed.stdout

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


ISSUER = "https://oidc.team.example"
SIGNER = "release@team.example"


def test_keyless_signatures_deploy_only_for_an_accepted_identity_of_the_secrets_ca(
    operator: OperatorProcess, cosign: Cosign
) -> None:
    """Certificates from a Fulcio-like CA (root in the Secret's fulcio-root.pem, an
    intermediate in each signature's chain) as the real cosign attaches them; the Secret
    holds no public key. The Images and Deployments are a deployer's (the shipped role)."""
    cluster = operator.cluster
    registry = Registry(cluster)
    ns = cluster.new_namespace("keyless")
    target_ns = f"{ns}-web"
    repository = f"team/{ns}"
    ref = f"{registry.host}/{repository}"
    expired_at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    # The CAs were valid before the expired certificate was: cosign checks the chain at its notBefore.
    since = expired_at - dt.timedelta(days=1)
    root = pki.CertificateAuthority("team-fulcio-root", not_before=since)
    fulcio = pki.CertificateAuthority("team-fulcio", parent=root, not_before=since)
    stranger = pki.CertificateAuthority("team-fulcio", parent=pki.CertificateAuthority("team-fulcio-root"))
    workflow = f"https://git.team.example/{ns}/.github/workflows/release.yaml@refs/heads/main"
    signers = {  # Application: (version, certificate, its chain)
        "good": ("1.0.0", fulcio.code_signing(SIGNER, ISSUER), fulcio.chain_pem),
        "workflow": ("2.0.0", fulcio.code_signing(workflow, ISSUER), fulcio.chain_pem),
        "other-identity": ("3.0.0", fulcio.code_signing("intern@team.example", ISSUER), fulcio.chain_pem),
        "other-issuer": ("4.0.0", fulcio.code_signing(SIGNER, "https://oidc.else.example"), fulcio.chain_pem),
        "other-ca": ("5.0.0", stranger.code_signing(SIGNER, ISSUER), stranger.chain_pem),
        "expired": (
            "6.0.0",
            fulcio.code_signing(
                SIGNER, ISSUER, expired_at - dt.timedelta(minutes=10), dt.timedelta(minutes=10)
            ),
            fulcio.chain_pem,
        ),
    }
    digests = {}
    for name, (version, certificate, chain) in signers.items():
        digests[name] = push_image(registry, repository, version, f"keyless {name}")
        cosign.sign_with_certificate(f"{ns}-{name}", certificate, chain, f"{ref}@{digests[name]}")

    secret = registry.secret(name="fulcio")
    secret["type"] = "Opaque"
    secret["data"]["fulcio-root.pem"] = base64.b64encode(root.cert_pem).decode()
    exact = {
        "provider": "cosign",
        "secretRef": {"name": "fulcio"},
        "identities": [{"issuer": ISSUER, "subject": SIGNER}],
    }
    pattern = {
        "provider": "cosign",
        "secretRef": {"name": "fulcio"},
        "identities": [
            {"issuer": ISSUER, "subjectRegExp": r"https://git\.team\.example/[^/]+/\.github/workflows/.*"}
        ],
    }
    applications = [
        r.application(name, target_ns, verify=pattern if name == "workflow" else exact) for name in signers
    ]
    cluster.apply(secret, r.cluster(), *applications, namespace=ns)
    deployer = as_tenant(cluster, ns, "alecton-deployer")
    deployer.apply(
        *(
            signed_image(version, f"{ref}:{version}", digests[name])
            for name, (version, _, _) in signers.items()
        ),
        *(r.deployment(name, version) for name, (version, _, _) in signers.items()),
        namespace=ns,
    )

    for name in ("good", "workflow"):
        release = wait_phase(cluster, ns, f"{name}-staging", "Deployed", timeout=120)["status"]["release"]
        assert release["image"] == f"{ref}:{signers[name][0]}@{digests[name]}", release  # what was verified
    verification = image_verified(cluster, ns, "web-1.0.0", "True")["verifications"][0]
    assert f"is signed by {SIGNER} from {ISSUER} (keyless" in verification["message"], verification
    expected = {
        "other-identity": f"names intern@team.example from issuer {ISSUER}, not an identity of spec.verify",
        "other-issuer": f"names {SIGNER} from issuer https://oidc.else.example, not an identity",
        "other-ca": "does not chain to a root of fulcio-root.pem",
        "expired": "expired at",
    }
    for name, words in expected.items():
        failed = wait_phase(cluster, ns, f"{name}-staging", "Failed", timeout=60)
        ready = ready_condition(failed)
        assert ready["reason"] == "ImageVerificationFailed", (name, ready)
        assert words in ready["message"] and digests[name] in ready["message"], (name, ready)
    releases = cluster.helm_json(operator.helm, "list", "--namespace", target_ns)
    assert sorted(x["name"] for x in releases) == ["good-staging", "workflow-staging"], releases
    text = json.dumps(cluster.get("Deployment", "other-ca-staging", ns)) + json.dumps(events(cluster, ns))
    assert registry.password not in text

    # Without fulcio-root.pem the policy cannot be used: a clear refusal, nothing deployed.
    broken = {**exact, "secretRef": {"name": "no-roots"}}
    no_roots = registry.secret(name="no-roots")
    no_roots["type"] = "Opaque"
    cluster.apply(no_roots, r.application("rootless", f"{ns}-rootless", verify=broken), namespace=ns)
    deployer.apply(r.deployment("rootless", "1.0.0"), namespace=ns)
    refused = ready_condition(wait_phase(cluster, ns, "rootless-staging", "Failed", timeout=60))
    assert (
        refused["reason"] == "ImageVerificationFailed" and "has no fulcio-root.pem" in refused["message"]
    ), refused


# ----- rollbacks under the policy ----------------------------------------------------------------


def live_image(cluster: Cluster, target_ns: str) -> str:
    """The image the release's workload runs in cluster b (what an attacker wants to change)."""
    workload = cluster.kubectl(
        "get", "deployment", "web-staging", "-n", target_ns, "-o", "json", context="alecton-b"
    )
    return str(json.loads(workload.stdout)["spec"]["template"]["spec"]["containers"][0]["image"])


def helm_revisions(operator: OperatorProcess, target_ns: str) -> list[int]:
    history = operator.cluster.helm_json(operator.helm, "history", "web-staging", "--namespace", target_ns)
    return sorted(h["revision"] for h in history)


def deployed_before_the_policy(
    operator: OperatorProcess, cosign: Cosign, prefix: str, **app: Any
) -> tuple[str, str, dict[str, str], Tenant]:
    """Version 1.0.0 (never signed) deployed by tag as revision 1 while the Application had no
    policy, by the shipped deployer; 2.0.0 and 3.0.0 pushed and signed by the team's key,
    whose Secret is in place. The namespace, the repository reference, the digests by version
    and the deployer."""
    cluster = operator.cluster
    registry = Registry(cluster)
    ns = cluster.new_namespace(prefix)
    repository = f"team/{ns}"
    ref = f"{registry.host}/{repository}"
    keys = cosign.key_pair(f"keys-{ns}")
    digests = {"1.0.0": push_image(registry, repository, "1.0.0", f"{ns} built before the policy")}
    for version in ("2.0.0", "3.0.0"):
        digests[version] = push_image(registry, repository, version, f"{ns} signed {version}")
        cosign.sign(keys, f"{ref}@{digests[version]}")
    cluster.apply(
        verify_secret(registry, keys), r.cluster(), r.application("web", f"{ns}-web", **app), namespace=ns
    )
    deployer = as_tenant(cluster, ns, "alecton-deployer")
    deployer.apply(
        *(signed_image(version, f"{ref}:{version}", digest) for version, digest in digests.items()),
        r.deployment("web", "1.0.0"),
    )
    deployed = wait_phase(cluster, ns, "web-staging", "Deployed", timeout=120)
    assert deployed["status"]["release"]["image"] == f"{ref}:1.0.0", deployed["status"]  # by tag
    return ns, ref, digests, deployer


POLICY = {"provider": "cosign", "secretRef": {"name": "cosign"}}


def test_a_rollback_under_the_policy_restores_only_a_revision_whose_image_passes_it(
    operator: OperatorProcess, cosign: Cosign
) -> None:
    """A deployer asks (`alecton rollback`, the shipped role) to go back to the unsigned
    revision deployed before the policy was switched on: refused, the release stays at the
    signed revision in cluster b. A rollback to a verified revision still goes ahead."""
    cluster = operator.cluster
    ns, ref, digests, deployer = deployed_before_the_policy(operator, cosign, "rollback-verify")
    target_ns = f"{ns}-web"
    # The team's admin switches the policy on; the deployer deploys the signed 2.0.0.
    cluster.apply(r.application("web", target_ns, verify=POLICY), namespace=ns)
    deployer.apply(r.deployment("web", "2.0.0"))
    wait_phase(cluster, ns, "web-staging", "Deployed", timeout=120)
    signed_2 = f"{ref}:2.0.0@{digests['2.0.0']}"
    assert live_image(cluster, target_ns) == signed_2

    status, message = rollback_to_1_refused(deployer, cluster, ns)
    assert f"revision 1 (version 1.0.0) runs {ref}:1.0.0, a tag not pinned to a digest" in message
    # What the attacker wanted, in cluster b: the unsigned build running again. It is not.
    assert helm_revisions(operator, target_ns) == [1, 2]
    assert live_image(cluster, target_ns) == signed_2
    assert status["release"]["revision"] == 2 and status["release"]["image"] == signed_2, status
    assert any(e["reason"] == "RollbackRefused" for e in events(cluster, ns))

    # A new signed version ends the request; a rollback to a verified revision goes ahead and
    # records the image it runs again (its digest, from revision 2).
    deployed = deployer.alecton("deploy", "web", "staging", "3.0.0", "--wait", "--timeout", "90")
    assert deployed.returncode == 0, deployed.stderr
    rolled = deployer.alecton("rollback", "web", "staging", "2", "--wait", "--timeout", "90")
    assert rolled.returncode == 0, rolled.stderr
    assert helm_revisions(operator, target_ns) == [1, 2, 3, 4]
    assert live_image(cluster, target_ns) == signed_2
    history = cluster.get("deployments.alecton.dev", "web-staging", ns)["status"]["history"]
    assert [(h["revision"], h.get("image")) for h in history] == [
        (4, signed_2),
        (3, f"{ref}:3.0.0@{digests['3.0.0']}"),
        (2, signed_2),
        (1, f"{ref}:1.0.0"),
    ], history


def test_an_automatic_rollback_under_the_policy_to_an_unverified_revision_is_not_made_and_says_why(
    operator: OperatorProcess, cosign: Cosign
) -> None:
    """The signed 2.0.0 fails its health check (its pods cannot be scheduled); the newest
    healthy revision is the unsigned 1.0.0 deployed before the policy: it is not rolled back
    to, and the status says why."""
    cluster = operator.cluster
    health = {"onFailure": "Rollback", "healthTimeout": "20s"}
    ns, ref, digests, deployer = deployed_before_the_policy(operator, cosign, "autorollback-verify", **health)
    target_ns = f"{ns}-web"
    unschedulable = {"resources": {"requests": {"cpu": "100000"}}}
    app = r.application("web", target_ns, verify=POLICY, target_values=unschedulable, **health)
    cluster.apply(app, namespace=ns)
    deployer.apply(r.deployment("web", "2.0.0"))
    failed = wait_phase(cluster, ns, "web-staging", "Failed", timeout=120)
    ready = ready_condition(failed)
    assert ready["reason"] == "HealthCheckFailed", failed["status"]
    assert "version 2.0.0 (revision 2) failed its health check" in ready["message"], ready
    assert (
        f"the automatic rollback to revision 1 is refused: revision 1 (version 1.0.0) runs {ref}:1.0.0, "
        "a tag not pinned to a digest" in ready["message"]
    ), ready
    assert helm_revisions(operator, target_ns) == [1, 2]
    assert live_image(cluster, target_ns) == f"{ref}:2.0.0@{digests['2.0.0']}"
