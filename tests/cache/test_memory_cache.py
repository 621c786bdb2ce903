"""The memory backend: budgets hold under any sequence of operations, the tag index never leaks."""

from __future__ import annotations

import threading

from cache_support import Events, entry
from hypothesis import given, settings
from hypothesis import strategies as st

from intercom_resilience._backends import memory_cache
from intercom_resilience._backends.base import CachedResponse
from intercom_resilience._backends.memory_cache import MemoryCache
from intercom_resilience._clock import VirtualClock
from intercom_resilience._config import CachePolicy
from intercom_resilience._core.cache import entry_size
from intercom_resilience._events import EventLog


def check_invariants(cache: MemoryCache, policy: CachePolicy) -> None:
    """Budgets hold, the charge is the sum of what the entries and tags hold, and the tag index
    names exactly the live entries' tags, with one shared digest object per tag."""
    table = cache._table
    assert len(table) <= policy.max_entries
    assert cache.bytes_used <= policy.max_bytes
    expected: dict[int, set[int]] = {}
    for key, record in table.items():
        for tag in record[memory_cache._TAGS :]:
            expected.setdefault(tag, set()).add(key)
    # A tag naming one entry is stored as that key alone (a set costs 216 B even for one key).
    index = {
        tag: {keys} if isinstance(keys, int) else set(keys) for tag, keys in cache._index.items()
    }
    assert index == expected
    multi = [keys for keys in cache._index.values() if not isinstance(keys, int)]
    assert all(len(keys) > 1 for keys in multi)
    shared = {tag: tag for tag in cache._index}  # the index's own key objects
    for record in table.values():
        assert all(tag is shared[tag] for tag in record[memory_cache._TAGS :])
    assert all(keys.tag is shared[keys.tag] for keys in multi)
    assert cache.bytes_used == (
        sum(cache._charge(record) for record in table.values())
        + memory_cache._TAG_CHARGE * len(cache._index)
        + memory_cache._MEMBERS_BASE * len(multi)
    )


operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("put"),
            st.integers(0, 30),  # key
            st.integers(0, 400),  # body size
            st.lists(st.integers(0, 8), max_size=3),  # tags
        ),
        st.tuples(st.just("get"), st.integers(0, 30), st.just(0), st.just([])),
        st.tuples(st.just("invalidate"), st.just(0), st.just(0), st.lists(st.integers(0, 8))),
        st.tuples(st.just("advance"), st.just(0), st.integers(0, 40), st.just([])),
    ),
    max_size=80,
)


def response(n: int, clock: VirtualClock) -> CachedResponse:
    """A read of *n* body bytes; its headers and request id vary with *n* (shapes differ)."""
    if n % 3 == 0:
        return CachedResponse(200, (), b"x" * n, clock.time(), None)
    if n % 3 == 1:
        headers = (("content-type", "application/json"), ("x-request-id", f"r{n}"))
        return CachedResponse(200, headers, b"x" * n, clock.time(), f"r{n}")
    return CachedResponse(203, (("x-request-id", "other"),), b"x" * n, clock.time(), f"r{n}")


@settings(max_examples=150)
@given(operations, st.integers(1, 10), st.integers(400, 4_000))
def test_budgets_and_tag_index_hold_under_any_operations(
    ops: list[tuple[str, int, int, list[int]]], max_entries: int, max_bytes: int
) -> None:
    clock = VirtualClock()
    policy = CachePolicy(
        max_entries=max_entries, max_bytes=max_bytes, max_entry_bytes=400, stale_window=100.0
    )
    cache = MemoryCache(policy, clock)
    stored: dict[str, list[CachedResponse]] = {}
    for op, k, n, tags in ops:
        key = f"ir:cache:{k}"
        tag_names = tuple(f"t{t}" for t in tags)
        if op == "put":
            stored.setdefault(key, []).append(response(n, clock))
            cache.put(key, stored[key][-1], tag_names)
        elif op == "get":
            found = cache.get(key)
            # Whatever comes back is a response stored under that key, rebuilt exactly.
            assert found is None or found in stored[key]
        elif op == "invalidate":
            cache.invalidate(tag_names)
        else:
            clock.advance(n)
        check_invariants(cache, policy)


@settings(max_examples=100)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 400)), max_size=60),
    st.integers(1, 4),
    st.integers(400, 2_000),
)
def test_a_read_stored_again_under_the_same_tags_keeps_every_invariant(
    puts: list[tuple[int, int]], max_entries: int, max_bytes: int
) -> None:
    """The hot record's steady state: the same key stored again and again with its own tags (the
    record is replaced in place, the index left alone); its size and shape vary."""
    clock = VirtualClock()
    policy = CachePolicy(
        max_entries=max_entries, max_bytes=max_bytes, max_entry_bytes=400, stale_window=100.0
    )
    cache = MemoryCache(policy, clock)
    for k, n in puts:
        key = f"ir:cache:{k}"
        stored = response(n, clock)
        cache.put(key, stored, (f"t{k}", "shared"))
        check_invariants(cache, policy)
        probe = MemoryCache(policy, clock)  # would this version fit in an empty cache?
        probe.put(key, stored, (f"t{k}", "shared"))
        if len(probe):
            # Stored, as the most recently used entry (a version that can never fit is skipped,
            # and leaves what was there).
            assert next(reversed(cache._table)) == memory_cache._digest(key)
            assert cache.get(key) == stored
        clock.advance(1)
    held = len(cache)
    assert cache.invalidate(("shared",)) == held
    assert len(cache) == 0
    check_invariants(cache, policy)


def test_tag_index_stays_bounded_under_eviction() -> None:
    """100,000 reads with unique tags through a 100-entry cache leave at most 100 entries' tags."""
    clock = VirtualClock()
    policy = CachePolicy(max_entries=100)
    cache = MemoryCache(policy, clock)
    for i in range(100_000):
        cache.put(f"ir:cache:{i}", entry(clock), (f"s|/contacts/{i}", "s|/contacts*"))
    assert len(cache) == 100
    assert cache.tag_count == 101
    assert cache.evictions == 99_900
    check_invariants(cache, policy)


def test_expired_entries_are_dropped_when_looked_up() -> None:
    clock = VirtualClock()
    policy = CachePolicy(stale_window=10.0)
    cache = MemoryCache(policy, clock)
    cache.put("ir:cache:k", entry(clock), ("t",))
    clock.advance(11.0)
    assert len(cache) == 1  # lazily: still there until somebody asks
    assert cache.get("ir:cache:k") is None
    assert len(cache) == 0
    assert cache.tag_count == 0


def test_oversize_entries_are_reported(events: Events, event_log: EventLog) -> None:
    clock = VirtualClock()
    cache = MemoryCache(CachePolicy(max_entry_bytes=10, max_bytes=100), clock, events=event_log)
    cache.put("ir:cache:k", CachedResponse(200, (), b"x" * 11, clock.time(), None), ())
    assert events == [("cache.entry_too_large", {"size": 11, "limit": 10})]
    assert len(cache) == 0


def test_entry_size_counts_body_headers_and_request_id() -> None:
    assert entry_size(b"abc", (("ab", "cd"),), "rid") == 3 + 4 + 3
    assert entry_size(b"", (), None) == 0


def test_stats_repr_and_clear() -> None:
    clock = VirtualClock()
    cache = MemoryCache(CachePolicy(max_entries=2), clock)
    for i in range(3):
        cache.put(f"ir:cache:{i}", entry(clock), ("t",))
    stats = cache.stats()
    assert stats["entries"] == 2
    assert stats["evictions"] == 1
    assert stats["bytes"] == cache.bytes_used > 0
    assert "entries=2/2" in repr(cache)
    cache.clear()
    assert len(cache) == 0
    assert cache  # an empty cache is still a cache (``cache or fallback`` must keep it)
    assert cache.tag_count == 0
    assert cache.bytes_used == 0
    assert cache.evictions == 1  # clearing is not evicting


def test_thread_safety_smoke() -> None:
    """Several threads hammering one small cache: no exception, and the invariants still hold."""
    clock = VirtualClock()
    policy = CachePolicy(max_entries=50, max_bytes=20_000, max_entry_bytes=1_000)
    cache = MemoryCache(policy, clock)
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            for i in range(3_000):
                k = f"ir:cache:{(i * 7 + seed) % 120}"
                tag = f"t{(i + seed) % 13}"
                if i % 5 == 0:
                    cache.invalidate((tag,))
                elif i % 2:
                    cache.put(
                        k, CachedResponse(200, (), b"x" * (i % 900), clock.time(), None), (tag,)
                    )
                else:
                    cache.get(k)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    check_invariants(cache, policy)
    assert len(cache) > 0


def test_responses_are_rebuilt_exactly_from_their_compact_records() -> None:
    """Status, headers (in order), body, time and request id survive the compact record: the
    request-id header stored once, a differing one kept as is, odd characters round-tripped."""
    clock = VirtualClock()
    cache = MemoryCache(CachePolicy(), clock)
    t = clock.time()
    odd = "r\udcff-\u00e9"  # a lone surrogate (latin-1 decoding never yields one, but still)
    stored = [
        CachedResponse(200, (("content-type", "a/b"), ("x-request-id", "r1")), b"1", t - 1.5, "r1"),
        CachedResponse(203, (("x-request-id", "r2"), ("content-type", "a/b")), b"2", t - 2.5, "r2"),
        CachedResponse(200, (("x-request-id", "other"),), b"3", t - 3.5, "r3"),
        CachedResponse(200, (("x-request-id", "r4"),), b"4", t - 4.5, None),
        CachedResponse(200, (("x-request-id", odd),), b"", t - 5.5, odd),
        CachedResponse(200, (), b"6", t - 6.5, ""),
    ]
    for i, response_ in enumerate(stored):
        cache.put(f"ir:cache:{i}", response_, ())
        assert cache.get(f"ir:cache:{i}") == response_  # the entry last put (not rebuilt)
    # Rebuilt from their records (only the last one is the entry last put).
    assert [cache.get(f"ir:cache:{i}") for i in range(len(stored))] == stored
    assert [memory_cache._response(record) for record in cache._table.values()] == stored


def test_the_entry_last_put_is_served_as_it_was_given_until_its_record_leaves() -> None:
    clock = VirtualClock()
    cache = MemoryCache(CachePolicy(), clock)
    first = entry(clock)
    cache.put("ir:cache:k", first, ("t",))
    assert cache.get("ir:cache:k") is first  # no rebuild for the hot record's next lookup
    again = entry(clock, body=b'{"type":"contact","v":2}')
    cache.put("ir:cache:k", again, ("t",))  # the same read stored again
    assert cache.get("ir:cache:k") is again
    cache.invalidate(("t",))
    assert cache.get("ir:cache:k") is None
    assert cache._stored == (None, None)  # the dropped entry's body is not kept alive
    cache.put("ir:cache:k", first, ("t",))
    cache.clear()
    assert cache.get("ir:cache:k") is None and cache._stored == (None, None)


def test_entries_with_the_same_headers_share_one_shape() -> None:
    """A thousand reads of one content type hold one copy of their headers; past the cap of
    distinct shapes, an entry keeps (and is charged for) its own."""
    clock = VirtualClock()
    cache = MemoryCache(CachePolicy(), clock)
    for i in range(1_000):
        headers = (
            ("content-type", "application/json; " + "charset=utf-8"),
            ("x-request-id", f"{i}"),
        )
        cache.put(f"ir:cache:{i}", CachedResponse(200, headers, b"{}", clock.time(), f"{i}"), ())
    assert len({id(record[memory_cache._SHAPE]) for record in cache._table.values()}) == 1
    policy = CachePolicy(max_entries=1_000)
    cache = MemoryCache(policy, clock)
    now = clock.time()
    for i in range(memory_cache._MAX_SHAPES + 50):
        cache.put(f"ir:cache:{i}", CachedResponse(200, (("a", f"{i}"),), b"", now, None), ("t",))
    assert len(cache._shapes) == memory_cache._MAX_SHAPES
    assert cache.get(f"ir:cache:{memory_cache._MAX_SHAPES + 10}") == CachedResponse(
        200, (("a", f"{memory_cache._MAX_SHAPES + 10}"),), b"", now, None
    )
    check_invariants(cache, policy)
    assert cache.invalidate(("t",)) == memory_cache._MAX_SHAPES + 50
    assert cache.bytes_used == 0


def test_a_hit_is_used_and_the_least_recently_used_entry_goes_first() -> None:
    clock = VirtualClock()
    cache = MemoryCache(CachePolicy(max_entries=2), clock)
    cache.put("ir:cache:a", entry(clock), ("t",))
    cache.put("ir:cache:b", entry(clock), ("t",))
    assert cache.get("ir:cache:a") is not None
    cache.put("ir:cache:c", entry(clock), ("t",))
    assert cache.get("ir:cache:b") is None
    assert cache.get("ir:cache:a") is not None
    assert cache.warmth() == (2, clock.time())


@given(st.lists(st.lists(st.sampled_from(["ir:a", "ir:b", "ir:c*", "ir:scope:x"]), max_size=4)))
def test_a_tag_sets_digests_are_its_distinct_tags_digests_in_order(
    tag_sets: list[list[str]],
) -> None:
    """The memo per tag set (issue #19) gives what digesting each tag and deduping gave."""
    for tags in [*tag_sets, *tag_sets]:  # each twice: the second from the memo
        expected = tuple(dict.fromkeys(memory_cache._digest(tag) for tag in tags))
        assert memory_cache._tag_digests(tuple(tags)) == expected
