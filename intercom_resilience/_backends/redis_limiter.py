"""The Redis rate limiter: one budget for every process of a fleet.

The decision is the one of :mod:`intercom_resilience._core.limiter` (GCRA pacing under an exact
sliding-window cap, re-synchronised by the server's headers), transcribed to Lua so that it runs
atomically inside Redis: **one script call, one round trip, per acquire**. The script reads the
time from Redis itself (``TIME``), so clock skew between hosts does not matter, and uses the same
integer-microsecond arithmetic as the Python core (a test runs both on the same operations and
compares every answer).

**Observations ride on the next acquire.** A response's rate headers are buffered in the process
and carried as arguments of the next acquire's script call, which applies them first, in order, at
their own time: so a call costs one round trip, not two. Two kinds of news cannot wait for this
process's next call, because the rest of the fleet must stop now: a 429 and a remaining count of
zero are sent at once (with whatever is buffered before them). A routine observation no acquire
carries within ``observe_flush_after`` (0.1 s) is sent on its own by a short-lived background
thread, and :meth:`RedisLimiter.close` sends what is left. See ``docs/fleet.md``.

Keys (a Redis string per bucket, under a configurable prefix)::

    <prefix>:{<workspace_scope>}:app:<scope>     app bucket + the server's window view + 429 block
    <prefix>:{<workspace_scope>}:workspace       workspace bucket, shared by every app of it

``scope`` is a fingerprint of the credentials, never the token. The ``{…}`` hash tag keeps both keys
of one script in one Redis Cluster slot. A bucket is an 80-byte header (ten doubles: GCRA time,
ring head, counted total, the current slot's count, last time, expiry, and the app's server view)
followed by the ring of slot counts; the hot path reads and rewrites the header only
(``GETRANGE``/``SETRANGE``, five commands in all with ``TIME``). Expiry is kept past the moment
the state stops mattering (the last slot leaves the window, the GCRA time and any server block have
passed) by between half a second and a second and a half, refreshed by ``PEXPIRE`` only when that
margin runs low (about once a second, not on every call), so idle scopes vanish on their own.

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

import struct
import threading
import time
from collections.abc import Sequence
from typing import Any, Final

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

__all__ = [
    "DEFAULT_KEY_PREFIX",
    "DEFAULT_OBSERVE_FLUSH",
    "LIMITER_SCRIPT",
    "MAX_CARRIED",
    "RedisLimiter",
    "decode_bucket",
    "limiter_script",
]

#: The limiter's one script; :func:`limiter_script` prepends the policy's constants (tables ``A``
#: and ``WS``: quota, window, interval, tolerance, slot, span, ring, bgcap, all integer µs or
#: counts; ``RESERVE``, ``HORIZON``). KEYS: app, workspace. ARGV: now_us (-1: Redis ``TIME``),
#: mode (``0`` interactive, ``1`` background, ``o`` observe only), carry, then five per carried
#: observation: now_us, status, remaining, reset_us, limit (-1: none). Returns
#: ``{granted, wait_us, remaining, now_us}``, or now_us in observe-only mode.
LIMITER_SCRIPT = r"""
-- State: one Redis string per bucket. An 80-byte header of ten doubles (integers, exact below
-- 2^53), then the ring of the sliding cap: one double per slot. The hot path reads and rewrites
-- the header only (GETRANGE/SETRANGE keep the key's expiry); the ring is touched when the slot
-- changes (the finished slot's count goes in) and when the cap refuses (it is walked).
local HDR, HLEN = '<dddddddddd', 80
local ZERO = struct.pack('<d', 0)
-- An expiry is refreshed when less than MARGIN is left past the moment the state stops mattering,
-- and then set KEEP past it: so PEXPIRE runs about once a second, not on every call.
local MARGIN, KEEP = 500000, 1500000

local server_now
local function clock(arg)
  local now = tonumber(arg)
  if now < 0 then
    if not server_now then
      local t = redis.call('TIME')
      server_now = tonumber(t[1]) * 1000000 + tonumber(t[2])
    end
    now = server_now
  end
  return now
end

local function load(key, s)
  local b = {key = key, s = s}
  local raw = redis.call('GETRANGE', key, 0, HLEN - 1)
  if #raw < HLEN then
    b.tat, b.head, b.total, b.cur, b.last, b.x = 0, -1, 0, 0, 0, 0
    b.blk, b.sr, b.sa, b.sl = 0, 0, 0, 0
    b.fresh = true
  else
    b.tat, b.head, b.total, b.cur, b.last, b.x, b.blk, b.sr, b.sa, b.sl = struct.unpack(HDR, raw)
  end
  return b
end

-- The counts of n consecutive slots from slot i (a string of 8n bytes, wrapping the ring).
local function read(b, i, n)
  local ring, first = b.s.ring, i % b.s.ring
  local at = HLEN + first * 8
  if first + n <= ring then return redis.call('GETRANGE', b.key, at, at + n * 8 - 1) end
  return redis.call('GETRANGE', b.key, at, HLEN + ring * 8 - 1)
    .. redis.call('GETRANGE', b.key, HLEN, HLEN + (first + n - ring) * 8 - 1)
end

-- Write the counts of consecutive slots from slot i.
local function write(b, i, bytes)
  local ring, first = b.s.ring, i % b.s.ring
  local at, k = HLEN + first * 8, ring - first
  if first + #bytes / 8 <= ring then
    redis.call('SETRANGE', b.key, at, bytes)
  else
    redis.call('SETRANGE', b.key, at, string.sub(bytes, 1, k * 8))
    redis.call('SETRANGE', b.key, HLEN, string.sub(bytes, k * 8 + 1))
  end
end

-- Move to the slot of now. The current slot's count lives in the header (cur); ring entries hold
-- the finished slots head - span .. head - 1 (the head's own entry is stale until it finishes).
local function advance(b, now)
  local slot = math.floor(now / b.s.slot)
  local head = b.head
  if slot <= head then return end
  b.head = slot
  if b.fresh then return end
  if head < 0 or slot - head >= b.s.ring then
    b.total, b.cur, b.zero = 0, 0, true
    return
  end
  -- Slots head+1 .. slot take the entries of the slots that leave the counted range.
  local k = slot - head
  local gone = read(b, head + 1, k)
  for j = 0, k - 1 do b.total = b.total - struct.unpack('<d', gone, j * 8 + 1) end
  write(b, head, struct.pack('<d', b.cur) .. string.rep(ZERO, k - 1))
  b.cur = 0
end

local function wait_us(b, now, bg)
  advance(b, now)
  local s = b.s
  local tolerance, cap = s.tolerance, s.quota
  if bg then tolerance, cap = 0, s.bgcap end
  local w = 0
  local lag = b.tat - now
  if lag > tolerance then w = lag - tolerance end
  if b.total >= cap then
    -- Slot j stops being counted at slot j + span + 1: walk from the oldest counted slot until
    -- enough admissions drop out to leave room for one more.
    local need = b.total + 1 - cap
    local first = b.head - s.span
    local counts
    if not (b.fresh or b.zero) then counts = read(b, first, s.span) end
    local dropped = 0
    local cw = (b.head + 1) * s.slot + s.window - now
    for j = first, b.head do
      if j == b.head then
        dropped = dropped + b.cur
      elseif counts then
        dropped = dropped + struct.unpack('<d', counts, (j - first) * 8 + 1)
      end
      if dropped >= need then
        cw = (j + s.span + 1) * s.slot - now
        break
      end
    end
    if cw > w then w = cw end
  end
  return w
end

local function take(b, now, count)
  b.cur = b.cur + count
  b.total = b.total + count
  b.tat = math.max(b.tat, now) + count * b.s.interval
end

local function save(b, now)
  local s = b.s
  local until_us = math.max(b.tat, (b.head + s.span + 1) * s.slot, b.sr, b.blk)
  local ttl
  if b.fresh or b.zero or until_us + MARGIN > b.x then
    ttl = math.max(1000, math.ceil((until_us + KEEP - now) / 1000))
    b.x = now + ttl * 1000
  end
  local header = struct.pack(HDR, b.tat, b.head, b.total, b.cur, now, b.x, b.blk, b.sr, b.sa, b.sl)
  if b.fresh or b.zero then
    redis.call('SET', b.key, header .. string.rep(ZERO, s.ring), 'PX', ttl)
  else
    redis.call('SETRANGE', b.key, 0, header)
    if ttl then redis.call('PEXPIRE', b.key, ttl) end
  end
end

-- A response's news, as DualLimiter.observe takes it (only the app key holds the server's view).
local function observe(b, t, status, remaining, reset, limit)
  local window = A.window
  if reset >= 0 then reset = math.min(reset, t + HORIZON * window) else reset = nil end
  if status == 429 then
    -- The server window is spent: block until it resets; one window when unknown, one slot when
    -- already past (our clock is ahead of Intercom's: its next window is about to start).
    local until_us = t + window
    if reset then
      if reset > t then until_us = reset else until_us = t + A.slot end
    end
    if until_us > b.blk then b.blk = until_us end
    return
  end
  if remaining < 0 then return end
  if not reset then
    if t < b.sr then reset = b.sr else reset = t + window end
  end
  if reset <= t then return end
  if t >= b.sr or reset > b.sr then
    -- A new server window starts from the server's figure (the buckets still bound it).
    b.sr, b.sa = reset, remaining
    if limit > 0 then b.sl = limit end
  elseif reset == b.sr and remaining < b.sa then
    -- The same window: remaining only goes down (other apps spend the workspace quota too).
    b.sa = remaining
  end
end

local app = load(KEYS[1], A)
local mode = ARGV[2]
local last = app.last
local ws
if mode ~= 'o' then
  ws = load(KEYS[2], WS)
  if ws.last > last then last = ws.last end
end
-- Responses observed since this process's last call, in the order they arrived.
for i = 4, #ARGV, 5 do
  last = math.max(clock(ARGV[i]), last)
  observe(app, last, tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3]),
    tonumber(ARGV[i + 4]))
end
if mode == 'o' then
  save(app, last)
  return last
end

local now = math.max(clock(ARGV[1]), last)
local bg = mode == '1'
local carry = tonumber(ARGV[3])
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
    if limit <= 0 then limit = A.quota end
    floor = math.min(limit - 1, math.max(0, math.ceil(RESERVE * limit - 1e-9)))
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
save(app, now)
save(ws, now)

local remaining = 0
if app.blk <= now then
  remaining = math.min(A.quota - app.total, WS.quota - ws.total)
  if windowed then remaining = math.min(remaining, app.sa) end
  remaining = math.max(remaining, 0)
end
return {granted, wait, remaining, now}
"""


def _lua_bucket(spec: BucketSpec) -> str:
    return (
        f"{{quota = {spec.quota}, window = {spec.window_us}, interval = {spec.interval_us}, "
        f"tolerance = {spec.tolerance_us}, slot = {spec.slot_us}, span = {spec.span}, "
        f"ring = {spec.span + 1}, bgcap = {spec.background_cap}}}"
    )


def limiter_script(app: BucketSpec, workspace: BucketSpec, reserve: float) -> Script:
    """:data:`LIMITER_SCRIPT` with *app*'s, *workspace*'s and the reserve's numbers built in.

    Constants in the source, not arguments: Redis and redis-py then parse four arguments per call,
    not nineteen (every policy gets its own script, loaded once).
    """
    constants = (
        f"local A = {_lua_bucket(app)}\n"
        f"local WS = {_lua_bucket(workspace)}\n"
        f"local RESERVE, HORIZON = {reserve!r}, {MAX_RESET_WINDOWS}\n"
    )
    return Script(constants + LIMITER_SCRIPT)


_HEADER = struct.Struct("<10d")
_HEADER_FIELDS = (
    "tat",
    "head",
    "total",
    "current",
    "last",
    "expires",
    "blocked_until",
    "reset",
    "allow",
    "limit",
)


def decode_bucket(raw: bytes | None) -> dict[str, int]:
    """The header of one bucket key as stored by :data:`LIMITER_SCRIPT` (for tests and
    debugging): GCRA time, ring head slot, admissions counted, … (all ``0`` for a missing key)."""
    if not raw or len(raw) < _HEADER.size:
        return dict.fromkeys(_HEADER_FIELDS, 0)
    values = _HEADER.unpack_from(raw)
    return {name: int(value) for name, value in zip(_HEADER_FIELDS, values, strict=True)}


#: Seconds a routine observation may wait for the next acquire to carry it before it is sent on
#: its own (by a short-lived background thread).
DEFAULT_OBSERVE_FLUSH: Final = 0.1
#: Observations carried at most by one script call (a burst of responses beyond it is sent).
MAX_CARRIED: Final = 8
# The flusher thread ends after this many idle ticks (the next observation starts another).
_FLUSHER_IDLE_TICKS: Final = 20
_NO_OBSERVATIONS: Final[tuple[bytes, ...]] = ()


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
        observe_flush_after: seconds (real time) a routine observation waits for an acquire to
            carry it before a background thread sends it alone; ``None``: only acquires,
            :meth:`close` and urgent observations send them (deterministic tests).
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
        observe_flush_after: float | None = DEFAULT_OBSERVE_FLUSH,
    ) -> None:
        if observe_flush_after is not None and not observe_flush_after > 0:
            raise ValueError(f"observe_flush_after must be > 0, got {observe_flush_after!r}")
        self.policy = policy
        self.events = events if events is not None else EventLog()
        self._clock = clock
        self._use_server_time = use_server_time
        workspace = workspace_scope if workspace_scope is not None else scope
        self.keys = KeyScheme(key_prefix).limiter(scope, workspace)
        app = BucketSpec.from_policy(policy, policy.app_per_minute)
        self._script = limiter_script(
            app,
            BucketSpec.from_policy(policy, policy.workspace_per_minute),
            policy.background_reserve,
        )
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
        # Routine observations waiting for the next script call (five arguments each).
        self._pending: list[bytes] = []
        self._pending_at = 0.0
        self._flush_after = observe_flush_after
        self._flusher: threading.Thread | None = None
        self._closed = threading.Event()

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

    def _now_arg(self) -> bytes:
        return b"-1" if self._use_server_time else str(to_micros(self._clock.time())).encode()

    def _acquire_args(
        self, priority: Priority, carry: int | None, carried: Sequence[bytes]
    ) -> list[bytes]:
        background = b"1" if priority is Priority.BACKGROUND else b"0"
        carry_arg = b"0" if not carry else str(carry).encode()
        return [self._now_arg(), background, carry_arg, *carried]

    def _observation(self, status: int | None, info: RateLimitInfo | None) -> list[bytes]:
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
            str(-1 if status is None else status).encode(),
            str(remaining).encode(),
            str(reset).encode(),
            str(limit).encode(),
        ]

    def _grant(self, reply: Sequence[Any]) -> Grant:
        granted = bool(int(reply[0]))
        if granted:
            # Count it locally too, so a fallback would start from this process's recent use.
            self.fallback.consume(1)
        return Grant(granted, int(reply[1]) / MICROS, float(reply[2]))

    # ------------------------------------------------------------------ observations

    def _take_pending(self) -> Sequence[bytes]:
        """The buffered observations, now owned by the caller's script call."""
        if not self._pending:  # the common case costs one attribute read, no lock
            return _NO_OBSERVATIONS
        with self._lock:
            pending, self._pending = self._pending, []
        return pending

    def _news(self, status: int | None, info: RateLimitInfo | None) -> list[bytes] | None:
        """What to send for a response: ``None`` when it changes nothing in Redis, or when it can
        wait (it is then buffered for the next acquire); else the observations to send now."""
        # The fallback always learns too, so that a failover in the middle of a 429 stays blocked.
        self.fallback.observe(status, info)
        remaining = info.remaining if info is not None else None
        if (status != 429 and remaining is None) or not self._link.available:
            return None  # network failures and responses without a count change nothing
        observation = self._observation(status, info)
        urgent = status == 429 or remaining == 0
        with self._lock:
            if not urgent and len(self._pending) < 5 * MAX_CARRIED:
                if not self._pending:
                    self._pending_at = time.monotonic()
                self._pending.extend(observation)
                self._start_flusher()
                return None
            # A 429 or an empty window: the fleet must stop now, not at this process's next call.
            pending, self._pending = self._pending, []
        pending.extend(observation)
        return pending

    def _start_flusher(self) -> None:
        # Called under self._lock.
        if self._flush_after is None or self._flusher is not None or self._closed.is_set():
            return
        self._flusher = threading.Thread(
            target=self._flush_loop, name="intercom-resilience-limiter-flush", daemon=True
        )
        self._flusher.start()

    def _flush_loop(self) -> None:
        assert self._flush_after is not None
        idle = 0
        while not self._closed.wait(self._flush_after):
            with self._lock:
                due = bool(self._pending) and (
                    time.monotonic() - self._pending_at >= self._flush_after
                )
                if not self._pending:
                    idle += 1
                    if idle >= _FLUSHER_IDLE_TICKS:
                        self._flusher = None
                        return
                else:
                    idle = 0
            if due:
                self.flush()
        with self._lock:
            self._flusher = None

    def flush(self) -> None:
        """Send the buffered observations now (one round trip; nothing when none are buffered)."""
        pending = self._take_pending()
        if pending:
            self._link.call(self._script, self.keys, [b"-1", b"o", b"0", *pending])

    async def aflush(self) -> None:
        """Async twin of :meth:`flush`."""
        pending = self._take_pending()
        if pending:
            await self._link.acall(self._script, self.keys, [b"-1", b"o", b"0", *pending])

    # ------------------------------------------------------------------ LimiterBackend

    def acquire(self, priority: Priority = Priority.INTERACTIVE) -> Grant:
        """Take one token from both shared buckets (one round trip), or say how long to wait.

        The responses observed since the last call ride along. Falls back to the local share
        while Redis is unavailable; never raises because of Redis.
        """
        carry = self._carry()
        args = self._acquire_args(priority, carry, self._take_pending())
        reply = self._link.call(self._script, self.keys, args)
        return self._answer(reply, carry, priority)

    async def aacquire(self, priority: Priority = Priority.INTERACTIVE) -> Grant:
        """Async twin of :meth:`acquire`."""
        carry = self._carry()
        args = self._acquire_args(priority, carry, self._take_pending())
        reply = await self._link.acall(self._script, self.keys, args)
        return self._answer(reply, carry, priority)

    def observe(self, status: int | None, info: RateLimitInfo | None) -> None:
        """Feed back a response. A 429 or a remaining count of zero is sent at once (one round
        trip); other rate headers ride on the next acquire (none of their own)."""
        news = self._news(status, info)
        if news:
            self._link.call(self._script, self.keys, [b"-1", b"o", b"0", *news])

    async def aobserve(self, status: int | None, info: RateLimitInfo | None) -> None:
        """Async twin of :meth:`observe`."""
        news = self._news(status, info)
        if news:
            await self._link.acall(self._script, self.keys, [b"-1", b"o", b"0", *news])

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Send buffered observations and close the sync client's connections (the async
        ones: :meth:`aclose`)."""
        self._closed.set()
        self.flush()
        self._link.close()

    async def aclose(self) -> None:
        """Send buffered observations and close the running loop's async client (and the sync
        client)."""
        self._closed.set()
        await self.aflush()
        await self._link.aclose()

    def __repr__(self) -> str:
        state = "available" if self.available else "fallback"
        return f"RedisLimiter(keys={self.keys!r}, {state})"
