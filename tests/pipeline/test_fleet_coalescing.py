"""Fleet coalescing against a real Redis (#17, 3): a search another process is fetching is answered
from the shared cache, and nobody is stranded when the leader fails, dies or Redis goes away.

Two clients sharing one Redis and one fake are two processes. A gate holds the leader's request
in flight until the other process is seen waiting, so the tests do not depend on timing; the
clients run on the real clock (fleet waits are real waits).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest
import redis

from intercom_resilience import (
    AsyncResilientIntercom,
    CachePolicy,
    ResilienceConfig,
    ResilientIntercom,
    RetryPolicy,
    capture_calls,
)
from intercom_resilience._backends._redis import KeyScheme
from intercom_resilience._backends.redis_flights import RedisFlights
from intercom_resilience.testing import FakeIntercom
from tests.redis_support import RedisServer

QUERY = {"field": "email", "operator": "$", "value": "@fleet.example"}
SEARCH = "/contacts/search"


async def _until(condition: Any) -> None:
    """Let the other tasks run until *condition()* holds (readiness, bounded: 10 s)."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition never held")


class Gate(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """The fake's transport; the first search waits until released (and may then fail)."""

    def __init__(self, fake: FakeIntercom, *, fail_first: bool = False) -> None:
        self.sync, self.async_ = fake.transport(), fake.async_transport()
        self.fail_first = fail_first
        self.held = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._first_taken = False

    def _first(self, request: httpx.Request) -> bool:
        with self._lock:
            if request.url.path == SEARCH and not self._first_taken:
                self._first_taken = True
                return True
            return False

    def _answer(self, request: httpx.Request, response: httpx.Response, first: bool) -> Any:
        if first and self.fail_first:
            body = b'{"type":"error.list","errors":[{"code":"server_error","message":"x"}]}'
            return httpx.Response(500, content=body, request=request)
        return response

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        first = self._first(request)
        if first:
            self.held.set()
            assert self.release.wait(10), "never released"
        return self._answer(request, self.sync.handle_request(request), first)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        first = self._first(request)
        if first:
            self.held.set()
            await _until(self.release.is_set)  # released from the test's task
        return self._answer(request, await self.async_.handle_async_request(request), first)


class Watched(RedisFlights):
    """The real Redis flights, telling the test when this process first looked at the lock."""

    def __init__(self, inner: RedisFlights) -> None:
        super().__init__(inner._link, inner._keys)
        self.peeked = threading.Event()
        self.locks: list[bool | None] = []

    def lock(self, key: str, token: str, ttl_ms: int) -> bool | None:
        taken = super().lock(key, token, ttl_ms)
        self.locks.append(taken)
        return taken

    async def alock(self, key: str, token: str, ttl_ms: int) -> bool | None:
        taken = await super().alock(key, token, ttl_ms)
        self.locks.append(taken)
        return taken

    def peek(self, key: str) -> str | None:
        self.peeked.set()
        return super().peek(key)

    async def apeek(self, key: str) -> str | None:
        self.peeked.set()
        return await super().apeek(key)


def _config(url: str, *, wait: float = 5.0, attempts: int = 3) -> ResilienceConfig:
    return ResilienceConfig(
        redis_url=url,
        retry=RetryPolicy(max_attempts=attempts),
        cache=CachePolicy(backend="redis", coalesce=True, fleet_coalesce=True, fleet_wait=wait),
    )


def _watched(client: Any) -> Watched:
    flights = client._pipeline.flights
    assert isinstance(flights, RedisFlights)
    client._pipeline.flights = watched = Watched(flights)
    return watched


def _world(url: str, **options: Any) -> tuple[FakeIntercom, Gate, list[ResilientIntercom]]:
    fake = FakeIntercom(token="fake-token")
    for n in range(3):
        fake.workspace().create_contact({"email": f"p{n}@fleet.example"}, 0)
    gate = Gate(fake, fail_first=options.pop("fail_first", False))
    config = _config(url, **options)
    pods = [ResilientIntercom(token="fake-token", transport=gate, config=config) for _ in range(2)]
    return fake, gate, pods


def _search(client: ResilientIntercom, out: dict[str, Any], name: str) -> None:
    with capture_calls() as calls:
        try:
            out[name] = sorted(c.email for c in client.contacts.search(query=QUERY))
        except Exception as error:  # the assertions below name it
            out[name] = error
    out[f"{name}.info"] = calls.calls[0] if calls.calls else None


def _flight_keys(url: str) -> list[bytes]:
    raw = redis.Redis.from_url(url)
    try:
        return list(raw.scan_iter(match=f"{KeyScheme().prefix}:flight:*"))
    finally:
        raw.close()


@pytest.fixture
def emails() -> list[str]:
    return [f"p{n}@fleet.example" for n in range(3)]


def _leader_then_follower(
    fake: FakeIntercom, gate: Gate, pods: list[ResilientIntercom]
) -> tuple[dict[str, Any], Watched]:
    leader, follower = pods
    watched = _watched(follower)
    out: dict[str, Any] = {}
    first = threading.Thread(target=_search, args=(leader, out, "leader"))
    first.start()
    assert gate.held.wait(10)  # the leader holds the fleet lock and its request is in flight
    second = threading.Thread(target=_search, args=(follower, out, "follower"))
    second.start()
    assert watched.peeked.wait(10)  # the follower found the lock held and waits
    gate.release.set()
    first.join(10)
    second.join(10)
    return out, watched


def test_a_search_another_process_is_fetching_is_answered_from_the_shared_cache(
    fresh_redis_url: str, emails: list[str]
) -> None:
    fake, gate, pods = _world(fresh_redis_url)
    try:
        out, watched = _leader_then_follower(fake, gate, pods)
    finally:
        for pod in pods:
            pod.close()
    assert out["leader"] == out["follower"] == emails
    assert fake.journal.count(method="POST", path=SEARCH) == 1
    assert watched.locks == [False]
    leader, follower = out["leader.info"], out["follower.info"]
    assert (leader.coalesced, leader.attempts) == (False, 1)
    assert (follower.coalesced, follower.attempts) == (True, 0)
    assert follower.request_id == leader.request_id


def test_a_failed_leader_leaves_the_follower_to_its_own_request(
    fresh_redis_url: str, emails: list[str]
) -> None:
    fake, gate, pods = _world(fresh_redis_url, fail_first=True, attempts=1)
    try:
        out, _ = _leader_then_follower(fake, gate, pods)
    finally:
        for pod in pods:
            pod.close()
    assert out["follower"] == emails  # the leader's 500 was not shared
    assert out["follower.info"].coalesced is False and out["follower.info"].attempts == 1
    assert fake.journal.count(method="POST", path=SEARCH) == 2
    assert _flight_keys(fresh_redis_url) == []  # released, not left to expire


def test_a_lock_held_by_a_dead_process_expires_and_the_waiter_fetches(
    fresh_redis_url: str, emails: list[str]
) -> None:
    fake, gate, pods = _world(fresh_redis_url, wait=0.3)
    leader, follower = pods
    watched = _watched(follower)
    out: dict[str, Any] = {}
    first = threading.Thread(target=_search, args=(leader, out, "leader"))
    first.start()
    try:
        assert gate.held.wait(10)  # the leader holds the lock... and never comes back in time
        _search(follower, out, "follower")  # waits at most fleet_wait, then fetches itself
        assert out["follower"] == emails
        assert out["follower.info"].coalesced is False
        assert watched.locks == [False] and watched.peeked.is_set()
    finally:
        gate.release.set()
        first.join(10)
        for pod in pods:
            pod.close()
    assert fake.journal.count(method="POST", path=SEARCH) == 2


def test_writes_and_reads_of_one_record_never_take_the_fleet_lock(
    fresh_redis_url: str,
) -> None:
    _, gate, pods = _world(fresh_redis_url)
    gate.release.set()
    client = pods[0]
    watched = _watched(client)
    try:
        contact = client.contacts.create(request={"email": "new@fleet.example"})
        client.contacts.find(contact_id=contact.id)
        client.contacts.update(contact_id=contact.id, name="N")
        client.admins.identify()
        assert watched.locks == []
        list(client.contacts.search(query=QUERY))
        assert watched.locks == [True]
    finally:
        for pod in pods:
            pod.close()


def test_redis_stopped_mid_run_costs_the_search_nothing(
    redis_server: RedisServer, emails: list[str]
) -> None:
    fake, gate, pods = _world(redis_server.url)
    gate.release.set()
    client = pods[0]
    watched = _watched(client)
    try:
        assert sorted(c.email for c in client.contacts.search(query=QUERY)) == emails
        redis_server.stop()
        with capture_calls() as calls:
            again = sorted(c.email for c in client.contacts.search(query=QUERY))
        assert again == emails and calls.calls[0].attempts == 1
        assert watched.locks[0] is True and watched.locks[1:] in ([], [None])
        redis_server.start()
    finally:
        for pod in pods:
            pod.close()
    assert fake.journal.count(method="POST", path=SEARCH) == 2


def test_redis_paused_while_waiting_the_waiter_fetches_itself(
    redis_server: RedisServer, emails: list[str]
) -> None:
    _, gate, pods = _world(redis_server.url)
    leader, follower = pods
    watched = _watched(follower)
    out: dict[str, Any] = {}
    first = threading.Thread(target=_search, args=(leader, out, "leader"))
    first.start()
    try:
        assert gate.held.wait(10)
        redis_server.command("CLIENT", "PAUSE", "1500", "ALL")  # the peeks time out
        _search(follower, out, "follower")
        assert out["follower"] == emails and out["follower.info"].coalesced is False
        assert watched.locks in ([False], [None])
    finally:
        gate.release.set()
        first.join(10)
        for pod in pods:
            pod.close()
    assert out["leader"] == emails


async def test_async_processes_share_one_search(fresh_redis_url: str, emails: list[str]) -> None:
    fake = FakeIntercom(token="fake-token")
    for n in range(3):
        fake.workspace().create_contact({"email": f"p{n}@fleet.example"}, 0)
    gate = Gate(fake)
    config = _config(fresh_redis_url)
    leader = AsyncResilientIntercom(token="fake-token", transport=gate, config=config)
    follower = AsyncResilientIntercom(token="fake-token", transport=gate, config=config)
    watched = _watched(follower)

    async def search(client: AsyncResilientIntercom) -> tuple[list[str], Any]:
        with capture_calls() as calls:
            pager = await client.contacts.search(query=QUERY)
            found = sorted([c.email async for c in pager])
        return found, calls.calls[0]

    try:
        first = asyncio.create_task(search(leader))
        await _until(gate.held.is_set)
        second = asyncio.create_task(search(follower))
        await _until(watched.peeked.is_set)
        gate.release.set()
        (lead, lead_info), (follow, follow_info) = await asyncio.gather(first, second)
    finally:
        await leader.aclose()
        await follower.aclose()
    assert lead == follow == emails
    assert (lead_info.coalesced, follow_info.coalesced) == (False, True)
    assert fake.journal.count(method="POST", path=SEARCH) == 1


def test_fleet_coalescing_needs_the_redis_cache() -> None:
    with pytest.raises(ValueError, match="fleet_coalesce needs"):
        CachePolicy(coalesce=True, fleet_coalesce=True)


async def test_async_redis_stopped_mid_run_costs_the_search_nothing(
    redis_server: RedisServer, emails: list[str]
) -> None:
    fake = FakeIntercom(token="fake-token")
    for n in range(3):
        fake.workspace().create_contact({"email": f"p{n}@fleet.example"}, 0)
    gate = Gate(fake)
    gate.release.set()
    async with AsyncResilientIntercom(
        token="fake-token", transport=gate, config=_config(redis_server.url)
    ) as client:
        watched = _watched(client)
        pager = await client.contacts.search(query=QUERY)
        assert sorted([c.email async for c in pager]) == emails
        redis_server.stop()
        with capture_calls() as calls:
            pager = await client.contacts.search(query=QUERY)
            again = sorted([c.email async for c in pager])
        assert again == emails and calls.calls[0].attempts == 1
        assert watched.locks[0] is True and watched.locks[1:] in ([], [None])
        redis_server.start()
    assert fake.journal.count(method="POST", path=SEARCH) == 2
