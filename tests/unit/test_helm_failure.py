"""Which helm failures only a change of the inputs can fix (reconcile/helm_failure.py).

The fixtures are helm's stderr, verbatim:
- CAPTURED: helm v4.3.1 run on throwaway charts (`helm template` / `upgrade --install`), against
  a local `python3 -m http.server` chart repository, a stub OCI registry, and for cluster
  errors a local port with nothing listening (connection refused), a port that accepts and
  never answers (TLS handshake timeout) and a host that does not resolve;
- STUB API: helm v4.3.1 `upgrade --install` against a stub API server that answered one
  request with a Kubernetes Status: helm's and client-go's words are real, the Status message
  is the API server's wording typed into the stub;
- HELM 3: helm v3.22.0 where its wording differs from helm 4's;
- KNOWN: not captured (needs a real cluster): Kubernetes' and helm's documented wording.
"""

from __future__ import annotations

import pytest
from alecton.helm.actions import HelmActionError
from alecton.helm.runner import HelmResult, HelmTimeoutError
from alecton.reconcile.helm_failure import (
    _PATTERNS,
    _TABLE,
    FailureClass,
    FailureKind,
    classify_helm_failure,
)

INPUT = FailureKind.INPUT
TRANSIENT = FailureKind.TRANSIENT

STUB_SSA = "Error: server-side apply failed for object team/x /v1, Kind=ConfigMap: "
# client-go's log line before a wait's error (the first of three, all alike but the time).
KLOG_WATCH_ENDED = (
    'I1126 23:32:36.344558   31664 reflector.go:664] "Warning: watch ended with error" '
    'reflector="k8s.io/client-go@v0.37.1/tools/cache/reflector.go:343" type="/v1, Kind=ConfigMap" '
    'err="an error on the server (\\"unable to decode an event from the watch stream: no kind '
    '\\\\\\"List\\\\\\" is registered for version \\\\\\"v1\\\\\\" in scheme '
    '\\\\\\"pkg/runtime/scheme.go:111\\\\\\"\\") has prevented the request from succeeding"\n'
)

CAPTURED = [
    ("template_parse_error", INPUT, "TemplateError",
     "Error: parse error at (parse/templates/cm.yaml:5): unclosed action started at "
     "parse/templates/cm.yaml:4\n\nUse --debug flag to render out invalid YAML\n"),
    ("undefined_function", INPUT, "TemplateError",
     'Error: parse error at (undef/templates/cm.yaml:4): function "nosuchfunc" not defined\n\n'
     "Use --debug flag to render out invalid YAML\n"),
    ("required_value", INPUT, "RequiredValueMissing",
     "Error: execution error at (req/templates/cm.yaml:6:11): database.host is required\n\n"
     "Use --debug flag to render out invalid YAML\n"),
    ("fail_function", INPUT, "TemplateError",
     "Error: execution error at (failfn/templates/cm.yaml:5:3): image.tag must be set\n\n"
     "Use --debug flag to render out invalid YAML\n"),
    ("nil_pointer", INPUT, "TemplateError",
     "Error: nilptr/templates/cm.yaml:6:18\n"
     '  executing "nilptr/templates/cm.yaml" at <.Values.database.host>:\n'
     "    nil pointer evaluating interface {}.host\n\nUse --debug flag to render out invalid YAML\n"),
    ("include_missing_template", INPUT, "TemplateError",
     "Error: incl/templates/cm.yaml:4:11\n"
     '  executing "incl/templates/cm.yaml" at <include "nosuch.name" .>:\n    error calling include:\n'
     'template: no template "nosuch.name" associated with template "gotpl"\n\n'
     "Use --debug flag to render out invalid YAML\n"),
    ("wrong_type", INPUT, "TemplateError",
     'Error: wrongtype/templates/cm.yaml:4:26\n  executing "wrongtype/templates/cm.yaml" at <upper>:\n'
     "    wrong type for value; expected string; got []interface {}\n\n"
     "Use --debug flag to render out invalid YAML\n"),
    ("rendered_yaml_invalid", INPUT, "YAMLError",
     "Error: YAML parse error on badyaml/templates/cm.yaml: error converting YAML to JSON: yaml: line "
     "6: did not find expected key\n\nUse --debug flag to render out invalid YAML\n"),
    ("values_file_invalid_yaml", INPUT, "YAMLError",
     "Error: failed to parse bad-values.yaml: cannot unmarshal yaml document: error converting YAML to "
     "JSON: yaml: line 1: did not find expected ',' or ']'\n"),
    ("chart_values_yaml_invalid", INPUT, "YAMLError",
     "Error: cannot load values.yaml: cannot unmarshal yaml document: error converting YAML to JSON: "
     "yaml: line 1: did not find expected ',' or ']'\n"),
    ("schema_wrong_type", INPUT, "ValuesSchemaViolation",
     "Error: values don't meet the specifications of the schema(s) in the following chart(s):\nschema:\n"
     "- at '/replicas': got string, want integer\n\n"),
    ("schema_missing_property", INPUT, "ValuesSchemaViolation",
     "Error: values don't meet the specifications of the schema(s) in the following chart(s):\nschema:\n"
     "- at '': missing property 'replicas'\n\n"),
    # The chart's values.schema.json is cut short: an "EOF" that is no network error.
    ("schema_file_broken", INPUT, "ValuesSchemaViolation",
     "Error: values don't meet the specifications of the schema(s) in the following chart(s):\n"
     "badschema:\nunexpected EOF\n"),
    ("kube_version", INPUT, "IncompatibleKubeVersion",
     "Error: chart requires kubeVersion: >=1.40.0-0 which is incompatible with Kubernetes v1.30.0\n\n"
     "Use --debug flag to render out invalid YAML\n"),
    ("chart_version_missing", INPUT, "InvalidChart",
     "Error: validation: chart.metadata.version is required\n"),
    ("chart_version_invalid", INPUT, "InvalidChart",
     'Error: validation: chart.metadata.version "one" is invalid\n'),
    ("chart_api_version", INPUT, "InvalidChart",
     "Error: unsupported chart version\n"),
    ("chart_yaml_invalid", INPUT, "InvalidChart",
     "Error: cannot load Chart.yaml: error converting YAML to JSON: yaml: line 2: did not find expected "
     "',' or ']'\n"),
    ("dependency_missing", INPUT, "InvalidChart",
     "Error: an error occurred while checking for chart dependencies. You may need to run 'helm "
     "dependency build' to fetch missing dependencies: found in Chart.yaml, but missing in charts/ "
     "directory: sub\n"),
    ("repo_version_not_found", INPUT, "ChartNotFound",
     'Error: chart "ok" version "9.9.9" not found in http://127.0.0.1:18931 repository\n'),
    ("repo_range_not_found", INPUT, "ChartNotFound",
     'Error: chart "ok" version "~9.9" not found in http://127.0.0.1:18931 repository\n'),
    ("repo_chart_not_found", INPUT, "ChartNotFound",
     'Error: chart "nosuch" not found in http://127.0.0.1:18931 repository\n'),
    ("oci_version_not_found", INPUT, "ChartNotFound",
     'Error: failed to perform "FetchReference" on source: 127.0.0.1:18940/charts/ok:9.9.9: not found\n'),
    ("oci_range_not_found", INPUT, "ChartNotFound",
     "Error: could not locate a version matching provided version string ~9.9\n"),
    ("oci_repository_unknown", INPUT, "ChartNotFound",
     'Error: GET "http://127.0.0.1:18940/v2/charts/nosuch/tags/list": response status code 404: name '
     "unknown: repository name not known to registry: map[name:charts/nosuch]\n"),
    ("oci_improper_constraint", INPUT, "InvalidChartVersion",
     'Error: improper constraint: "notaversion!"\n'),
    # The same failures from `upgrade --install`: a first install, then an existing release.
    ("install_nil_pointer", INPUT, "TemplateError",
     "Error: nilptr/templates/cm.yaml:6:18\n"
     '  executing "nilptr/templates/cm.yaml" at <.Values.database.host>:\n'
     "    nil pointer evaluating interface {}.host\n"),
    ("install_kube_version", INPUT, "IncompatibleKubeVersion",
     "Error: chart requires kubeVersion: >=1.40.0-0 which is incompatible with Kubernetes v1.33.0\n"),
    ("upgrade_nil_pointer", INPUT, "TemplateError",
     "Error: UPGRADE FAILED: nilptr/templates/cm.yaml:6:18\n"
     '  executing "nilptr/templates/cm.yaml" at <.Values.database.host>:\n'
     "    nil pointer evaluating interface {}.host\n"),
    ("upgrade_schema", INPUT, "ValuesSchemaViolation",
     "Error: UPGRADE FAILED: values don't meet the specifications of the schema(s) in the following "
     "chart(s):\nschema:\n- at '/replicas': got string, want integer\n\n"),
    ("kind_missing", INPUT, "InvalidObject",
     'Error: unable to build kubernetes objects from release manifest: unable to decode "": Object '
     '\'Kind\' is missing in \'{"apiVersion":"v1","data":{},"metadata":{"name":"w"}}\'\n'),
    ("cluster_refused", TRANSIENT, "ClusterUnreachable",
     'Error: kubernetes cluster unreachable: Get "https://127.0.0.1:6443/version": dial tcp '
     "127.0.0.1:6443: connect: connection refused\n"),
    ("cluster_tls_timeout", TRANSIENT, "ClusterUnreachable",
     'Error: kubernetes cluster unreachable: Get "https://127.0.0.1:18960/version": net/http: TLS '
     "handshake timeout\n"),
    ("cluster_no_such_host", TRANSIENT, "ClusterUnreachable",
     'Error: kubernetes cluster unreachable: Get "https://no-such-host.invalid:6443/version": dial tcp: '
     "lookup no-such-host.invalid on 10.255.255.53:53: no such host\n"),
    ("crd_missing_install", TRANSIENT, "CRDNotInstalled",
     "Error: unable to build kubernetes objects from release manifest: resource mapping not found for "
     'name: "w" namespace: "" from "": no matches for kind "Widget" in version "example.com/v1"\n'
     "ensure CRDs are installed first\n"),
    ("repo_refused", TRANSIENT, "RepositoryUnreachable",
     'Error: looks like "http://127.0.0.1:18932" is not a valid chart repository or cannot be reached: '
     'Get "http://127.0.0.1:18932/index.yaml": dial tcp 127.0.0.1:18932: connect: connection refused\n'),
    ("repo_index_404", TRANSIENT, "RepositoryUnreachable",
     'Error: looks like "http://127.0.0.1:18931/missing" is not a valid chart repository or cannot be '
     "reached: failed to fetch http://127.0.0.1:18931/missing/index.yaml : 404 File not found\n"),
    ("repo_archive_404", TRANSIENT, "RepositoryUnreachable",
     "Error: failed to fetch http://127.0.0.1:18931/r2/gone-0.1.0.tgz : 404 File not found\n"),
    ("oci_no_such_host", TRANSIENT, "ConnectionFailed",
     'Error: failed to perform "FetchReference" on source: Get "https://no-such-host.invalid/v2/charts/web/'
     'manifests/1.0.0": dial tcp: lookup no-such-host.invalid on 10.255.255.53:53: no such host\n'),
    ("oci_refused", TRANSIENT, "ConnectionFailed",
     'Error: failed to perform "FetchReference" on source: Get '
     '"http://127.0.0.1:18941/v2/charts/nosuch/manifests/1.0.0": dial tcp 127.0.0.1:18941: connect: '
     "connection refused\n"),
    # `upgrade --install --wait --timeout 5s` on an object that never became ready.
    ("wait_timeout", TRANSIENT, "Timeout",
     KLOG_WATCH_ENDED + "Error: resource ConfigMap/team/x not ready. status: Unknown, message: \n"
                        "context deadline exceeded\n"),
    # SIGTERM to a waiting `upgrade --install`, as HelmRunner stops it.
    ("sigterm", TRANSIENT, "Interrupted",
     KLOG_WATCH_ENDED + "Error: context canceled\n"),
]  # fmt: skip

STUB_API = [
    ("invalid_name", INPUT, "InvalidObject",
     'Error: server-side apply failed for object team/x /v1, Kind=ConfigMap: ConfigMap "x" is invalid: '
     'metadata.name: Invalid value: "X_bad": a lowercase RFC 1123 subdomain must consist of lower case '
     "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
     "'example.com', regex used for validation is "
     "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')\n"),
    ("required_field", INPUT, "InvalidObject",
     'Error: server-side apply failed for object team/x /v1, Kind=ConfigMap: Deployment.apps "web" is '
     "invalid: spec.template.spec.containers[0].image: Required value\n"),
    ("immutable_field", INPUT, "InvalidObject",
     'Error: server-side apply failed for object team/x /v1, Kind=ConfigMap: Deployment.apps "web" is '
     "invalid: spec.selector: Invalid value: "
     'v1.LabelSelector{MatchLabels:map[string]string{"app":"web2"}, '
     "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable\n"),
    ("unknown_field_ssa", INPUT, "InvalidObject",
     "Error: server-side apply failed for object team/x /v1, Kind=ConfigMap: failed to create typed "
     "patch object (team/x; /v1, Kind=ConfigMap): .spec: field not declared in schema\n"),
    ("forbidden_patch", TRANSIENT, "Forbidden",
     'Error: server-side apply failed for object team/x /v1, Kind=ConfigMap: configmaps "x" is '
     'forbidden: User "system:serviceaccount:team:deployer" cannot patch resource "configmaps" in API '
     'group "" in the namespace "team"\n'),
    ("forbidden_get", TRANSIENT, "Forbidden",
     "Error: unable to continue with install: could not get information about the resource ConfigMap "
     '"x" in namespace "team": configmaps "x" is forbidden: User "system:serviceaccount:team:deployer" '
     'cannot get resource "configmaps" in API group "" in the namespace "team"\n'),
    ("forbidden_release_secret", TRANSIENT, "Forbidden",
     'Error: create: failed to create: secrets is forbidden: User "system:serviceaccount:team:deployer" '
     'cannot create resource "secrets" in API group "" in the namespace "team"\n'),
    ("quota_exceeded", TRANSIENT, "Forbidden",
     'Error: server-side apply failed for object team/x /v1, Kind=ConfigMap: configmaps "x" is '
     "forbidden: exceeded quota: team-quota, requested: count/configmaps=1, used: count/configmaps=10, "
     "limited: count/configmaps=10\n"),
    ("namespace_terminating", TRANSIENT, "Forbidden",
     'Error: server-side apply failed for object team/x /v1, Kind=ConfigMap: configmaps "x" is '
     "forbidden: unable to create new content in namespace team because it is being terminated\n"),
    ("apply_conflict", TRANSIENT, "ApplyConflict",
     "Error: conflict occurred while applying object team/x /v1, Kind=ConfigMap: Apply failed with 1 "
     'conflict: conflict with "kubectl-client-side-apply" using v1: .data.replicas\n'),
    ("too_many_requests", TRANSIENT, "TooManyRequests",
     "Error: server-side apply failed for object team/x /v1, Kind=ConfigMap: Too many requests, please "
     "try again later.\n"),
    ("internal_error_etcd", TRANSIENT, "Timeout",
     "Error: server-side apply failed for object team/x /v1, Kind=ConfigMap: Internal error occurred: "
     "etcdserver: request timed out\n"),
    ("etcd_timeout", TRANSIENT, "Timeout",
     "Error: server-side apply failed for object team/x /v1, Kind=ConfigMap: etcdserver: request timed "
     "out\n"),
    ("internal_error_on_get", TRANSIENT, "Timeout",
     "Error: unable to continue with install: could not get information about the resource ConfigMap "
     '"x" in namespace "team": Internal error occurred: etcdserver: request timed out\n'),
    ("internal_error", TRANSIENT, "ServerUnavailable",
     "Error: server-side apply failed for object team/x /v1, Kind=ConfigMap: Internal error occurred: "
     "resource quota evaluation timed out\n"),
    ("service_unavailable", TRANSIENT, "ServerUnavailable",
     "Error: server-side apply failed for object team/x /v1, Kind=ConfigMap: the server is currently "
     "unable to handle the request\n"),
    ("webhook_down", TRANSIENT, "WebhookUnavailable",
     "Error: server-side apply failed for object team/x /v1, Kind=ConfigMap: Internal error occurred: "
     'failed calling webhook "validate.example.com": failed to call webhook: Post '
     '"https://webhook.team.svc:443/validate?timeout=10s": dial tcp 10.96.0.12:443: connect: connection '
     "refused\n"),
    ("release_locked", TRANSIENT, "ReleaseLocked",
     "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress\n"),
    ("crd_missing_upgrade", TRANSIENT, "CRDNotInstalled",
     'Error: UPGRADE FAILED: resource mapping not found for name: "w" namespace: "" from "": no matches '
     'for kind "Widget" in version "example.com/v1"\nensure CRDs are installed first\n'),
    ("connection_dropped", TRANSIENT, "ConnectionFailed",
     "Error: create: failed to create: Post "
     '"http://127.0.0.1:18950/fail-none-000/api/v1/namespaces/team/secrets": EOF\n'),
    # Statuses on GET /version: helm reports every one as an unreachable cluster.
    ("version_401", TRANSIENT, "ClusterUnreachable",
     "Error: kubernetes cluster unreachable: the server has asked for the client to provide "
     "credentials\n"),
    ("version_403", TRANSIENT, "ClusterUnreachable",
     "Error: kubernetes cluster unreachable: unknown\n"),
    ("version_429", TRANSIENT, "ClusterUnreachable",
     "Error: kubernetes cluster unreachable: the server has received too many requests and has asked us "
     "to try again later\n"),
    ("version_500", TRANSIENT, "ClusterUnreachable",
     'Error: kubernetes cluster unreachable: an error on the server ("unknown") has prevented the '
     "request from succeeding\n"),
    ("version_503", TRANSIENT, "ClusterUnreachable",
     "Error: kubernetes cluster unreachable: the server is currently unable to handle the request\n"),
    ("version_504", TRANSIENT, "ClusterUnreachable",
     "Error: kubernetes cluster unreachable: the server was unable to return a response in the time "
     "allotted, but may still be processing the request\n"),
]  # fmt: skip

HELM_3 = [
    ("nil_pointer", INPUT, "TemplateError",
     'Error: template: nilptr/templates/cm.yaml:6:18: executing "nilptr/templates/cm.yaml" at '
     "<.Values.database.host>: nil pointer evaluating interface {}.host\n\n"
     "Use --debug flag to render out invalid YAML\n"),
    ("values_file_invalid_yaml", INPUT, "YAMLError",
     "Error: failed to parse bad-values.yaml: error converting YAML to JSON: yaml: line 1: did not find "
     "expected ',' or ']'\n"),
    ("cluster_refused", TRANSIENT, "ClusterUnreachable",
     'Error: Kubernetes cluster unreachable: Get "https://127.0.0.1:6443/version": dial tcp '
     "127.0.0.1:6443: connect: connection refused\n"),
]  # fmt: skip

KNOWN = [
    ("strict_decoding", INPUT, "InvalidObject",
     'Error: UPGRADE FAILED: failed to create resource: Plugin in version "v1alpha1" cannot be handled '
     'as a Plugin: strict decoding error: unknown field "spec.backend.modes"\n'),
    ("duplicate_env", INPUT, "InvalidObject",
     "Error: failed to create typed patch object (rag/rag-nv-ingest; apps/v1, Kind=Deployment): "
     'errors:\n  .spec.template.spec.containers[name="nv-ingest"].env: duplicate entries for key '
     '[name="INGEST_LOG_LEVEL"]\n'),
    ("openapi_unknown_field", INPUT, "InvalidObject",
     'Error: unable to build kubernetes objects from release manifest: error validating "": error '
     "validating data: ValidationError(Deployment.spec.template.spec.containers[0]): unknown field "
     '"imagePullPolizy" in io.k8s.api.core.v1.Container\n'),
    ("dial_timeout", TRANSIENT, "Timeout",
     "Error: UPGRADE FAILED: Patch "
     '"https://10.0.0.1:6443/apis/apps/v1/namespaces/team/deployments/web?fieldManager=helm": dial tcp '
     "10.0.0.1:6443: i/o timeout\n"),
    ("helm3_wait", TRANSIENT, "Timeout",
     "Error: UPGRADE FAILED: timed out waiting for the condition\n"),
    ("connection_reset", TRANSIENT, "ConnectionFailed",
     "Error: UPGRADE FAILED: Get "
     '"https://10.0.0.1:6443/api/v1/namespaces/team/secrets?labelSelector=name%3Dweb%2Cowner%3Dhelm": '
     "read tcp 10.1.0.5:51234->10.0.0.1:6443: read: connection reset by peer\n"),
    ("admission_denied", TRANSIENT, "Forbidden",
     'Error: UPGRADE FAILED: failed to create resource: admission webhook "validation.gatekeeper.sh" '
     'denied the request: [must-have-owner] you must provide labels: {"owner"}\n'),
    ("registry_unauthorized", TRANSIENT, "Unauthorized",
     'Error: failed to perform "FetchReference" on source: GET '
     '"https://registry.example.com/v2/charts/web/manifests/1.0.0": response status code 401: '
     "unauthorized: authentication required\n"),
    ("object_modified", TRANSIENT, "ApplyConflict",
     'Error: UPGRADE FAILED: Operation cannot be fulfilled on deployments.apps "web": the object has '
     "been modified; please apply your changes to the latest version and try again\n"),
    ("etcd_leader_changed", TRANSIENT, "ServerUnavailable",
     "Error: UPGRADE FAILED: etcdserver: leader changed\n"),
]  # fmt: skip

# The operator's own texts for a helm it stopped: HelmRunner's deadline, and a helm killed by
# a signal before it printed anything (HelmResult.error on an empty stderr).
OPERATOR = [
    ("runner_deadline", TRANSIENT, "Timeout", str(HelmTimeoutError("upgrade", 330))),
    ("killed", TRANSIENT, "Interrupted", HelmResult(("upgrade",), -9, "", "", 1.0).error),
]

CASES = [
    pytest.param(text, kind, reason, id=f"{group}-{name}")
    for group, cases in (
        ("captured", CAPTURED),
        ("stub-api", STUB_API),
        ("helm3", HELM_3),
        ("known", KNOWN),
        ("operator", OPERATOR),
    )
    for name, kind, reason, text in cases
]


@pytest.mark.parametrize(("text", "kind", "reason"), CASES)
def test_each_message_gets_its_kind_and_reason(text: str, kind: FailureKind, reason: str) -> None:
    assert classify_helm_failure(text) == FailureClass(kind, reason)


@pytest.mark.parametrize(("text", "kind", "reason"), CASES)
def test_the_kind_is_the_same_from_what_the_operator_reports(
    text: str, kind: FailureKind, reason: str
) -> None:
    # The controller has str(HelmActionError): HelmResult.error, which drops helm's unindented
    # continuation lines ("context deadline exceeded" after a wait's "not ready"), prefixed.
    error = HelmActionError("upgrade", HelmResult(("upgrade",), 1, "", text, 1.0))
    assert classify_helm_failure(str(error)).kind is kind


def test_unknown_text_is_transient() -> None:
    assert classify_helm_failure("Error: something helm never said before\n") == FailureClass(
        TRANSIENT, "Unknown"
    )


def test_empty_text_is_transient() -> None:
    assert classify_helm_failure("") == FailureClass(TRANSIENT, "Unknown")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            "Error: parse error at (web/templates/cm.yaml:5): unclosed action: context deadline exceeded\n",
            id="deadline-around-render",
        ),
        pytest.param(
            STUB_SSA + 'Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: must be greater '
            "than or equal to 0; etcdserver: request timed out\n",
            id="invalid-object-and-etcd",
        ),
        pytest.param(
            str(HelmTimeoutError("upgrade", 330)) + ": Error: YAML parse error on web/templates/cm.yaml",
            id="runner-deadline-and-yaml",
        ),
    ],
)
def test_transient_wins_over_input_in_one_text(text: str) -> None:
    assert classify_helm_failure(text).kind is TRANSIENT


@pytest.mark.parametrize(
    "text", [pytest.param(case.values[0], id=case.id) for case in CASES if case.values[1] is INPUT]
)
def test_a_deadline_around_any_input_failure_is_transient(text: str) -> None:
    assert classify_helm_failure(text.rstrip() + ": context deadline exceeded\n").kind is TRANSIENT


def test_only_the_last_error_line_counts() -> None:
    # client-go's warnings about a watch that recovered say nothing about the failure.
    rendered_yaml_invalid = next(text for name, *_, text in CAPTURED if name == "rendered_yaml_invalid")
    text = KLOG_WATCH_ENDED + rendered_yaml_invalid
    assert classify_helm_failure(text) == FailureClass(INPUT, "YAMLError")


def test_the_table_lists_every_transient_row_before_any_input_row() -> None:
    kinds = [kind for _, kind, _ in _TABLE]
    assert kinds == sorted(kinds, key=lambda kind: kind is INPUT)


def test_every_row_of_the_table_decides_at_least_one_message() -> None:
    decided = {
        row
        for case in CASES
        for row, (pattern, kind, reason) in enumerate(_PATTERNS)
        if pattern.search(case.values[0]) and case.values[1:] == (kind, reason)
    }
    assert sorted(set(range(len(_TABLE))) - decided) == []


def test_reasons_are_camel_case_words() -> None:
    assert all(reason.isalnum() and reason[0].isupper() for *_, reason in _TABLE)
