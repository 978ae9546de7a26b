"""A helm release manifest read as YAML: its documents, bounded, and the objects it names.

Health (what to watch and assess) and diff (what to compare) both read release manifests
through `manifest_documents`. Nothing here does I/O.
"""

from __future__ import annotations

from typing import Any

import yaml

from alecton.api.objects import ObjectKey
from alecton.reconcile.fields import one_line

# Built-in cluster-scoped kinds by (group, kind). Custom cluster-scoped kinds cannot be
# known without discovery; they get the default namespace like any namespaced object.
_CLUSTER_SCOPED: frozenset[tuple[str, str]] = frozenset(
    {
        ("", "Namespace"),
        ("", "Node"),
        ("", "PersistentVolume"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("storage.k8s.io", "StorageClass"),
        ("storage.k8s.io", "CSIDriver"),
        ("storage.k8s.io", "CSINode"),
        ("storage.k8s.io", "VolumeAttachment"),
        ("storage.k8s.io", "VolumeAttributesClass"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding"),
        ("apiregistration.k8s.io", "APIService"),
        ("networking.k8s.io", "IngressClass"),
        ("node.k8s.io", "RuntimeClass"),
        ("certificates.k8s.io", "CertificateSigningRequest"),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    }
)

# A `List` nested in a `List` is legal but never deep; the limit only stops YAML aliases
# that make a list contain itself.
_MAX_LIST_DEPTH = 8


# libyaml when PyYAML has it: ten times faster on a release manifest (0.7 vs 7.4 ms for the
# bundled chart's), which every health check start and drift check parses.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# A release manifest is read from helm's storage, which on a tenant's cluster the tenant can
# write. libyaml parses about 2 MB a second and alecton walks every node of what it parsed, so
# both the text and what its YAML aliases make of it are bounded: an honest manifest is a few
# MB and uses aliases (if at all) for a shared list or two; 990 bytes of nested `List` aliases
# held the event loop for 116 s, 651 bytes of nested mapping aliases held a drift diff for 77 s.
MAX_MANIFEST_CHARS = 8 << 20
# How many nodes (mappings, sequences, values) aliases may add to the documents as written.
MAX_ALIAS_NODES = 100_000
_COUNT_CAP = 1 << 62  # counts saturate here: nested aliases would otherwise make huge integers


def manifest_documents(manifest: str) -> list[Any]:
    """The YAML documents of a helm release manifest; ValueError (one line) if it is not YAML,
    is longer than `MAX_MANIFEST_CHARS` or its aliases expand it by more than `MAX_ALIAS_NODES`
    nodes."""
    if len(manifest or "") > MAX_MANIFEST_CHARS:
        raise ValueError(
            f"release manifest has {len(manifest)} characters, more than the {MAX_MANIFEST_CHARS} "
            "alecton reads"
        )
    try:
        documents = list(yaml.load_all(manifest or "", Loader=_SAFE_LOADER))
    except yaml.YAMLError as exc:
        raise ValueError(f"release manifest is not valid YAML: {one_line(str(exc))}") from exc
    if "*" in (manifest or ""):  # no alias, no expansion
        written, expanded = _node_counts(documents, MAX_ALIAS_NODES)
        if expanded - written > MAX_ALIAS_NODES:
            raise ValueError(
                f"release manifest uses YAML aliases that expand it by more than {MAX_ALIAS_NODES} nodes"
            )
    return documents


def _node_counts(documents: list[Any], limit: int) -> tuple[int, int]:
    """Nodes as written (one per document and per entry of each distinct mapping or sequence)
    and once aliases are expanded (a shared mapping or sequence counted wherever it appears),
    counted without expanding anything. An alias back to an enclosing node (a loop) counts as
    one node: the code that walks the documents stops at a depth. Stops counting once aliases
    add more than `limit` nodes."""
    sizes: dict[int, int] = {}  # id -> expanded size of a finished mapping or sequence
    open_: set[int] = set()  # ids on the current path
    written = expanded = 0
    for document in documents:
        written += 1
        if not isinstance(document, dict | list):
            expanded += 1
            continue
        stack: list[tuple[Any, bool]] = [(document, False)]
        while stack:
            node, done = stack.pop()
            key = id(node)
            children = list(node.values()) if isinstance(node, dict) else node
            if done:
                open_.discard(key)
                # A child not finished yet is an enclosing node: a loop.
                size = 1 + sum(sizes.get(id(c), 1) if isinstance(c, dict | list) else 1 for c in children)
                sizes[key] = min(size, _COUNT_CAP)
                written += len(children)
                continue
            if key in sizes or key in open_:
                continue
            open_.add(key)
            stack.append((node, True))
            stack.extend(
                (child, False)
                for child in children
                if isinstance(child, dict | list) and id(child) not in sizes and id(child) not in open_
            )
        expanded += sizes[id(document)]
        if expanded - written > limit:
            break
    return written, expanded


def manifest_objects(manifest: str, default_namespace: str) -> list[ObjectKey]:
    """Keys of every object in a helm release manifest, in manifest order, without duplicates."""
    documents = manifest_documents(manifest)
    keys: dict[ObjectKey, None] = {}  # a dict keeps insertion order, a set would not
    for document in documents:
        for key in _document_keys(document, default_namespace, 0):
            keys.setdefault(key, None)
    return list(keys)


def _document_keys(document: Any, default_namespace: str, depth: int) -> list[ObjectKey]:
    if not isinstance(document, dict):
        return []  # empty documents (comments only, "---" twice) load as None
    kind = document.get("kind")
    items = document.get("items")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
        if depth >= _MAX_LIST_DEPTH:
            return []
        return [key for item in items for key in _document_keys(item, default_namespace, depth + 1)]
    metadata = document.get("metadata")
    if not isinstance(kind, str) or not kind or not isinstance(metadata, dict):
        return []
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        return []
    api_version = document.get("apiVersion")
    api_version = api_version if isinstance(api_version, str) else ""
    key = ObjectKey(api_version, kind, "", name)
    if (key.group, kind) in _CLUSTER_SCOPED:
        return [key]  # a namespace written on a cluster-scoped object is ignored by the API too
    namespace = metadata.get("namespace")
    namespace = namespace if isinstance(namespace, str) and namespace else default_namespace
    return [ObjectKey(api_version, kind, namespace, name)]
