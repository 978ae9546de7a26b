"""What a diff compares of an object, with Secret values replaced by keyed hashes.

The rules are in `diff.py`'s docstring: fields the API server and tools write are dropped,
and a Secret's values never appear in any output, only their hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any

from alecton.api.objects import ObjectKey
from alecton.reconcile.redact import REDACTED

# Per process: hashes of Secret values compare within one run and mean nothing outside it.
_HASH_KEY = secrets.token_bytes(32)

_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

# Written by the API server, never by a manifest author.
_SERVER_METADATA = ("managedFields", "resourceVersion", "uid", "generation", "creationTimestamp", "selfLink")

# Written by controllers and tools at apply time; the last-applied one can also embed Secret data.
_TOOL_ANNOTATIONS = (
    "deployment.kubernetes.io/revision",
    _LAST_APPLIED,
    "meta.helm.sh/release-name",
    "meta.helm.sh/release-namespace",
)


def redact_secret(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy of `obj` safe to show: Secret values hashed, the last-applied annotation removed.

    The hash is taken of the value's bytes (decoded from base64 for `data`), so a value
    written in `stringData` hashes like the same value in `data`. Any object may carry the
    last-applied annotation, and for a Secret it holds the values in clear.
    """
    redacted = dict(obj)
    metadata = obj.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if isinstance(metadata, dict) and isinstance(annotations, dict) and _LAST_APPLIED in annotations:
        redacted["metadata"] = {**metadata, "annotations": {**annotations, _LAST_APPLIED: REDACTED}}
    # Any kind named Secret, whatever its group: hashing a look-alike costs readability only,
    # missing a real one would leak credentials.
    if obj.get("kind") == "Secret":
        for field, encoded in (("data", True), ("stringData", False)):
            values = obj.get(field)
            if isinstance(values, dict):
                redacted[field] = {name: _fingerprint(value, encoded) for name, value in values.items()}
            elif values is not None:
                redacted[field] = _fingerprint(values, False)  # malformed, but still not shown
    return redacted


def _fingerprint(value: Any, encoded: bool) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raw = str(value).encode()
    elif encoded:
        try:
            raw = base64.b64decode(value)
        except ValueError:  # binascii.Error is a ValueError; so is a non-ASCII string
            raw = value.encode()  # the API server would not accept it; hash it as written
    else:
        raw = value.encode()
    # Keyed with a secret of this process: equal values still hash alike within one diff,
    # but a short password cannot be recovered by hashing guesses.
    return "hmac:" + hmac.new(_HASH_KEY, raw, hashlib.sha256).hexdigest()[:12]


def comparable(obj: dict[str, Any], key: ObjectKey) -> dict[str, Any]:
    """`obj` without what is never compared, and with Secret values hashed."""
    result = {name: value for name, value in obj.items() if name != "status"}
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        kept = {name: value for name, value in metadata.items() if name not in _SERVER_METADATA}
        if not key.namespace:
            kept.pop("namespace", None)  # the API server ignores it on cluster-scoped objects
        annotations = kept.get("annotations")
        if isinstance(annotations, dict):
            remaining = {name: value for name, value in annotations.items() if name not in _TOOL_ANNOTATIONS}
            if remaining or not annotations:
                kept["annotations"] = remaining
            else:
                del kept["annotations"]  # only tool annotations: an empty mapping would be noise
        result["metadata"] = kept
    result = redact_secret(result)
    if result.get("kind") == "Secret" and isinstance(result.get("stringData"), dict):
        # The API server stores stringData into data (stringData wins on a conflict).
        data = result.get("data")
        result["data"] = {**(data if isinstance(data, dict) else {}), **result.pop("stringData")}
    return result
