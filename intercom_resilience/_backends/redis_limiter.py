"""The Redis rate limiter: one budget for every process of a fleet.

The decision is the one of :mod:`intercom_resilience._core.limiter` (GCRA pacing under an exact
sliding-window cap, re-synchronised by the server's headers), transcribed to Lua so that it runs
atomically inside Redis: **one script call, one round trip, per acquire**, and one per observed
response. The scripts read the time from Redis itself (``TIME``), so clock skew between hosts does
not matter, and use the same integer-microsecond arithmetic as the Python core (a test runs both on
the same operations and compares every answer).

Keys (a Redis hash per bucket, under a configurable prefix)::

    <prefix>:{<workspace_scope>}:app:<scope>     app bucket + the server's window view + 429 block
    <prefix>:{<workspace_scope>}:workspace       workspace bucket, shared by every app of it

``scope`` is a fingerprint of the credentials, never the token. The ``{…}`` hash tag keeps both keys
of one script in one Redis Cluster slot. Every write sets ``PEXPIRE`` to the moment the state stops
mattering (the last slot leaves the window, the GCRA time and any server block have passed), plus a
second, so idle scopes vanish on their own.

When Redis is unreachable, slow (short socket timeouts, no client-side retries) or answers with an
error, the limiter falls back to a conservative local share of the quota
(``RateLimitPolicy.redis_fallback_share``) held in memory, logs the transition once
(``limiter.redis_unavailable``), tries Redis again at most every ``retry_interval`` seconds, and
logs ``limiter.redis_recovered`` when it answers. It never raises to the caller because Redis is
down. Both directions of the hand-over are counted: calls Redis admitted are also recorded
locally (so the fallback starts from this process's recent use), and calls admitted locally
during the outage are added to the shared buckets by the first successful acquire (so the fleet's
budget learns of them).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from .._clock import Clock
from .._config import RateLimitPolicy
from .._core.limiter import MAX_RESET_WINDOWS, MICROS, BucketSpec, to_micros
from .._core.responses import RateLimitInfo
from .._events import EventLog
from ._redis import (
    DEFAULT_KEY_PREFIX,
    DEFAULT_RETRY_INTERVAL,
    DEFAULT_SOCKET_TIMEOUT,
    MISSED,
    KeyScheme,
    RedisLink,
    Script,
    redis,
)
from .base import Grant, Priority
from .memory_limiter import MemoryLimiter

__all__ = ["ACQUIRE_SCRIPT", "DEFAULT_KEY_PREFIX", "OBSERVE_SCRIPT", "RedisLimiter"]

# Shared by both scripts: number parsing, exact integer formatting (Lua's default %.14g would
# round microsecond timestamps), and the app key's server fields.
_LUA_COMMON = r"""
local function num(v, default)
  if v then return tonumber(v) end
  return default
end
local function fmt(x) return string.format('%.0f', x) end
local function clock(arg)
  local now = tonumber(arg)
  if now < 0 then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  end
  return now
end
-- Keep a key until the state in it stops mattering, plus a second; never shorten its life.
local function expire(key, now, until_us, known)
  local ttl = math.ceil((until_us - now) / 1000) + 1000
  if not known then
    local current = redis.call('PTTL', key)
    if current > ttl then ttl = current end
  end
  redis.call('PEXPIRE', key, fmt(ttl))
end
"""

#: KEYS: app, workspace. ARGV: now_us (-1: Redis TIME), background (0/1), carry, reserve, then the
#: app and workspace specs (quota, window_us, interval_us, tolerance_us, slot_us, span,
#: background_cap). Returns {granted, wait_us, remaining, now_us}.
ACQUIRE_SCRIPT = (
    _LUA_COMMON
    + r"""
local function spec(base)
  return {
    quota = tonumber(ARGV[base]), window = tonumber(ARGV[base + 1]),
    interval = tonumber(ARGV[base + 2]), tolerance = tonumber(ARGV[base + 3]),
    slot = tonumber(ARGV[base + 4]), span = tonumber(ARGV[base + 5]),
    bgcap = tonumber(ARGV[base + 6]),
  }
end

local function load(key, s)
  local v = redis.call('HMGET', key, 'tat', 'head', 'total', 'last', 'blk', 'sr', 'sa', 'sl')
  return {
    key = key, s = s, ring = s.span + 1,
    tat = num(v[1], 0), head = num(v[2], -1), total = num(v[3], 0), last = num(v[4], 0),
    blk = num(v[5], 0), sr = num(v[6], 0), sa = num(v[7], 0), sl = num(v[8], 0),
  }
end

-- Move the ring to the slot of now, forgetting the slots that left the counted range.
local function advance(b, now)
  local slot = math.floor(now / b.s.slot)
  if slot <= b.head then return end
  if b.head < 0 or slot - b.head >= b.ring then
    if b.total > 0 then
      local fields = {}
      for i = 0, b.ring - 1 do fields[#fields + 1] = 'c' .. i end
      redis.call('HDEL', b.key, unpack(fields))
    end
    b.total = 0
  else
    for i = b.head + 1, slot do
      local field = 'c' .. (i % b.ring)
      local c = redis.call('HGET', b.key, field)
      if c then
        b.total = b.total - tonumber(c)
        redis.call('HDEL', b.key, field)
      end
    end
  end
  b.head = slot
end

local function wait_us(b, now, bg)
  advance(b, now)
  local tolerance = b.s.tolerance
  local cap = b.s.quota
  if bg then
    tolerance = 0
    cap = b.s.bgcap
  end
  local w = 0
  local lag = b.tat - now
  if lag > tolerance then w = lag - tolerance end
  if b.total >= cap then
    -- Slot j stops being counted at slot j + span + 1: walk from the oldest counted slot until
    -- enough admissions drop out to leave room for one more.
    local need = b.total + 1 - cap
    local first = b.head - b.s.span
    local fields = {}
    for j = first, b.head do fields[#fields + 1] = 'c' .. (j % b.ring) end
    local v = redis.call('HMGET', b.key, unpack(fields))
    local dropped = 0
    local cw = (b.head + 1) * b.s.slot + b.s.window - now
    for k = 1, #fields do
      dropped = dropped + num(v[k], 0)
      if dropped >= need then
        cw = (first + k + b.s.span) * b.s.slot - now
        break
      end
    end
    if cw > w then w = cw end
  end
  return w
end

local function take(b, now, count)
  redis.call('HINCRBY', b.key, 'c' .. (b.head % b.ring), count)
  b.total = b.total + count
  b.tat = math.max(b.tat, now) + count * b.s.interval
end

local function save(b, now, server)
  if server then
    redis.call('HSET', b.key, 'tat', fmt(b.tat), 'head', fmt(b.head), 'total', fmt(b.total),
      'last', fmt(now), 'sa', fmt(b.sa))
  else
    redis.call('HSET', b.key, 'tat', fmt(b.tat), 'head', fmt(b.head), 'total', fmt(b.total),
      'last', fmt(now))
  end
  -- Every field that matters is in hand here, so no PTTL is needed to avoid shortening.
  local until_us = math.max(b.tat, (b.head + b.s.span + 1) * b.s.slot, b.sr, b.blk)
  expire(b.key, now, until_us, true)
end

local app = load(KEYS[1], spec(5))
local ws = load(KEYS[2], spec(12))
local now = math.max(clock(ARGV[1]), app.last, ws.last)
local bg = ARGV[2] == '1'
local carry = tonumber(ARGV[3])
local reserve = tonumber(ARGV[4])

advance(app, now)
advance(ws, now)
if carry > 0 then
  -- Calls this process admitted on its own while Redis was away: they count here too.
  take(app, now, carry)
  take(ws, now, carry)
  if now < app.sr then app.sa = math.max(0, app.sa - carry) end
end

local wait = 0
if app.blk > now then wait = app.blk - now end
local windowed = now < app.sr
if windowed then
  local floor = 0
  if bg then
    local limit = app.sl
    if limit <= 0 then limit = app.s.quota end
    floor = math.min(limit - 1, math.max(0, math.ceil(reserve * limit - 1e-9)))
  end
  if app.sa <= floor then wait = math.max(wait, app.sr - now) end
end
wait = math.max(wait, wait_us(app, now, bg), wait_us(ws, now, bg))

local granted = 0
if wait == 0 then
  granted = 1
  take(app, now, 1)
  take(ws, now, 1)
  if windowed then app.sa = app.sa - 1 end
end
save(app, now, now < app.sr)
save(ws, now, false)

local remaining = 0
if app.blk <= now then
  remaining = math.min(app.s.quota - app.total, ws.s.quota - ws.total)
  if windowed then remaining = math.min(remaining, app.sa) end
  remaining = math.max(remaining, 0)
end
return {granted, wait, remaining, now}
"""
)

#: KEYS: app. ARGV: now_us (-1: Redis TIME), status (-1: none), remaining (-1: none), reset_us
#: (-1: none), limit (-1: none), window_us, horizon windows. Returns now_us.
OBSERVE_SCRIPT = (
    _LUA_COMMON
    + r"""
local key = KEYS[1]
local v = redis.call('HMGET', key, 'last', 'blk', 'sr', 'sa')
local now = math.max(clock(ARGV[1]), num(v[1], 0))
local blk, sr, sa = num(v[2], 0), num(v[3], 0), num(v[4], 0)
local status, remaining = tonumber(ARGV[2]), tonumber(ARGV[3])
local reset, limit = tonumber(ARGV[4]), tonumber(ARGV[5])
local window = tonumber(ARGV[6])
local horizon = now + tonumber(ARGV[7]) * window
if reset >= 0 then reset = math.min(reset, horizon) else reset = nil end

redis.call('HSET', key, 'last', fmt(now))
if status == 429 then
  -- The server window is spent: block until it resets; one window when unknown, one slot when
  -- already past (our clock is ahead of Intercom's: its next window is about to start).
  local until_us = now + window
  if reset then
    if reset > now then
      until_us = reset
    else
      until_us = now + math.max(1, math.ceil(window / 100))
    end
  end
  if until_us > blk then
    redis.call('HSET', key, 'blk', fmt(until_us))
    expire(key, now, until_us)
  end
  return now
end
if remaining < 0 then return now end
if not reset then
  if now < sr then reset = sr else reset = now + window end
end
if reset <= now then return now end
if now >= sr or reset > sr then
  -- A new server window starts from the server's figure (the buckets still bound it).
  redis.call('HSET', key, 'sr', fmt(reset), 'sa', fmt(remaining))
  if limit > 0 then redis.call('HSET', key, 'sl', fmt(limit)) end
  expire(key, now, reset)
elseif reset == sr and remaining < sa then
  -- The same window: remaining only goes down (other apps spend the workspace quota too).
  redis.call('HSET', key, 'sa', fmt(remaining))
end
return now
"""
)


_ACQUIRE = Script(ACQUIRE_SCRIPT)
_OBSERVE = Script(OBSERVE_SCRIPT)


def _spec_args(spec: BucketSpec) -> list[str]:
    return [
        str(spec.quota),
        str(spec.window_us),
        str(spec.interval_us),
        str(spec.tolerance_us),
        str(spec.slot_us),
        str(spec.span),
        str(spec.background_cap),
    ]


class RedisLimiter:
    """The app and workspace buckets of one client, held in Redis and shared by every process.

    Implements :class:`~.base.LimiterBackend`. Thread-safe; the async methods use one
    ``redis.asyncio`` client per event loop (see :mod:`._redis`).

    Args:
        policy: quotas, window, burst, background reserve and the fallback share.
        redis_url: where Redis lives (``redis://host:6379/0``, ``rediss://…``).
        scope: a fingerprint of the app's credentials (never the token), naming the app bucket.
        clock: the time source of the fallback limiter and the retry pauses.
        events: where ``limiter.redis_unavailable`` / ``limiter.redis_recovered`` go.
        workspace_scope: names the workspace bucket; give every app of one workspace the same
            value so they share the workspace quota. Defaults to *scope*.
        key_prefix: the first part of every key (:class:`~._redis.KeyScheme`).
        socket_timeout: seconds a connect or command may take before falling back.
        retry_interval: the longest pause between attempts to reach Redis again while falling
            back (the first is half a second; each failed attempt doubles it).
        use_server_time: read time from Redis (``TIME``); ``False`` uses *clock* instead, for
            deterministic tests on a virtual clock.
        client, async_client: ready-made clients to use instead of connecting to *redis_url*
            (their timeouts and retry settings are then the caller's business).
    """

    def __init__(
        self,
        policy: RateLimitPolicy,
        redis_url: str,
        scope: str,
        clock: Clock,
        events: EventLog | None = None,
        *,
        workspace_scope: str | None = None,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
        retry_interval: float = DEFAULT_RETRY_INTERVAL,
        use_server_time: bool = True,
        client: redis.Redis | None = None,
        async_client: redis.asyncio.Redis | None = None,
    ) -> None:
        self.policy = policy
        self.events = events if events is not None else EventLog()
        self._clock = clock
        self._use_server_time = use_server_time
        workspace = workspace_scope if workspace_scope is not None else scope
        self.keys = KeyScheme(key_prefix).limiter(scope, workspace)
        app = BucketSpec.from_policy(policy, policy.app_per_minute)
        self._window_us = app.window_us
        # Encoded once: redis-py would otherwise encode these 15 constants on every call.
        self._static_args = [
            arg.encode()
            for arg in (
                repr(policy.background_reserve),
                *_spec_args(app),
                *_spec_args(BucketSpec.from_policy(policy, policy.workspace_per_minute)),
            )
        ]
        self._link = RedisLink(
            "limiter",
            redis_url,
            clock,
            self.events,
            socket_timeout=socket_timeout,
            retry_interval=retry_interval,
            fallback_share=policy.redis_fallback_share,
            client=client,
            async_client=async_client,
        )
        self.fallback = MemoryLimiter(policy, clock, share=policy.redis_fallback_share)
        self._lock = threading.Lock()
        self._spent_alone = 0

    # ------------------------------------------------------------------ availability

    @property
    def available(self) -> bool:
        """Whether the last exchange with Redis succeeded (``False``: using the local share)."""
        return self._link.available

    def _carry(self) -> int | None:
        """What the fallback admitted alone and still counts, to add to Redis by a probe
        (``None``: Redis is up, nothing to carry)."""
        if not self._link.latch.probing:
            return None
        with self._lock:
            spent_alone = self._spent_alone
        return min(spent_alone, self.fallback.recent())

    def _local(self, priority: Priority) -> Grant:
        grant = self.fallback.acquire(priority)
        if grant.granted:
            with self._lock:
                self._spent_alone += 1
        return grant

    def _answer(self, reply: Any, carry: int | None, priority: Priority) -> Grant:
        if reply is MISSED:
            return self._local(priority)
        if carry is not None:
            with self._lock:  # the probe succeeded: Redis has counted them now
                self._spent_alone = 0
        return self._grant(reply)

    # ------------------------------------------------------------------ arguments and answers

    def _now_arg(self) -> str:
        return "-1" if self._use_server_time else str(to_micros(self._clock.time()))

    def _acquire_args(self, priority: Priority, carry: int | None) -> list[str | bytes]:
        background = b"1" if priority is Priority.BACKGROUND else b"0"
        return [self._now_arg(), background, str(carry or 0).encode(), *self._static_args]

    def _observe_args(self, status: int | None, info: RateLimitInfo | None) -> list[str]:
        remaining = reset = limit = -1
        if info is not None:
            if info.remaining is not None:
                remaining = info.remaining
            if info.reset_at is not None:
                reset = to_micros(info.reset_at)
            if info.limit is not None:
                limit = info.limit
        return [
            self._now_arg(),
            str(-1 if status is None else status),
            str(remaining),
            str(reset),
            str(limit),
            str(self._window_us),
            str(MAX_RESET_WINDOWS),
        ]

    def _grant(self, reply: Sequence[Any]) -> Grant:
        granted = bool(int(reply[0]))
        if granted:
            # Count it locally too, so a fallback would start from this process's recent use.
            self.fallback.consume(1)
        return Grant(granted, int(reply[1]) / MICROS, float(reply[2]))

    # ------------------------------------------------------------------ LimiterBackend

    def acquire(self, priority: Priority = Priority.INTERACTIVE) -> Grant:
        """Take one token from both shared buckets (one round trip), or say how long to wait.

        Falls back to the local share while Redis is unavailable; never raises because of Redis.
        """
        carry = self._carry()
        reply = self._link.call(_ACQUIRE, self.keys, self._acquire_args(priority, carry))
        return self._answer(reply, carry, priority)

    async def aacquire(self, priority: Priority = Priority.INTERACTIVE) -> Grant:
        """Async twin of :meth:`acquire`."""
        carry = self._carry()
        reply = await self._link.acall(_ACQUIRE, self.keys, self._acquire_args(priority, carry))
        return self._answer(reply, carry, priority)

    def observe(self, status: int | None, info: RateLimitInfo | None) -> None:
        """Feed back a response (one round trip when it carries news: a 429 or rate headers)."""
        # The fallback always learns too, so that a failover in the middle of a 429 stays blocked.
        self.fallback.observe(status, info)
        if self._has_news(status, info) and self._link.available:
            self._link.call(_OBSERVE, self.keys[:1], self._observe_args(status, info))

    async def aobserve(self, status: int | None, info: RateLimitInfo | None) -> None:
        """Async twin of :meth:`observe`."""
        self.fallback.observe(status, info)
        if self._has_news(status, info) and self._link.available:
            await self._link.acall(_OBSERVE, self.keys[:1], self._observe_args(status, info))

    @staticmethod
    def _has_news(status: int | None, info: RateLimitInfo | None) -> bool:
        # Network failures and responses without a remaining count change nothing in Redis.
        return status == 429 or (info is not None and info.remaining is not None)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the sync client's connections (the async ones: :meth:`aclose`)."""
        self._link.close()

    async def aclose(self) -> None:
        """Close the running loop's async client (and the sync client)."""
        await self._link.aclose()

    def __repr__(self) -> str:
        state = "available" if self.available else "fallback"
        return f"RedisLimiter(keys={self.keys!r}, {state})"
