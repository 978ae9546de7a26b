"""The switch to an external pair of clusters (tests/integration/external.py): which
variables turn it on, and the kubeconfig the suite writes from the user's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integration.external import (
    VARIABLES,
    ExternalPair,
    ExternalPairError,
    application_values,
    rename_contexts,
)

REPO = Path(__file__).resolve().parents[2]
KIND = {
    "ALECTON_TEST_KUBECONFIG": "/k/config",
    "ALECTON_TEST_CONTEXT_A": "kind-a",
    "ALECTON_TEST_CONTEXT_B": "kind-b",
}


def test_no_variables_keep_the_local_control_plane() -> None:
    assert ExternalPair.from_environment({}) is None


def test_the_three_variables_select_a_pair() -> None:
    assert ExternalPair.from_environment(KIND) == ExternalPair(Path("/k/config"), "kind-a", "kind-b")


@pytest.mark.parametrize(
    ("environ", "said"),
    [
        ({"ALECTON_TEST_CONTEXT_A": "kind-a"}, "ALECTON_TEST_CONTEXT_A set without ALECTON_TEST_KUBECONFIG"),
        ({"ALECTON_TEST_KUBECONFIG": "/k"}, "also set ALECTON_TEST_CONTEXT_A and ALECTON_TEST_CONTEXT_B"),
        ({**KIND, "ALECTON_TEST_CONTEXT_B": "kind-a"}, "name the same context"),
    ],
)
def test_half_a_pair_is_refused_plainly(environ: dict[str, str], said: str) -> None:
    with pytest.raises(ExternalPairError, match=said):
        ExternalPair.from_environment(environ)


def kubeconfig() -> dict:
    """Two contexts sharing one user, a third context, files named relative to the file."""
    return {
        "clusters": [
            {"name": "c1", "cluster": {"server": "https://one", "certificate-authority": "ca.crt"}},
            {"name": "c2", "cluster": {"server": "https://two", "certificate-authority-data": "Q0E="}},
            {"name": "other", "cluster": {"server": "https://other"}},
        ],
        "users": [
            {"name": "shared", "user": {"client-certificate": "/abs/u.crt", "client-key": "keys/u.key"}},
            {"name": "else", "user": {"token": "secret"}},
        ],
        "contexts": [
            {"name": "mgmt", "context": {"cluster": "c1", "user": "shared", "namespace": "ops"}},
            {"name": "target", "context": {"cluster": "c2", "user": "shared"}},
            {"name": "unrelated", "context": {"cluster": "other", "user": "else"}},
        ],
        "current-context": "unrelated",
    }


def test_the_suite_kubeconfig_names_the_pair_as_the_tests_do() -> None:
    renamed = rename_contexts(kubeconfig(), {"mgmt": "alecton-a", "target": "alecton-b"}, Path("/home/k"))
    assert [c["name"] for c in renamed["contexts"]] == ["alecton-a", "alecton-b"]
    assert renamed["contexts"][0]["context"] == {
        "cluster": "alecton-a",
        "user": "alecton-a",
        "namespace": "ops",
    }
    assert renamed["current-context"] == "alecton-a"
    clusters = {c["name"]: c["cluster"] for c in renamed["clusters"]}
    assert clusters == {
        "alecton-a": {"server": "https://one", "certificate-authority": "/home/k/ca.crt"},
        "alecton-b": {"server": "https://two", "certificate-authority-data": "Q0E="},
    }
    users = {u["name"]: u["user"] for u in renamed["users"]}
    assert (
        users["alecton-a"]
        == users["alecton-b"]
        == {
            "client-certificate": "/abs/u.crt",
            "client-key": "/home/k/keys/u.key",
        }
    )
    assert "secret" not in str(renamed)  # nothing of the other contexts is copied


def test_a_missing_context_is_named() -> None:
    with pytest.raises(ExternalPairError, match="no context named 'kind-b'"):
        rename_contexts(kubeconfig(), {"mgmt": "alecton-a", "kind-b": "alecton-b"}, Path("/"))


def test_applications_on_an_external_pair_run_no_pods_unless_asked() -> None:
    pair = ExternalPair(Path("/k"), "a", "b")
    assert application_values({"config": {"x": 1}}, None) == {"config": {"x": 1}}
    assert application_values(None, pair) == {"replicaCount": 0}
    assert application_values({"replicaCount": 2}, pair) == {"replicaCount": 2}


def test_the_readme_kind_command_names_the_variables_the_suite_reads() -> None:
    """The block itself runs in `make test-external` (hack/test-external.sh)."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- kind-tests:start -->\s*```sh\n(.*?)```\s*<!-- kind-tests:end -->", text, re.S)
    assert block, "the README lost its kind-tests block"
    assert set(re.findall(r"\b(ALECTON_TEST_[A-Z_]+)=", block.group(1))) == set(VARIABLES)
    assert "-m e2e" in block.group(1) and "~/.kube/config" in block.group(1)
