"""Clocks: the one source of time for the pipeline, the fake backend and the tests.

Every decision in the sans-I/O core takes "now" from a :class:`Clock` instead of calling
:func:`time.monotonic` itself, so a :class:`VirtualClock` can run hours of simulated traffic in
milliseconds. The fake backend and the client share one clock in tests so that rate-limit windows,
``X-RateLimit-Reset`` and backoff sleeps all agree.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock", "VirtualClock"]


@runtime_checkable
class Clock(Protocol):
    """What the library needs to know about time.

    ``monotonic()`` measures durations; ``time()`` is Unix time (what Intercom's
    ``X-RateLimit-Reset`` and ``Retry-After`` dates are expressed in). ``sleep`` and ``asleep`` are
    the only places the library ever waits.
    """

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...

    def time(self) -> float:
        """Seconds since the Unix epoch."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for *seconds*."""
        ...

    async def asleep(self, seconds: float) -> None:
        """Suspend the calling task for *seconds* without blocking the event loop."""
        ...


_monotonic, _wall_time = time.monotonic, time.time


class SystemClock:
    """The real clock: :mod:`time` and :func:`asyncio.sleep`."""

    __slots__ = ()

    # :meth:`Clock.monotonic` and :meth:`Clock.time` are the C functions themselves, not methods
    # calling them: the pipeline reads the clock about ten times a call, and each Python-level
    # call in between cost more than the reading.
    monotonic = staticmethod(_monotonic)
    time = staticmethod(_wall_time)

    def sleep(self, seconds: float) -> None:
        """See :meth:`Clock.sleep`."""
        if seconds > 0:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        """See :meth:`Clock.asleep`."""
        await asyncio.sleep(max(seconds, 0.0))

    def __repr__(self) -> str:
        return "SystemClock()"


class VirtualClock:
    """A clock that only moves when told to, or when somebody sleeps on it.

    Sleeping advances the clock by the slept amount and returns at once, so a test that drives a
    client and a fake backend through one ``VirtualClock`` sees minutes of backoff, rate-limit
    windows and cool-downs pass instantly. Thread-safe; ``asleep`` yields to the event loop once so
    that concurrent tasks still interleave.

    Args:
        start: the initial Unix time (a fixed default keeps test output reproducible).
    """

    __slots__ = ("_lock", "_now", "_slept")

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = float(start)
        self._slept = 0.0
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        """See :meth:`Clock.monotonic`; on a virtual clock it equals :meth:`time`."""
        return self._now

    def time(self) -> float:
        """See :meth:`Clock.time`."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by *seconds* (negative values are refused)."""
        if seconds < 0:
            raise ValueError(f"VirtualClock.advance: seconds must be >= 0, got {seconds!r}")
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        """Advance the clock by *seconds* and return at once."""
        if seconds > 0:
            with self._lock:
                self._now += seconds
                self._slept += seconds

    async def asleep(self, seconds: float) -> None:
        """Advance the clock by *seconds*, then yield to the event loop once."""
        self.sleep(seconds)
        await asyncio.sleep(0)

    @property
    def total_slept(self) -> float:
        """Total seconds that callers have slept on this clock (useful in assertions)."""
        return self._slept

    def __repr__(self) -> str:
        return f"VirtualClock(now={self._now!r})"
