"""The in-memory rate limiter: the sans-I/O :class:`~.._core.limiter.DualLimiter` behind a lock.

The default backend for one process. Every decision is the core's; this shell only reads the clock
and serialises threads. The async twins call the sync methods directly: the critical section is a
few microseconds of arithmetic, never I/O, so it cannot stall an event loop.
"""

from __future__ import annotations

import threading

from .._clock import Clock
from .._config import RateLimitPolicy
from .._core.limiter import DualLimiter
from .._core.responses import RateLimitInfo
from .._events import EventLog
from .base import Grant, Priority

__all__ = ["MemoryLimiter"]


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

    __slots__ = ("_clock", "_core", "_lock", "events")

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
        self._lock = threading.Lock()
        self.events = events if events is not None else EventLog()

    @property
    def core(self) -> DualLimiter:
        """The state machine itself (for inspection in tests; do not mutate unlocked)."""
        return self._core

    def acquire(self, priority: Priority = Priority.INTERACTIVE) -> Grant:
        """Take one token from both buckets now, or say how long until one is expected."""
        with self._lock:
            return self._core.acquire(self._clock.time(), priority)

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
