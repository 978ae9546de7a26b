"""Helm's JSON output, parsed into small typed records (Helm 3 and Helm 4 agree here)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

from alecton.reconcile.release import HistoryEntry, ReleaseInfo, history_entry, owner_match, rollback_source


class HelmOutputError(ValueError):
    pass


# What helm's registry client prints on stdout before the JSON of a command that pulled
# an oci:// chart ("Pulled: REF", "Digest: sha256:..."): skipped, the JSON is last.
_PULL_LINE_RE = re.compile(r"^(Pulled|Digest): [^\n]*\n", re.MULTILINE)


def json_output(text: str) -> str:
    """The JSON document of helm's `--output json`, without the registry client's lines."""
    while text.startswith(("Pulled: ", "Digest: ")) and (match := _PULL_LINE_RE.match(text)):
        text = text[match.end() :]
    return text


def _load(text: str) -> Any:
    try:
        return json.loads(json_output(text))
    except json.JSONDecodeError as error:
        raise HelmOutputError(f"helm printed something that is not JSON: {error}") from None


def parse_release(text: str) -> ReleaseInfo:
    data = _load(text)
    if not isinstance(data, dict):
        raise HelmOutputError("helm release output is not an object")
    info = data.get("info") or {}
    meta = (data.get("chart") or {}).get("metadata") or {}
    return ReleaseInfo(
        name=str(data.get("name", "")),
        namespace=str(data.get("namespace", "")),
        revision=int(data.get("version") or 0),
        status=str(info.get("status", "")),
        chart=f"{meta.get('name', '')}-{meta.get('version', '')}",
        app_version=str(meta.get("appVersion", "")),
        last_deployed=str(info.get("last_deployed", "")),
        description=str(info.get("description", "")),
    )


def parse_history(text: str) -> list[HistoryEntry]:
    """`helm history -o json`, newest first, with Image versions filled in where known."""
    data = _load(text)
    if not isinstance(data, list):
        raise HelmOutputError("helm history output is not a list")
    entries = [history_entry(item, "app_version") for item in data if isinstance(item, dict)]
    entries.sort(key=lambda e: e.revision)
    versions: dict[int, str] = {}
    resolved: list[HistoryEntry] = []
    for entry in entries:  # oldest first, so a rollback finds its source's version
        version = ""
        if match := owner_match(entry.description):
            version = match["version"]
        elif (source := rollback_source(entry.description)) is not None:
            version = versions.get(source, "")
        versions[entry.revision] = version
        resolved.append(replace(entry, version=version))
    return list(reversed(resolved))
