"""What every API command shares: kubectl-style connection flags, output format,
one-line errors with documented exit codes."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from kubernetes_asyncio.config.config_exception import ConfigException

from alecton.cli.output import (
    EXIT_CONFLICT,
    EXIT_ERROR,
    EXIT_NOT_FOUND,
    OutputFormat,
    fail,
)
from alecton.kube.client import ApiException, KubeClient, api_error_message, current_namespace

KubeconfigOption = Annotated[
    str | None, typer.Option("--kubeconfig", envvar="KUBECONFIG", help="Path to the kubeconfig file.")
]
ContextOption = Annotated[str | None, typer.Option("--context", help="The kubeconfig context to use.")]
NamespaceOption = Annotated[
    str | None,
    typer.Option("--namespace", "-n", help="Namespace (default: the context's namespace, else `default`)."),
]
OutputOption = Annotated[
    OutputFormat, typer.Option("--output", "-o", help="Output format: table, json or yaml.")
]

HelmOption = Annotated[
    str, typer.Option("--helm", envvar="ALECTON_HELM", help="The helm binary (for diffs).")
]
ChartsDirOption = Annotated[
    Path | None,
    typer.Option("--charts-dir", envvar="ALECTON_CHARTS_DIR", help="Where bundled charts live (for diffs)."),
]

T = TypeVar("T")


class CliError(Exception):
    """A failure with a message for the user and the exit code that goes with it."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Target:
    """Where a command talks to: kubeconfig, context and namespace, resolved like kubectl."""

    kubeconfig: str | None
    context: str | None
    namespace: str

    @classmethod
    def of(cls, kubeconfig: str | None, context: str | None, namespace: str | None) -> Target:
        if kubeconfig and ":" in kubeconfig:  # $KUBECONFIG may be a list; use its first file
            kubeconfig = kubeconfig.split(":")[0]
        return cls(kubeconfig, context, namespace or current_namespace(kubeconfig, context))

    async def client(self) -> KubeClient:
        return await KubeClient.connect(self.kubeconfig, self.context)


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
    except ApiException as error:
        code = {404: EXIT_NOT_FOUND, 409: EXIT_CONFLICT}.get(error.status or 0, EXIT_ERROR)
        fail(api_error_message(error), max(code, error_floor))
    except ConfigException as error:
        fail(f"kubeconfig: {error}", max(EXIT_ERROR, error_floor))
    except OSError as error:
        fail(f"cannot reach the API server: {error}", max(EXIT_ERROR, error_floor))


def handle_errors(fn: Callable[..., Any], code: int = EXIT_ERROR) -> Callable[..., Any]:
    """Last line of defence: no traceback reaches a user or a CI log."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as error:
            fail(f"{type(error).__name__}: {error}", code)

    return wrapper
