"""The CacheBackend contract, run against the memory backend and the real Redis backend."""

from __future__ import annotations

import json

from cache_support import CacheFactory, Events, entry

from intercom_resilience._backends.base import CacheBackend, CachedResponse
from intercom_resilience._clock import VirtualClock
from intercom_resilience._config import CachePolicy
from intercom_resilience._core.cache import cache_key, entry_size, read_resources
from intercom_resilience._core.cache import write_invalidations as drops

A = "0123456789abcdef"
B = "fedcba9876543210"
BASE = "https://api.intercom.io"


def key(scope: str, method: str, path: str, body: bytes = b"") -> str:
    return cache_key(scope, BASE, method, path, "", body)


def store(
    cache: CacheBackend, clock: VirtualClock, scope: str, method: str, path: str, body: bytes = b""
) -> str:
    """Cache a read as the pipeline would: under its key, with its tags."""
    k = key(scope, method, path, body)
    cache.put(
        k, entry(clock, body=f"{method} {path}".encode()), read_resources(scope, method, path)
    )
    return k


def test_put_then_get_round_trips(make_cache: CacheFactory, clock: VirtualClock) -> None:
    cache = make_cache(CachePolicy())
    stored = CachedResponse(
        status=200,
        headers=(("content-type", "application/json"), ("x-request-id", "abc")),
        content='{"name":"Zoë \\n"}\n\x00'.encode(),
        stored_at=clock.time(),
        request_id=None,
    )
    cache.put("ir:cache:k", stored, ("t",))
    assert cache.get("ir:cache:k") == stored
    assert cache.get("ir:cache:missing") is None


async def test_async_twins(make_cache: CacheFactory, clock: VirtualClock) -> None:
    cache = make_cache(CachePolicy())
    await cache.aput("ir:cache:k", entry(clock), ("t",))
    assert await cache.aget("ir:cache:k") == entry(clock)
    assert await cache.ainvalidate(("t",)) == 1
    assert await cache.aget("ir:cache:k") is None


def test_contact_update_drops_it_and_collection_reads_only(
    make_cache: CacheFactory, clock: VirtualClock
) -> None:
    cache = make_cache(CachePolicy())
    search = json.dumps({"query": {"field": "role", "operator": "=", "value": "user"}}).encode()
    k42 = store(cache, clock, A, "GET", "/contacts/42")
    k42_tags = store(cache, clock, A, "GET", "/contacts/42/tags")
    k_list = store(cache, clock, A, "GET", "/contacts")
    k_search = store(cache, clock, A, "POST", "/contacts/search", search)
    k43 = store(cache, clock, A, "GET", "/contacts/43")
    k_conv = store(cache, clock, A, "GET", "/conversations/9")

    assert cache.invalidate(drops(A, "PUT", "/contacts/42")) == 4

    for gone in (k42, k42_tags, k_list, k_search):
        assert cache.get(gone) is None
    for kept in (k43, k_conv):
        assert cache.get(kept) is not None


def test_create_drops_collection_reads_not_instances(
    make_cache: CacheFactory, clock: VirtualClock
) -> None:
    cache = make_cache(CachePolicy())
    k42 = store(cache, clock, A, "GET", "/contacts/42")
    k_list = store(cache, clock, A, "GET", "/contacts")
    assert cache.invalidate(drops(A, "POST", "/contacts")) == 1
    assert cache.get(k_list) is None
    assert cache.get(k42) is not None


def test_a_second_scope_never_sees_or_drops_the_first(
    make_cache: CacheFactory, clock: VirtualClock
) -> None:
    cache = make_cache(CachePolicy())
    k_a = store(cache, clock, A, "GET", "/contacts/42")
    assert cache.get(key(B, "GET", "/contacts/42")) is None
    assert cache.invalidate(drops(B, "PUT", "/contacts/42")) == 0
    assert cache.invalidate(drops(B, "POST", "/contacts/merge")) == 0
    assert cache.get(k_a) is not None


def test_staleness_on_a_virtual_clock(make_cache: CacheFactory, clock: VirtualClock) -> None:
    cache = make_cache(CachePolicy(stale_window=60.0))
    cache.put("ir:cache:k", entry(clock), ())
    clock.advance(60.0)
    assert cache.get("ir:cache:k") is not None  # the window is inclusive
    clock.advance(0.5)
    assert cache.get("ir:cache:k") is None


def test_entries_already_too_old_are_not_stored(
    make_cache: CacheFactory, clock: VirtualClock
) -> None:
    cache = make_cache(CachePolicy(stale_window=60.0))
    old = entry(clock)
    clock.advance(61.0)
    cache.put("ir:cache:k", old, ())
    assert cache.get("ir:cache:k") is None


def test_per_entry_cap(make_cache: CacheFactory, clock: VirtualClock) -> None:
    cache = make_cache(CachePolicy(max_entry_bytes=1_000, max_bytes=10_000))
    fits = CachedResponse(200, (), b"x" * 1_000, clock.time(), None)
    too_big = CachedResponse(200, (), b"x" * 1_001, clock.time(), None)
    assert entry_size(fits.content, fits.headers, fits.request_id) == 1_000
    cache.put("ir:cache:fits", fits, ())
    cache.put("ir:cache:big", too_big, ())
    assert cache.get("ir:cache:fits") == fits
    assert cache.get("ir:cache:big") is None


def test_least_recently_used_goes_first_by_count(
    make_cache: CacheFactory, clock: VirtualClock
) -> None:
    cache = make_cache(CachePolicy(max_entries=3))
    for name in "abc":
        cache.put(f"ir:cache:{name}", entry(clock), ())
    assert cache.get("ir:cache:a") is not None  # a is now the most recently used
    cache.put("ir:cache:d", entry(clock), ())
    assert cache.get("ir:cache:b") is None
    for name in "acd":
        assert cache.get(f"ir:cache:{name}") is not None


def test_byte_budget_evicts_least_recently_used(
    make_cache: CacheFactory, clock: VirtualClock
) -> None:
    # The memory backend also charges what the process holds around a body (key, objects, its
    # share of the LRU: ~650 B), so the bodies are large next to that: 3 fit either way, 4 do not.
    cache = make_cache(CachePolicy(max_bytes=11_500, max_entry_bytes=4_000))
    body = CachedResponse(200, (), b"x" * 3_000, clock.time(), None)
    for name in "abc":
        cache.put(f"ir:cache:{name}", body, ())
    assert cache.get("ir:cache:a") is not None
    cache.put("ir:cache:d", body, ())  # 4 × 3000 > 11500: one must go, and b is the oldest
    assert cache.get("ir:cache:b") is None
    for name in "acd":
        assert cache.get(f"ir:cache:{name}") is not None


def test_replacing_an_entry_moves_its_tags(make_cache: CacheFactory, clock: VirtualClock) -> None:
    cache = make_cache(CachePolicy())
    cache.put("ir:cache:k", entry(clock), ("old",))
    cache.put("ir:cache:k", entry(clock, body=b"new"), ("new",))
    assert cache.invalidate(("old",)) == 0
    assert cache.get("ir:cache:k") == entry(clock, body=b"new")
    assert cache.invalidate(("new",)) == 1


def test_invalidating_nothing(
    make_cache: CacheFactory, clock: VirtualClock, events: Events
) -> None:
    cache = make_cache(CachePolicy())
    assert cache.invalidate(()) == 0
    assert cache.invalidate(("never-used",)) == 0
    assert not [name for name, _ in events if name.startswith("cache.redis")]
