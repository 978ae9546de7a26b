"""Output helpers shared by every command: machine formats, tables, ages, one-line errors."""

from __future__ import annotations

import datetime as dt
import enum
import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import typer
import yaml
from rich.console import Console
from rich.table import Table

# Exit codes CI can rely on (documented in the README).
EXIT_OK = 0
EXIT_ERROR = 1  # the operation failed (helm failed, bad input, API error)
EXIT_USAGE = 2  # wrong command-line usage (typer/click's own code)
EXIT_NOT_FOUND = 3  # a named object does not exist
EXIT_CONFLICT = 4  # immutability or ownership conflict
EXIT_TIMEOUT = 5  # --wait ran out of time
EXIT_FROZEN = 6  # a deploy freeze refuses the change (see `alecton freeze list`)


class OutputFormat(enum.StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


def emit(data: Any, output: OutputFormat) -> None:
    if output is OutputFormat.json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        typer.echo(yaml.safe_dump(data, sort_keys=True).rstrip())


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    grid = Table(box=None, pad_edge=False, header_style="bold")
    for column in columns:
        grid.add_column(column)
    for row in rows:
        grid.add_row(*("" if cell is None else str(cell) for cell in row))
    Console(width=200 if not sys.stdout.isatty() else None).print(grid)


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def age(timestamp: str | None, now: dt.datetime | None = None) -> str:
    """kubectl-style age: 45s, 3m, 5h, 2d."""
    if not timestamp:
        return ""
    then = dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    seconds = int(((now or dt.datetime.now(dt.UTC)) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "m" else 1):
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def corrected(corrections: list[dict[str, Any]]) -> str:
    """A history row's drift corrections: how many, and how the last one went."""
    if not corrections:
        return ""
    return f"{len(corrections)}x, last {str(corrections[0].get('result', '')).lower()}"
