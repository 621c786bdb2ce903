"""The Redis cache keeps every invalidation, across processes and around Redis blips (issue #14, 2).

Before the fix: an invalidation made while a process could not reach Redis (or during the pause
after a failure) was dropped, so the pre-update record stayed in the shared cache and was served
in the next outage by every process of the fleet; and a slow read in one process re-cached what a
write in another process had just invalidated. Each "process" here is its own client (its own
write generations, its own Redis connections) on one real Redis.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from intercom_resilience import (
    AsyncResilientIntercom,
    CachePolicy,
    ResilienceConfig,
    ResilientIntercom,
    VirtualClock,
)
from intercom_resilience._backends import redis_cache
from intercom_resilience._backends.base import CachedResponse
from intercom_resilience._backends.redis_cache import RedisCache
from intercom_resilience._clock import SystemClock
from intercom_resilience.testing import FakeIntercom
from tests.cache.test_coherence import NEW, OLD, Interleaved, _in_the_next_outage, opened
from tests.client._drive import MODES, done
from tests.redis_support import RedisServer

pytestmark = pytest.mark.redis

__all__ = ["opened"]  # the fixture, shared with test_coherence


def _client(mode: str, fake: FakeIntercom, transport: Any, url: str, opened: list[Any]) -> Any:
    config = ResilienceConfig(cache=CachePolicy(backend="redis"), redis_url=url)
    kwargs: dict[str, Any] = {"token": "fake-token", "clock": fake.clock, "config": config}
    client: Any = (
        ResilientIntercom(transport=transport, **kwargs)
        if mode == "sync"
        else AsyncResilientIntercom(transport=transport, **kwargs)
    )
    opened.append(client)
    return client


def _fake() -> tuple[FakeIntercom, str]:
    fake = FakeIntercom(clock=VirtualClock())
    contact = fake.workspace().create_contact({"email": OLD}, int(fake.clock.time()))
    return fake, contact.id


@pytest.mark.parametrize("mode", MODES)
async def test_an_update_during_a_redis_blip_is_invalidated_once_redis_answers(
    mode: str, redis_server: RedisServer, opened: list[Any]
) -> None:
    fake, contact_id = _fake()
    writer = _client(
        mode,
        fake,
        fake.transport() if mode == "sync" else fake.async_transport(),
        redis_server.url,
        opened,
    )
    other = _client(
        mode,
        fake,
        fake.transport() if mode == "sync" else fake.async_transport(),
        redis_server.url,
        opened,
    )
    await done(other.contacts.find(contact_id=contact_id))  # the old record, cached fleet-wide

    # Every script blocks (reads of plain keys do not): the writer's invalidation times out.
    redis_server.command("CLIENT", "PAUSE", "3000", "WRITE")
    try:
        await done(writer.contacts.update(contact_id=contact_id, email=NEW))
        cache = writer._pipeline.cache
        assert isinstance(cache, RedisCache)
        assert cache.pending_invalidations > 0  # kept, not dropped
    finally:
        redis_server.command("CLIENT", "UNPAUSE")

    # Redis is back; the writer's next use of it (after its pause) sends the invalidation first.
    fake.clock.advance(60)
    await done(writer.admins.identify())  # any read: it looks in the cache, so it flushes first
    assert cache.pending_invalidations == 0
    # In the next outage neither the writer nor anybody else serves the pre-update record.
    assert await _in_the_next_outage(fake, other, contact_id) != OLD
    assert await _in_the_next_outage(fake, writer, contact_id) != OLD


@pytest.mark.parametrize("mode", MODES)
async def test_a_slow_read_overtaken_by_another_process_write_is_not_cached(
    mode: str, fresh_redis_url: str, opened: list[Any]
) -> None:
    fake, contact_id = _fake()
    slow = Interleaved(fake)
    reader = _client(mode, fake, slow, fresh_redis_url, opened)
    writer = _client(mode, fake, slow, fresh_redis_url, opened)
    # The reader's answer (old email) is slow; meanwhile the other process updates the contact.
    slow.when = ("GET", f"/contacts/{contact_id}")
    slow.hook = lambda: writer.contacts.update(contact_id=contact_id, email=NEW)
    old = await done(reader.contacts.find(contact_id=contact_id))
    assert old.email == OLD
    cache = reader._pipeline.cache
    assert isinstance(cache, RedisCache)
    assert cache.refused == 1  # the put was refused by the writer's invalidation mark
    assert await _in_the_next_outage(fake, reader, contact_id) != OLD
    assert await _in_the_next_outage(fake, writer, contact_id) != OLD


def test_an_overflowing_queue_clears_the_cache_on_recovery(
    redis_url: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_cache, "MAX_PENDING_TAGS", 3)
    clock = VirtualClock()
    cache = RedisCache(CachePolicy(), redis_url, clock, key_prefix=redis_prefix)
    try:
        entry = CachedResponse(200, (), b"{}", clock.time(), "req-1")
        cache.put("ir:cache:ab12cd34:k1", entry, ("s|/contacts/1",))
        cache.put("ir:cache:ab12cd34:k2", entry, ("s|/contacts/2",))
        cache._link.latch.failed(ConnectionError("a blip"))  # this process lost Redis
        cache.invalidate(("s|/contacts/3", "s|/contacts/4", "s|/contacts/5", "s|/contacts/6"))
        assert cache.pending_invalidations == -1  # too many to remember one by one
        assert cache.get("ir:cache:ab12cd34:k1") is None  # nothing served meanwhile
        clock.advance(60)
        assert cache.get("ir:cache:ab12cd34:k1") is None  # cleared, not just k1's tag
        assert cache.get("ir:cache:ab12cd34:k2") is None
        assert cache.pending_invalidations == 0
        assert cache.stats()["entries"] == 0
    finally:
        cache.close()


# -- A fleet of caches on one Redis, against a model --------------------------------------------


class _JumpingClock(SystemClock):
    """Real time (Redis marks are server time), plus jumps to end a cache's pause after a blip."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset


RECORDS = 3


class FleetCache(RuleBasedStateMachine):
    """Several processes read, write and lose Redis; no entry ever holds a superseded version.

    A read takes the record's version when it *starts* (the oldest its answer can be), and puts
    it when it ends, however many writes happened in between. A write bumps the version, then
    invalidates. The invariant, checked whenever no process has invalidations waiting: every
    entry any process can read holds the record's current version.
    """

    reads = Bundle("reads")
    url = ""
    prefix = ""

    @initialize(processes=st.integers(min_value=2, max_value=3))
    def build(self, processes: int) -> None:
        self.clock = _JumpingClock()
        self.caches = [
            RedisCache(CachePolicy(), self.url, self.clock, key_prefix=self.prefix)
            for _ in range(processes)
        ]
        for cache in self.caches:
            for record in range(RECORDS):
                cache.invalidate((self._tag(record),))  # a clean slate per example
        self.versions = [0] * RECORDS

    def teardown(self) -> None:
        for cache in getattr(self, "caches", []):
            cache.close()

    @staticmethod
    def _tag(record: int) -> str:
        return f"s|/contacts/{record}"

    @staticmethod
    def _key(record: int) -> str:
        return f"ir:cache:ab12cd34:{record:064x}"

    @rule(target=reads, process=st.integers(0, 2), record=st.integers(0, RECORDS - 1))
    def start_read(self, process: int, record: int) -> tuple[int, int, int, float]:
        return (process % len(self.caches), record, self.versions[record], self.clock.monotonic())

    @rule(read=reads)
    def finish_read(self, read: tuple[int, int, int, float]) -> None:
        process, record, version, started = read
        entry = CachedResponse(200, (), str(version).encode(), time.time(), None)
        self.caches[process].put(self._key(record), entry, (self._tag(record),), started)

    @rule(process=st.integers(0, 2), record=st.integers(0, RECORDS - 1))
    def write(self, process: int, record: int) -> None:
        self.versions[record] += 1
        self.caches[process % len(self.caches)].invalidate((self._tag(record),))

    @rule(process=st.integers(0, 2))
    def lose_redis(self, process: int) -> None:
        self.caches[process % len(self.caches)]._link.latch.failed(ConnectionError("blip"))

    @rule()
    def time_passes(self) -> None:
        self.clock.offset += 60.0  # past every pause: the next use of Redis is a probe

    @rule(process=st.integers(0, 2), record=st.integers(0, RECORDS - 1))
    def read_cached(self, process: int, record: int) -> None:
        cache = self.caches[process % len(self.caches)]
        waiting = cache.pending_invalidations != 0
        entry = cache.get(self._key(record))
        if entry is not None:
            assert not waiting or cache.pending_invalidations == 0, "served with writes queued"
            if not any(c.pending_invalidations for c in self.caches):
                assert int(entry.content) == self.versions[record], "a superseded version"

    @invariant()
    def current_once_flushed(self) -> None:
        caches = getattr(self, "caches", [])
        if not caches or any(c.pending_invalidations for c in caches):
            return
        for record in range(RECORDS):
            entry = caches[0].get(self._key(record))
            if entry is not None:
                assert int(entry.content) == self.versions[record], "a superseded version"


@pytest.fixture
def fleet(redis_url: str, redis_prefix: str) -> type[FleetCache]:
    FleetCache.url, FleetCache.prefix = redis_url, redis_prefix
    return FleetCache


def test_a_fleet_of_caches_never_holds_a_superseded_version(fleet: type[FleetCache]) -> None:
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(
        fleet, settings=settings(max_examples=60, stateful_step_count=30, deadline=None)
    )
