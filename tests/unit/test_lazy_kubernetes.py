"""kubernetes_asyncio's generated client loads class by class once alecton is imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

OPERATOR = str(Path(__file__).resolve().parents[2] / "operator")

PROBE = """
import asyncio, json, sys
import alecton
from kubernetes_asyncio import client
from kubernetes_asyncio.client import ApiClient
before = sum(name.startswith("kubernetes_asyncio.client.models.") for name in sys.modules)
async def read():
    async with ApiClient() as api:
        answer = {"metadata": {"name": "l"}, "spec": {"holderIdentity": "me"}}
        return api.deserialize(type("R", (), {"data": json.dumps(answer)})(), "V1Lease")
lease = asyncio.run(read())
after = sum(name.startswith("kubernetes_asyncio.client.models.") for name in sys.modules)
print(json.dumps({
    "lazy": type(sys.modules["kubernetes_asyncio.client"]).__name__,
    "models_before": before,
    "models_after": after,
    "holder": lease.spec.holder_identity,
    "exception": client.ApiException.__module__,
    "api": client.CoreV1Api.__module__,
    "same": client.models.V1Lease is client.V1Lease,
}))
"""


def _run(code: str) -> str:
    env = {"PYTHONPATH": OPERATOR}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return done.stdout


def _probe() -> dict:
    return json.loads(_run(PROBE).strip().splitlines()[-1])


def test_models_load_only_when_used_and_still_deserialize() -> None:
    seen = _probe()
    assert seen["lazy"] == "_LazyPackage"
    # The eager package imports all ~770 models; lazily only what was asked for is there.
    assert seen["models_before"] < 10
    assert seen["models_after"] < 20
    assert seen["holder"] == "me"
    assert seen["exception"] == "kubernetes_asyncio.client.exceptions"
    assert seen["api"] == "kubernetes_asyncio.client.api.core_v1_api"
    assert seen["same"] is True


def test_an_unknown_name_is_an_attribute_error_not_a_crash() -> None:
    code = (
        "import alecton\nfrom kubernetes_asyncio import client\n"
        "try:\n    client.NoSuchThing\nexcept AttributeError as e:\n    print('ok', e)\n"
    )
    assert _run(code).startswith("ok")
