"""The in-process stale cache: a cachetools LRU bounded by entry count *and* bytes.

``cachetools.LRUCache`` measures its ``maxsize`` with ``getsizeof``; here that is the memory each
entry holds in this process (:func:`held_size`: key, objects, body, and its share of the tables),
so ``maxsize`` is the byte budget in real bytes. The per-entry cap still measures the payload
(:func:`~intercom_resilience._core.cache.entry_size`, as the Redis backend does). The
entry-count bound is enforced on top, by evicting least-recently-used entries after an insert.
Both evictions go through :meth:`_TaggedLRU.popitem`, which also removes the evicted key from the
tag index: the index only ever names live entries, so it cannot grow without bound.

Entries older than the stale window are never returned, and are dropped when next looked up
(memory stays bounded meanwhile: they still count against both budgets, and LRU order retires
them first since nobody reads them).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

import cachetools
from cachetools import LRUCache

from .._clock import Clock
from .._config import CachePolicy
from .._core.cache import entry_size, is_servable
from .._events import EventLog
from ..events import CacheEntryTooLarge
from .base import CachedResponse

__all__ = ["MemoryCache"]


class _Slot:
    """One stored entry, with what bookkeeping needs (its tags and its charged size)."""

    __slots__ = ("entry", "size", "tags")

    def __init__(self, entry: CachedResponse, tags: tuple[str, ...], size: int) -> None:
        self.entry = entry
        self.tags = tags
        self.size = size


def _slot_size(slot: _Slot) -> int:
    return slot.size


_getsizeof = sys.getsizeof
# What each entry costs in the containers around it, beyond its own objects: its slots in the
# LRU's tables, the tag index and the intern table, amortised over their spare room. Measured on
# CPython 3.11 with tracemalloc (68-126 B over 1,000-3,000 contact reads;
# tests/cache/test_memory_accounting.py holds the total within 10%).
_CONTAINERS_PER_ENTRY = 110
_SLOT_SIZE = _getsizeof(_Slot.__new__(_Slot))


def held_size(key: str, entry: CachedResponse, tags: tuple[str, ...]) -> int:
    """The bytes this process holds for one stored entry: its key, its response (body, headers,
    request id, timestamp), its slot and tags tuple, and its share of the LRU and tag index.

    What the byte budget is charged with, so that a 64 MiB budget means 64 MiB of memory (the
    payload alone, :func:`~intercom_resilience._core.cache.entry_size`, undercounted by a third).
    Tag strings are interned by the cache: the first entry to bring a tag pays for its string
    (see :meth:`MemoryCache.put`), not counted here.
    """
    size = (
        _getsizeof(key)
        + _getsizeof(entry)
        + _getsizeof(entry.content)
        + _getsizeof(entry.stored_at)
        + _getsizeof(entry.headers)
        + _SLOT_SIZE
        + _getsizeof(tags)
        + _CONTAINERS_PER_ENTRY
    )
    if entry.request_id is not None:
        size += _getsizeof(entry.request_id)
    for pair in entry.headers:
        size += _getsizeof(pair) + _getsizeof(pair[0]) + _getsizeof(pair[1])
    return size


class _TaggedLRU(LRUCache[str, _Slot]):
    """An LRU whose every removal, eviction included, is reported to a callback."""

    def __init__(self, maxsize: int, on_evict: Callable[[str, _Slot], None]) -> None:
        super().__init__(maxsize, getsizeof=_slot_size)
        self._on_evict = on_evict

    def popitem(self) -> tuple[str, _Slot]:
        """Evict the least recently used entry and drop it from the tag index."""
        key, slot = super().popitem()
        self._on_evict(key, slot)
        return key, slot


class MemoryCache:
    """The stale cache of one process (thread-safe; the async methods never block on I/O).

    Args:
        policy: the :class:`~intercom_resilience.CachePolicy` (entries, bytes, per-entry cap,
            stale window).
        clock: where "now" comes from (staleness is measured in ``clock.time()``).
        events: where to report skipped oversize entries (``debug``).
    """

    __slots__ = ("_clock", "_events", "_index", "_lock", "_lru", "_policy", "_tags", "evictions")

    def __init__(self, policy: CachePolicy, clock: Clock, events: EventLog | None = None) -> None:
        self._policy = policy
        self._clock = clock
        self._events = events
        self._lock = threading.Lock()
        # A tag that names one entry (an instance's own tag, the common case) maps to that key
        # alone; a set (216 B even for one key) only once a second entry carries the tag.
        self._index: dict[str, str | set[str]] = {}
        # One string per distinct tag, shared by every slot and the index (each read builds its
        # own copies of ``<scope>|/contacts*`` and the like).
        self._tags: dict[str, str] = {}
        self._lru = _TaggedLRU(policy.max_bytes, self._unindex)
        #: How many entries were evicted to respect the budgets (not counting invalidations).
        self.evictions = 0

    # ------------------------------------------------------------------------------ protocol

    def get(self, key: str) -> CachedResponse | None:
        """The entry under *key*, if present and not past the stale window (a hit is "used")."""
        with self._lock:
            slot = self._lru.get(key)
            if slot is None:
                return None
            if not is_servable(slot.entry.stored_at, self._clock.time(), self._policy.stale_window):
                self._remove(key)
                return None
            return slot.entry

    async def aget(self, key: str) -> CachedResponse | None:
        """Async twin of :meth:`get` (in memory: no awaiting needed)."""
        return self.get(key)

    def put(
        self,
        key: str,
        entry: CachedResponse,
        resources: tuple[str, ...],
        read_started: float | None = None,
    ) -> None:
        """Store *entry* under *key*, tagged with *resources*.

        Skipped when the entry is larger than ``max_entry_bytes`` (one huge export must not flush
        a thousand small reads) or already older than the stale window. *read_started* is not
        needed here: only this process writes to this cache, and the pipeline's write generations
        already keep a read that a write overtook from being stored.
        """
        payload = entry_size(entry.content, entry.headers, entry.request_id)
        if payload > self._policy.max_entry_bytes:
            if self._events is not None:
                self._events.emit(CacheEntryTooLarge(payload, self._policy.max_entry_bytes))
            return
        if not is_servable(entry.stored_at, self._clock.time(), self._policy.stale_window):
            return
        unique = tuple(dict.fromkeys(resources))
        size = held_size(key, entry, unique)
        with self._lock:
            interned = self._tags
            # The first entry to bring a tag pays for its one string.
            size += sum([_getsizeof(tag) for tag in unique if tag not in interned])
            if size > self._policy.max_bytes:
                return  # could never fit (the LRU would refuse it), and must not flush the rest
            tags = tuple([interned.setdefault(tag, tag) for tag in unique])
            # Remove the old version first, so its tags leave the index even if the new one
            # carries different tags.
            self._remove(key)
            self._lru[key] = _Slot(entry, tags, size)  # may evict (bytes) via popitem
            index = self._index
            for tag in tags:
                keys = index.get(tag)
                if keys is None:
                    index[tag] = key
                elif isinstance(keys, str):
                    if keys != key:
                        index[tag] = {keys, key}
                else:
                    keys.add(key)
            while len(self._lru) > self._policy.max_entries:
                self._lru.popitem()

    async def aput(
        self,
        key: str,
        entry: CachedResponse,
        resources: tuple[str, ...],
        read_started: float | None = None,
    ) -> None:
        """Async twin of :meth:`put`."""
        self.put(key, entry, resources, read_started)

    def invalidate(self, resources: tuple[str, ...]) -> int:
        """Drop every entry tagged with any of *resources*; returns how many were dropped."""
        with self._lock:
            keys: set[str] = set()
            for tag in resources:
                found = self._index.get(tag)
                if isinstance(found, str):
                    keys.add(found)
                elif found is not None:
                    keys.update(found)
            for key in keys:
                self._remove(key)
            return len(keys)

    async def ainvalidate(self, resources: tuple[str, ...]) -> int:
        """Async twin of :meth:`invalidate`."""
        return self.invalidate(resources)

    # ------------------------------------------------------------------------------ extras

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            # A fresh LRU rather than ``clear()``: older cachetools clear by popping, which would
            # count every entry as an eviction.
            self._lru = _TaggedLRU(self._policy.max_bytes, self._unindex)
            self._index.clear()
            self._tags.clear()

    def __len__(self) -> int:
        return len(self._lru)

    def __bool__(self) -> bool:
        # With ``__len__`` alone an empty cache would be falsy, and ``cache or fallback`` would
        # silently replace a fresh cache by the fallback.
        return True

    @property
    def bytes_used(self) -> int:
        """Bytes charged against the budget by the entries currently stored."""
        return int(self._lru.currsize)

    @property
    def tag_count(self) -> int:
        """Distinct tags in the index (bounded by the live entries' tags)."""
        return len(self._index)

    def stats(self) -> dict[str, Any]:
        """Entries, bytes, tags and evictions, for health pages and benchmarks."""
        with self._lock:
            return {
                "entries": len(self._lru),
                "bytes": int(self._lru.currsize),
                "tags": len(self._index),
                "evictions": self.evictions,
                "max_entries": self._policy.max_entries,
                "max_bytes": self._policy.max_bytes,
            }

    def warmth(self) -> tuple[int, float | None]:
        """Entries stored, and the ``stored_at`` of the oldest (``None`` when empty)."""
        with self._lock:
            # Cache.__getitem__, not the LRU's: reading ages must not reorder the LRU.
            peek = cachetools.Cache.__getitem__
            oldest = min((peek(self._lru, key).entry.stored_at for key in self._lru), default=None)
            return len(self._lru), oldest

    def __repr__(self) -> str:
        return (
            f"MemoryCache(entries={len(self._lru)}/{self._policy.max_entries}, "
            f"bytes={int(self._lru.currsize)}/{self._policy.max_bytes})"
        )

    # ------------------------------------------------------------------------------ internals

    def _remove(self, key: str) -> None:
        """Delete *key* (if present) and its tag-index entries. Caller holds the lock."""
        slot = self._lru.pop(key, None)
        if slot is not None:
            self._drop_tags(key, slot.tags)

    def _unindex(self, key: str, slot: _Slot) -> None:
        """Eviction callback (lock already held by the put that caused it)."""
        self.evictions += 1
        self._drop_tags(key, slot.tags)

    def _drop_tags(self, key: str, tags: tuple[str, ...]) -> None:
        index = self._index
        for tag in tags:
            keys = index.get(tag)
            if keys is None:
                continue
            if isinstance(keys, str):
                if keys == key:
                    del index[tag]
                    self._tags.pop(tag, None)
                continue
            keys.discard(key)
            if len(keys) == 1:
                index[tag] = next(iter(keys))  # back to the lean form
            elif not keys:
                del index[tag]
                self._tags.pop(tag, None)
