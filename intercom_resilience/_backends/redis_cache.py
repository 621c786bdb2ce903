"""The stale cache in Redis: one cache shared by every process of a fleet.

Same keys, tags, per-entry cap, stale window and byte budget as :class:`MemoryCache`, kept by
three small Lua scripts so that every operation is one atomic round trip.

Layout (``P`` is the optional ``prefix``)
    * ``P`` + key — the entry (``ir:cache:<scope>:<sha256>``), a string with a Redis TTL equal to
      what is left of the stale window: Redis itself forgets entries that are too old to serve.
    * ``P ir:cache-tag:<tag>`` — a set of the entry names carrying the tag; its TTL is pushed to
      one stale window after the last entry joined it, so it never outlives its members.
    * ``P ir:cache-meta:lru`` — a sorted set of entry names scored by last use (Redis server
      time in microseconds, so clock skew between hosts does not matter; kept strictly
      increasing by ``P ir:cache-meta:clock``): the LRU order.
    * ``P ir:cache-meta:entries`` — a hash: entry name → ``[size, [tag names]]``.
    * ``P ir:cache-meta:bytes`` — the sum of the stored entries' sizes.

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
    failure logs ``cache.redis_unavailable`` (warning) and makes the cache skip Redis for a few
    seconds so a dead server does not add a timeout to every call; the first success after that
    logs ``cache.redis_recovered``. Socket timeouts are short and redis-py's own retries are off:
    a cache is only worth consulting when it answers fast.

Processes sharing a Redis cache should share one :class:`CachePolicy`: the budget is enforced
with the policy of whichever process writes.

One standalone Redis server, reached by ``redis_url`` (behind a Sentinel-managed primary, give
an address that follows fail-over). Not Redis Cluster: the scripts touch keys they discover, which
Cluster forbids.
"""

from __future__ import annotations

import asyncio
import json
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .._clock import Clock
from .._config import CachePolicy
from .._core.cache import entry_size, is_servable
from .._events import EventLog
from ..events import RedisRecovered, RedisUnavailable
from .base import CachedResponse

__all__ = ["RedisCache"]

_T = TypeVar("_T")

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


def _import_redis() -> Any:
    try:
        import redis
    except ImportError as exc:
        raise ImportError(
            "The Redis cache backend needs redis-py: pip install 'intercom-resilience[redis]'"
        ) from exc
    return redis


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
        prefix: prepended to every Redis key this cache uses (tests, or several apps per server).
        socket_timeout: seconds for connecting and for each command.

    Raises:
        ImportError: redis-py is not installed (install the ``redis`` extra).
    """

    #: Seconds to leave Redis alone after a failure before trying it again.
    RETRY_INTERVAL = 5.0
    #: Default connect and command timeout, in seconds.
    SOCKET_TIMEOUT = 0.25

    def __init__(
        self,
        policy: CachePolicy,
        redis_url: str,
        clock: Clock,
        events: EventLog | None = None,
        prefix: str = "",
        socket_timeout: float | None = None,
    ) -> None:
        self._redis = _import_redis()  # fail at construction, not at the first outage
        self._policy = policy
        self._url = redis_url
        self._clock = clock
        self._events = events
        self._prefix = prefix
        self._timeout = self.SOCKET_TIMEOUT if socket_timeout is None else socket_timeout
        self._lru = f"{prefix}ir:cache-meta:lru"
        self._meta = f"{prefix}ir:cache-meta:entries"
        self._total = f"{prefix}ir:cache-meta:bytes"
        self._stamp = f"{prefix}ir:cache-meta:clock"
        self._lock = threading.Lock()
        self._sync: Any = None
        self._sync_scripts: dict[str, Any] = {}
        self._async: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[Any, dict[str, Any]]
        ]
        self._async = weakref.WeakKeyDictionary()
        self._available = True
        self._skip_until = 0.0
        #: Entries evicted by this process's puts to respect the budgets.
        self.evictions = 0

    # ------------------------------------------------------------------------------ protocol

    def get(self, key: str) -> CachedResponse | None:
        """The entry under *key*, if present and within the stale window (``None`` on errors)."""
        raw = self._run(lambda: self._script("get")(keys=[self._name(key), self._lru, self._stamp]))
        return self._decode(raw)

    async def aget(self, key: str) -> CachedResponse | None:
        """Async twin of :meth:`get`."""
        raw = await self._arun(
            lambda scripts: scripts["get"](keys=[self._name(key), self._lru, self._stamp])
        )
        return self._decode(raw)

    def put(self, key: str, entry: CachedResponse, resources: tuple[str, ...]) -> None:
        """Store *entry* (skipped when over ``max_entry_bytes`` or already too old)."""
        call = self._put_call(key, entry, resources)
        if call is None:
            return
        keys, args = call
        evicted = self._run(lambda: self._script("put")(keys=keys, args=args))
        self._count_evictions(evicted)

    async def aput(self, key: str, entry: CachedResponse, resources: tuple[str, ...]) -> None:
        """Async twin of :meth:`put`."""
        call = self._put_call(key, entry, resources)
        if call is None:
            return
        keys, args = call
        evicted = await self._arun(lambda scripts: scripts["put"](keys=keys, args=args))
        self._count_evictions(evicted)

    def invalidate(self, resources: tuple[str, ...]) -> int:
        """Drop every entry tagged with any of *resources* (``0`` when Redis is unavailable)."""
        if not resources:
            return 0
        keys = self._invalidate_keys(resources)
        dropped = self._run(lambda: self._script("invalidate")(keys=keys))
        return int(dropped or 0)

    async def ainvalidate(self, resources: tuple[str, ...]) -> int:
        """Async twin of :meth:`invalidate`."""
        if not resources:
            return 0
        keys = self._invalidate_keys(resources)
        dropped = await self._arun(lambda scripts: scripts["invalidate"](keys=keys))
        return int(dropped or 0)

    # ------------------------------------------------------------------------------ extras

    @property
    def available(self) -> bool:
        """Whether the last attempt to use Redis succeeded."""
        return self._available

    def stats(self) -> dict[str, Any]:
        """Entries and bytes as accounted in Redis (empty when Redis is unavailable)."""
        client = self._client()

        def read() -> dict[str, Any]:
            pipe = client.pipeline(transaction=False)
            pipe.zcard(self._lru)
            pipe.get(self._total)
            entries, used = pipe.execute()
            return {
                "entries": int(entries),
                "bytes": int(used or 0),
                "max_entries": self._policy.max_entries,
                "max_bytes": self._policy.max_bytes,
            }

        return self._run(read) or {}

    def close(self) -> None:
        """Close the sync client's connections (the async ones: :meth:`aclose`)."""
        with self._lock:
            client, self._sync = self._sync, None
            self._sync_scripts = {}
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close the async client of the running event loop (and the sync client)."""
        entry = self._async.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            await entry[0].aclose()
        self.close()

    def __repr__(self) -> str:
        state = "available" if self._available else "unavailable"
        return f"RedisCache(prefix={self._prefix!r}, {state})"

    # ------------------------------------------------------------------------------ internals

    def _name(self, key: str) -> str:
        return self._prefix + key

    def _tag_name(self, tag: str) -> str:
        return f"{self._prefix}ir:cache-tag:{tag}"

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
        tags = [self._tag_name(tag) for tag in dict.fromkeys(resources)]
        keys = [self._name(key), self._lru, self._meta, self._total, self._stamp, *tags]
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

    def _invalidate_keys(self, resources: tuple[str, ...]) -> list[str]:
        tags = [self._tag_name(tag) for tag in dict.fromkeys(resources)]
        return [self._lru, self._meta, self._total, *tags]

    def _decode(self, raw: Any) -> CachedResponse | None:
        if raw is None:
            return None
        try:
            entry = decode_entry(bytes(raw))
        except (ValueError, KeyError, TypeError):
            return None  # not ours, or from an incompatible version: a miss, not an error
        if not is_servable(entry.stored_at, self._clock.time(), self._policy.stale_window):
            return None
        return entry

    def _count_evictions(self, evicted: Any) -> None:
        if evicted:
            with self._lock:
                self.evictions += int(evicted)

    def _connection_kwargs(self) -> dict[str, Any]:
        return {
            "socket_timeout": self._timeout,
            "socket_connect_timeout": self._timeout,
            "retry_on_timeout": False,
        }

    def _client(self) -> Any:
        with self._lock:
            if self._sync is None:
                redis = self._redis
                from redis.backoff import NoBackoff
                from redis.retry import Retry

                client = redis.Redis.from_url(
                    self._url, retry=Retry(NoBackoff(), 0), **self._connection_kwargs()
                )
                self._sync_scripts = {
                    "get": client.register_script(_GET),
                    "put": client.register_script(_PUT),
                    "invalidate": client.register_script(_INVALIDATE),
                }
                self._sync = client
            return self._sync

    def _script(self, name: str) -> Any:
        self._client()
        return self._sync_scripts[name]

    def _async_scripts(self) -> dict[str, Any]:
        # One client per event loop: redis.asyncio connections belong to the loop that opened them.
        loop = asyncio.get_running_loop()
        entry = self._async.get(loop)
        if entry is None:
            import redis.asyncio as aioredis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            client = aioredis.Redis.from_url(
                self._url, retry=Retry(NoBackoff(), 0), **self._connection_kwargs()
            )
            scripts = {
                "get": client.register_script(_GET),
                "put": client.register_script(_PUT),
                "invalidate": client.register_script(_INVALIDATE),
            }
            entry = (client, scripts)
            self._async[loop] = entry
        return entry[1]

    def _should_try(self) -> bool:
        return self._available or self._clock.monotonic() >= self._skip_until

    def _run(self, op: Callable[[], _T]) -> _T | None:
        if not self._should_try():
            return None
        try:
            result = op()
        except Exception as exc:  # any failure of the cache must degrade, never fail the call
            self._failed(exc)
            return None
        self._succeeded()
        return result

    async def _arun(self, op: Callable[[dict[str, Any]], Awaitable[_T]]) -> _T | None:
        if not self._should_try():
            return None
        try:
            result = await op(self._async_scripts())
        except Exception as exc:  # any failure of the cache must degrade, never fail the call
            self._failed(exc)
            return None
        self._succeeded()
        return result

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            self._skip_until = self._clock.monotonic() + self.RETRY_INTERVAL
            was_available, self._available = self._available, False
        if was_available and self._events is not None:
            self._events.emit(
                RedisUnavailable(
                    "cache",
                    error=type(exc).__name__,
                    detail=str(exc)[:200],
                    retry_in_s=self.RETRY_INTERVAL,
                )
            )

    def _succeeded(self) -> None:
        if self._available:
            return
        with self._lock:
            was_available, self._available = self._available, True
        if not was_available and self._events is not None:
            self._events.emit(RedisRecovered("cache", downtime_s=0.0))
