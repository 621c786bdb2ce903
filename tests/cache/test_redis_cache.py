"""The Redis backend against a real server: TTLs, exact accounting, sharing, and degrading."""

from __future__ import annotations

import asyncio
import importlib
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from cache_support import Events, entry

from intercom_resilience._backends import _redis
from intercom_resilience._backends.base import CachedResponse
from intercom_resilience._backends.redis_cache import RedisCache, decode_entry, encode_entry
from intercom_resilience._clock import VirtualClock
from intercom_resilience._config import CachePolicy
from intercom_resilience._core.cache import entry_size
from intercom_resilience._events import EventLog

redis = pytest.importorskip("redis")

UNREACHABLE = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture
def raw(redis_url: str) -> Iterator[Any]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
async def make(
    redis_url: str, redis_prefix: str, clock: VirtualClock, event_log: EventLog
) -> AsyncIterator[Any]:
    built: list[RedisCache] = []

    def factory(policy: CachePolicy | None = None, url: str | None = None) -> RedisCache:
        cache = RedisCache(
            policy or CachePolicy(),
            url or redis_url,
            clock,
            events=event_log,
            key_prefix=redis_prefix,
        )
        built.append(cache)
        return cache

    yield factory
    for cache in built:
        await cache.aclose()


def accounting(raw: Any, prefix: str) -> tuple[int, int, int]:
    """(entries in the LRU, entries in the meta hash, bytes) as stored in Redis."""
    return (
        raw.zcard(f"{prefix}:cache-meta:lru"),
        raw.hlen(f"{prefix}:cache-meta:entries"),
        int(raw.get(f"{prefix}:cache-meta:bytes") or 0),
    )


def test_encoding_round_trips_any_body() -> None:
    stored = CachedResponse(200, (("a", "b\nc"),), b"\n\x00{}\n", 1.5, "r\n1")
    assert decode_entry(encode_entry(stored)) == stored
    with pytest.raises(ValueError, match="not a cache entry"):
        decode_entry(b"no header")


@pytest.mark.redis
def test_entry_ttl_is_what_is_left_of_the_window(
    make: Any, raw: Any, redis_prefix: str, clock: VirtualClock
) -> None:
    cache = make(CachePolicy(stale_window=600.0))
    stored = entry(clock)
    clock.advance(100.0)  # the response is 100 s old when stored: 500 s left
    cache.put("ir:cache:k", stored, ("s|/contacts/1",))
    ttl = raw.pttl(f"{redis_prefix}:cache:k")
    assert 490_000 < ttl <= 500_000
    tag_ttl = raw.pttl(f"{redis_prefix}:cache-tag:s|/contacts/1")
    assert 590_000 < tag_ttl <= 600_000  # a tag set outlives each member it has


@pytest.mark.redis
def test_accounting_is_exact_through_puts_evictions_and_invalidations(
    make: Any, raw: Any, redis_prefix: str, clock: VirtualClock
) -> None:
    policy = CachePolicy(max_entries=5, max_bytes=2_000, max_entry_bytes=500)
    cache = make(policy)
    sizes = {}
    for i in range(12):
        body = b"y" * (100 + 30 * i)
        stored = CachedResponse(200, (), body, clock.time(), None)
        sizes[f"ir:cache:{i}"] = entry_size(stored.content, stored.headers, stored.request_id)
        cache.put(f"ir:cache:{i}", stored, (f"t{i % 3}",))
        entries, meta, used = accounting(raw, redis_prefix)
        assert entries == meta <= policy.max_entries
        assert used <= policy.max_bytes
        live = [k for k in sizes if raw.exists(f"{redis_prefix}:cache:{k[len('ir:cache:') :]}")]
        assert used == sum(sizes[k] for k in live)
        assert len(live) == entries
    assert cache.evictions > 0
    dropped = cache.invalidate(("t0", "t1", "t2"))
    assert dropped == entries
    assert accounting(raw, redis_prefix) == (0, 0, 0)
    assert list(raw.scan_iter(match=f"{redis_prefix}:cache-tag:*")) == []


@pytest.mark.redis
def test_expired_entries_release_their_accounting(
    make: Any, raw: Any, redis_prefix: str, clock: VirtualClock
) -> None:
    """An entry Redis expired by TTL stops counting against the budget at the next put."""
    cache = make(CachePolicy(stale_window=0.05))
    cache.put("ir:cache:old", entry(clock), ("t",))
    assert accounting(raw, redis_prefix)[0] == 1
    time.sleep(0.2)  # Redis' clock must pass the 50 ms TTL; not a timing assertion
    assert not raw.exists(f"{redis_prefix}:cache:old")
    cache.put("ir:cache:new", entry(clock), ("t",))
    assert raw.zrange(f"{redis_prefix}:cache-meta:lru", 0, -1) == [
        f"{redis_prefix}:cache:new".encode()
    ]
    assert raw.smembers(f"{redis_prefix}:cache-tag:t") == {f"{redis_prefix}:cache:new".encode()}


@pytest.mark.redis
def test_two_processes_share_one_cache(make: Any, clock: VirtualClock) -> None:
    first, second = make(), make()
    first.put("ir:cache:k", entry(clock), ("s|/contacts/42",))
    assert second.get("ir:cache:k") == entry(clock)
    assert second.invalidate(("s|/contacts/42",)) == 1
    assert first.get("ir:cache:k") is None


@pytest.mark.redis
def test_a_foreign_value_is_a_miss(make: Any, raw: Any, redis_prefix: str) -> None:
    cache = make()
    raw.set(f"{redis_prefix}:cache:k", b"garbage without a header")
    assert cache.get("ir:cache:k") is None
    assert cache.available


@pytest.mark.redis
def test_stats(make: Any, clock: VirtualClock) -> None:
    cache = make(CachePolicy(max_entries=7))
    cache.put("ir:cache:k", entry(clock), ())
    stats = cache.stats()
    assert stats["entries"] == 1
    assert stats["bytes"] == entry_size(entry(clock).content, entry(clock).headers, "req-1")
    assert stats["max_entries"] == 7


async def test_redis_down_degrades_to_no_cache(
    clock: VirtualClock, events: Events, event_log: EventLog
) -> None:
    """Needs no server: nothing listens on the port, and the cache must shrug it off."""
    cache = RedisCache(CachePolicy(), UNREACHABLE, clock, events=event_log)
    cache.put("ir:cache:k", entry(clock), ("t",))
    assert cache.get("ir:cache:k") is None
    assert cache.invalidate(("t",)) == 0
    await cache.aput("ir:cache:k", entry(clock), ("t",))
    assert await cache.aget("ir:cache:k") is None
    assert await cache.ainvalidate(("t",)) == 0
    assert cache.stats() == {}
    assert not cache.available
    assert [name for name, _ in events] == ["cache.redis_unavailable"]  # once per transition
    assert events[0][1]["error"] == "ConnectionError"
    clock.advance(RedisCache.RETRY_INTERVAL)
    assert cache.get("ir:cache:k") is None  # tried again, failed again: no second warning
    assert [name for name, _ in events] == ["cache.redis_unavailable"]
    await cache.aclose()


@pytest.mark.redis
async def test_recovery_is_logged_once(
    make: Any, clock: VirtualClock, events: Events, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = make()
    stored = entry(clock)
    cache.put("ir:cache:k", stored, ())

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise redis.exceptions.TimeoutError("Timeout reading from socket")

    with monkeypatch.context() as patch:
        # Every sync script call ends in _redis._evalsha, on the connection its thread holds.
        patch.setattr(_redis, "_evalsha", broken)
        assert cache.get("ir:cache:k") is None
    # Within the pause Redis is left alone, even though it would answer now.
    assert cache.get("ir:cache:k") is None
    clock.advance(RedisCache.RETRY_INTERVAL)
    assert cache.get("ir:cache:k") == stored
    assert await cache.aget("ir:cache:k") == stored
    assert [name for name, _ in events] == ["cache.redis_unavailable", "cache.redis_recovered"]
    assert events[0][1]["error"] == "TimeoutError"


def test_missing_redis_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("redis_cache", "_redis"):
        monkeypatch.delitem(sys.modules, f"intercom_resilience._backends.{name}")
    monkeypatch.setitem(sys.modules, "redis", None)  # makes "import redis" raise ImportError
    with pytest.raises(ImportError, match=r"intercom-resilience\[redis\]"):
        importlib.import_module("intercom_resilience._backends.redis_cache")


def test_construction_does_not_connect(clock: VirtualClock, events: Events) -> None:
    cache = RedisCache(CachePolicy(), UNREACHABLE, clock)
    assert cache.available
    assert "available" in repr(cache)
    cache.close()


@pytest.mark.redis
def test_one_cache_serves_several_event_loops_and_threads(
    redis_url: str, redis_prefix: str, clock: VirtualClock, events: Events, event_log: EventLog
) -> None:
    """Each loop gets its own connections, closed with the loop: the second ``asyncio.run``
    used to find the first one's connections bound to a closed loop."""
    cache = RedisCache(CachePolicy(), redis_url, clock, events=event_log, key_prefix=redis_prefix)
    stored = entry(clock)

    async def round_trip(key: str) -> CachedResponse | None:
        await cache.aput(key, stored, ("t",))
        return await cache.aget(key)

    assert [asyncio.run(round_trip(f"ir:cache:{i}")) for i in range(3)] == [stored] * 3
    found: list[CachedResponse | None] = []

    def worker(n: int) -> None:
        found.extend(asyncio.run(round_trip(f"ir:cache:t{n}:{i}")) for i in range(2))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert found == [stored] * 6
    assert events == []  # never degraded to "no cache"
    assert cache._link._loops == {}  # every loop's client was closed at its loop's shutdown
    cache.close()
