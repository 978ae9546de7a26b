"""Configuration of the local control plane: where it keeps its state, its certificates and
kubeconfigs, and the command lines of its processes (`controlplane.py` runs them).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import bcrypt
import yaml

from alecton.local import pki

CLUSTERS = ("a", "b")
CONTEXT_PREFIX = "alecton-"
DEFAULT_NODES = 2
KWOK_STAGES = Path(__file__).with_name("kwok-stages.yaml")
# Controllers that make workloads run. The node lifecycle controller stays off: kwok's
# nodes are Ready once and send no heartbeats, which it would answer with evictions.
CONTROLLERS = "*,-nodelifecycle"

# Requests made by service accounts are audited (metadata only), so tests can compare
# the verbs an operator identity used with the RBAC rules it was granted.
AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  - level: None
"""


def default_state_dir() -> Path:
    if env := os.environ.get("ALECTON_LOCAL_DIR"):
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "alecton" / "local"


def context_name(cluster: str) -> str:
    return f"{CONTEXT_PREFIX}{cluster}"


def audit_log_path(state_dir: Path, cluster: str) -> Path:
    return state_dir / f"audit-{cluster}.log"


def write_certificates(pki_dir: Path) -> tuple[pki.CertificateAuthority, pki.KeyPair]:
    """A new CA, the API servers' serving certificate, the admin's client certificate and
    the service account keys, written to `pki_dir`; returns the CA and the admin's pair."""
    ca = pki.CertificateAuthority()
    ca_file = pki_dir / "ca.crt"
    ca_file.write_bytes(ca.cert_pem)
    serving = ca.serving("kube-apiserver")
    pki.write_private(pki_dir / "apiserver.crt", serving.cert_pem)
    pki.write_private(pki_dir / "apiserver.key", serving.key_pem)
    admin = ca.client("alecton-admin", "system:masters")
    pki.write_private(pki_dir / "admin.crt", admin.cert_pem)
    pki.write_private(pki_dir / "admin.key", admin.key_pem)
    sa_keys = pki.service_account_keys()
    pki.write_private(pki_dir / "sa.key", sa_keys.key_pem)
    (pki_dir / "sa.pub").write_bytes(sa_keys.cert_pem)
    return ca, admin


def admin_kubeconfig(ca_pem: bytes, admin: pki.KeyPair, servers: dict[str, str]) -> dict:
    import base64

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": context_name(c),
                "cluster": {"server": url, "certificate-authority-data": b64(ca_pem)},
            }
            for c, url in servers.items()
        ],
        "users": [
            {
                "name": "alecton-admin",
                "user": {
                    "client-certificate-data": b64(admin.cert_pem),
                    "client-key-data": b64(admin.key_pem),
                },
            }
        ],
        "contexts": [
            {
                "name": context_name(c),
                "context": {"cluster": context_name(c), "user": "alecton-admin"},
            }
            for c in servers
        ],
        "current-context": context_name(CLUSTERS[0]),
    }


def etcd_args(bin_dir: Path, state_dir: Path, etcd_url: str, peer_port: int) -> list[str]:
    return [
        str(bin_dir / "etcd"),
        "--name=alecton",
        f"--data-dir={state_dir / 'etcd'}",
        f"--listen-client-urls={etcd_url}",
        f"--advertise-client-urls={etcd_url}",
        f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
        f"--initial-cluster=alecton=http://127.0.0.1:{peer_port}",
        "--unsafe-no-fsync",
        "--log-level=warn",
    ]


def apiserver_args(
    bin_dir: Path, state_dir: Path, cluster: str, port: int, etcd_url: str, pki_dir: Path
) -> list[str]:
    return [
        str(bin_dir / "kube-apiserver"),
        f"--etcd-servers={etcd_url}",
        f"--etcd-prefix=/registry-{cluster}",
        f"--secure-port={port}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        # envtest does the same: the endpoint reconciler refuses loopback addresses.
        "--endpoint-reconciler-type=none",
        f"--tls-cert-file={pki_dir / 'apiserver.crt'}",
        f"--tls-private-key-file={pki_dir / 'apiserver.key'}",
        f"--client-ca-file={pki_dir / 'ca.crt'}",
        "--authorization-mode=RBAC",
        "--service-account-issuer=https://kubernetes.default.svc",
        f"--service-account-key-file={pki_dir / 'sa.pub'}",
        f"--service-account-signing-key-file={pki_dir / 'sa.key'}",
        # Room for thousands of Services: benchmarks install hundreds of releases.
        "--service-cluster-ip-range=10.0.0.0/16",
        "--allow-privileged=true",
        # Pods need no ServiceAccount token here (kwok runs no containers); without the
        # plugin a pod in a brand-new namespace does not wait for its default account.
        # New nodes get no not-ready taint: the node lifecycle controller that would
        # lift it is off (kwok's nodes send no heartbeats).
        "--disable-admission-plugins=ServiceAccount,TaintNodesByCondition",
        f"--cert-dir={pki_dir / ('certs-' + cluster)}",
        # ALECTON_LOCAL_PROFILING=1 serves /debug/pprof (to the admin only) for benchmark
        # investigations; off otherwise, as a hardened server would be.
        f"--profiling={'true' if os.environ.get('ALECTON_LOCAL_PROFILING') == '1' else 'false'}",
        f"--audit-policy-file={state_dir / 'audit-policy.yaml'}",
        f"--audit-log-path={audit_log_path(state_dir, cluster)}",
        "--audit-log-mode=batch",
        "--audit-log-batch-max-wait=1s",
        "--v=1",
    ]


def workload_args(bin_dir: Path, kubeconfig: Path, pki_dir: Path) -> dict[str, list[str]]:
    return {
        "kube-controller-manager": [
            str(bin_dir / "kube-controller-manager"),
            f"--kubeconfig={kubeconfig}",
            f"--controllers={CONTROLLERS}",
            f"--service-account-private-key-file={pki_dir / 'sa.key'}",
            f"--root-ca-file={pki_dir / 'ca.crt'}",
            "--use-service-account-credentials=false",
            "--leader-elect=false",
            "--secure-port=0",
            # Quick garbage collection and namespace deletion for tests.
            "--concurrent-gc-syncs=10",
            "--concurrent-namespace-syncs=5",
            "--v=1",
        ],
        "kube-scheduler": [
            str(bin_dir / "kube-scheduler"),
            f"--kubeconfig={kubeconfig}",
            "--leader-elect=false",
            "--secure-port=0",
            "--v=1",
        ],
        "kwok": [
            str(bin_dir / "kwok"),
            f"--kubeconfig={kubeconfig}",
            "--manage-all-nodes=true",
            f"--config={KWOK_STAGES}",
            "--cidr=10.240.0.0/16",
            "--node-ip=10.239.0.1",
        ],
    }


REGISTRY_USER = "alecton"
# distribution v3 exports OpenTelemetry traces to localhost:4318 unless told not to (and
# logs an error for each batch it cannot send).
REGISTRY_ENV = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"}


def write_registry(state_dir: Path, ca: pki.CertificateAuthority, port: int) -> Path:
    """The local OCI registry's files: a serving certificate from the local CA, one user
    (`alecton`, a random password in registry/password, bcrypt in registry/htpasswd) and its
    config; returns the config's path. Pushes and pulls both need the login."""
    directory = state_dir / "registry"
    directory.mkdir(mode=0o700, exist_ok=True)
    serving = ca.serving("alecton-local-registry")
    pki.write_private(directory / "tls.crt", serving.cert_pem)
    pki.write_private(directory / "tls.key", serving.key_pem)
    password = secrets.token_urlsafe(24)
    pki.write_private(directory / "password", password.encode())
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10))
    pki.write_private(directory / "htpasswd", f"{REGISTRY_USER}:".encode() + hashed + b"\n")
    config = {
        "version": 0.1,
        "log": {"level": "warn", "formatter": "text", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(directory / "data")},
            "delete": {"enabled": True},
        },
        "http": {
            "addr": f"127.0.0.1:{port}",
            "secret": secrets.token_hex(16),
            "tls": {"certificate": str(directory / "tls.crt"), "key": str(directory / "tls.key")},
            "headers": {"X-Content-Type-Options": ["nosniff"]},
        },
        "auth": {"htpasswd": {"realm": "alecton-local", "path": str(directory / "htpasswd")}},
    }
    return pki.write_private(directory / "config.yml", yaml.safe_dump(config).encode())


def registry_args(bin_dir: Path, config: Path) -> list[str]:
    return [str(bin_dir / "registry"), "serve", str(config)]
