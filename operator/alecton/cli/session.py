"""What every API command shares: kubectl-style connection flags, output format,
one-line errors with documented exit codes."""

from __future__ import annotations

import asyncio
import errno
import functools
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import yaml
from kubernetes_asyncio.config.config_exception import ConfigException

from alecton.cli.output import (
    EXIT_CONFLICT,
    EXIT_ERROR,
    EXIT_FROZEN,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    OutputFormat,
    fail,
)
from alecton.kube.client import ApiException, KubeClient, api_error_message
from alecton.service.errors import ConflictError, NotFoundError, ServiceError
from alecton.service.freezes import FrozenError
from alecton.service.session import Target

# The options kubectl and helm call global: accepted before the command (by the root and
# the API command groups, `alecton -n team status`) and after it (by each command); the
# value after the command wins. See `pass_to_subcommand`.
GLOBAL_OPTIONS_PANEL = "Global options"
GLOBAL_OPTION_NAMES = ("kubeconfig", "context", "namespace", "output")
CONNECTION_FLAGS = {"kubeconfig": "--kubeconfig", "context": "--context", "namespace": "-n/--namespace"}

# No envvar=KUBECONFIG here: click would prefer the environment over a --kubeconfig given
# before the command (a default_map value). `Target.of` reads $KUBECONFIG instead.
KubeconfigOption = Annotated[
    str | None,
    typer.Option(
        "--kubeconfig",
        metavar="<file>",
        help="Path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).",
        rich_help_panel=GLOBAL_OPTIONS_PANEL,
    ),
]
ContextOption = Annotated[
    str | None,
    typer.Option(
        "--context",
        metavar="<name>",
        help="The kubeconfig context to use.",
        rich_help_panel=GLOBAL_OPTIONS_PANEL,
    ),
]
NamespaceOption = Annotated[
    str | None,
    typer.Option(
        "--namespace",
        "-n",
        metavar="<namespace>",
        help="Namespace (default: the context's namespace, else `default`).",
        rich_help_panel=GLOBAL_OPTIONS_PANEL,
    ),
]
OutputOption = Annotated[
    OutputFormat,
    typer.Option(
        "--output", "-o", help="Output format: table, json or yaml.", rich_help_panel=GLOBAL_OPTIONS_PANEL
    ),
]
# A command group's -o: no default of its own, so only a format someone gave is passed on.
GroupOutputOption = Annotated[
    OutputFormat | None,
    typer.Option(
        "--output",
        "-o",
        help="Output format: table, json or yaml (default: table).",
        rich_help_panel=GLOBAL_OPTIONS_PANEL,
    ),
]

DIFF_OPTIONS_PANEL = "Diff options"
HelmOption = Annotated[
    str,
    typer.Option(
        "--helm",
        envvar="ALECTON_HELM",
        metavar="<file>",
        help="The helm binary (for diffs).",
        rich_help_panel=DIFF_OPTIONS_PANEL,
    ),
]
ChartsDirOption = Annotated[
    Path | None,
    typer.Option(
        "--charts-dir",
        envvar="ALECTON_CHARTS_DIR",
        metavar="<dir>",
        help="Where bundled charts live (for diffs).",
        rich_help_panel=DIFF_OPTIONS_PANEL,
    ),
]

T = TypeVar("T")


def pass_to_subcommand(ctx: typer.Context, **given: object) -> None:
    """Make the global options given before a subcommand its defaults.

    A group's callback calls this with the values of its own global options (None: not
    given). They go to click's `default_map` of the subcommand it invokes, where they are
    the defaults of that subcommand's options of the same name: a value given after the
    subcommand still wins. Values the group inherited from its parent go on too, so a
    group without global options of its own (`local`) passes `alecton -o json` down to
    `local status`. Commands without such an option ignore the value (click does); the
    `operator` group refuses the connection options instead (`refuse_connection_defaults`).
    """
    if ctx.invoked_subcommand is None:
        return
    defaults = dict(ctx.default_map or {})
    inherited = {name: defaults[name] for name in GLOBAL_OPTION_NAMES if defaults.get(name) is not None}
    passed = {**inherited, **{name: value for name, value in given.items() if value is not None}}
    if passed:
        defaults[ctx.invoked_subcommand] = {**(defaults.get(ctx.invoked_subcommand) or {}), **passed}
        ctx.default_map = defaults


def refuse_connection_defaults(ctx: typer.Context, why: str) -> None:
    """For a group whose commands must not take --kubeconfig, --context or -n given before
    it: a usage error that says where they go instead (rather than silently using or
    ignoring them)."""
    given = [flag for name, flag in CONNECTION_FLAGS.items() if (ctx.default_map or {}).get(name) is not None]
    if given:
        fail(f"{', '.join(given)} given before `{ctx.info_name}`: {why}", EXIT_USAGE)


class CliError(Exception):
    """A failure with a message for the user and the exit code that goes with it."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


def exit_code_of(error: ServiceError) -> int:
    """The documented exit code of a failed operation."""
    if isinstance(error, NotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(error, FrozenError):
        return EXIT_FROZEN
    if isinstance(error, ConflictError):
        return EXIT_CONFLICT
    return EXIT_ERROR


_RETRY_429_SECONDS = 30.0


def _retry_after(error: ApiException) -> float:
    try:
        return min(5.0, max(0.2, float((error.headers or {}).get("Retry-After", 1))))
    except (TypeError, ValueError):
        return 1.0


def run_api(coro_fn: Callable[[KubeClient], Awaitable[T]], target: Target, error_floor: int = 0) -> T:
    """Run one command's API work; turn every failure into one line and an exit code
    (at least `error_floor`: `alecton diff` keeps 1 for "there are changes")."""

    async def main() -> T:
        client = await target.client()
        try:
            deadline = time.monotonic() + _RETRY_429_SECONDS
            while True:
                try:
                    return await coro_fn(client)
                except ApiException as error:
                    # 429 means "not processed, try later" (a starting API server, or
                    # priority and fairness): safe to retry, as kubectl does.
                    if error.status != 429 or time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(_retry_after(error))
        finally:
            await client.close()

    try:
        return asyncio.run(main())
    except CliError as error:
        fail(str(error), max(error.code, error_floor))
    except ServiceError as error:
        fail(str(error), max(exit_code_of(error), error_floor))
    except ApiException as error:
        code = {404: EXIT_NOT_FOUND, 409: EXIT_CONFLICT}.get(error.status or 0, EXIT_ERROR)
        fail(api_error_message(error), max(code, error_floor))
    except ConfigException as error:
        fail(f"kubeconfig: {error}", max(EXIT_ERROR, error_floor))
    except OSError as error:
        fail(f"cannot reach the API server: {error}", max(EXIT_ERROR, error_floor))


_OS_ERRORS = {
    errno.ENOENT: "file not found",
    errno.EACCES: "permission denied",
    errno.EISDIR: "is a directory",
}


def os_error_text(error: OSError) -> str:
    """`file not found` rather than `[Errno 2] No such file or directory: 'x'`."""
    return _OS_ERRORS.get(error.errno or 0) or (error.strerror or str(error)).lower()


def yaml_error_text(error: yaml.YAMLError) -> str:
    """One line: what is wrong and where (PyYAML's own text spans several lines)."""
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        return f"not valid YAML: {error.problem} (line {mark.line + 1}, column {mark.column + 1})"
    return "not valid YAML: " + " ".join(str(error).split())


def handle_errors(fn: Callable[..., Any], code: int = EXIT_ERROR) -> Callable[..., Any]:
    """Last line of defence: no traceback reaches a user or a CI log."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except CliError as error:
            fail(str(error), error.code)
        except ServiceError as error:
            fail(str(error), exit_code_of(error))
        except OSError as error:
            where = f"{error.filename}: " if error.filename else ""
            fail(f"{where}{os_error_text(error)}", code)
        except Exception as error:
            # A bug, not a usage problem: say so plainly (the class name means nothing to a user).
            fail(f"unexpected failure: {error} (please report it, with the command you ran)", code)

    return wrapper


def group_options(
    ctx: typer.Context,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
    output: GroupOutputOption = None,
) -> None:
    """A command group's callback: `alecton image -n team list` as well as
    `alecton -n team image list` (the group's options become its subcommand's defaults)."""
    pass_to_subcommand(ctx, kubeconfig=kubeconfig, context=context, namespace=namespace, output=output)
