"""Whether a failed helm run can pass on its own, read from the words helm printed.

An INPUT failure (a template that does not render, values the chart's schema refuses, a chart
version the repository lacks, an object the API server calls invalid) comes back on every
retry until the chart, its version or the values change. Anything else, text not recognised
here included, is TRANSIENT: a wrong INPUT would stall a deployment a retry would have fixed,
a wrong TRANSIENT only costs retries with backoff.

The wording is helm v4.3.1's (also helm 3's) and the API server's; the messages are in
tests/unit/test_helm_failure.py. Helm's `Error: ` line may continue on further lines, indented
or not ("ensure CRDs are installed first", a wait's "context deadline exceeded"): callers pass
helm's whole stderr, not HelmResult.error, which stops at the first blank line and is capped.

The text is partly a tenant's (a chart's `fail` message, values quoted back), and this runs on
the operator's event loop: only the text from the last `Error: ` line on is read, at most
`MAX_CLASSIFIED` characters of it (head and tail), and the table runs on RE2, whose matching
time is linear in the text (with Python's `re`, the row `did not finish within .* and was
stopped` alone took 73 s on a 1 MB message).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import re2


class FailureKind(enum.Enum):
    INPUT = "input"  # cannot pass until the chart, its version or the values change
    TRANSIENT = "transient"  # may pass on a later attempt with the same inputs


@dataclass(frozen=True)
class FailureClass:
    kind: FailureKind
    reason: str  # CamelCase, fit for a condition's reason


_TRANSIENT = FailureKind.TRANSIENT
_INPUT = FailureKind.INPUT

# (pattern, kind, reason), searched in order, case-insensitive; the first match wins. Every
# TRANSIENT row comes before every INPUT row: a text with both (a deadline hit while rendering,
# a webhook down while validating) may pass on its own. Within a kind, order picks the reason.
_TABLE: tuple[tuple[str, FailureKind, str], ...] = (
    # helm: "another operation (install/upgrade/rollback) is in progress" (a pending-* revision)
    (r"another operation \(install/upgrade/rollback\) is in progress", _TRANSIENT, "ReleaseLocked"),
    # helm: `resource mapping not found for name: "w" ...: no matches for kind "Widget" in version ...`
    (r"resource mapping not found|no matches for kind", _TRANSIENT, "CRDNotInstalled"),
    # helm: `kubernetes cluster unreachable: Get "https://.../version": <cause>`
    (r"kubernetes cluster unreachable", _TRANSIENT, "ClusterUnreachable"),
    # API server: `Internal error occurred: failed calling webhook "x": failed to call webhook: ...`
    (r"failed calling webhook", _TRANSIENT, "WebhookUnavailable"),
    # helm: `looks like "URL" is not a valid chart repository or cannot be reached: <cause>`
    (r"is not a valid chart repository or cannot be reached", _TRANSIENT, "RepositoryUnreachable"),
    # helm: "failed to fetch http://.../x-1.0.0.tgz : 404 File not found" (an archive the index names)
    (r"failed to fetch \S+ : \d{3}", _TRANSIENT, "RepositoryUnreachable"),
    # helm after SIGTERM: "Error: context canceled"
    (r"context canceled", _TRANSIENT, "Interrupted"),
    # HelmResult.error of a helm killed by a signal before it printed anything: "helm exited with code -9"
    (r"helm exited with code -\d+", _TRANSIENT, "Interrupted"),
    # helm --timeout, client-go: "resource Deployment/team/web not ready. ...\ncontext deadline exceeded"
    (r"context deadline exceeded", _TRANSIENT, "Timeout"),
    # Go: "dial tcp 10.0.0.1:6443: i/o timeout", "net/http: TLS handshake timeout", "(Client.Timeout ...)"
    (r"i/o timeout|TLS handshake timeout|Client\.Timeout exceeded", _TRANSIENT, "Timeout"),
    # helm 3's wait: "timed out waiting for the condition"
    (r"timed out waiting for the condition", _TRANSIENT, "Timeout"),
    # etcd: "etcdserver: request timed out"; 504: "... unable to return a response in the time allotted ..."
    (r"request timed out|in the time allotted", _TRANSIENT, "Timeout"),
    # HelmTimeoutError: "helm upgrade did not finish within 330 s and was stopped"
    (r"did not finish within \d+ s and was stopped", _TRANSIENT, "Timeout"),
    # 429: "the server has received too many requests ...", "Too many requests, please try again later."
    (r"too many requests|status code 429", _TRANSIENT, "TooManyRequests"),
    # 503: "the server is currently unable to handle the request"
    (r"the server is currently unable to handle the request", _TRANSIENT, "ServerUnavailable"),
    # 500: "Internal error occurred: ...", `an error on the server ("...") has prevented the request ...`
    (r"Internal error occurred|an error on the server", _TRANSIENT, "ServerUnavailable"),
    # etcd: "etcdserver: leader changed", "etcdserver: too many requests"
    (r"etcdserver: ", _TRANSIENT, "ServerUnavailable"),
    # Go: "dial tcp 127.0.0.1:6443: connect: connection refused", "read: connection reset by peer"
    (r"connection refused|connection reset|broken pipe", _TRANSIENT, "ConnectionFailed"),
    # Go: "lookup host on 10.96.0.10:53: no such host", "connect: network is unreachable"
    (r"no such host|network is unreachable|no route to host", _TRANSIENT, "ConnectionFailed"),
    # Go net/http: `Post "https://.../secrets": EOF` (the server closed the connection)
    (r"\": (?:unexpected )?EOF\b", _TRANSIENT, "ConnectionFailed"),
    # 401: "the server has asked for the client to provide credentials"; a registry's "unauthorized"
    (r"\bunauthorized\b|provide credentials|status code 401", _TRANSIENT, "Unauthorized"),
    # 403: `configmaps "x" is forbidden: User "..." cannot patch resource ...` (RBAC, quota, terminating)
    (r"is forbidden|status code 403", _TRANSIENT, "Forbidden"),
    # `admission webhook "x" denied the request: ...`; registry "denied: ..."; "permission denied"
    (r"denied the request|denied: |permission denied", _TRANSIENT, "Forbidden"),
    # 409: `Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using v1: .data.x`
    (r"Apply failed with \d+ conflict|the object has been modified", _TRANSIENT, "ApplyConflict"),
    # helm: "validation: chart.metadata.version is required" (Chart.yaml)
    (r"validation: chart\.", _INPUT, "InvalidChart"),
    # helm: "cannot load Chart.yaml: ...", "unsupported chart version" (Chart.yaml's apiVersion)
    (r"cannot load Chart\.yaml|unsupported chart version", _INPUT, "InvalidChart"),
    # helm: "found in Chart.yaml, but missing in charts/ directory: sub" (dependencies not built)
    (r"missing in charts/ directory", _INPUT, "InvalidChart"),
    # `required`: "execution error at (c/templates/cm.yaml:6:11): database.host is required"
    (r"execution error at \([^)]*\): [^\n]*\brequired\b", _INPUT, "RequiredValueMissing"),
    # `fail` and the like: "execution error at (c/templates/cm.yaml:5:3): image.tag must be set"
    (r"execution error at \(", _INPUT, "TemplateError"),
    # "parse error at (c/templates/cm.yaml:4): function "nosuchfunc" not defined", "unclosed action"
    (r"parse error at \(", _INPUT, "TemplateError"),
    # `executing "c/templates/cm.yaml" at <.Values.a.b>: nil pointer evaluating ...`, "error calling"
    (r"executing \"[^\"]*\" at <", _INPUT, "TemplateError"),
    # "values don't meet the specifications of the schema(s) in the following chart(s):\nc:\n- at ..."
    (r"values don't meet the specifications of the schema", _INPUT, "ValuesSchemaViolation"),
    # "YAML parse error on c/templates/cm.yaml: ...", "failed to parse f.yaml: ... YAML to JSON: ..."
    (r"YAML parse error|error converting YAML to JSON|cannot unmarshal yaml", _INPUT, "YAMLError"),
    # helm: `chart "x" version "9.9.9" not found in URL repository`, `chart "x" not found in URL ...`
    (r"chart \"[^\"]*\" (?:version \"[^\"]*\" )?not found in", _INPUT, "ChartNotFound"),
    # OCI: `failed to perform "FetchReference" on source: host/charts/x:9.9.9: not found`
    (r"FetchReference\" on source: [^\n]*: not found", _INPUT, "ChartNotFound"),
    # OCI: "could not locate a version matching provided version string ~9.9", an unknown repository
    (r"could not locate a version matching|status code 404: name unknown", _INPUT, "ChartNotFound"),
    # --version: `improper constraint: "notaversion!"`
    (r"improper constraint", _INPUT, "InvalidChartVersion"),
    # helm: "chart requires kubeVersion: >=1.40.0-0 which is incompatible with Kubernetes v1.33.0"
    (r"chart requires kubeVersion", _INPUT, "IncompatibleKubeVersion"),
    # 422: `Deployment.apps "web" is invalid: ...: Required value`, `...: field is immutable`
    (r"\bis invalid\b|field is immutable", _INPUT, "InvalidObject"),
    # strict server-side apply: "failed to create typed patch object (...): .x: field not declared ..."
    (r"field not declared in schema|duplicate entries for key", _INPUT, "InvalidObject"),
    # `cannot be handled as a X: strict decoding error: unknown field "spec.x"`; helm's OpenAPI check
    (r"strict decoding error|ValidationError\(", _INPUT, "InvalidObject"),
    # helm: `unable to decode "": Object 'Kind' is missing in '{...}'`
    (r"Object '(?:Kind|apiVersion)' is missing", _INPUT, "InvalidObject"),
)
_OPTIONS = re2.Options()
_OPTIONS.case_sensitive = False
_OPTIONS.log_errors = False
_PATTERNS = tuple((re2.compile(pattern, _OPTIONS), kind, reason) for pattern, kind, reason in _TABLE)
_UNKNOWN = FailureClass(FailureKind.TRANSIENT, "Unknown")
_ERROR_PREFIX = "Error: "

# How much of the error is classified: its head (helm's words come first: "execution error at
# (", "UPGRADE FAILED: ...") and its tail (a wait's "context deadline exceeded").
MAX_CLASSIFIED = 16 * 1024


def last_error(text: str) -> str:
    """`text` from its last line that starts with `Error: ` on; all of it without one. Linear:
    client-go's log lines before that line (a watch that broke and recovered) are not the
    failure."""
    at = text.rfind("\n" + _ERROR_PREFIX)
    if at >= 0:
        return text[at + 1 :]
    return text


def bounded(text: str, limit: int = MAX_CLASSIFIED) -> str:
    """`text` when it has at most `limit` characters, else its head and tail around a newline."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return text[:half] + "\n" + text[-half:]


def classify_helm_failure(text: str) -> FailureClass:
    """INPUT or TRANSIENT, with a reason, for helm's stderr or an error message around it.

    With an `Error: ` line in `text`, only the last one and what follows it count (see
    `last_error`), at most `MAX_CLASSIFIED` characters of them (see `bounded`).
    """
    message = bounded(last_error(text))
    for pattern, kind, reason in _PATTERNS:
        if pattern.search(message):
            return FailureClass(kind, reason)
    return _UNKNOWN
