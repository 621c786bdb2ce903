"""Coalescing (``_pipeline/coalesce.py``): identical reads in flight share one request (#17, 3).

Before it, N concurrent ``find`` calls of one record sent N requests. A gate holds the leader's
request in flight until the followers have joined, so the tests do not depend on timing.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
from intercom.core.api_error import ApiError

from intercom_resilience import (
    AsyncResilientIntercom,
    CachePolicy,
    ResilienceConfig,
    ResilientIntercom,
    RetryPolicy,
    VirtualClock,
    capture_calls,
)
from intercom_resilience.testing import FakeIntercom

READERS = 8


class Gate(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """The fake's transport; the first GET of *path* waits until released."""

    def __init__(self, fake: FakeIntercom, path: str, *, fail_first: bool = False) -> None:
        self.sync, self.async_ = fake.transport(), fake.async_transport()
        self.path, self.fail_first = path, fail_first
        self.held = 0
        self.release = threading.Event()
        self.async_release: asyncio.Event | None = None

    def _first(self, request: httpx.Request) -> bool:
        if request.method == "GET" and request.url.path == self.path and self.held == 0:
            self.held = 1
            return True
        return False

    def _failed(self, request: httpx.Request) -> httpx.Response:
        body = b'{"type":"error.list","errors":[{"code":"server_error","message":"x"}]}'
        return httpx.Response(500, content=body, request=request)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        first = self._first(request)
        if first:
            assert self.release.wait(10), "never released"
        response = self.sync.handle_request(request)
        return self._failed(request) if first and self.fail_first else response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        first = self._first(request)
        if first:
            assert self.async_release is not None
            await asyncio.wait_for(self.async_release.wait(), 10)
        response = await self.async_.handle_async_request(request)
        return self._failed(request) if first and self.fail_first else response


def _world(*, coalesce: bool = True) -> tuple[FakeIntercom, str, ResilienceConfig]:
    fake = FakeIntercom(clock=VirtualClock())
    contact = fake.workspace().create_contact({"email": "old@example.com"}, 0)
    return fake, contact.id, ResilienceConfig(cache=CachePolicy(coalesce=coalesce))


def _followers(client: Any) -> int:
    flights = list(client._pipeline.coalescing._flights.values())
    return flights[0].followers if flights else 0


def _wait_for(condition: Any) -> None:
    """Poll until *condition()* (readiness, not timing: fails only after 10 s)."""
    for _ in range(2000):
        if condition():
            return
        time.sleep(0.005)
    raise AssertionError("condition never held")


async def _until(condition: Any) -> None:
    """Let other tasks run until *condition()* holds (readiness, bounded)."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


def _run_threads(client: ResilientIntercom, gate: Gate, contact_id: str, readers: int) -> list[Any]:
    results: list[Any] = [None] * readers
    infos: list[Any] = [None] * readers

    def read(n: int) -> None:
        with capture_calls() as calls:
            try:
                results[n] = client.contacts.find(contact_id=contact_id).email
            except Exception as error:  # a test failure below names it
                results[n] = error
        infos[n] = calls.last

    threads = [threading.Thread(target=read, args=(n,)) for n in range(readers)]
    threads[0].start()
    _wait_for(lambda: gate.held == 1)  # the leader's request is in flight
    for thread in threads[1:]:
        thread.start()
    _wait_for(lambda: _followers(client) == readers - 1)
    gate.release.set()
    for thread in threads:
        thread.join(10)
    return [results, infos]


def test_concurrent_identical_reads_send_one_request() -> None:
    fake, contact_id, config = _world()
    gate = Gate(fake, f"/contacts/{contact_id}")
    with ResilientIntercom(
        token="fake-token", transport=gate, config=config, clock=fake.clock
    ) as client:
        results, infos = _run_threads(client, gate, contact_id, READERS)
    assert results == ["old@example.com"] * READERS
    assert fake.journal.count(method="GET", path=f"/contacts/{contact_id}") == 1
    assert sorted(info.attempts for info in infos) == [0] * (READERS - 1) + [1]
    # capture_calls() says which were answered by another read's request (#17, 3).
    assert sorted((info.coalesced, info.attempts) for info in infos) == [(False, 1)] + [
        (True, 0)
    ] * (READERS - 1)
    leader = next(info for info in infos if not info.coalesced)
    assert {info.request_id for info in infos} == {leader.request_id}


def test_a_failed_leader_leaves_each_follower_to_its_own_request() -> None:
    fake, contact_id, _ = _world()
    config = ResilienceConfig(  # the leader's 500 is final
        retry=RetryPolicy(max_attempts=1), cache=CachePolicy(coalesce=True)
    )
    gate = Gate(fake, f"/contacts/{contact_id}", fail_first=True)
    with ResilientIntercom(
        token="fake-token", transport=gate, config=config, clock=fake.clock
    ) as client:
        results, _ = _run_threads(client, gate, contact_id, 4)
    assert isinstance(results[0], ApiError) and results[0].status_code == 500
    assert results[1:] == ["old@example.com"] * 3  # each follower asked on its own
    assert fake.journal.count(method="GET", path=f"/contacts/{contact_id}") == 4


def test_a_write_of_ours_during_the_flight_is_not_hidden_from_a_follower() -> None:
    fake, contact_id, config = _world()
    path = f"/contacts/{contact_id}"
    gate = Gate(fake, path)
    with ResilientIntercom(
        token="fake-token", transport=gate, config=config, clock=fake.clock
    ) as client:
        answers: dict[str, Any] = {}

        def read(name: str) -> None:
            answers[name] = client.contacts.find(contact_id=contact_id).email

        leader = threading.Thread(target=read, args=("leader",))
        leader.start()
        _wait_for(lambda: gate.held == 1)
        follower = threading.Thread(target=read, args=("follower",))
        follower.start()
        _wait_for(lambda: _followers(client) == 1)
        client.contacts.update(contact_id=contact_id, email="new@example.com")
        gate.release.set()
        leader.join(10)
        follower.join(10)
    # The leader's read began before the update; the follower's did not share it.
    assert answers["follower"] == "new@example.com"


def test_coalescing_is_off_by_default() -> None:
    fake, contact_id, _ = _world()
    config = ResilienceConfig()
    path = f"/contacts/{contact_id}"
    gate = Gate(fake, path)
    with ResilientIntercom(
        token="fake-token", transport=gate, config=config, clock=fake.clock
    ) as client:
        done = threading.Event()

        def read() -> None:
            client.contacts.find(contact_id=contact_id)
            done.set()

        leader = threading.Thread(target=read)
        leader.start()
        _wait_for(lambda: gate.held == 1)
        client.contacts.find(contact_id=contact_id)  # not held: it went out on its own
        assert not done.is_set()
        gate.release.set()
        leader.join(10)
    assert fake.journal.count(method="GET", path=path) == 2


async def test_concurrent_identical_async_reads_send_one_request() -> None:
    fake, contact_id, config = _world()
    gate = Gate(fake, f"/contacts/{contact_id}")
    gate.async_release = asyncio.Event()
    async with AsyncResilientIntercom(
        token="fake-token", transport=gate, config=config, clock=fake.clock
    ) as client:

        async def read() -> tuple[str, int]:
            with capture_calls() as calls:
                contact = await client.contacts.find(contact_id=contact_id)
            assert calls.last is not None
            return contact.email, calls.last.attempts

        leader = asyncio.create_task(read())
        await _until(lambda: gate.held == 1)
        followers = [asyncio.create_task(read()) for _ in range(READERS - 1)]
        await _until(lambda: _followers(client) == READERS - 1)
        gate.async_release.set()
        results = await asyncio.gather(leader, *followers)
    assert [email for email, _ in results] == ["old@example.com"] * READERS
    assert sorted(attempts for _, attempts in results) == [0] * (READERS - 1) + [1]
    assert fake.journal.count(method="GET", path=f"/contacts/{contact_id}") == 1
