"""The in-process stale cache: a cachetools LRU bounded by entry count *and* bytes.

``cachetools.LRUCache`` measures its ``maxsize`` with ``getsizeof``; here that is each entry's
byte size (see :func:`~intercom_resilience._core.cache.entry_size`), so ``maxsize`` is the byte
budget. The entry-count bound is enforced on top, by evicting least-recently-used entries after an
insert. Both evictions go through :meth:`_TaggedLRU.popitem`, which also removes the evicted key
from the tag index: the index only ever names live entries, so it cannot grow without bound.

Entries older than the stale window are never returned, and are dropped when next looked up
(memory stays bounded meanwhile: they still count against both budgets, and LRU order retires
them first since nobody reads them).
"""

from __future__ import annotations

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

    __slots__ = ("_clock", "_events", "_index", "_lock", "_lru", "_policy", "evictions")

    def __init__(self, policy: CachePolicy, clock: Clock, events: EventLog | None = None) -> None:
        self._policy = policy
        self._clock = clock
        self._events = events
        self._lock = threading.Lock()
        self._index: dict[str, set[str]] = {}
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
        size = entry_size(entry.content, entry.headers, entry.request_id)
        if size > self._policy.max_entry_bytes:
            if self._events is not None:
                self._events.emit(CacheEntryTooLarge(size, self._policy.max_entry_bytes))
            return
        if not is_servable(entry.stored_at, self._clock.time(), self._policy.stale_window):
            return
        tags = tuple(dict.fromkeys(resources))
        with self._lock:
            # Remove the old version first, so its tags leave the index even if the new one
            # carries different tags.
            self._remove(key)
            self._lru[key] = _Slot(entry, tags, size)  # may evict (bytes) via popitem
            for tag in tags:
                self._index.setdefault(tag, set()).add(key)
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
                keys.update(self._index.get(tag, ()))
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
        for tag in tags:
            keys = self._index.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._index[tag]
