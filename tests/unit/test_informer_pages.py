"""An informer lists in pages and keeps only what its `keep` returns (the health caches keep
a projection), without a cluster: the API client answers from a list of pages."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from alecton.kube.informers import Informer, Resource


class RawResponse:
    """What `call_api(..., _preload_content=False)` returns, for a JSON body."""

    def __init__(self, body: dict[str, Any]) -> None:
        self._body = json.dumps(body).encode()
        self.status, self.reason, self.content_length = 200, "OK", len(self._body)
        self.content = self

    async def iter_any(self) -> AsyncIterator[bytes]:
        yield self._body

    def release(self) -> None:
        pass


class PagedApi:
    """Answers list requests page by page (`limit`, `continue`), recording each query."""

    def __init__(self, pods: list[dict[str, Any]]) -> None:
        self.pods = pods
        self.queries: list[dict[str, Any]] = []

    async def call_api(self, path: str, method: str, query_params: list[tuple[str, Any]], **_: Any) -> Any:
        query = dict(query_params)
        self.queries.append(query)
        start = int(query.get("continue") or 0)
        end = start + int(query["limit"])
        more = str(end) if end < len(self.pods) else ""
        return RawResponse(
            {"metadata": {"resourceVersion": "77", "continue": more}, "items": self.pods[start:end]}
        )


def pod(index: int) -> dict[str, Any]:
    return {
        "metadata": {"name": f"p{index}", "managedFields": [{"manager": "kubelet"}] * 3},
        "spec": {"containers": [{"name": "app"}]},
        "status": {"phase": "Running"},
    }


def test_an_informer_lists_in_pages_and_keeps_only_the_projection() -> None:
    async def scenario() -> None:
        api = PagedApi([pod(i) for i in range(250)])
        changes: list[int] = []
        informer = Informer(
            api,  # type: ignore[arg-type]
            Resource("v1", "pods"),
            "team",
            lambda: changes.append(1),
            keep=lambda obj: {"metadata": {"name": obj["metadata"]["name"]}, "status": obj["status"]},
        )
        version = await informer._list()
        assert version == "77"
        assert [q.get("continue") for q in api.queries] == [None, "100", "200"]  # pages of 100
        assert len(informer.objects) == 250 and changes == [1]
        assert informer.objects["p249"] == {"metadata": {"name": "p249"}, "status": {"phase": "Running"}}
        assert informer.synced.is_set() and informer.answered.is_set()

    asyncio.run(scenario())
