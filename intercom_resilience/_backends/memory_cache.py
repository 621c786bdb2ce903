"""The in-process stale cache: one ordered table, bounded by entry count *and* bytes.

Layout (issue #19: at most 400 B of structure per entry, and a byte budget that counts what the
process really holds):

* **One table**, a :class:`collections.OrderedDict` from the key's digest to the entry's record,
  in least-recently-used order (``move_to_end`` on a hit, ``popitem(last=False)`` to evict).
  ``cachetools.LRUCache`` (what this cache used before) keeps three tables per entry — its data
  dict, its size dict and an ``OrderedDict`` for the order: 134 B per entry at 10,000 entries
  before storing anything, against 75 B for the ``OrderedDict`` alone (tracemalloc, CPython
  3.11); ``TTLCache`` (per-entry expiry) adds a link object and a second ``OrderedDict``. What
  this cache needs from an LRU is exactly what ``OrderedDict`` does in C (O(1) move and pop);
  expiry is one timestamp in the record, checked on a hit. Kept under cachetools, the same records
  would cost about 445 B per entry instead of 387 B (over the 400 B target). So this is not a
  re-implementation of what cachetools does well, but the part of it this cache uses, without the
  tables it does not need. A plain ``dict`` (insertion-ordered, 45 B less per entry) was measured
  too and rejected: evicting its oldest entry means scanning past every hole earlier evictions
  left at its front (6.9 µs per insert at 10,000 entries, against 0.4 µs).
* **A record per entry, one flat tuple**: ``(body, stamp, shape, *tags)``. The body is the
  response's own ``bytes`` (no copy); the stamp is one small ``bytes``, ``stored_at`` packed as a
  double and the request id in UTF-8 (64 B, where a ``float`` and a ``str`` take 32 B + 80 B);
  ``shape`` is the status and the kept headers with the request-id header's value left out (it is
  the request id), interned, so the thousands of entries with the same content type share one.
  No size is stored: an entry's charge is recomputed from its record
  (:func:`_entry_charge`), deterministically, when it leaves.
* **Digests instead of strings** for keys and tags: a 128-bit BLAKE2b digest as an ``int`` is
  44 B, where a key string (``ir:cache:<scope>:<sha256 hex>``) is 139 B and a contact's tag 92 B.
  Two different keys colliding is a 2^-128 event per pair (10^-27 for a million entries); the
  digest costs about 0.7 µs per key or tag (a get digests its key, a put its key and tags), so
  the last key and the most recent tags (a bounded memo, :data:`_MAX_TAG_DIGESTS`) keep theirs.
* **A tag index** from a tag's digest to the one key carrying it (an instance's own tag, the common
  case) or to a :class:`_Members` dict once a second entry carries it. The index only ever names
  live entries: every removal, eviction included, goes through :meth:`MemoryCache._drop`. Records
  share one ``int`` object per tag (the index's own key), so a collection-wide tag costs one object,
  not one per entry.

The byte budget is charged with what each piece holds, rounded as the allocator rounds it
(:func:`_block`): each entry its body, record, digest, stamp and its share of the table and the
index (:func:`_entry_charge`), and each distinct tag its digest (charged while the index names
it). ``tests/cache/test_memory_accounting.py`` holds the total within 10% of what
``tracemalloc`` sees; ``benchmarks/cache_memory.py`` also compares it with RSS growth.

Entries older than the stale window are never returned, and are dropped when next looked up
(memory stays bounded meanwhile: they still count against both budgets, and LRU order retires
them first since nobody reads them).
"""

from __future__ import annotations

import hashlib
import struct
import sys
import threading
from collections import OrderedDict
from functools import lru_cache
from typing import Any

from .._clock import Clock
from .._config import CachePolicy
from .._core.cache import entry_size, is_servable
from .._events import EventLog
from ..events import CacheEntryTooLarge
from .base import CachedResponse

__all__ = ["MemoryCache"]

#: A stored entry: ``(content, stamp, shape, *tag digests)``; the stamp is ``stored_at`` packed as
#: a double, then (when there is a request id) a ``\x01`` and the request id in UTF-8.
_Record = tuple[Any, ...]
#: The status and kept headers of an entry; a value of ``None`` stands for the request id.
_Shape = tuple[int, tuple[tuple[str, str | None], ...]]

_CONTENT, _STAMP, _SHAPE, _TAGS = 0, 1, 2, 3
_TIME = struct.Struct("<d")
_pack_time = _TIME.pack
_unpack_time = _TIME.unpack_from
_WITH_ID = b"\x01"

_getsizeof = sys.getsizeof
_blake2b = hashlib.blake2b
_from_bytes = int.from_bytes

#: Tag digests memoised (about 200 B each: the tag string, its digest and the memo's link).
_MAX_TAG_DIGESTS = 32

#: Distinct shapes shared between entries (content types are few; past this, say because a
#: request-id header differs from the request id, an entry keeps, and is charged, its own).
_MAX_SHAPES = 256

# Each entry's share of the containers around it, measured with tracemalloc on CPython 3.11 over
# 1,000-30,000 entries (amortised over their spare room, which varies with the fill): the table
# (the OrderedDict's slot, its node and its fast-lookup array: 75-103 B) and each of its tags'
# index slots (a slot in the index, or in a _Members dict: 30-50 B).
_TABLE_SHARE = 85
_MEMBER_SHARE = 40
#: An (empty) _Members dict, charged while a tag is carried by two entries or more.
_MEMBERS_BASE = 80


def _block(size: int) -> int:
    """The bytes an object of *size* really takes: CPython's small-object allocator rounds to
    16 B; larger objects come from malloc, which adds an 8 B header and rounds to 16 B."""
    return (size + 15) & -16 if size <= 512 else (size + 23) & -16


def _digest(text: str) -> int:
    """The 128-bit digest a key or tag is stored under (see the module docstring)."""
    data = text.encode("utf-8", "surrogatepass")
    return _from_bytes(_blake2b(data, digest_size=16).digest(), "little")


#: A tag's digest, for the few tags most puts carry (a scope's, a collection's, a hot record's):
#: a digest was the dearest step of a put. Few (:data:`_MAX_TAG_DIGESTS`), so the memo stays a
#: fixed few KiB outside the byte budget, which bounds what entries hold.
_tag_digest = lru_cache(maxsize=_MAX_TAG_DIGESTS)(_digest)


@lru_cache(maxsize=_MAX_TAG_DIGESTS)
def _tag_digests(resources: tuple[str, ...]) -> tuple[int, ...]:
    """The distinct digests of a put's tags, in order. Memoised per tag set, as few as the tags
    (a hot read carries the same set on every put): one lookup instead of one per tag and the
    dedupe, which together cost a fifth of a put."""
    return tuple(dict.fromkeys([_tag_digest(tag) for tag in resources]))


def _shape_charge(shape: _Shape) -> int:
    """What an unshared shape holds (its tuples and strings)."""
    headers = shape[1]
    size = _block(_getsizeof(shape)) + _block(_getsizeof(headers))
    for pair in headers:
        size += _block(_getsizeof(pair)) + _block(_getsizeof(pair[0]))
        if pair[1] is not None:
            size += _block(_getsizeof(pair[1]))
    return size


#: What every entry holds besides its record, body, stamp and tags: its key's digest (a 128-bit
#: int: 48 B, or 40 B once in 2^8) and its share of the table.
_ENTRY_BASE = _block(_getsizeof(1 << 127)) + _TABLE_SHARE


def _entry_charge(record: _Record) -> int:
    """The bytes one entry holds beyond its tags' digests (a function of its record alone, so
    the charge an entry leaves with is the charge it came in with)."""
    return (
        _ENTRY_BASE
        + ((_getsizeof(record) + 15) & -16)
        + _block(_getsizeof(record[_CONTENT]))
        + ((_getsizeof(record[_STAMP]) + 15) & -16)
        + (len(record) - _TAGS) * _MEMBER_SHARE
    )


#: What a distinct tag holds while the index names it: its digest (the entries' slots for it are
#: in their own charge).
_TAG_CHARGE = _block(_getsizeof(1 << 127))


class _Members(dict[int, None]):
    """The keys carrying one tag (once there are two), and the tag's shared digest object."""

    __slots__ = ("tag",)

    def __init__(self, tag: int) -> None:
        super().__init__()
        self.tag = tag


class MemoryCache:
    """The stale cache of one process (thread-safe; the async methods never block on I/O).

    Args:
        policy: the :class:`~intercom_resilience.CachePolicy` (entries, bytes, per-entry cap,
            stale window).
        clock: where "now" comes from (staleness is measured in ``clock.time()``).
        events: where to report skipped oversize entries (``debug``).
    """

    #: Lives in the process: no I/O, never waits (the call driver performs its effects itself).
    in_process = True

    __slots__ = (
        "_bytes",
        "_clock",
        "_events",
        "_index",
        "_last",
        "_lock",
        "_policy",
        "_shapes",
        "_stored",
        "_table",
        "evictions",
    )

    def __init__(self, policy: CachePolicy, clock: Clock, events: EventLog | None = None) -> None:
        self._policy = policy
        self._clock = clock
        self._events = events
        self._lock = threading.Lock()
        self._table: OrderedDict[int, _Record] = OrderedDict()
        self._index: dict[int, int | _Members] = {}
        self._shapes: dict[_Shape, _Shape] = {}
        self._bytes = 0
        # The last key digested, and its digest: a read looks its key up, then stores its fresh
        # answer under the same string object (an identity check, so never a wrong digest).
        self._last: tuple[str, int] = ("", _digest(""))
        # The record last stored and the entry it was made from (equal to its rebuild): a read
        # looks its key up before it stores its fresh answer, so a hot record's next lookup finds
        # the entry its last put was given. Forgotten when that record leaves the table.
        self._stored: tuple[_Record | None, CachedResponse | None] = (None, None)
        #: How many entries were evicted to respect the budgets (not counting invalidations).
        self.evictions = 0

    # ------------------------------------------------------------------------------ protocol

    def get(self, key: str) -> CachedResponse | None:
        """The entry under *key*, if present and not past the stale window (a hit is "used")."""
        digest = self._key_digest(key)
        with self._lock:
            record = self._table.get(digest)
            if record is None:
                return None
            stored_at = _unpack_time(record[_STAMP])[0]
            if not is_servable(stored_at, self._clock.time(), self._policy.stale_window):
                self._remove(digest)
                return None
            self._table.move_to_end(digest)
            stored_record, stored_entry = self._stored
        if stored_record is record:  # the entry last put, still as it was: no rebuild
            assert stored_entry is not None
            return stored_entry
        return _response(record)

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
        digest = self._key_digest(key)
        tags = _tag_digests(resources)
        request_id = entry.request_id
        shape: _Shape = (
            entry.status,
            tuple(
                [(name, None if value == request_id else value) for name, value in entry.headers]
            ),
        )
        stamp = _pack_time(entry.stored_at)
        if request_id is not None:
            stamp += _WITH_ID + request_id.encode("utf-8", "surrogatepass")
        with self._lock:
            shared = self._shapes.get(shape)
            if shared is None and len(self._shapes) < _MAX_SHAPES:
                shared = self._shapes[shape] = shape
            table = self._table
            old = table.get(digest)
            if old is not None and old[_TAGS:] == tags:
                # The same read stored again (the steady state of a hot record): its tags, and so
                # the index, are unchanged; only the record is replaced.
                record = (entry.content, stamp, shared or shape, *old[_TAGS:])
                # An interned shape is charged nowhere (the common case: no lookup to tell).
                charge = _entry_charge(record) if shared is not None else self._charge(record)
                if charge + len(tags) * _TAG_CHARGE > self._policy.max_bytes:
                    return  # could never fit (the old version stays, as below)
                table[digest] = record
                table.move_to_end(digest)
                self._stored = (record, entry)
                gone = _entry_charge(old) if old[_SHAPE] is shared else self._charge(old)
                self._bytes += charge - gone
                if self._bytes > self._policy.max_bytes:  # the entry count is unchanged
                    self._evict()
                return
            canonical = [self._canonical_tag(tag) for tag in tags]
            record = (entry.content, stamp, shared or shape, *canonical)
            charge = self._charge(record)
            if charge + len(canonical) * _TAG_CHARGE > self._policy.max_bytes:
                return  # could never fit, and must not flush the rest trying
            # Remove the old version first, so its tags leave the index even if the new one
            # carries different tags.
            self._remove(digest)
            self._table[digest] = record
            self._stored = (record, entry)
            self._bytes += charge
            self._index_tags(digest, canonical)
            self._evict()

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
        tags = [_tag_digest(tag) for tag in resources]
        with self._lock:
            keys: set[int] = set()
            for tag in tags:
                found = self._index.get(tag)
                if isinstance(found, int):
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
            self._table = OrderedDict()
            self._stored = (None, None)
            self._index = {}
            self._shapes = {}
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._table)

    def __bool__(self) -> bool:
        # With ``__len__`` alone an empty cache would be falsy, and ``cache or fallback`` would
        # silently replace a fresh cache by the fallback.
        return True

    @property
    def bytes_used(self) -> int:
        """Bytes charged against the budget by the entries currently stored (and their tags)."""
        return self._bytes

    @property
    def tag_count(self) -> int:
        """Distinct tags in the index (bounded by the live entries' tags)."""
        return len(self._index)

    def stats(self) -> dict[str, Any]:
        """Entries, bytes, tags and evictions, for health pages and benchmarks."""
        with self._lock:
            return {
                "entries": len(self._table),
                "bytes": self._bytes,
                "tags": len(self._index),
                "evictions": self.evictions,
                "max_entries": self._policy.max_entries,
                "max_bytes": self._policy.max_bytes,
            }

    def warmth(self) -> tuple[int, float | None]:
        """Entries stored, and the ``stored_at`` of the oldest (``None`` when empty)."""
        with self._lock:
            # Iterating values does not reorder the LRU.
            stamps = [record[_STAMP] for record in self._table.values()]
        stored = [_unpack_time(stamp)[0] for stamp in stamps]
        return len(stored), min(stored, default=None)

    def __repr__(self) -> str:
        return (
            f"MemoryCache(entries={len(self._table)}/{self._policy.max_entries}, "
            f"bytes={self._bytes}/{self._policy.max_bytes})"
        )

    # ------------------------------------------------------------------------------ internals

    def _key_digest(self, key: str) -> int:
        last = self._last  # one read of the pair: another thread may replace it meanwhile
        if last[0] is key:
            return last[1]
        digest = _digest(key)
        self._last = (key, digest)
        return digest

    def _evict(self) -> None:
        """Evict least recently used entries until both budgets hold. Caller holds the lock.

        The newest entry fits on its own (``put`` checks), so this stops before reaching it.
        """
        policy, table = self._policy, self._table
        while len(table) > policy.max_entries or self._bytes > policy.max_bytes:
            self._drop(*table.popitem(last=False))
            self.evictions += 1

    def _charge(self, record: _Record) -> int:
        """An entry's charge, its unshared shape included. Caller holds the lock."""
        size = _entry_charge(record)
        shape = record[_SHAPE]
        if self._shapes.get(shape) is not shape:
            size += _shape_charge(shape)
        return size

    def _index_tags(self, digest: int, tags: list[int]) -> None:
        """Name the entry *digest* under each of its *tags* in the index. Caller holds the lock."""
        index = self._index
        for tag in tags:
            keys = index.get(tag)
            if keys is None:
                index[tag] = digest
                self._bytes += _TAG_CHARGE
            elif isinstance(keys, int):
                members = _Members(tag)
                members[keys] = None
                members[digest] = None
                index[tag] = members
                self._bytes += _MEMBERS_BASE
            else:
                keys[digest] = None

    def _canonical_tag(self, tag: int) -> int:
        """The digest object the index and every record share for *tag* (*tag* itself when the
        index does not name it yet). Caller holds the lock."""
        found = self._index.get(tag)
        if found is None:
            return tag
        if isinstance(found, _Members):
            return found.tag
        # One entry carries it: its record holds the shared object.
        shared: int = next(t for t in self._table[found][_TAGS:] if t == tag)
        return shared

    def _remove(self, key: int) -> None:
        """Delete *key* (if present) and its tag-index entries. Caller holds the lock."""
        record = self._table.pop(key, None)
        if record is not None:
            self._drop(key, record)

    def _drop(self, key: int, record: _Record) -> None:
        """Un-charge an entry taken out of the table and drop it from the tag index."""
        if self._stored[0] is record:
            self._stored = (None, None)
        self._bytes -= self._charge(record)
        index = self._index
        for tag in record[_TAGS:]:
            keys = index.get(tag)
            if keys is None:
                continue
            if isinstance(keys, int):
                if keys == key:
                    del index[tag]
                    self._bytes -= _TAG_CHARGE
                continue
            keys.pop(key, None)
            if len(keys) == 1:  # a _Members holds two keys or more: back to the lean form
                # (assigning keeps the index's own key object, the one the records share)
                index[tag] = next(iter(keys))
                self._bytes -= _MEMBERS_BASE


def _response(record: _Record) -> CachedResponse:
    """Rebuild the stored response from its record."""
    content, stamp, (status, headers) = record[:_TAGS]
    stored_at: float = _unpack_time(stamp)[0]
    if len(stamp) == _TIME.size:  # no request id
        return CachedResponse(status, headers, content, stored_at, None)  # no value left out
    request_id: str = stamp[_TIME.size + 1 :].decode("utf-8", "surrogatepass")
    # A header value is left out (None) only when it was the request id.
    rebuilt = tuple([(name, request_id if value is None else value) for name, value in headers])
    return CachedResponse(status, rebuilt, content, stored_at, request_id)
