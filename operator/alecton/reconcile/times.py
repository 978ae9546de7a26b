"""Times as status and helm write them."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

_FRACTION = re.compile(r"(\.\d{6})\d+")


def epoch(timestamp: Any) -> float:
    """RFC 3339 (ours, helm's with nanoseconds) to epoch seconds; 0 when unreadable."""
    if not timestamp:
        return 0.0
    text = _FRACTION.sub(r"\1", str(timestamp).strip().replace("Z", "+00:00"))
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return 0.0
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()
