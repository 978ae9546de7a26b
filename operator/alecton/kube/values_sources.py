"""Reading an Application's and a target's valuesFrom (ConfigMaps and Secrets of the
Application's namespace) and its chart's registry Secret, with whatever identity the
caller's client has: the operator's for a deploy, the person's own for `alecton diff`."""

from __future__ import annotations

from alecton.kube.client import KubeClient
from alecton.reconcile.plan import (
    FetchedValues,
    Resolved,
    ValuesRefusedError,
    ValuesSources,
    values_references,
)
from alecton.reconcile.values import ValuesReference


async def fetch_values_sources(kube: KubeClient, resolved: Resolved) -> ValuesSources | None:
    """None when nothing is read (most Applications cost no API call here);
    ValuesRefusedError for a malformed reference or a Secret that is not text. The Secret
    of spec.repositorySecretRef (an oci:// chart's credentials) is read here too, with the
    same identity, and judged by the plan; so is spec.verify's (its keys and login)."""
    app_refs, target_refs = values_references(resolved)
    secret = resolved.application.repository_secret
    verify = resolved.application.verify
    if not app_refs and not target_refs and not secret and not verify:
        return None
    namespace = resolved.application.ref.namespace
    return ValuesSources(
        await _fetch(kube, namespace, app_refs),
        await _fetch(kube, namespace, target_refs),
        await kube.read_secret(namespace, secret) if secret else None,
        await kube.read_secret(namespace, verify.secret) if verify else None,
    )


async def _fetch(kube: KubeClient, namespace: str, refs: list[ValuesReference]) -> FetchedValues:
    fetched: FetchedValues = []
    for ref in refs:
        if ref.kind == "Secret":
            raw = await kube.read_secret_key(namespace, ref.name, ref.key)
            try:
                text = raw.decode("utf-8") if raw is not None else None
            except UnicodeDecodeError:
                raise ValuesRefusedError(f"Secret {ref.name!r} key {ref.key!r} is not UTF-8 text") from None
        else:
            text = await kube.read_config_map_key(namespace, ref.name, ref.key)
        fetched.append((ref, text))
    return fetched
