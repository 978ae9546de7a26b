"""How `alecton ... --help` reads: like kubectl's, not like a type checker's.

Every command group is a `CliTyper`. Help texts are reflowed: a docstring's line breaks
(there for the source's line length) do not show up in the help, each paragraph wraps at
the terminal's width, and the first paragraph, one sentence, is the summary in the command
listing. Flags are listed without the `<bool>` type typer's rich help gives them (a flag
takes no value).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from typer.core import TyperCommand, TyperGroup, TyperOption

CommandFunction = TypeVar("CommandFunction", bound=Callable[..., Any])


def _reflowed(text: str | None) -> str | None:
    """Each paragraph on one line: rich keeps a help text's single line breaks."""
    if not text:
        return text
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(
        # click's marker for a paragraph that must keep its lines (none so far)
        paragraph if paragraph.startswith("\b") else " ".join(paragraph.split())
        for paragraph in paragraphs
    )


def _without_flag_types(params: list[Any]) -> list[Any]:
    # Rich help shows an option's metavar in place of its type when it has one: an empty
    # metavar leaves a flag's type column empty. Flags never print a metavar anywhere else.
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
    return params


class HelpCommand(TyperCommand):
    """A command with reflowed help that lists flags without a type."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = _reflowed(self.help)

    def get_params(self, ctx: typer.Context) -> list[Any]:
        return _without_flag_types(super().get_params(ctx))


class HelpGroup(TyperGroup):
    """A command group with reflowed help that lists flags without a type."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = _reflowed(self.help)

    def get_params(self, ctx: typer.Context) -> list[Any]:
        return _without_flag_types(super().get_params(ctx))


class CliTyper(typer.Typer):
    """A typer app whose commands and groups render help the alecton way."""

    def __init__(self, **settings: Any) -> None:
        settings.setdefault("cls", HelpGroup)
        super().__init__(**settings)

    def command(
        self, name: str | None = None, **settings: Any
    ) -> Callable[[CommandFunction], CommandFunction]:
        settings.setdefault("cls", HelpCommand)
        return super().command(name, **settings)
