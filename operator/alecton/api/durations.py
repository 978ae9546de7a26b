"""Durations as the custom resources write them (Go style, like "5m" or "1m30s")."""

from __future__ import annotations

import re

_DURATION_UNITS: dict[str, float] = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,  # micro sign, as Go accepts it
    "\u03bcs": 1e-6,  # Greek mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)", re.ASCII)
_DURATION = re.compile(rf"(?:{_DURATION_PART.pattern})+", re.ASCII)


def parse_duration(text: str, *, field: str = "duration") -> float:
    """Seconds in a Go-style duration ("5m", "1m30s", "0.5s") or a plain integer of seconds."""
    if not isinstance(text, str):
        raise ValueError(f"{field} must be a duration like 5m or 90s, not {text!r}")
    body = text.strip()
    negative = body.startswith("-")
    body = body[1:] if body[:1] in "+-" and len(body) > 1 else body
    if re.fullmatch(r"\d+", body, re.ASCII):
        seconds = float(int(body))
    elif _DURATION.fullmatch(body):
        seconds = sum(float(number) * _DURATION_UNITS[unit] for number, unit in _DURATION_PART.findall(body))
    else:
        raise ValueError(f"{field} must be a duration like 5m or 90s, not {text!r}")
    if negative or seconds <= 0:
        raise ValueError(f"{field} must be a positive duration like 5m or 90s, not {text!r}")
    return seconds
