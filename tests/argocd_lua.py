"""Run deploy/argocd's health checks as Argo CD does: Lua 5.1 (Argo CD embeds a Lua 5.1
interpreter), the object as a global `obj` table with absent (and null) fields nil, and no
way out to the machine (no os, io, require, load...). Shared by the unit and integration
tests of the scripts."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import lupa.lua51 as lua51

ARGOCD = Path(__file__).resolve().parent.parent / "deploy" / "argocd"
SCRIPTS = ARGOCD / "health"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "argocd"
ARGO_STATUSES = frozenset({"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"})

# What a health script must do without: Argo CD does not open these libraries for it.
_UNAVAILABLE = ("os", "io", "debug", "package", "require", "dofile", "loadfile", "load", "loadstring")


def script_path(kind: str) -> Path:
    return SCRIPTS / f"alecton.dev_{kind}.lua"


def _table(runtime: Any, value: Any) -> Any:
    if isinstance(value, dict):
        return runtime.table_from({k: _table(runtime, v) for k, v in value.items() if v is not None})
    if isinstance(value, list):
        return runtime.table_from([_table(runtime, v) for v in value])
    return value


def health(kind: str, obj: dict[str, Any]) -> tuple[str, str]:
    """(status, message) of the `kind` script for `obj`; fails on anything Argo CD would
    reject (a script error, a status it does not know, no message)."""
    runtime = lua51.LuaRuntime(register_eval=False, register_builtins=False)
    scope = runtime.globals()
    for name in _UNAVAILABLE:
        scope[name] = None
    scope.obj = _table(runtime, copy.deepcopy(obj))
    result = runtime.execute(script_path(kind).read_text())
    assert result is not None, f"{kind}: the script returned nothing"
    status, message = result["status"], result["message"]
    assert status in ARGO_STATUSES, f"{kind}: {status!r} is not an Argo CD health status"
    assert isinstance(message, str) and message, f"{kind}: no message for {status}"
    return str(status), message


def trimmed(obj: dict[str, Any]) -> dict[str, Any]:
    """A live object as a fixture: what varies run to run (uid, managedFields, the times of
    metadata, conditions and state changes) dropped."""
    metadata = {
        k: v
        for k, v in obj.get("metadata", {}).items()
        if k not in ("managedFields", "uid", "resourceVersion", "creationTimestamp", "ownerReferences")
    }
    annotations = {
        k: v
        for k, v in (metadata.get("annotations") or {}).items()
        if k != "kubectl.kubernetes.io/last-applied-configuration"
    }
    if annotations:
        metadata["annotations"] = annotations
    else:
        metadata.pop("annotations", None)
    kept = {**obj, "metadata": metadata}
    status = obj.get("status")
    if isinstance(status, dict):
        conditions = [
            {k: v for k, v in c.items() if k != "lastTransitionTime"} for c in status.get("conditions") or []
        ]
        kept["status"] = {k: v for k, v in status.items() if k != "changedAt"}
        if conditions:
            kept["status"]["conditions"] = conditions
    return kept
