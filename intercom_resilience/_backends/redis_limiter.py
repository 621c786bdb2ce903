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
of one script in one Redis Cluster slot. When the workspace is the app's own (no
``RateLimitPolicy.workspace`` named), the app key holds both buckets and the workspace key is not
used. A bucket is a header of doubles (GCRA time, ring head, counted total, the current slot's
count, last time, expiry, and for the app the server's view) followed by the ring of slot counts.
The hot path reads and rewrites the headers only (``GETRANGE``/``SETRANGE``, which keep the
expiry): ``TIME`` and two commands per acquire with one key, four with two. The expiry is kept
past the moment the state stops mattering (the last slot leaves the window, the GCRA time and any
server block have passed) by half a second to a second and a half, refreshed by ``PEXPIRE`` only
when that margin runs low (about once a second, not on every call), so idle scopes vanish on
their own.

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

#: The limiter's one script; :func:`limiter_script` prepends the policy's constants (``A_*`` and
#: ``W_*``: quota, window, interval, tolerance, slot, span, ring, bgcap, in integer µs or counts;
#: ``RESERVE``, ``HORIZON``). KEYS: app, workspace. ARGV: now_us (-1: Redis ``TIME``),
#: mode (``0`` interactive, ``1`` background, ``o`` observe only; ``0t``/``1t``: always the full
#: answer), carry, then five per carried observation: now_us, status, remaining, reset_us, limit
#: (-1: none). Returns the remaining count when granted, else ``{0, wait_us, remaining, now_us}``
#: (``{1, 0, remaining, now_us}`` for a grant in the ``t`` modes); now_us in observe-only mode.
LIMITER_SCRIPT = r"""
-- Written for Redis's Lua, where every command, table and closure costs a fraction of a
-- microsecond per call: the state lives in locals, the hot path is in line, and the functions are
-- the rarer steps (a new slot, a refusal by the cap).
--
-- A bucket is a header of doubles (integers, exact below 2^53): GCRA time, ring head slot, total
-- counted, the head slot's count, last time, expiry, and for the app bucket the server's view (429
-- block, window reset, allowance, limit); then a ring of one double per slot: the counts of the
-- finished slots head - span .. head - 1 (the head's own entry is stale until the head moves on
-- and writes its count there). With a workspace of its own (COMBINED) one key holds both buckets:
-- the two headers, the app ring, the workspace ring. Otherwise each bucket is a key: its header,
-- then its ring. GETRANGE and SETRANGE keep a key's expiry, so the hot path reads and rewrites
-- the headers only.
local call, pack, unpack = redis.call, struct.pack, struct.unpack
local max, ceil = math.max, math.ceil
local AHDR, WHDR, BOTH = '<dddddddddd', '<dddddd', '<dddddddddddddddd'
local ALEN, WLEN = 80, 48
local ZERO = pack('<d', 0)
-- An expiry is refreshed when less than MARGIN is left past the moment the state stops mattering,
-- and then set KEEP past it: PEXPIRE runs about once a second, not on every call.
local MARGIN, KEEP = 500000, 1500000
local akey, wkey = KEYS[1], KEYS[1]
local a_at, w_at = ALEN + WLEN, ALEN + WLEN + A_RING * 8  -- where each ring starts
if not COMBINED then wkey, a_at, w_at = KEYS[2], ALEN, WLEN end

-- The counts of n consecutive slots from slot i of the ring at byte `at` (8n bytes; it wraps).
local function read(key, at, ring, i, n)
  local first = i % ring
  local from = at + first * 8
  if first + n <= ring then return call('GETRANGE', key, from, from + n * 8 - 1) end
  return call('GETRANGE', key, from, at + ring * 8 - 1)
    .. call('GETRANGE', key, at, at + (first + n - ring) * 8 - 1)
end

-- Move a bucket from slot head to slot (> head). Returns head, total, cur, and whether the ring
-- is known to be all zeros.
local function advance(key, at, ring, head, total, cur, slot, fresh)
  if fresh then return slot, total, cur, true end
  if head < 0 or slot - head >= ring then
    call('SETRANGE', key, at, string.rep(ZERO, ring))  -- every counted slot has left
    return slot, 0, 0, true
  end
  -- Slots head+1 .. slot take the entries of the slots leaving the counted range; the finished
  -- head's count goes into its entry, and the slots skipped over were empty.
  local k = slot - head
  local gone = read(key, at, ring, head + 1, k)
  for j = 0, k - 1 do total = total - unpack('<d', gone, j * 8 + 1) end
  local bytes = pack('<d', cur) .. string.rep(ZERO, k - 1)
  local first = head % ring
  if first + k <= ring then
    call('SETRANGE', key, at + first * 8, bytes)
  else
    local split = (ring - first) * 8
    call('SETRANGE', key, at + first * 8, string.sub(bytes, 1, split))
    call('SETRANGE', key, at, string.sub(bytes, split + 1))
  end
  return slot, total, 0, false
end

-- The sliding cap's wait when total >= cap: slot j stops being counted at slot j + span + 1, so
-- walk from the oldest counted slot until enough admissions drop out to leave room for one more.
local function cap_wait(key, at, ring, span, slot_us, window, head, total, cur, cap, now, blank)
  local need = total + 1 - cap
  local first = head - span
  local counts
  if not blank then counts = read(key, at, ring, first, span) end
  local dropped = 0
  for j = first, head do
    if j == head then
      dropped = dropped + cur
    elseif counts then
      dropped = dropped + unpack('<d', counts, (j - first) * 8 + 1)
    end
    if dropped >= need then return (j + span + 1) * slot_us - now end
  end
  return (head + 1) * slot_us + window - now
end

-- The new expiry (µs) and TTL (ms) when the current one `x` runs low, else x and nil.
local function expiry(until_us, x, now, fresh)
  if not fresh and until_us + MARGIN <= x then return x, nil end
  local ttl = max(1000, ceil((until_us + KEEP - now) / 1000))
  return now + ttl * 1000, ttl
end

-- Redis's clock, read once (ARGV[1] and the observations' times are -1 then).
local server_now = -1
if ARGV[1] == '-1' then
  local t = call('TIME')
  server_now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local mode = ARGV[2]
local a_fresh, w_fresh = true, true
local a_tat, a_head, a_total, a_cur, a_last, a_x, blk, sr, sa, sl = 0, -1, 0, 0, 0, 0, 0, 0, 0, 0
local w_tat, w_head, w_total, w_cur, w_last, w_x = 0, -1, 0, 0, 0, 0
local raw
if COMBINED then
  raw = call('GETRANGE', akey, 0, ALEN + WLEN - 1)
  if #raw == ALEN + WLEN then
    a_fresh, w_fresh = false, false
    a_tat, a_head, a_total, a_cur, a_last, a_x, blk, sr, sa, sl,
      w_tat, w_head, w_total, w_cur, w_last, w_x = unpack(BOTH, raw)
  end
else
  raw = call('GETRANGE', akey, 0, ALEN - 1)
  if #raw == ALEN then
    a_fresh = false
    a_tat, a_head, a_total, a_cur, a_last, a_x, blk, sr, sa, sl = unpack(AHDR, raw)
  end
  if mode ~= 'o' then
    raw = call('GETRANGE', wkey, 0, WLEN - 1)
    if #raw == WLEN then
      w_fresh = false
      w_tat, w_head, w_total, w_cur, w_last, w_x = unpack(WHDR, raw)
    end
  end
end
local last = a_last
if w_last > last then last = w_last end

-- Responses observed since this process's last call, in the order they arrived, each at its own
-- time: DualLimiter.observe (the app bucket holds the server's view).
for i = 4, #ARGV, 5 do
  local t = tonumber(ARGV[i])
  if t < 0 then t = server_now end
  if t < last then t = last end
  last = t
  local status, remaining = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local reset, limit = tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4])
  if reset >= 0 then reset = math.min(reset, t + HORIZON * A_WINDOW) else reset = nil end
  if status == 429 then
    -- The server window is spent: block until it resets; one window when unknown, one slot when
    -- already past (our clock is ahead of Intercom's: its next window is about to start).
    local until_us = t + A_WINDOW
    if reset then
      if reset > t then until_us = reset else until_us = t + A_SLOT end
    end
    if until_us > blk then blk = until_us end
  elseif remaining >= 0 then
    if not reset then
      if t < sr then reset = sr else reset = t + A_WINDOW end
    end
    if reset > t then
      if t >= sr or reset > sr then
        -- A new server window starts from the server's figure (the buckets still bound it).
        sr, sa = reset, remaining
        if limit > 0 then sl = limit end
      elseif reset == sr and remaining < sa then
        -- The same window: remaining only goes down (other apps spend the workspace quota too).
        sa = remaining
      end
    end
  end
end

local now, granted, wait, remaining = last, 0, 0, 0
if mode ~= 'o' then
  now = tonumber(ARGV[1])
  if now < 0 then now = server_now end
  if now < last then now = last end
  local bg = string.sub(mode, 1, 1) == '1'
  local a_blank, w_blank = a_fresh, w_fresh
  local slot = math.floor(now / A_SLOT)
  if slot > a_head then
    a_head, a_total, a_cur, a_blank =
      advance(akey, a_at, A_RING, a_head, a_total, a_cur, slot, a_fresh)
  end
  slot = math.floor(now / W_SLOT)
  if slot > w_head then
    w_head, w_total, w_cur, w_blank =
      advance(wkey, w_at, W_RING, w_head, w_total, w_cur, slot, w_fresh)
  end
  local carry = tonumber(ARGV[3])
  if carry > 0 then
    -- Calls this process admitted on its own while Redis was away: they count here too.
    a_cur, a_total = a_cur + carry, a_total + carry
    a_tat = max(a_tat, now) + carry * A_INTERVAL
    w_cur, w_total = w_cur + carry, w_total + carry
    w_tat = max(w_tat, now) + carry * W_INTERVAL
    if now < sr then sa = max(0, sa - carry) end
  end

  if blk > now then wait = blk - now end
  local windowed = now < sr
  if windowed then
    local floor = 0
    if bg then
      local limit = sl
      if limit <= 0 then limit = A_QUOTA end
      floor = math.min(limit - 1, max(0, ceil(RESERVE * limit - 1e-9)))
    end
    if sa <= floor and sr - now > wait then wait = sr - now end
  end
  local a_tol, a_cap, w_tol, w_cap = A_TOLERANCE, A_QUOTA, W_TOLERANCE, W_QUOTA
  if bg then a_tol, a_cap, w_tol, w_cap = 0, A_BGCAP, 0, W_BGCAP end
  local lag = a_tat - now - a_tol
  if lag > wait then wait = lag end
  lag = w_tat - now - w_tol
  if lag > wait then wait = lag end
  if a_total >= a_cap then
    lag = cap_wait(akey, a_at, A_RING, A_SPAN, A_SLOT, A_WINDOW, a_head, a_total, a_cur, a_cap,
      now, a_blank)
    if lag > wait then wait = lag end
  end
  if w_total >= w_cap then
    lag = cap_wait(wkey, w_at, W_RING, W_SPAN, W_SLOT, W_WINDOW, w_head, w_total, w_cur, w_cap,
      now, w_blank)
    if lag > wait then wait = lag end
  end

  if wait == 0 then
    granted = 1
    a_cur, a_total = a_cur + 1, a_total + 1
    if a_tat < now then a_tat = now end
    a_tat = a_tat + A_INTERVAL
    w_cur, w_total = w_cur + 1, w_total + 1
    if w_tat < now then w_tat = now end
    w_tat = w_tat + W_INTERVAL
    if windowed then sa = sa - 1 end
  end
  if blk <= now then
    remaining = math.min(A_QUOTA - a_total, W_QUOTA - w_total)
    if windowed and sa < remaining then remaining = sa end
    if remaining < 0 then remaining = 0 end
  end
  last = now
end

-- Write the headers back (whole keys when new), refreshing expiries only when they run low. A
-- bucket's state stops mattering when its last slot leaves the window and its GCRA time and any
-- server window or block have passed.
local a_until = (a_head + A_SPAN + 1) * A_SLOT
if a_tat > a_until then a_until = a_tat end
if sr > a_until then a_until = sr end
if blk > a_until then a_until = blk end
local w_until = (w_head + W_SPAN + 1) * W_SLOT
if w_tat > w_until then w_until = w_tat end
local ttl
if COMBINED then
  if w_until > a_until then a_until = w_until end
  a_x, ttl = expiry(a_until, a_x, last, a_fresh)
  local headers = pack(BOTH, a_tat, a_head, a_total, a_cur, last, a_x, blk, sr, sa, sl,
    w_tat, w_head, w_total, w_cur, last, a_x)
  if a_fresh then
    call('SET', akey, headers .. string.rep(ZERO, A_RING + W_RING), 'PX', ttl)
  else
    call('SETRANGE', akey, 0, headers)
    if ttl then call('PEXPIRE', akey, ttl) end
  end
else
  a_x, ttl = expiry(a_until, a_x, last, a_fresh)
  local header = pack(AHDR, a_tat, a_head, a_total, a_cur, last, a_x, blk, sr, sa, sl)
  if a_fresh then
    call('SET', akey, header .. string.rep(ZERO, A_RING), 'PX', ttl)
  else
    call('SETRANGE', akey, 0, header)
    if ttl then call('PEXPIRE', akey, ttl) end
  end
  if mode ~= 'o' then
    w_x, ttl = expiry(w_until, w_x, last, w_fresh)
    header = pack(WHDR, w_tat, w_head, w_total, w_cur, last, w_x)
    if w_fresh then
      call('SET', wkey, header .. string.rep(ZERO, W_RING), 'PX', ttl)
    else
      call('SETRANGE', wkey, 0, header)
      if ttl then call('PEXPIRE', wkey, ttl) end
    end
  end
end
if mode == 'o' then return last end
-- A grant answers with one integer: redis-py parses it several times faster than an array.
if granted == 1 and #mode == 1 then return remaining end
return {granted, wait, remaining, now}
"""


_SPEC_NAMES = "QUOTA, {0}WINDOW, {0}INTERVAL, {0}TOLERANCE, {0}SLOT, {0}SPAN, {0}RING, {0}BGCAP"


def _lua_bucket(prefix: str, spec: BucketSpec) -> str:
    values = (
        spec.quota,
        spec.window_us,
        spec.interval_us,
        spec.tolerance_us,
        spec.slot_us,
        spec.span,
        spec.span + 1,
        spec.background_cap,
    )
    names = prefix + _SPEC_NAMES.format(prefix)
    return f"local {names} = {', '.join(str(value) for value in values)}\n"


def limiter_script(
    app: BucketSpec, workspace: BucketSpec, reserve: float, *, combined: bool = False
) -> Script:
    """:data:`LIMITER_SCRIPT` with *app*'s, *workspace*'s and the reserve's numbers built in;
    *combined*: both buckets in one key (the app's own workspace), else one key each.

    Constants in the source, not arguments: Redis and redis-py then handle three arguments per
    call (plus the carried observations), not nineteen; each policy gets its own script.
    """
    constants = (
        _lua_bucket("A_", app)
        + _lua_bucket("W_", workspace)
        + f"local RESERVE, HORIZON = {reserve!r}, {MAX_RESET_WINDOWS}\n"
        + f"local COMBINED = {'true' if combined else 'false'}\n"
    )
    return Script(constants + LIMITER_SCRIPT)


_HEADER = struct.Struct("<10d")
_WORKSPACE_HEADER = struct.Struct("<6d")
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


def decode_bucket(raw: bytes | None, workspace: bool = False) -> dict[str, int]:
    """A bucket's header as :data:`LIMITER_SCRIPT` stores it (for tests and debugging): GCRA
    time, ring head slot, admissions counted, … (all ``0`` for a missing key). *workspace*: the
    workspace header of a key holding both buckets (a workspace key of its own starts with it:
    read that with the default)."""
    layout, offset = (_WORKSPACE_HEADER, _HEADER.size) if workspace else (_HEADER, 0)
    names = _HEADER_FIELDS[: layout.size // 8]
    if not raw or len(raw) < offset + layout.size:
        return dict.fromkeys(names, 0)
    values = layout.unpack_from(raw, offset)
    return {name: int(value) for name, value in zip(names, values, strict=True)}


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
        # A workspace bucket no other app shares lives in the app's key: one read, one write.
        combined = workspace == scope
        app_key, workspace_key = KeyScheme(key_prefix).limiter(scope, workspace)
        #: the script's keys: the app's (holding both buckets when the workspace is its own),
        #: then the shared workspace's
        self.keys: tuple[str, ...] = (app_key,) if combined else (app_key, workspace_key)
        self._script = limiter_script(
            BucketSpec.from_policy(policy, policy.app_per_minute),
            BucketSpec.from_policy(policy, policy.workspace_per_minute),
            policy.background_reserve,
            combined=combined,
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
        #: Script calls that carried observations only (a 429 or an empty window, sent at once;
        #: routine ones no acquire carried in time; the rest at close): round trips of their own.
        self.sent_alone = 0

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

    #: The script's mode arguments for (interactive, background) acquires.
    _modes: tuple[bytes, bytes] = (b"0", b"1")

    def _acquire_args(
        self, priority: Priority, carry: int | None, carried: Sequence[bytes]
    ) -> list[bytes]:
        background = self._modes[1] if priority is Priority.BACKGROUND else self._modes[0]
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

    def _grant(self, reply: Any) -> Grant:
        if isinstance(reply, int):  # granted: the remaining count
            self.fallback.consume(1)  # so a fallback would start from this process's recent use
            return Grant(True, 0.0, float(reply))
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
        if self._flush_after is None or self._closed.is_set():
            return
        if self._flusher is not None and self._flusher.is_alive():  # (not after a fork)
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
        self._send_alone(self._take_pending())

    async def aflush(self) -> None:
        """Async twin of :meth:`flush`."""
        await self._asend_alone(self._take_pending())

    def _send_alone(self, observations: Sequence[bytes] | None) -> None:
        if observations:
            with self._lock:
                self.sent_alone += 1
            self._link.call(self._script, self.keys, [self._now_arg(), b"o", b"0", *observations])

    async def _asend_alone(self, observations: Sequence[bytes] | None) -> None:
        if observations:
            with self._lock:
                self.sent_alone += 1
            await self._link.acall(
                self._script, self.keys, [self._now_arg(), b"o", b"0", *observations]
            )

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
        self._send_alone(self._news(status, info))

    async def aobserve(self, status: int | None, info: RateLimitInfo | None) -> None:
        """Async twin of :meth:`observe`."""
        await self._asend_alone(self._news(status, info))

    # ------------------------------------------------------------------ lifecycle

    def _stop_flusher(self) -> None:
        self._closed.set()
        flusher = self._flusher
        if flusher is not None and flusher is not threading.current_thread():
            # It wakes at once; a flush it already began must not meet closed connections.
            flusher.join(timeout=2 * self._link.timeout)

    def close(self) -> None:
        """Send buffered observations and close the sync client's connections (the async
        ones: :meth:`aclose`)."""
        self._stop_flusher()
        self.flush()
        self._link.close()

    async def aclose(self) -> None:
        """Send buffered observations and close the running loop's async client (and the sync
        client)."""
        self._stop_flusher()
        await self.aflush()
        await self._link.aclose()

    def __repr__(self) -> str:
        state = "available" if self.available else "fallback"
        return f"RedisLimiter(keys={self.keys!r}, {state})"
