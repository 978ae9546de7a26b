"""The web server's per-caller caches without a cluster: the pool of callers' clients and
views (bounded, idle expiry, never one caller's thing for another's key), where to look for
a caller's namespaces, and the all-namespaces overview made of per-namespace ones."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from alecton.web import views
from alecton.web.caller_views import MAX_NAMESPACES, candidate_namespaces
from alecton.web.clients import KeyedPool, PoolFullError, credential_digest


@dataclass
class Made:
    owner: str
    closed: bool = False


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Maker:
    made: list[Made] = field(default_factory=list)

    def __call__(self, owner: str):  # type: ignore[no-untyped-def]
        async def make() -> Made:
            await asyncio.sleep(0)  # concurrent first requests overlap here
            thing = Made(owner)
            self.made.append(thing)
            return thing

        return make


async def close(thing: Made) -> None:
    thing.closed = True


def pool(size: int = 2, idle: float = 60.0) -> tuple[KeyedPool[Made], Clock]:
    clock = Clock()
    return KeyedPool(close, size, idle, clock), clock


def test_each_key_gets_its_own_and_the_same_again() -> None:
    async def run() -> None:
        things, _ = pool()
        maker = Maker()
        for _ in range(3):
            for who in ("alice", "bob"):
                async with things.lease(who, maker(who)) as thing:
                    assert thing.owner == who  # never another caller's
        assert [m.owner for m in maker.made] == ["alice", "bob"]  # one each, reused

    asyncio.run(run())


def test_concurrent_first_requests_of_one_caller_share_one() -> None:
    async def run() -> None:
        things, _ = pool()
        maker = Maker()

        async def use() -> str:
            async with things.lease("alice", maker("alice")) as thing:
                await asyncio.sleep(0)
                return thing.owner

        assert await asyncio.gather(*(use() for _ in range(5))) == ["alice"] * 5
        assert len(maker.made) == 1

    asyncio.run(run())


def test_least_recently_used_goes_first_and_closes_once_unused() -> None:
    async def run() -> None:
        things, _ = pool(size=2)
        maker = Maker()
        async with things.lease("a", maker("a")) as a:
            async with things.lease("b", maker("b")):
                pass
            async with things.lease("c", maker("c")):
                pass  # over the size: the least recently used idle one ("b") goes, not "a" in use
            b = maker.made[1]
            assert b.closed and not a.closed and len(things) == 2
            async with things.lease("c", maker("c")) as c:
                with pytest.raises(PoolFullError):  # "a" and "c" in use: nothing more
                    async with things.lease("d", maker("d")):
                        pass
                assert not (a.closed or c.closed)
        async with things.lease("d", maker("d")):
            pass
        assert a.closed and len(things) == 2  # the least recently used, closed once unused

    asyncio.run(run())


def test_idle_ones_expire() -> None:
    async def run() -> None:
        things, clock = pool(size=10, idle=60.0)
        maker = Maker()
        async with things.lease("a", maker("a")):
            pass
        clock.now = 61.0
        async with things.lease("b", maker("b")):
            pass
        assert maker.made[0].closed and len(things) == 1
        async with things.lease("a", maker("a")) as again:
            assert again is not maker.made[0]

    asyncio.run(run())


def test_a_failed_make_is_not_kept_and_is_discarded_on_request() -> None:
    async def run() -> None:
        things, _ = pool()

        async def refuse() -> Made:
            raise PermissionError("401")

        with pytest.raises(PermissionError):
            async with things.lease("a", refuse):
                pass
        assert len(things) == 0
        maker = Maker()
        async with things.lease("a", maker("a")):
            pass
        await things.discard("a")
        assert maker.made[0].closed and len(things) == 0

    asyncio.run(run())


def test_the_key_is_a_digest_never_the_token() -> None:
    token = "eyJhbGciOi.secret.token"
    digest = credential_digest(token)
    assert token not in digest and digest == credential_digest(token)
    assert digest != credential_digest(token + "x")


@pytest.mark.parametrize(
    ("listed", "default", "user", "expected"),
    [
        ([], "default", "system:serviceaccount:team-a:ci", ["default", "team-a"]),
        (["b", "a"], "default", "alice", ["a", "b", "default"]),
        ([], "", "oidc:alice", []),
    ],
)
def test_where_a_tenant_is_looked_for(
    listed: list[str], default: str, user: str, expected: list[str]
) -> None:
    assert candidate_namespaces(listed, default, user) == expected


def test_at_most_so_many_namespaces_are_looked_at() -> None:
    many = [f"ns{i:04d}" for i in range(MAX_NAMESPACES * 2)]
    assert len(candidate_namespaces(many, "default", "")) == MAX_NAMESPACES


def _deployment(name: str, application: str, target: str, phase: str) -> dict[str, object]:
    return {
        "metadata": {"name": name},
        "spec": {"application": application, "target": target, "version": "1.0.0"},
        "status": {"phase": phase},
    }


def test_the_all_namespaces_overview_is_the_namespaces_ones_side_by_side() -> None:
    def one(namespace: str, phase: str) -> dict[str, object]:
        app = {
            "metadata": {"name": "web"},
            "spec": {"image": "web", "targets": [{"name": "staging", "cluster": "c"}]},
        }
        answer = views.overview(
            namespace, [app], [_deployment("web-staging", "web", "staging", phase)], [], [], ""
        )
        return views.with_namespace(answer, namespace)

    merged = views.all_namespaces(
        {"team-b": one("team-b", "Failed"), "team-a": one("team-a", "Deployed")}, "now"
    )
    assert merged["allNamespaces"] is True and merged["namespaces"] == ["team-a", "team-b"]
    assert [(r["namespace"], r["application"], r["phase"]) for r in merged["rows"]] == [
        ("team-a", "web", "Deployed"),
        ("team-b", "web", "Failed"),
    ]
    assert merged["generatedAt"] == "now"


@dataclass
class FakeWatch:
    """What CallerView reads of a KindWatch: its objects and failure."""

    by_namespace: dict[str, dict[str, dict[str, object]]] = field(default_factory=dict)
    failure: Exception | None = None
    status: int = 0

    def items(self, namespace: str) -> list[dict[str, object]]:
        return list((self.by_namespace.get(namespace) or {}).values())


def test_a_changed_deployment_is_its_row_and_the_cached_namespace_is_computed_again() -> None:
    from alecton.web.caller_views import CallerView, Part, Subscription

    view = CallerView(None, None, "default")  # type: ignore[arg-type]  # no API calls here
    deployments = FakeWatch(
        {"team-a": {"web-staging": _deployment("web-staging", "web", "staging", "Deployed")}}
    )
    view.watches = {
        Part("Deployment", ""): deployments,
        **{Part(k, ""): FakeWatch() for k in ("Application", "Image", "Promotion")},
    }  # type: ignore[dict-item]
    assert [r["phase"] for r in view.answer("now")["rows"]] == ["Deployed"]
    subscription = Subscription()
    view.subscribers.add(subscription)

    changed = _deployment("web-staging", "web", "staging", "Failed")
    changed["metadata"] = {"name": "web-staging", "namespace": "team-a"}
    deployments.by_namespace["team-a"]["web-staging"] = changed
    view._changed("Deployment", "MODIFIED", changed)
    view._changed("Image", "ADDED", {"metadata": {"name": "web-1", "namespace": "team-a"}})
    assert subscription.deployments == {("team-a", "web-staging")} and subscription.kinds == {"Image"}
    assert subscription.wake.is_set()
    (row,) = view.rows_of("team-a", "web-staging")
    assert (row["namespace"], row["phase"]) == ("team-a", "Failed")
    assert [r["phase"] for r in view.answer("now")["rows"]] == ["Failed"]


def test_a_refused_part_shows_nothing() -> None:
    from alecton.web.caller_views import CallerView, Part

    view = CallerView(None, "team-a", "default")  # type: ignore[arg-type]
    refused = FakeWatch({"team-a": {"x": _deployment("x", "web", "staging", "Deployed")}}, status=403)
    view.watches = {Part("Deployment", "team-a"): refused}  # type: ignore[dict-item]
    assert view.answer("now")["rows"] == []
