"""The fleet breaker: one circuit breaker for every process of a fleet, held in Redis.

The state machine is the memory breaker's (:mod:`intercom_resilience._core.breaker`: closed, open,
half-open; a sliding window of ``window`` seconds in sixtieths; ``min_calls``, ``failure_ratio``,
``consecutive_failures``, ``cooldown``, ``half_open_calls``), transcribed to Lua so that each
question and each failure is **one script call, one round trip**, atomic inside Redis (a success
rides on the next one, below). The script reads the time from Redis
(``TIME``), so clock skew between hosts changes no decision; a test runs the Lua breaker and the
memory breaker on the same sequences of observations and times and compares every answer.

One pod's failures open the breaker for all: every process asks the same key before each call.
The half-open trial slots (``half_open_calls`` of them, fleet-wide) are granted atomically by the
script, each with a lease (the trial call's time to its deadline, 1 to 60 s): a trial holder that
crashes frees its slot when the lease ends instead of wedging the breaker half-open.

Keys (:class:`~._redis.KeyScheme`, ``F`` the credentials fingerprint, ``G`` the endpoint group)::

    <prefix>:breaker:{F}:G           hash: state, opened_at, trial successes, reason
    <prefix>:breaker:{F}:G:window    hash: calls and failures per window bucket
    <prefix>:breaker:{F}:G:trials    sorted set: the trial slots granted, scored by lease end

Every write of a key sets its TTL to ``2 × (window + cooldown) + 60`` seconds, so an idle breaker
vanishes on its own (a flushed or expired breaker is a closed one with an empty window). The
state hash is written only when the state, the trial count or the run of consecutive failures
changes.

A success in a closed breaker costs **no round trip of its own**: it can open nothing, so the
process counts it and tells Redis with its next script call (the next call's question, as a rule,
or its next failure), which adds it to the window, in the bucket of its own time, before
deciding. A failure is told at once: it may open the breaker for the fleet. The successes of a
script call that fails are dropped (the local breaker has them). A success told late ends the
fleet's run of consecutive failures only if it came after the run's first failure (by its age):
each process's last success before an outage does not restart the count.

When Redis is unreachable, paused, slow (short socket timeouts, no client-side retries) or
flushed, nothing fails: each process decides with its own memory breaker (fed with every
observation all along, so it starts from this process's recent history), tries Redis again
through the seam's latch, and rejoins the fleet's state with the first answer.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Callable
from typing import Any

from .._clock import Clock
from .._config import BreakerPolicy
from .._core.breaker import BreakerState, Transition
from .._core.window import SlidingCounter
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
from .base import BreakerVerdict
from .memory_breaker import MemoryBreaker

__all__ = ["BREAKER_SCRIPT", "DEFAULT_GROUP", "RedisBreaker"]

#: The endpoint group of the client's one breaker (the memory breaker, too, has one per client).
DEFAULT_GROUP = "api"

#: KEYS: state, window, trials. ARGV: op ("a" allow, "r" record), now (seconds; < 0: Redis TIME),
#: window, resolution, min_calls, failure_ratio, cooldown, half_open_calls, then the lease
#: (allow, seconds) or the result (record: 1 failed, 0 succeeded, -1 neutral), then the TTL (ms),
#: then consecutive_failures (0: none), then the caller's own time, then the successes it has
#: not told yet as pairs (its time of the bucket's last one, how many), counted first, each in
#: its own bucket (times taken as Redis times when *now* was given, else as ages).
#: Returns {allowed, trial, state, previous state, reason, retry_in seconds ("" unless open)}.
BREAKER_SCRIPT = Script(
    r"""
local skey, wkey, tkey = KEYS[1], KEYS[2], KEYS[3]
local op = ARGV[1]
local now = tonumber(ARGV[2])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local window, res = tonumber(ARGV[3]), tonumber(ARGV[4])
local min_calls, ratio = tonumber(ARGV[5]), tonumber(ARGV[6])
local cooldown, trials = tonumber(ARGV[7]), tonumber(ARGV[8])
local arg, ttl = tonumber(ARGV[9]), ARGV[10]
local max_run, their_now = tonumber(ARGV[11]), tonumber(ARGV[12])
local h = redis.call('HMGET', skey, 'st', 'oa', 'ts', 'why', 'run', 'rs')
local st = h[1] or 'closed'
local oa = tonumber(h[2]) or 0
local ts = tonumber(h[3]) or 0
local why = h[4] or ''
local run = tonumber(h[5]) or 0
local rs = tonumber(h[6]) or 0
local prev, reason, allowed, trial, dirty = st, nil, 1, 0, false
local function fmt(x) return string.format('%.17g', x) end
local function move(to, r) st = to; reason = r; dirty = true end
local function open(r)
  oa = now; ts = 0; run = 0
  redis.call('DEL', tkey)
  move('open', r)
end
local function leases() redis.call('ZREMRANGEBYSCORE', tkey, '-inf', fmt(now)) end
local current = math.floor(now / res)
-- Successes told late (a process sends them with its next script call) count outside half-open,
-- where only trial calls decide, and only within the window.
if #ARGV > 12 and st ~= 'half_open' then
  local given = tonumber(ARGV[2]) >= 0
  local oldest = current - math.ceil(window / res) + 1
  for i = 13, #ARGV, 2 do
    local at = tonumber(ARGV[i])
    if not given then at = now - (their_now - at) end
    local bucket = math.min(math.floor(at / res), current)
    if bucket >= oldest then
      redis.call('HINCRBY', wkey, bucket .. 'c', tonumber(ARGV[i + 1]))
      redis.call('PEXPIRE', wkey, ttl)
    end
    -- Only a success after the run's first failure ends it (not one from before the outage).
    if run > 0 and at >= rs then run = 0; dirty = true end
  end
end
if op == 'a' then
  if st ~= 'closed' then
    if st == 'open' then
      if now < oa + cooldown then
        allowed = 0
      else
        redis.call('DEL', tkey)
        ts = 0
        move('half_open', 'cooldown elapsed')
      end
    end
    if allowed == 1 then
      leases()
      if redis.call('ZCARD', tkey) + ts >= trials then
        allowed = 0
      else
        local id = redis.call('HINCRBY', skey, 'seq', 1)
        redis.call('ZADD', tkey, fmt(now + arg), id)
        redis.call('PEXPIRE', tkey, ttl)
        dirty = true
        trial = 1
      end
    end
  end
elseif st == 'half_open' then
  leases()
  redis.call('ZPOPMIN', tkey)
  if arg == 1 then
    open('trial call failed')
  elseif arg == 0 then
    ts = ts + 1
    dirty = true
    if ts >= trials then
      run = 0
      redis.call('DEL', wkey)
      move('closed', 'trial calls succeeded')
    end
  end
elseif arg ~= -1 then
  -- Buckets of the memory breaker's sliding window: '<n>c' calls and '<n>f' failures.
  redis.call('HINCRBY', wkey, current .. 'c', 1)
  if arg == 1 then
    redis.call('HINCRBY', wkey, current .. 'f', 1)
    if st == 'closed' then
      if run == 0 then rs = now end
      run = run + 1
      dirty = true
    end
  elseif run > 0 then
    run = 0
    dirty = true
  end
  redis.call('PEXPIRE', wkey, ttl)
  if arg == 1 and st == 'closed' then
    local oldest = current - math.ceil(window / res) + 1
    local all = redis.call('HGETALL', wkey)
    local calls, failures, old = 0, 0, {}
    for i = 1, #all, 2 do
      local field = all[i]
      local bucket = tonumber(string.sub(field, 1, -2))
      if bucket < oldest then
        old[#old + 1] = field
      elseif string.sub(field, -1) == 'c' then
        calls = calls + tonumber(all[i + 1])
      else
        failures = failures + tonumber(all[i + 1])
      end
    end
    if #old > 0 then redis.call('HDEL', wkey, unpack(old)) end
    if calls >= min_calls and failures >= ratio * calls then
      open(string.format('%d of %d recent calls failed', failures, calls))
    elseif max_run > 0 and run >= max_run then
      open(string.format('%d calls failed in a row', run))
    end
  end
end
if dirty then
  -- Only a change of state (or of the trial count, or of the run) writes the state hash.
  redis.call('HSET', skey, 'st', st, 'oa', fmt(oa), 'ts', ts, 'why', reason or why, 'run', run,
    'rs', fmt(rs))
  redis.call('PEXPIRE', skey, ttl)
end
local retry_in = ''
if st == 'open' then retry_in = fmt(oa + cooldown - now) end
return {allowed, trial, st, prev, reason or why, retry_in}
"""
)

#: Reply codes of the script.
_STATES = {state.value: state for state in BreakerState}
_RESULT = {True: b"1", False: b"0", None: b"-1"}
#: The longest trial lease (seconds) the TTL must outlive.
_MAX_LEASE = 60.0
#: Buckets of untold successes kept (a window has 60; older ones count for nothing).
_MAX_UNTOLD = 64


class RedisBreaker:
    """One client's breaker, shared through Redis by every process with the same credentials.

    Implements :class:`~.base.BreakerBackend`. Thread-safe; the async methods use the seam's
    ``redis.asyncio`` client of the running loop (see :mod:`._redis`).

    Args:
        policy: thresholds and timings (the fleet's processes should agree on them).
        redis_url: where Redis lives.
        scope: a fingerprint of the credentials (never the token), naming the key.
        clock: the fallback breaker's time source and the latch's pauses.
        group: the endpoint group (part of the key).
        key_prefix: the first part of every key (:class:`~._redis.KeyScheme`).
        socket_timeout: seconds a connect or command may take before falling back.
        retry_interval: the longest pause between attempts to reach Redis again.
        time_source: for tests only: the time (seconds) the script decides at, instead of
            Redis ``TIME`` (``None``, the default: Redis time).
        client, async_client: ready-made clients to use instead of connecting to *redis_url*.
    """

    def __init__(
        self,
        policy: BreakerPolicy,
        redis_url: str,
        scope: str,
        clock: Clock,
        *,
        group: str = DEFAULT_GROUP,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
        retry_interval: float = DEFAULT_RETRY_INTERVAL,
        time_source: Callable[[], float] | None = None,
        client: redis.Redis | None = None,
        async_client: redis.asyncio.Redis | None = None,
    ) -> None:
        self.policy = policy
        self.keys = KeyScheme(key_prefix).breaker(scope, group)
        self._time_source = time_source
        self._clock = clock
        ttl_ms = math.ceil((2 * (policy.window + policy.cooldown) + _MAX_LEASE) * 1000)
        resolution = SlidingCounter(policy.window, ("calls",)).resolution
        self._static = [
            repr(float(policy.window)).encode(),
            repr(resolution).encode(),
            str(policy.min_calls).encode(),
            repr(float(policy.failure_ratio)).encode(),
            repr(float(policy.cooldown)).encode(),
            str(policy.half_open_calls).encode(),
        ]
        self._ttl = str(ttl_ms).encode()
        self._max_run = str(policy.consecutive_failures or 0).encode()
        #: Successes seen in a closed breaker, told to Redis with the next script call: per
        #: window bucket of this process's time, the time of the last one and how many.
        self._untold: dict[int, list[float]] = {}
        self._resolution = resolution
        self._link = RedisLink(
            "breaker",
            redis_url,
            clock,
            None,
            socket_timeout=socket_timeout,
            retry_interval=retry_interval,
            client=client,
            async_client=async_client,
        )
        #: This process's own breaker: decides while Redis cannot, fed with every observation.
        self.fallback = MemoryBreaker(policy, clock)
        self._lock = threading.Lock()
        self._view = BreakerState.CLOSED
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> BreakerState:
        """The state this process last saw: the fleet's, or its own while Redis is away."""
        return self._view

    @property
    def available(self) -> bool:
        """Whether the last exchange with Redis succeeded (``False``: deciding locally)."""
        return self._link.available

    def _now(self) -> float:
        """This process's time: the test's shared time when given (the script's, too)."""
        return self._clock.monotonic() if self._time_source is None else self._time_source()

    def _args(self, op: bytes, arg: bytes) -> list[bytes]:
        ours = self._now()
        now = b"-1" if self._time_source is None else repr(ours).encode()
        args = [op, now, *self._static, arg, self._ttl, self._max_run, repr(ours).encode()]
        with self._lock:
            untold, self._untold = self._untold, {}
        for at, count in untold.values():
            args += (repr(at).encode(), b"%d" % count)
        return args

    def _held_back(self, failed: bool | None) -> bool:
        """Keep a closed breaker's success for the next script call (it decides nothing)."""
        if failed is not False or self._view is not BreakerState.CLOSED:
            return False
        at = self._now()
        bucket = math.floor(at / self._resolution)
        with self._lock:
            held = self._untold.get(bucket)
            if held is None:
                if len(self._untold) >= _MAX_UNTOLD:  # an idle process: forget the oldest
                    del self._untold[min(self._untold)]
                self._untold[bucket] = [at, 1]
            else:
                held[0] = at
                held[1] += 1
        return True

    def _seen(
        self, state: BreakerState, transition: Transition | None, reason: str
    ) -> Transition | None:
        """Move this process's view to *state*; the transition it makes (ours or the fleet's)."""
        with self._lock:
            previous, self._view = self._view, state
        if previous is state:
            return None
        if transition is not None and transition.previous is previous:
            return transition
        at = self._clock.monotonic()
        return Transition(at=at, previous=previous, state=state, reason=reason)

    def _decoded(
        self, reply: Any
    ) -> tuple[bool, bool, BreakerState, BreakerState, str, float | None]:
        allowed, trial, state, previous, reason, retry_in = reply
        return (
            bool(allowed),
            bool(trial),
            _STATES[_text(state)],
            _STATES[_text(previous)],
            _text(reason),
            float(retry_in) if retry_in else None,
        )

    # ------------------------------------------------------------------ allow

    def _allowed(self, reply: Any, lease: float) -> BreakerVerdict:
        if reply is MISSED:
            local = self.fallback.allow(lease)
            reason = local.transition.reason if local.transition else "Redis unavailable: local"
            transition = self._seen(self.fallback.state, local.transition, reason)
            return BreakerVerdict(local.allowed, transition, local.retry_in, local.trial)
        allowed, trial, state, previous, reason, retry_in = self._decoded(reply)
        ours = None
        if previous is not state:
            ours = Transition(
                at=self._clock.monotonic(), previous=previous, state=state, reason=reason
            )
        return BreakerVerdict(allowed, self._seen(state, ours, reason), retry_in, trial)

    def allow(self, lease: float) -> BreakerVerdict:
        """May a call go out now? One script call (or the local breaker while Redis is away)."""
        reply = self._link.call(BREAKER_SCRIPT, self.keys, self._args(b"a", _lease(lease)))
        return self._allowed(reply, lease)

    async def aallow(self, lease: float) -> BreakerVerdict:
        """Async twin of :meth:`allow`."""
        reply = await self._link.acall(BREAKER_SCRIPT, self.keys, self._args(b"a", _lease(lease)))
        return self._allowed(reply, lease)

    # ------------------------------------------------------------------ record

    def _needs_redis(self, failed: bool | None) -> bool:
        # A neutral result only matters to a half-open breaker (it frees a trial slot).
        return failed is not None or self._view is BreakerState.HALF_OPEN

    def _recorded(self, reply: Any, local: Transition | None) -> Transition | None:
        if reply is MISSED:
            reason = local.reason if local else "Redis unavailable: local"
            return self._seen(self.fallback.state, local, reason)
        _, _, state, previous, reason, _ = self._decoded(reply)
        ours = None
        if previous is not state:
            ours = Transition(
                at=self._clock.monotonic(), previous=previous, state=state, reason=reason
            )
        return self._seen(state, ours, reason)

    def record(self, failed: bool | None) -> Transition | None:
        """Record an attempt's result in the fleet's window (and in the local fallback)."""
        local = self.fallback.record(failed)
        if self._held_back(failed) or not self._needs_redis(failed):
            return None
        reply = self._link.call(BREAKER_SCRIPT, self.keys, self._args(b"r", _RESULT[failed]))
        return self._recorded(reply, local)

    async def arecord(self, failed: bool | None) -> Transition | None:
        """Async twin of :meth:`record`."""
        local = self.fallback.record(failed)
        if self._held_back(failed) or not self._needs_redis(failed):
            return None
        reply = await self._link.acall(BREAKER_SCRIPT, self.keys, self._args(b"r", _RESULT[failed]))
        return self._recorded(reply, local)

    def abandon(self, trial: bool) -> None:
        """Give back the slot of a call that ends without reporting (never blocks a cancel).

        The local slot is freed at once. A fleet trial slot is freed by a neutral record: in the
        background on the running loop (a cancelled task cannot wait for Redis), else inline;
        if that fails, the slot's lease frees it.
        """
        self.fallback.abandon(trial)
        if not trial:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._release()
            return
        task = loop.create_task(self._arelease())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # A release changes no state (a neutral record frees a slot and decides nothing), so its
    # reply is not needed: the next question or observation brings the fleet's state.
    def _release(self) -> None:
        self._link.call(BREAKER_SCRIPT, self.keys, self._args(b"r", _RESULT[None]))

    async def _arelease(self) -> None:
        await self._link.acall(BREAKER_SCRIPT, self.keys, self._args(b"r", _RESULT[None]))

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the sync client's connections."""
        self._link.close()

    async def aclose(self) -> None:
        """Close the running loop's async client, and the sync client."""
        await self._link.aclose()

    def __repr__(self) -> str:
        return f"RedisBreaker({self._view.value}, {self._link!r})"


def _lease(seconds: float) -> bytes:
    return repr(float(min(seconds, _MAX_LEASE))).encode()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
