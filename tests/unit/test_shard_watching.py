"""A shard's Deployments are chosen by the API server (issue 26: 10,000 Deployments over 4
shards), not by kopf after every shard received every Deployment."""

from __future__ import annotations

import kopf
import pytest
from alecton.api.models import GROUP, VERSION
from alecton.handlers.kopf_app import LIST_CHUNK, configure_watching

DEPLOYMENTS = kopf.Resource(GROUP, VERSION, "deployments", kind="Deployment", namespaced=True)
APPS_DEPLOYMENTS = kopf.Resource("apps", "v1", "deployments", kind="Deployment", namespaced=True)
APPLICATIONS = kopf.Resource(GROUP, VERSION, "applications", kind="Application", namespaced=True)


def selectors(settings: kopf.OperatorSettings, resource: kopf.Resource) -> list[str]:
    return list(settings.watching.label_selectors.collect(resource))


@pytest.mark.parametrize(("shard", "expected"), [("s0", "alecton.dev/shard=s0"), ("", "!alecton.dev/shard")])
def test_the_api_server_sends_a_shard_only_its_own_deployments(shard: str, expected: str) -> None:
    settings = kopf.OperatorSettings()
    configure_watching(settings, shard)
    assert selectors(settings, DEPLOYMENTS) == [expected]
    # Every shard still reads every Application, Image, Cluster and Promotion, and
    # Kubernetes' own Deployments are nothing kopf watches for us.
    assert selectors(settings, APPLICATIONS) == []
    assert selectors(settings, APPS_DEPLOYMENTS) == []


def test_the_first_listing_comes_in_pages() -> None:
    settings = kopf.OperatorSettings()
    configure_watching(settings, "")
    assert settings.watching.chunk_size == LIST_CHUNK
