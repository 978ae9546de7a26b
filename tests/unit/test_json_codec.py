"""The JSON reader and writer of API server lists and web answers (kube/json_codec.py)."""

from __future__ import annotations

import json

import pytest
from alecton.kube import json_codec


def test_reads_what_the_standard_library_reads() -> None:
    text = '{"items":[{"metadata":{"name":"web","labels":{"a":"b"}},"n":3,"f":0.5,"ok":true}],"x":null}'
    assert json_codec.loads(text.encode()) == json.loads(text)
    assert json_codec.loads(text) == json.loads(text)


def test_numbers_past_64_bits_read_as_the_api_server_stores_them() -> None:
    # Kubernetes keeps int64 or float64; a larger number is a float on both sides.
    assert json_codec.loads(b"123456789012345678901234567890") == pytest.approx(1.2345678901234568e29)


def test_what_is_not_json_raises_the_standard_error() -> None:
    with pytest.raises(json.JSONDecodeError):
        json_codec.loads(b'{"items": [')


def test_writes_compact_utf8_and_falls_back_for_what_orjson_refuses() -> None:
    assert json_codec.dumps({"a": [1, "é"], "b": None}) == '{"a":[1,"é"],"b":null}'.encode()
    assert json.loads(json_codec.dumps({"big": 2**70})) == {"big": 2**70}
    assert json.loads(json_codec.dumps({1: "non-string key"})) == {"1": "non-string key"}
