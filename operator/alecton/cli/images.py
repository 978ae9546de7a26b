"""`alecton image ...` and `alecton app ...`: CreateImage, ListImages, CreateApplication,
UpdateApplication, ListApplications."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from alecton.cli.help import CliTyper
from alecton.cli.output import EXIT_NOT_FOUND, OutputFormat, age, emit, table
from alecton.cli.session import (
    CliError,
    ContextOption,
    KubeconfigOption,
    NamespaceOption,
    OutputOption,
    group_options,
    handle_errors,
    os_error_text,
    run_api,
    yaml_error_text,
)
from alecton.kube.client import ApiException, KubeClient
from alecton.reconcile.image_ref import DIGEST_RE, ImageReferenceError, parse_reference
from alecton.reconcile.image_verification import recorded_verdict
from alecton.registry.digest import LoginRequiredError, RegistryError, RegistryLogin, RegistryUnreachableError
from alecton.registry.digest import resolve_digest as resolve_manifest_digest
from alecton.service.applications import create_application, list_applications, replace_application
from alecton.service.images import create_image, image_source, list_images
from alecton.service.session import Target

image_app = CliTyper(help="Record and list container images (CI creates these).", no_args_is_help=True)
app_app = CliTyper(help="Create, replace and list Applications.", no_args_is_help=True)


image_app.callback()(group_options)
app_app.callback()(group_options)


def _show(objects: list[dict[str, Any]], output: OutputFormat, columns: list[str], row: Any) -> None:
    if output is OutputFormat.table:
        table(columns, [row(o) for o in objects])
    else:
        emit(objects, output)


@image_app.command("create")
@handle_errors
def image_create(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Logical image name, e.g. `web`.")],
    version: Annotated[
        str, typer.Argument(metavar="VERSION", help="The version, usually the tag, e.g. `1.4.2`.")
    ],
    image_ref: Annotated[
        str, typer.Argument(metavar="IMAGE_REF", help="Full reference: registry/repo:tag or @sha256:...")
    ],
    source_repository: Annotated[
        str | None, typer.Option("--source-repository", help="Where the code is, e.g. github.com/org/web.")
    ] = None,
    source_revision: Annotated[
        str | None, typer.Option("--source-revision", metavar="SHA", help="The commit it was built from.")
    ] = None,
    source_url: Annotated[
        str | None, typer.Option("--source-url", metavar="URL", help="A link to that commit (http or https).")
    ] = None,
    source_committed_at: Annotated[
        str | None,
        typer.Option("--source-committed-at", metavar="TIME", help="When it was committed (RFC 3339)."),
    ] = None,
    digest: Annotated[
        str | None,
        typer.Option(
            "--digest", metavar="SHA256", help="The manifest's digest (sha256:...), as the build printed it."
        ),
    ] = None,
    resolve_digest: Annotated[
        bool,
        typer.Option(
            "--resolve-digest", help="Ask the registry which digest IMAGE_REF's tag names now, and record it."
        ),
    ] = False,
    ca_file: Annotated[
        Path | None,
        typer.Option(
            "--ca-file", metavar="FILE", help="With --resolve-digest: trust this CA bundle for the registry."
        ),
    ] = None,
    username: Annotated[
        str | None, typer.Option("--username", help="With --resolve-digest: the registry login's user.")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="With --username: read the password from stdin.")
    ] = False,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Record an image (CreateImage), with the commit it was built from and the manifest's
    digest if given (Applications with spec.pinImageDigest deploy IMAGE_REF@digest).

    Idempotent for the same reference, source and digest; images are immutable."""
    target = Target.of(kubeconfig, context, namespace)
    source = image_source(source_repository, source_revision, source_url, source_committed_at)
    digest = image_digest(image_ref, digest, resolve_digest, ca_file, username, password_stdin)
    result, obj = run_api(
        lambda c: create_image(c, target.namespace, name, version, image_ref, source, digest), target
    )
    if output is OutputFormat.table:
        pinned = f" {obj['spec']['digest']}" if obj["spec"].get("digest") else ""
        typer.echo(
            f"image {name} {version} {result} ({obj['metadata']['name']}: {obj['spec']['image']}{pinned})"
        )
    else:
        emit(obj, output)


def image_digest(
    image_ref: str,
    given: str | None,
    resolve: bool,
    ca_file: Path | None,
    username: str | None,
    password_stdin: bool,
) -> str:
    """The digest to record: --digest as given (checked), or the registry's answer."""
    try:
        reference = parse_reference(image_ref)
    except ImageReferenceError as error:
        raise CliError(str(error)) from None
    if given and resolve:
        raise CliError("--digest and --resolve-digest exclude each other: give one")
    if (ca_file or username or password_stdin) and not resolve:
        raise CliError("--ca-file, --username and --password-stdin go with --resolve-digest")
    if bool(username) != password_stdin:
        raise CliError("--username and --password-stdin go together")
    if given:
        if not DIGEST_RE.match(given):
            raise CliError(f"--digest {given!r} is not sha256: and 64 lowercase hex digits")
        if reference.digest and reference.digest != given:
            raise CliError(f"--digest {given} differs from the digest IMAGE_REF names ({reference.digest})")
        return given
    if not resolve:
        return reference.digest
    password = typer.get_text_stream("stdin").read().rstrip("\n") if password_stdin else ""
    login = RegistryLogin(username or "", password, ca_file)
    try:
        return resolve_manifest_digest(reference, login)
    except LoginRequiredError as error:
        raise CliError(f"{error}: pass --username and --password-stdin") from None
    except RegistryUnreachableError as error:
        raise CliError(f"{error}: {error.detail}") from None
    except RegistryError as error:
        raise CliError(str(error)) from None


@image_app.command("list")
@handle_errors
def image_list(
    name: Annotated[str | None, typer.Option("--name", help="Only this logical image name.")] = None,
    version: Annotated[str | None, typer.Option("--version", help="Only this version.")] = None,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List images, optionally filtered by name and version (ListImages)."""
    target = Target.of(kubeconfig, context, namespace)
    images = run_api(lambda c: list_images(c, target.namespace, name, version), target)
    _show(
        images,
        output,
        ["NAME", "VERSION", "IMAGE", "DIGEST", "VERIFIED", "REVISION", "OBJECT", "AGE"],
        lambda i: [
            i["spec"]["name"],
            i["spec"]["version"],
            i["spec"]["image"],
            str(i["spec"].get("digest") or "")[:19],
            _verified_column(i),
            str((i["spec"].get("source") or {}).get("revision") or "")[:12],
            i["metadata"]["name"],
            age(i["metadata"].get("creationTimestamp")),
        ],
    )


def _verified_column(obj: dict[str, Any]) -> str:
    """True, or False/Unknown with the reason (the message is in `-o yaml`); blank when no
    Application checks this Image's signature."""
    verdict = recorded_verdict(obj)
    if verdict is None:
        return ""
    return verdict["status"] if verdict["status"] == "True" else f"{verdict['status']} ({verdict['reason']})"


def _load_application(path: Path, namespace: str) -> dict[str, Any]:
    try:
        text = path.read_text() if str(path) != "-" else typer.get_text_stream("stdin").read()
        docs = [d for d in yaml.safe_load_all(text) if d]
    except OSError as error:
        raise CliError(f"cannot read {path}: {os_error_text(error)}") from None
    except yaml.YAMLError as error:
        raise CliError(f"cannot read {path}: {yaml_error_text(error)}") from None
    if len(docs) != 1 or not isinstance(docs[0], dict) or docs[0].get("kind") != "Application":
        raise CliError(f"{path} must hold exactly one Application (kind: Application)")
    body = docs[0]
    body.setdefault("apiVersion", "alecton.dev/v1alpha1")
    meta = body.setdefault("metadata", {})
    if not meta.get("name"):
        raise CliError(f"{path}: metadata.name is required")
    if meta.get("namespace") and meta["namespace"] != namespace:
        raise CliError(f"{path} is for namespace {meta['namespace']!r}, not {namespace!r} (use -n)")
    meta["namespace"] = namespace
    body.pop("status", None)
    return body


FileOption = Annotated[
    Path,
    typer.Option("--filename", "-f", metavar="<file>", help="YAML file with one Application (- for stdin)."),
]


@app_app.command("create")
@handle_errors
def app_create(
    filename: FileOption,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Create an Application from a file (CreateApplication)."""
    target = Target.of(kubeconfig, context, namespace)
    body = _load_application(filename, target.namespace)
    obj = run_api(lambda c: create_application(c, target.namespace, body), target)
    _report(obj, "created", output)


@app_app.command("update")
@handle_errors
def app_update(
    filename: FileOption,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Replace an Application with the file's content (UpdateApplication: no merge)."""
    target = Target.of(kubeconfig, context, namespace)
    body = _load_application(filename, target.namespace)
    name = body["metadata"]["name"]

    def with_resource_version(current: dict[str, Any]) -> dict[str, Any]:
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        return body

    async def replace(client: KubeClient) -> dict[str, Any]:
        try:
            return await replace_application(client, target.namespace, name, with_resource_version)
        except ApiException as error:
            if error.status == 404:
                raise CliError(
                    f"Application {name!r} does not exist in {target.namespace!r}; use `alecton app create`",
                    EXIT_NOT_FOUND,
                ) from None
            raise

    _report(run_api(replace, target), "replaced", output)


def _report(obj: dict[str, Any], verb: str, output: OutputFormat) -> None:
    if output is OutputFormat.table:
        targets = ", ".join(t["name"] for t in obj["spec"].get("targets") or []) or "none"
        typer.echo(
            f"application {obj['metadata']['name']} {verb} (chart {obj['spec']['chart']}, targets: {targets})"
        )
    else:
        emit(obj, output)


@app_app.command("list")
@handle_errors
def app_list(
    name: Annotated[str | None, typer.Option("--name", help="Only this Application.")] = None,
    chart: Annotated[str | None, typer.Option("--chart", help="Only Applications of this chart.")] = None,
    image: Annotated[
        str | None, typer.Option("--image", help="Only Applications of this image name.")
    ] = None,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List Applications, optionally filtered (ListApplications)."""
    target = Target.of(kubeconfig, context, namespace)
    apps = run_api(lambda c: list_applications(c, target.namespace, name, chart, image), target)
    _show(
        apps,
        output,
        ["NAME", "CHART", "CHART VERSION", "IMAGE", "TARGETS", "AGE"],
        lambda a: [
            a["metadata"]["name"],
            a["spec"]["chart"],
            a["spec"].get("chartVersion", ""),
            a["spec"]["image"],
            ",".join(t["name"] for t in a["spec"].get("targets") or []),
            age(a["metadata"].get("creationTimestamp")),
        ],
    )
