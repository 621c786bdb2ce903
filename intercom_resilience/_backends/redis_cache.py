"""The stale cache in Redis: one cache shared by every process of a fleet.

Same keys, tags, per-entry cap, stale window and byte budget as :class:`MemoryCache`, kept by
three small Lua scripts so that every operation is one atomic round trip.

Layout (``P`` is the key prefix, ``intercom-resilience`` by default; see :class:`._redis.KeyScheme`)
    * ``P:cache:<scope>:<sha256>`` — the entry, a string with a Redis TTL equal to what is left
      of the stale window: Redis itself forgets entries that are too old to serve.
    * ``P:cache-tag:<tag>`` — a set of the entry names carrying the tag; its TTL is pushed to
      one stale window after the last entry joined it, so it never outlives its members.
    * ``P:cache-mark:<tag>`` — when the tag was last invalidated (Redis server time in
      microseconds), kept for the read horizon (``READ_HORIZON_S``, 10 minutes).
    * ``P:cache-meta:lru`` — a sorted set of entry names scored by last use (Redis server
      time in microseconds, so clock skew between hosts does not matter; kept strictly
      increasing by ``P:cache-meta:clock``): the LRU order.
    * ``P:cache-meta:entries`` — a hash: entry name → ``[size, [tag names]]``.
    * ``P:cache-meta:bytes`` — the sum of the stored entries' sizes.

The byte budget
    Redis offers no per-key-group memory limit, and ``maxmemory-policy`` is a server-wide
    setting: ``allkeys-lru`` would evict the shared rate limiter's buckets too (a fleet-wide
    quota breach), and the library cannot assume who configured the server. So the budget is
    kept by exact accounting instead: every put adds its size, then evicts least recently used
    entries (by the sorted set) until both ``max_bytes`` and ``max_entries`` hold; every eviction
    and invalidation subtracts. Entries that Redis expired by TTL are found cheaply (last used
    more than a stale window ago means certainly expired) and released on the next put. Until
    then they are still counted, so the accounting errs on the side of using *less* memory than
    the budget, never more. (A server-wide ``maxmemory`` with ``volatile-lru`` remains a good
    second guard; the cache's keys all carry TTLs.) The budget counts the same bytes as the
    memory backend (body + headers + request id); Redis' own per-key overhead comes on top.

Coherence across the fleet
    A write in one process must not be undone by a slow read in another: process A starts
    ``find(6)``, process B updates contact 6 and invalidates, then A's old answer arrives. So
    every invalidation leaves a *mark* per tag (server time), and every put says how long its
    read has been in flight (a duration, measured on the client's monotonic clock, so clock skew
    between hosts does not matter); the put script refuses the entry when one of its tags was
    invalidated after the read began (less a margin for the network's one-way delay). A read in
    flight for longer than the horizon is not stored at all.

    An invalidation that cannot reach Redis (down, or skipped during the pause below) is not
    dropped: it waits in a bounded local queue, and is sent before anything else the next time
    Redis answers. Until it has been sent, this process neither reads from nor writes to the
    Redis cache (a miss, not a pre-write record). If the queue overflows (more than
    ``MAX_PENDING_TAGS`` distinct tags), the whole cache is cleared on recovery instead.

Failure
    Any error talking to Redis (down, timeout, OOM, a script error) degrades to "no cache": a
    get returns ``None``, a put does nothing, an invalidation waits in the queue (see above), and
    the call proceeds. The first failure logs ``cache.redis_unavailable`` (warning) and makes the
    cache skip Redis for a pause (half a second, doubling on each failed probe up to
    ``retry_interval``) so a dead server does not add a timeout to every call; the first success
    after that logs ``cache.redis_recovered``.
    Clients, timeouts, the error set and that latch are the ones of :mod:`._redis`, shared with
    the Redis rate limiter.

Processes sharing a Redis cache should share one :class:`CachePolicy`: the budget is enforced
with the policy of whichever process writes.

One standalone Redis server, reached by ``redis_url`` (behind a Sentinel-managed primary, give
an address that follows fail-over). Not Redis Cluster: the scripts touch keys they discover, which
Cluster forbids.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from .._clock import Clock
from .._config import CachePolicy
from .._core.cache import READ_HORIZON_S, entry_size, is_servable
from .._events import EventLog
from ._redis import (
    DEFAULT_KEY_PREFIX,
    DEFAULT_RETRY_INTERVAL,
    DEFAULT_SOCKET_TIMEOUT,
    MISSED,
    KeyScheme,
    RedisLink,
    Script,
    _Missed,
)
from .base import CachedResponse

if TYPE_CHECKING:
    from .redis_flights import RedisFlights

__all__ = ["RedisCache", "decode_entry", "encode_entry"]

# Shared by the scripts: release one entry's accounting and tag memberships (not the entry).
_FORGET = """
local function forget(member, lru, meta, total)
  local m = redis.call('HGET', meta, member)
  if m then
    local info = cjson.decode(m)
    redis.call('DECRBY', total, info[1])
    for _, tag in ipairs(info[2]) do redis.call('SREM', tag, member) end
    redis.call('HDEL', meta, member)
  end
  redis.call('ZREM', lru, member)
end
-- The LRU rank: server time in microseconds, made strictly increasing through a stored last
-- stamp, so two uses within one microsecond still have an order. Formatted with %.0f because
-- Lua would print a 16-digit number as 1.7e+15 and lose the digits that order entries.
local function stamp(clock)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local last = tonumber(redis.call('GET', clock) or '0')
  if now <= last then now = last + 1 end
  local text = string.format('%.0f', now)
  redis.call('SET', clock, text)
  return now, text
end
"""

# KEYS: entry, lru, meta, total, clock, tag sets..., their marks...   ARGV: value, ttl_ms, size,
# max_bytes, max_entries, meta json, window_ms, read_age_us. Returns the number of entries
# evicted for the budgets, or -1 when the entry was refused (a tag invalidated since the read
# began: read_age_us, the read's time in flight plus a margin, before now).
_PUT = (
    _FORGET
    + """
local entry, lru, meta, total = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local tags = (#KEYS - 5) / 2
local t = redis.call('TIME')
local began = tonumber(t[1]) * 1000000 + tonumber(t[2]) - tonumber(ARGV[8])
for i = 6 + tags, #KEYS do
  local mark = redis.call('GET', KEYS[i])
  if mark and tonumber(mark) >= began then return -1 end
end
local ttl, window = tonumber(ARGV[2]), tonumber(ARGV[7])
local now, now_text = stamp(KEYS[5])
-- Not used for a whole window: certainly expired by TTL. Release their accounting, a bounded
-- batch per put so a put never stalls the server.
local cutoff = string.format('%.0f', now - window * 1000)
local expired = redis.call('ZRANGEBYSCORE', lru, '-inf', '(' .. cutoff, 'LIMIT', 0, 64)
for _, member in ipairs(expired) do
  forget(member, lru, meta, total)
  redis.call('DEL', member)
end
forget(entry, lru, meta, total)
redis.call('SET', entry, ARGV[1], 'PX', ttl)
redis.call('ZADD', lru, now_text, entry)
redis.call('HSET', meta, entry, ARGV[6])
redis.call('INCRBY', total, ARGV[3])
for i = 6, 5 + tags do
  redis.call('SADD', KEYS[i], entry)
  redis.call('PEXPIRE', KEYS[i], window)
end
local max_bytes, max_entries = tonumber(ARGV[4]), tonumber(ARGV[5])
local evicted = 0
while tonumber(redis.call('GET', total) or '0') > max_bytes
    or redis.call('ZCARD', lru) > max_entries do
  local oldest = redis.call('ZRANGE', lru, 0, 0)
  if #oldest == 0 then
    -- accounting drifted (someone deleted our keys): nothing is left, so nothing is used
    redis.call('SET', total, 0)
    break
  end
  forget(oldest[1], lru, meta, total)
  redis.call('DEL', oldest[1])
  evicted = evicted + 1
end
if tonumber(redis.call('GET', total) or '0') < 0 then redis.call('SET', total, 0) end
return evicted
"""
)

# KEYS: entry, lru, clock. Returns the value and marks the entry used (if still accounted).
_GET = (
    _FORGET
    + """
local value = redis.call('GET', KEYS[1])
if value then
  local _, now_text = stamp(KEYS[3])
  redis.call('ZADD', KEYS[2], 'XX', now_text, KEYS[1])
end
return value
"""
)

# KEYS: lru, meta, total, tag sets..., their marks...  ARGV: mark_ttl_ms. Returns how many live
# entries were dropped.
_INVALIDATE = (
    _FORGET
    + """
local lru, meta, total = KEYS[1], KEYS[2], KEYS[3]
local tags = (#KEYS - 3) / 2
local t = redis.call('TIME')
local now = string.format('%.0f', tonumber(t[1]) * 1000000 + tonumber(t[2]))
local dropped = 0
for i = 4, 3 + tags do
  for _, member in ipairs(redis.call('SMEMBERS', KEYS[i])) do
    forget(member, lru, meta, total)
    dropped = dropped + redis.call('DEL', member)
  end
  redis.call('DEL', KEYS[i])
  redis.call('SET', KEYS[i + tags], now, 'PX', ARGV[1])
end
return dropped
"""
)

# KEYS: lru, meta, total. Drops every entry (after the queue of invalidations overflowed).
_CLEAR = """
local dropped = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  dropped = dropped + redis.call('DEL', member)
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SET', KEYS[3], 0)
return dropped
"""

_PUT_SCRIPT, _GET_SCRIPT = Script(_PUT), Script(_GET)
_INVALIDATE_SCRIPT, _CLEAR_SCRIPT = Script(_INVALIDATE), Script(_CLEAR)

#: Distinct tags whose invalidation may wait for Redis; past this the cache is cleared instead.
MAX_PENDING_TAGS = 10_000
#: Tags per invalidation script, so that one flush never holds the server for long.
_TAGS_PER_SCRIPT = 256
#: Added to a read's time in flight: the one-way delay of the put, and then some.
READ_AGE_MARGIN_S = 1.0

#: Flushing the queue, as steps: yields (script, keys, args), is sent the script's reply.
_Steps = Generator[tuple[Script, list[str], list[Any]], Any, "int | None"]


def encode_entry(entry: CachedResponse) -> bytes:
    """Serialise *entry* for Redis: a one-line JSON header, a newline, then the raw body."""
    header = {
        "s": entry.status,
        "h": [list(pair) for pair in entry.headers],
        "t": entry.stored_at,
        "r": entry.request_id,
    }
    # Compact JSON escapes newlines inside strings, so the first b"\n" ends the header.
    return json.dumps(header, separators=(",", ":")).encode() + b"\n" + entry.content


def decode_entry(raw: bytes) -> CachedResponse:
    """Inverse of :func:`encode_entry` (``ValueError`` on anything else)."""
    head, sep, content = raw.partition(b"\n")
    if not sep:
        raise ValueError("not a cache entry")
    header = json.loads(head)
    return CachedResponse(
        status=int(header["s"]),
        headers=tuple((str(name), str(value)) for name, value in header["h"]),
        content=content,
        stored_at=float(header["t"]),
        request_id=header["r"],
    )


class RedisCache:
    """The stale cache in Redis, shared by every process pointed at the same server.

    Args:
        policy: the :class:`~intercom_resilience.CachePolicy`.
        redis_url: e.g. ``redis://cache:6379/0``.
        clock: where "now" comes from (staleness is checked in ``clock.time()`` on top of the
            Redis TTL; the pause after a failure is measured in ``clock.monotonic()``).
        events: where ``cache.redis_unavailable`` / ``cache.redis_recovered`` go.
        key_prefix: the first part of every key (:class:`~._redis.KeyScheme`; tests, or several
            deployments on one server).
        socket_timeout: seconds for connecting and for each command.
        retry_interval: the longest pause between attempts to reach Redis again after a failure.
    """

    #: The longest pause, in seconds, between attempts to reach Redis again after a failure.
    RETRY_INTERVAL = DEFAULT_RETRY_INTERVAL
    #: Default connect and command timeout, in seconds.
    SOCKET_TIMEOUT = DEFAULT_SOCKET_TIMEOUT

    def __init__(
        self,
        policy: CachePolicy,
        redis_url: str,
        clock: Clock,
        events: EventLog | None = None,
        *,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
        retry_interval: float = DEFAULT_RETRY_INTERVAL,
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._keys = KeyScheme(key_prefix)
        self._link = RedisLink(
            "cache",
            redis_url,
            clock,
            events,
            socket_timeout=socket_timeout,
            retry_interval=retry_interval,
        )
        self._meta_keys = [self._keys.cache_meta(name) for name in ("lru", "entries", "bytes")]
        self._stamp = self._keys.cache_meta("clock")
        self._lock = threading.Lock()
        #: Entries evicted by this process's puts to respect the budgets.
        self.evictions = 0
        #: Puts refused because another process invalidated a tag while the read was in flight.
        self.refused = 0
        # Invalidations waiting for Redis: tag -> how many times it was queued (a flush removes a
        # tag only if nobody queued it again meanwhile).
        self._pending: dict[str, int] = {}
        self._overflowed = False

    # ------------------------------------------------------------------------------ protocol

    def get(self, key: str) -> CachedResponse | None:
        """The entry under *key*, if present and within the stale window (``None`` on errors)."""
        if self._queued and self._flush() is None:
            return None
        return self._decode(self._link.call(_GET_SCRIPT, self._get_keys(key), ()))

    async def aget(self, key: str) -> CachedResponse | None:
        """Async twin of :meth:`get`."""
        if self._queued and await self._aflush() is None:
            return None
        return self._decode(await self._link.acall(_GET_SCRIPT, self._get_keys(key), ()))

    def put(
        self,
        key: str,
        entry: CachedResponse,
        resources: tuple[str, ...],
        read_started: float | None = None,
    ) -> None:
        """Store *entry* (skipped when over ``max_entry_bytes`` or already too old).

        Refused when another process invalidated one of *resources* after *read_started*.
        """
        call = self._put_call(key, entry, resources, read_started)
        if call is None or (self._queued and self._flush() is None):
            return
        self._count(self._link.call(_PUT_SCRIPT, *call))

    async def aput(
        self,
        key: str,
        entry: CachedResponse,
        resources: tuple[str, ...],
        read_started: float | None = None,
    ) -> None:
        """Async twin of :meth:`put`."""
        call = self._put_call(key, entry, resources, read_started)
        if call is None or (self._queued and await self._aflush() is None):
            return
        self._count(await self._link.acall(_PUT_SCRIPT, *call))

    def invalidate(self, resources: tuple[str, ...]) -> int:
        """Drop every entry tagged with any of *resources*; how many were dropped.

        When Redis is unavailable the invalidation waits in the queue (``0`` dropped for now).
        """
        if not resources:
            return 0
        self._enqueue(resources)
        return self._flush() or 0

    async def ainvalidate(self, resources: tuple[str, ...]) -> int:
        """Async twin of :meth:`invalidate`."""
        if not resources:
            return 0
        self._enqueue(resources)
        return await self._aflush() or 0

    @property
    def pending_invalidations(self) -> int:
        """Tags whose invalidation is waiting for Redis (``-1`` once the queue overflowed)."""
        return -1 if self._overflowed else len(self._pending)

    # ------------------------------------------------------------------------------ extras

    @property
    def available(self) -> bool:
        """Whether the last attempt to use Redis succeeded."""
        return self._link.available

    def stats(self) -> dict[str, Any]:
        """Entries and bytes as accounted in Redis (empty when Redis is unavailable)."""
        lru, _, total = self._meta_keys

        def read(client: Any) -> tuple[int, Any]:
            pipe = client.pipeline(transaction=False)
            pipe.zcard(lru)
            pipe.get(total)
            entries, used = pipe.execute()
            return int(entries), used

        reply = self._link.run(read)
        if isinstance(reply, _Missed):
            return {}
        return {
            "entries": reply[0],
            "bytes": int(reply[1] or 0),
            "max_entries": self._policy.max_entries,
            "max_bytes": self._policy.max_bytes,
        }

    def flights(self) -> RedisFlights:
        """The fleet-coalescing locks, on this cache's link and keys (``fleet_coalesce``)."""
        from .redis_flights import RedisFlights

        return RedisFlights(self._link, self._keys)

    def close(self) -> None:
        """Close the sync client's connections (the async ones: :meth:`aclose`)."""
        self._link.close()

    async def aclose(self) -> None:
        """Close the running event loop's async client (and the sync client)."""
        await self._link.aclose()

    def __repr__(self) -> str:
        state = "available" if self.available else "unavailable"
        return f"RedisCache(key_prefix={self._keys.prefix!r}, {state})"

    # ------------------------------------------------------------------------------ internals

    def _get_keys(self, key: str) -> list[str]:
        return [self._keys.cache_entry(key), self._meta_keys[0], self._stamp]

    def _tag_keys(self, resources: tuple[str, ...] | list[str]) -> list[str]:
        """The meta keys, the tags' sets, then the tags' marks (the scripts' KEYS)."""
        tags = list(dict.fromkeys(resources))
        return [
            *self._meta_keys,
            *(self._keys.cache_tag(tag) for tag in tags),
            *(self._keys.cache_mark(tag) for tag in tags),
        ]

    def _put_call(
        self,
        key: str,
        entry: CachedResponse,
        resources: tuple[str, ...],
        read_started: float | None,
    ) -> tuple[list[str], list[Any]] | None:
        size = entry_size(entry.content, entry.headers, entry.request_id)
        if size > self._policy.max_entry_bytes:
            return None
        window = self._policy.stale_window
        left = window - max(0.0, self._clock.time() - entry.stored_at)
        if left <= 0:
            return None
        in_flight = 0.0 if read_started is None else self._clock.monotonic() - read_started
        if in_flight > READ_HORIZON_S:
            return None  # older than any mark Redis still keeps: it cannot prove it is current
        tags_and_marks = self._tag_keys(resources)[len(self._meta_keys) :]
        tags = tags_and_marks[: len(tags_and_marks) // 2]
        keys = [self._keys.cache_entry(key), *self._meta_keys, self._stamp, *tags_and_marks]
        args: list[Any] = [
            encode_entry(entry),
            max(1, int(left * 1000)),
            size,
            self._policy.max_bytes,
            self._policy.max_entries,
            json.dumps([size, tags], separators=(",", ":")),
            max(1, int(window * 1000)),
            int((max(0.0, in_flight) + READ_AGE_MARGIN_S) * 1_000_000),
        ]
        return keys, args

    # The queue of invalidations: filled by every invalidation, emptied in Redis.

    @property
    def _queued(self) -> bool:
        return self._overflowed or bool(self._pending)

    def _enqueue(self, resources: tuple[str, ...]) -> None:
        with self._lock:
            if self._overflowed:
                return
            for tag in resources:
                self._pending[tag] = self._pending.get(tag, 0) + 1
            if len(self._pending) > MAX_PENDING_TAGS:
                self._pending.clear()
                self._overflowed = True

    def _flush_steps(self) -> _Steps:
        """Send what is queued; the entries dropped, or ``None`` if Redis was not reached."""
        dropped = 0
        if self._overflowed:
            reply = yield (_CLEAR_SCRIPT, self._meta_keys, [])
            if reply is MISSED:
                return None
            with self._lock:
                self._overflowed = False
            dropped += int(reply or 0)
        with self._lock:
            queued = list(self._pending.items())
        mark_ttl = [int(READ_HORIZON_S * 1000)]
        for start in range(0, len(queued), _TAGS_PER_SCRIPT):
            chunk = queued[start : start + _TAGS_PER_SCRIPT]
            reply = yield (_INVALIDATE_SCRIPT, self._tag_keys([tag for tag, _ in chunk]), mark_ttl)
            if reply is MISSED:
                return None
            dropped += int(reply or 0)
            with self._lock:
                for tag, seen in chunk:
                    if self._pending.get(tag) == seen:  # not queued again since we took it
                        del self._pending[tag]
        return dropped

    def _flush(self) -> int | None:
        steps = self._flush_steps()
        try:
            step = next(steps)
            while True:
                step = steps.send(self._link.call(*step))
        except StopIteration as done:
            flushed: int | None = done.value
            return flushed

    async def _aflush(self) -> int | None:
        steps = self._flush_steps()
        try:
            step = next(steps)
            while True:
                step = steps.send(await self._link.acall(*step))
        except StopIteration as done:
            flushed: int | None = done.value
            return flushed

    def _decode(self, raw: Any) -> CachedResponse | None:
        if raw is None or raw is MISSED:
            return None
        try:
            entry = decode_entry(bytes(raw))
        except (ValueError, KeyError, TypeError):
            return None  # not ours, or from an incompatible version: a miss, not an error
        if not is_servable(entry.stored_at, self._clock.time(), self._policy.stale_window):
            return None
        return entry

    def _count(self, reply: Any) -> None:
        """Count a put's evictions, or its refusal (``-1``)."""
        if not reply or reply is MISSED:
            return
        with self._lock:
            if int(reply) < 0:
                self.refused += 1
            else:
                self.evictions += int(reply)
