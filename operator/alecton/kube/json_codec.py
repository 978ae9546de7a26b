"""JSON as the API server and the web answers carry it, read and written with orjson.

Why not the standard library: a list of 2000 Deployments is about 3 MB, and `json.loads`
of it held the event loop about 150 ms of the dashboard's first overview (and the same
share of every informer's first listing in the operator); orjson takes a third of that.

orjson reads an integer past 64 bits as a float; the API server does the same to every
number it stores (Kubernetes keeps int64 or float64), so nothing it answers changes.
Writing such an integer (from a caller's own input) falls back to the standard library.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """The value of a JSON text; json.JSONDecodeError (a ValueError) if it is not one."""
    return orjson.loads(data)


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON of `value`, as Starlette's JSONResponse writes it."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # an integer past 64 bits, or a type only the standard library knows
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
