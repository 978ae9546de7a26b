"""`alecton ... --help` for every command reads like kubectl's: no `<bool>` after flags, and
command listings with one sentence per command."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import typer
from alecton.cli.main import app
from typer.core import TyperCommand, TyperGroup
from typer.testing import CliRunner

ANSI = re.compile(r"\x1b\[[0-9;]*m")
COMMAND_ROW = re.compile(r"^│ (?P<name>\S+)\s+(?P<text>.*?)\s*│$")
CONTINUATION_ROW = re.compile(r"^│\s+(?P<text>.*?)\s*│$")


def walk(
    command: TyperCommand | TyperGroup, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], TyperCommand | TyperGroup]]:
    """Every command and group under `command`, with the words that invoke it."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from walk(sub, (*path, name))


TREE = list(walk(typer.main.get_command(app)))
GROUPS = [(path, command) for path, command in TREE if getattr(command, "commands", None)]


def render_help(path: tuple[str, ...], columns: int) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": str(columns)}, prog_name="alecton")
    assert result.exit_code == 0, result.output
    return ANSI.sub("", result.output)


def command_listing(help_text: str) -> dict[str, list[str]]:
    """Each listed command's description, line by line, from a group's rendered help."""
    rows: dict[str, list[str]] = {}
    lines = iter(help_text.splitlines())
    for line in lines:
        if "─ Commands " in line:
            break
    name = ""
    for line in lines:
        if line.startswith("╰"):
            break
        if row := COMMAND_ROW.match(line):
            name = row["name"]
            rows[name] = [row["text"]]
        elif row := CONTINUATION_ROW.match(line):
            rows[name].append(row["text"])
    return rows


def test_the_tree_has_every_command() -> None:
    paths = {" ".join(path) for path, _ in TREE}
    assert {"deploy", "status", "diff", "image list", "app update", "local up", "operator run"} <= paths


@pytest.mark.parametrize("columns", [80, 200])
@pytest.mark.parametrize("path", [path for path, _ in TREE], ids=lambda path: " ".join(path) or "alecton")
def test_help_renders_and_flags_have_no_type(path: tuple[str, ...], columns: int) -> None:
    text = render_help(path, columns)
    assert text.lstrip().startswith(f"Usage: {' '.join(('alecton', *path))}")
    assert "<bool>" not in text
    assert "--help" in text


@pytest.mark.parametrize("path", [path for path, _ in GROUPS], ids=lambda path: " ".join(path) or "alecton")
def test_command_listings_show_one_complete_sentence_per_command(path: tuple[str, ...]) -> None:
    group = dict(TREE)[path]
    listing = command_listing(render_help(path, 200))
    assert set(listing) == set(group.commands)
    for name, lines in listing.items():
        assert len(lines) == 1, f"{name}: the summary is broken over lines: {lines}"
        summary = lines[0]
        assert summary[0].isupper() and summary.endswith("."), f"{name}: not a sentence: {summary!r}"
        assert summary.count(". ") == 0, f"{name}: more than one sentence: {summary!r}"


def test_help_paragraphs_keep_no_line_breaks_of_the_source() -> None:
    # "creates or updates the\n Deployment": a docstring's line break, kept by rich.
    text = render_help(("deploy",), 200)
    assert (
        "Creates or updates the Deployment `<application>-<target>` (and ends a held rollback). "
        "With --diff it first shows the change and, on a terminal, asks before deploying (unless --yes)."
    ) in text
