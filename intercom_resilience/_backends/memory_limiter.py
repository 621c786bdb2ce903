"""The in-memory rate limiter: the sans-I/O :class:`~.._core.limiter.DualLimiter` behind a lock.

The default backend for one process. Every decision is the core's; this shell only reads the clock
and serialises threads. The async twins call the sync methods directly: the critical section is a
few microseconds of arithmetic, never I/O, so it cannot stall an event loop.
"""

from __future__ import annotations

import threading

from .._clock import Clock
from .._config import RateLimitPolicy
from .._core.limiter import MICROS, DualLimiter
from .._core.responses import RateLimitInfo
from .._events import EventLog
from .base import Grant, Priority

__all__ = ["MemoryLimiter"]

# Enum members read on every call, bound to module names (see _core/__init__.py).
_BACKGROUND = Priority.BACKGROUND
_INTERACTIVE = Priority.INTERACTIVE


class MemoryLimiter:
    """The app and workspace buckets of one client, held in this process.

    Implements :class:`~.base.LimiterBackend`. Thread-safe.

    Args:
        policy: quotas, window, burst and background reserve.
        clock: the time source; Unix time (``clock.time()``) so ``X-RateLimit-Reset`` compares
            directly.
        events: accepted for symmetry with the Redis backend (this backend has no transitions to
            report).
        share: scale both quotas by this share (the Redis backend's fallback uses
            ``policy.redis_fallback_share``).
    """

    #: Lives in the process: no I/O, never waits (the call driver performs its effects itself).
    in_process = True

    __slots__ = (
        "_app",
        "_app_interval",
        "_app_quota",
        "_app_tolerance",
        "_clock",
        "_core",
        "_lock",
        "_server",
        "_time",
        "_workspace",
        "_workspace_interval",
        "_workspace_quota",
        "_workspace_tolerance",
        "events",
    )

    def __init__(
        self,
        policy: RateLimitPolicy,
        clock: Clock,
        events: EventLog | None = None,
        *,
        share: float = 1.0,
    ) -> None:
        self._core = DualLimiter.from_policy(policy, share)
        self._clock = clock
        # The objects and constants of the in-line fast path, looked up once.
        core = self._core
        self._app, self._workspace, self._server = core.app, core.workspace, core.server
        self._app_quota, self._workspace_quota = core.app.spec.quota, core.workspace.spec.quota
        self._app_tolerance = core.app.spec.tolerance_us
        self._workspace_tolerance = core.workspace.spec.tolerance_us
        self._app_interval = core.app.spec.interval_us
        self._workspace_interval = core.workspace.spec.interval_us
        self._lock = threading.Lock()
        # Bound once (the real clock's time() is time.time itself: see SystemClock).
        self._time = clock.time
        self.events = events if events is not None else EventLog()

    @property
    def core(self) -> DualLimiter:
        """The state machine itself (for inspection in tests; do not mutate unlocked)."""
        return self._core

    def acquire(self, priority: Priority = Priority.INTERACTIVE) -> Grant:
        """Take one token from both buckets now, or say how long until one is expected."""
        # Under contention a thread preempted while it holds the lock stalls every other one (a
        # convoy: 8 threads ran at a quarter of one thread's rate). So the clock is read and the
        # answer built outside the lock, and the common case (interactive, no server window or
        # block, both rings already at this slot; inside a server window, allowance left) is
        # decided in-line: the section has no call and
        # no loop, which is where CPython switches threads, so it is not preempted in practice.
        # It is DualLimiter.decide's arithmetic for that case, on the same state; anything else
        # goes to decide.
        # Reading the clock first is safe: the core never lets time go back, so a thread that
        # read a time earlier than the last decision is counted at that later time.
        t = round(self._time() * MICROS)
        core, app, workspace, server = self._core, self._app, self._workspace, self._server
        with self._lock:
            if t < core.last:
                t = core.last
            else:
                core.last = t
            # Inside a server window (always, against Intercom: every answer carries its
            # rate-limit headers) an interactive call also needs the window's allowance, and
            # spends one of it.
            windowed = t < server.reset_us
            if (
                priority is _INTERACTIVE
                and t < app.slot_end
                and t < workspace.slot_end
                and (not windowed or server.allow > 0)
                and t >= server.blocked_until
                and app.tat - t <= self._app_tolerance
                and workspace.tat - t <= self._workspace_tolerance
                and app.total < self._app_quota
                and workspace.total < self._workspace_quota
            ):
                app.counts[app.index] += 1
                app.total += 1
                app.tat = (app.tat if app.tat > t else t) + self._app_interval
                workspace.counts[workspace.index] += 1
                workspace.total += 1
                workspace.tat = (
                    workspace.tat if workspace.tat > t else t
                ) + self._workspace_interval
                left = self._app_quota - app.total
                other = self._workspace_quota - workspace.total
                if windowed:
                    server.allow -= 1
                    # Not min(): no call may run while the lock is held (see above).
                    other = server.allow if server.allow < other else other
                wait = 0
            else:
                wait, left = core.decide(t, priority is _BACKGROUND)
                other = left
        if wait:
            return Grant(False, wait / MICROS, float(left))
        # Not max(0, min(left, other)): two calls per acquire, in plain comparisons.
        left = other if other < left else left
        return Grant(True, 0.0, float(left) if left > 0 else 0.0)

    async def aacquire(self, priority: Priority = Priority.INTERACTIVE) -> Grant:
        """Async twin of :meth:`acquire` (never suspends)."""
        return self.acquire(priority)

    def observe(self, status: int | None, info: RateLimitInfo | None) -> None:
        """Feed back a response's status and rate-limit headers (``None`` for network failures)."""
        with self._lock:
            self._core.observe(self._clock.time(), status, info)

    async def aobserve(self, status: int | None, info: RateLimitInfo | None) -> None:
        """Async twin of :meth:`observe` (never suspends)."""
        self.observe(status, info)

    def consume(self, count: int = 1) -> None:
        """Count *count* calls that another limiter admitted (see :meth:`DualLimiter.consume`)."""
        with self._lock:
            self._core.consume(self._clock.time(), count)

    def recent(self) -> int:
        """Calls counted in the last window (see :meth:`DualLimiter.recent`)."""
        with self._lock:
            return self._core.recent(self._clock.time())

    def __repr__(self) -> str:
        return f"MemoryLimiter({self._core!r})"
