from __future__ import annotations

import base64
import copy
import json
import pickle
from typing import Any

import pytest
from alecton.reconcile.redact import REDACTED, Redactor, string_leaves


def test_every_occurrence_is_replaced() -> None:
    redactor = Redactor(["hunter22"])
    assert redactor.redact("hunter22 and again hunter22.") == f"{REDACTED} and again {REDACTED}."


def test_text_without_secrets_is_returned_unchanged() -> None:
    redactor = Redactor(["hunter22"])
    text = "Error: UPGRADE FAILED: timed out waiting for the condition"
    assert redactor.redact(text) is text


def test_empty_redactor_is_false_and_changes_nothing() -> None:
    empty = Redactor()
    assert not empty
    assert empty.redact("anything at all") == "anything at all"
    assert Redactor(["hunter22"])


def test_a_secret_containing_another_is_replaced_whole() -> None:
    redactor = Redactor(["pass", "password-1234"])
    assert redactor.redact("x password-1234 y pass z") == f"x {REDACTED} y {REDACTED} z"


def test_overlapping_secrets_leave_no_piece_behind() -> None:
    # The end of one secret is the start of the other: neither part may survive.
    redactor = Redactor(["abcdef", "defghi"])
    assert redactor.redact("<abcdefghi>") == f"<{REDACTED}>"


def test_adjacent_secrets_are_both_replaced() -> None:
    redactor = Redactor(["alpha1", "bravo2"])
    assert redactor.redact("alpha1bravo2") == REDACTED + REDACTED


def test_regex_characters_in_secrets_are_literal() -> None:
    redactor = Redactor(["a.b*c+(d)", "[x]{2}"])
    assert redactor.redact("a.b*c+(d) axbbbc+d [x]{2} xx") == f"{REDACTED} axbbbc+d {REDACTED} xx"


@pytest.mark.parametrize("short", ["a", "on", "yes", "   ", "  ab  ", ""])
def test_short_strings_are_not_secrets(short: str) -> None:
    redactor = Redactor([short])
    assert not redactor
    assert redactor.redact("yes, turn it on: a b") == "yes, turn it on: a b"


def test_four_characters_are_enough() -> None:
    assert Redactor(["abcd"]).redact("xabcdx") == f"x{REDACTED}x"


def test_each_line_of_a_multi_line_secret_is_a_secret() -> None:
    key = (
        "-----BEGIN KEY-----\n"
        "MIIEvQIBADANBgkqhkiG9w0B\n"
        "  QEFAASCBKcwggSjAgEAAoIBAQ  \n"
        "ok\n"
        "-----END KEY-----\n"
    )
    redactor = Redactor([key])
    assert redactor.redact(f"values:\n{key}") == f"values:\n{REDACTED}"
    message = "error converting YAML: line 3: QEFAASCBKcwggSjAgEAAoIBAQ is not valid"
    assert redactor.redact(message) == f"error converting YAML: line 3: {REDACTED} is not valid"
    # Lines shorter than four characters stay, like any short secret.
    assert redactor.redact("ok") == "ok"


def test_a_trailing_newline_does_not_hide_the_secret() -> None:
    # Secrets made with `kubectl create secret --from-file` often end with a newline.
    assert Redactor(["hunter22\n"]).redact('value "hunter22" rejected') == f'value "{REDACTED}" rejected'


def test_base64_form_is_redacted() -> None:
    secret = "s3cr3t-token-value"
    encoded = base64.b64encode(secret.encode()).decode()
    redactor = Redactor([secret])
    assert redactor.redact(f"data:\n  token: {encoded}\n") == f"data:\n  token: {REDACTED}\n"


def test_non_ascii_secret_and_its_base64_form() -> None:
    secret = "pässwörd☃"
    encoded = base64.b64encode(secret.encode("utf-8")).decode()
    redactor = Redactor([secret])
    assert redactor.redact(f"{secret} / {encoded}") == f"{REDACTED} / {REDACTED}"


def test_a_helm_error_quoting_a_secret_value_is_redacted() -> None:
    redactor = Redactor.from_values({"db": {"password": "Tr0ub4dor&3", "user": "app"}, "replicas": 3})
    error = (
        "Error: UPGRADE FAILED: template: web/templates/secret.yaml:7:14: executing "
        '"web/templates/secret.yaml" at <fail>: error calling fail: value Tr0ub4dor&3 is not accepted'
    )
    redacted = redactor.redact(error)
    assert "Tr0ub4dor&3" not in redacted
    assert redacted.endswith(f"value {REDACTED} is not accepted")
    assert "web/templates/secret.yaml:7:14" in redacted


def test_from_values_takes_string_and_number_leaves_never_keys_or_booleans() -> None:
    redactor = Redactor.from_values(
        {
            "port": 54321,
            "ratio": 1234.5,
            "on": True,
            "list": ["item-one", {"deep": "item-two"}],
            "key-name": None,
        }
    )
    assert redactor.redact("54321 1234.5 True key-name") == f"{REDACTED} {REDACTED} True key-name"
    assert redactor.redact("item-one item-two") == f"{REDACTED} {REDACTED}"


def test_string_leaves_are_in_document_order_and_skip_keys() -> None:
    assert string_leaves({"k1": "a", "k2": ["b", {"k3": "c"}], "k4": True}) == ["a", "b", "c"]
    assert string_leaves({"n": 1234567}) == ["1234567", "1.234567e+06"]
    assert string_leaves("just") == ["just"]
    assert string_leaves(None) == []


def test_string_leaves_survive_deep_and_cyclic_structures() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(100_000):
        node["a"] = {}
        node = node["a"]
    node["leaf"] = "bottom-secret"
    assert string_leaves(deep) == ["bottom-secret"]

    cyclic: list[Any] = ["loop-secret"]
    cyclic.append(cyclic)
    assert string_leaves(cyclic) == ["loop-secret"]


def test_merged_redacts_both() -> None:
    first, second = Redactor(["first-secret"]), Redactor(["second-secret"])
    both = first.merged(second)
    assert both.redact("first-secret second-secret") == f"{REDACTED} {REDACTED}"
    assert first.redact("second-secret") == "second-secret"  # the originals are unchanged
    assert Redactor().merged(first) == first
    assert first.merged(Redactor()) == first


def test_redactor_is_immutable_and_its_repr_keeps_the_secret() -> None:
    redactor = Redactor(["hunter22"])
    with pytest.raises(AttributeError):
        redactor._pattern = None  # type: ignore[misc]
    assert "hunter22" not in repr(redactor)
    assert "hunter22" not in str(redactor)
    assert copy.deepcopy(redactor).redact("hunter22") == REDACTED
    assert pickle.loads(pickle.dumps(redactor)) == redactor


def test_equal_secrets_make_equal_redactors() -> None:
    assert Redactor(["abcd", "efgh"]) == Redactor(["efgh", "abcd", "abcd"])
    assert hash(Redactor(["abcd"])) == hash(Redactor(["abcd"]))
    assert Redactor(["abcd"]) != Redactor(["abce"])


@pytest.mark.parametrize(
    ("value", "printed"),
    [
        (985848797790, "9.8584879779e+11"),  # helm's float64, as Go's %v prints it
        (985848797790, "985848797790"),  # toJson / toYaml
        (1234567, "1.234567e+06"),
        (4242.5, "4242.5"),
        (100000000, "1e+08"),
    ],
)
def test_a_number_from_a_secret_is_redacted_as_helm_prints_it(value: int | float, printed: str) -> None:
    """Red team, issue 23: only string leaves were secrets, so a numeric PIN from a valuesFrom
    Secret came back in clear in helm's `value %!s(float64=9.8584879779e+11) is not accepted`."""
    redactor = Redactor.from_values({"pin": value, "enabled": True})
    message = f"execution error: value %!s(float64={printed}) is not accepted"
    assert printed not in redactor.redact(message)
    assert redactor.redact("replicas: 1, enabled: true") == "replicas: 1, enabled: true"  # short, bool


# ----- R27B-7: a chart may render a secret transformed ---------------------------------------

SECRET = "Tr0ub4'dor&3\"x?>"  # quotes and HTML characters to escape; base64 with / (URL-safe: _)


def b64(text: str, alphabet: str = "standard") -> str:
    encoded = base64.b64encode(text.encode()).decode()
    return encoded.translate(str.maketrans("+/", "-_")) if alphabet == "url" else encoded


@pytest.mark.parametrize(
    ("how", "shown"),
    [
        ("b64enc", b64(SECRET)),
        ("URL-safe base64", b64(SECRET, "url")),
        # printf "%s:%s" .Values.user .Values.password | b64enc (a basic-auth header, a
        # registry's auth): the secret's bytes start at each of the three offsets of a group.
        ("b64enc of admin:SECRET", b64(f"admin:{SECRET}")),
        ("b64enc of user:SECRET", b64(f"user:{SECRET}")),
        ("b64enc of me:SECRET@host", b64(f"me:{SECRET}@host")),
        ("b64enc of SECRET:admin, URL-safe", b64(f"{SECRET}:admin", "url")),
        ("toJson", json.dumps(SECRET)),
        ("toJson (Go escapes <, > and & in JSON)", '"Tr0ub4\'dor\\u00263\\"x?\\u003e"'),
        ("quote (Go %q)", '"Tr0ub4\'dor&3\\"x?>"'),
        ("YAML single-quoted", "'Tr0ub4''dor&3\"x?>'"),
        ("upper", SECRET.upper()),
        ("lower", SECRET.lower()),
        ("urlquery", "Tr0ub4%27dor%263%22x%3F%3E"),
        ("b32enc", base64.b32encode(SECRET.encode()).decode()),
    ],
)
def test_a_secret_rendered_transformed_is_redacted(how: str, shown: str) -> None:
    """R27B-7: a chart that renders a Secret's value through a template function (into a
    ConfigMap, an annotation, or a helm error) showed it in diffs and status unredacted."""
    redactor = Redactor([SECRET])
    text = f"+  token: {shown}\n"
    redacted = redactor.redact(text)
    assert REDACTED in redacted, how
    # Gone: all the characters that encode the secret's bytes (base64: 4 per 3 bytes) but the
    # 2 or 3 at each end that also encode the bytes around it.
    removed = len(shown) - len(redacted.replace(REDACTED, "").replace("+  token: ", "").strip())
    assert removed >= min(len(shown), len(SECRET.encode()) * 4 // 3 - 6), (how, redacted)


def test_a_multi_line_secret_in_json_is_redacted_whole() -> None:
    key = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\n-----END KEY-----\n"
    assert Redactor([key]).redact(f"config: {json.dumps({'key': key})}") == f'config: {{"key": "{REDACTED}"}}'


def test_the_encoded_fragments_of_a_short_secret_are_not_searched_for() -> None:
    """A secret's bytes inside a longer base64 text give only a fragment of its encoding; for a
    short secret that fragment is a few characters that turn up in any base64 text."""
    redactor = Redactor(["abcde"])
    assert redactor.redact(b64("abcde")) == REDACTED  # the encoding of the value itself still is
    inside = b64("x:abcde")
    assert redactor.redact(inside) == inside


# What helm and the API server printed (helm template / upgrade here) for charts that print a
# value from a Secret in forms no list of transforms covers (red team R28-2): hex, pieces,
# one letter at a time, a hash of a short PIN, Go's upper case of ß.
HELM_ERRORS_PRINTING_A_SECRET = {
    "hex": (
        "Hunter2Password",
        "helm upgrade failed: Error: UPGRADE FAILED: execution error at "
        "(web/templates/cm.yaml:7:9): bad value 48756e7465723250617373776f7264",
    ),
    "halves": (
        "Hunter2Password",
        "Error: execution error at (web/templates/cm.yaml:7:9): "
        "bad value Hunter2P / assword\n\nUse --debug flag to render out invalid YAML",
    ),
    "split": (
        "Hunter2Password",
        "Error: execution error at (web/templates/cm.yaml:7:9): [H u n t e r 2 P a s s w o r d]",
    ),
    "sha256 of a PIN": (
        "4821",
        "Error: execution error at (web/templates/cm.yaml:7:9): "
        "a388f562e286fdf28986f9253579f4d096446e01dd0c771996a51ff11b390fa2",
    ),
    "upper with ß": ("paßwort-geheim", "Error: execution error at (w/templates/cm.yaml:1:2): PAßWORT-GEHEIM"),
    "include": (
        "Hunter2Pw",
        'Error: c/templates/a.yaml:15:51\n  executing "c/templates/a.yaml" at '
        '<include .Values.s .>:\n    error calling include:\ntemplate: no template "Hunter2Pw" '
        'associated with template "gotpl"',
    ),
    "api server": (
        "Hunter2Pw",
        'Error: UPGRADE FAILED: ConfigMap "x" is invalid: metadata.labels: '
        'Invalid value: "Hunter2Pw-x": a valid label must be an empty string or ...',
    ),
    "yaml type": (
        "Hunter2Pw",
        "Error: UPGRADE FAILED: error unmarshaling JSON: json: cannot unmarshal "
        "string into Go struct field; yaml: unmarshal errors:\n  line 3: cannot unmarshal "
        "!!str `Hunter2Pw-x` into int32",
    ),
}


@pytest.mark.parametrize("how", sorted(HELM_ERRORS_PRINTING_A_SECRET))
def test_a_helm_error_keeps_no_chart_printed_text_when_the_values_hold_secrets(how: str) -> None:
    secret, error = HELM_ERRORS_PRINTING_A_SECRET[how]
    shown = Redactor([secret]).redact_helm_error(error)
    printed = error.split("): ", 1)[-1] if "execution error" in error else secret
    assert printed not in shown and secret not in shown, shown
    assert "withheld" in shown
    # Where it failed stays: the file and line, or the object and field.
    assert (
        ("cm.yaml:" in shown)
        or ("a.yaml:15:51" in shown)
        or ("metadata.labels" in shown)
        or ("line 3" in shown)
    )


def test_without_secrets_in_the_values_helms_error_is_shown_whole() -> None:
    error = "Error: execution error at (web/templates/cm.yaml:7:9): image.tag is required"
    assert Redactor([]).redact_helm_error(error) == error
