"""The stale cache in Redis: one cache shared by every process of a fleet.

Same keys, tags, per-entry cap, stale window and byte budget as :class:`MemoryCache`, kept by
three small Lua scripts so that every operation is one atomic round trip.

Layout (``P`` is the key prefix, ``intercom-resilience`` by default; see :class:`._redis.KeyScheme`)
    * ``P:cache:<scope>:<sha256>`` — the entry, a string with a Redis TTL equal to what is left
      of the stale window: Redis itself forgets entries that are too old to serve.
    * ``P:cache-tag:<tag>`` — a set of the entry names carrying the tag; its TTL is pushed to
      one stale window after the last entry joined it, so it never outlives its members.
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

Failure
    Any error talking to Redis (down, timeout, OOM, a script error) degrades to "no cache": a
    get returns ``None``, a put or invalidation does nothing, and the call proceeds. The first
    failure logs ``cache.redis_unavailable`` (warning) and makes the cache skip Redis for a pause
    (half a second, doubling on each failed probe up to ``retry_interval``) so a dead server does
    not add a timeout to every call; the first success after that logs ``cache.redis_recovered``.
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
from typing import Any

from .._clock import Clock
from .._config import CachePolicy
from .._core.cache import entry_size, is_servable
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

# KEYS: entry, lru, meta, total, clock, tag sets...   ARGV: value, ttl_ms, size, max_bytes,
# max_entries, meta json, window_ms. Returns the number of entries evicted for the budgets.
_PUT = (
    _FORGET
    + """
local entry, lru, meta, total = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
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
for i = 6, #KEYS do
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

# KEYS: lru, meta, total, tag sets...  Returns how many live entries were dropped.
_INVALIDATE = (
    _FORGET
    + """
local lru, meta, total = KEYS[1], KEYS[2], KEYS[3]
local dropped = 0
for i = 4, #KEYS do
  for _, member in ipairs(redis.call('SMEMBERS', KEYS[i])) do
    forget(member, lru, meta, total)
    dropped = dropped + redis.call('DEL', member)
  end
  redis.call('DEL', KEYS[i])
end
return dropped
"""
)


_PUT_SCRIPT, _GET_SCRIPT, _INVALIDATE_SCRIPT = Script(_PUT), Script(_GET), Script(_INVALIDATE)


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

    # ------------------------------------------------------------------------------ protocol

    def get(self, key: str) -> CachedResponse | None:
        """The entry under *key*, if present and within the stale window (``None`` on errors)."""
        return self._decode(self._link.call(_GET_SCRIPT, self._get_keys(key), ()))

    async def aget(self, key: str) -> CachedResponse | None:
        """Async twin of :meth:`get`."""
        return self._decode(await self._link.acall(_GET_SCRIPT, self._get_keys(key), ()))

    def put(self, key: str, entry: CachedResponse, resources: tuple[str, ...]) -> None:
        """Store *entry* (skipped when over ``max_entry_bytes`` or already too old)."""
        call = self._put_call(key, entry, resources)
        if call is not None:
            self._count_evictions(self._link.call(_PUT_SCRIPT, *call))

    async def aput(self, key: str, entry: CachedResponse, resources: tuple[str, ...]) -> None:
        """Async twin of :meth:`put`."""
        call = self._put_call(key, entry, resources)
        if call is not None:
            self._count_evictions(await self._link.acall(_PUT_SCRIPT, *call))

    def invalidate(self, resources: tuple[str, ...]) -> int:
        """Drop every entry tagged with any of *resources* (``0`` when Redis is unavailable)."""
        if not resources:
            return 0
        return self._dropped(self._link.call(_INVALIDATE_SCRIPT, self._tag_keys(resources), ()))

    async def ainvalidate(self, resources: tuple[str, ...]) -> int:
        """Async twin of :meth:`invalidate`."""
        if not resources:
            return 0
        keys = self._tag_keys(resources)
        return self._dropped(await self._link.acall(_INVALIDATE_SCRIPT, keys, ()))

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

    def _tag_keys(self, resources: tuple[str, ...]) -> list[str]:
        return [*self._meta_keys, *(self._keys.cache_tag(tag) for tag in dict.fromkeys(resources))]

    def _put_call(
        self, key: str, entry: CachedResponse, resources: tuple[str, ...]
    ) -> tuple[list[str], list[Any]] | None:
        size = entry_size(entry.content, entry.headers, entry.request_id)
        if size > self._policy.max_entry_bytes:
            return None
        window = self._policy.stale_window
        left = window - max(0.0, self._clock.time() - entry.stored_at)
        if left <= 0:
            return None
        tags = self._tag_keys(resources)[len(self._meta_keys) :]
        keys = [self._keys.cache_entry(key), *self._meta_keys, self._stamp, *tags]
        args: list[Any] = [
            encode_entry(entry),
            max(1, int(left * 1000)),
            size,
            self._policy.max_bytes,
            self._policy.max_entries,
            json.dumps([size, tags], separators=(",", ":")),
            max(1, int(window * 1000)),
        ]
        return keys, args

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

    @staticmethod
    def _dropped(reply: Any) -> int:
        return 0 if reply is MISSED else int(reply or 0)

    def _count_evictions(self, evicted: Any) -> None:
        if evicted and evicted is not MISSED:
            with self._lock:
                self.evictions += int(evicted)
