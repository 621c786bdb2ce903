"""The in-process circuit breaker: :class:`~.._core.breaker.CircuitBreaker` behind a lock."""

from __future__ import annotations

import threading

from .._clock import Clock
from .._config import BreakerPolicy
from .._core.breaker import BreakerState, CircuitBreaker, Transition
from .base import BreakerVerdict

__all__ = ["MemoryBreaker"]

#: A closed breaker's answer: go, no transition, no trial slot.
_ADMITTED = BreakerVerdict(allowed=True)
# Enum members read on every call, bound to module names (see _core/__init__.py).
_CLOSED = BreakerState.CLOSED


class MemoryBreaker:
    """This process's breaker (the default). Implements :class:`~.base.BreakerBackend`.

    Args:
        policy: thresholds and timings.
        clock: the source of time (``clock.monotonic()``).
    """

    #: Lives in the process: no I/O, never waits (the call driver performs its effects itself).
    in_process = True

    __slots__ = ("_clock", "_lock", "breaker")

    def __init__(self, policy: BreakerPolicy, clock: Clock) -> None:
        self.breaker = CircuitBreaker(policy)
        self._clock = clock
        self._lock = threading.Lock()

    @property
    def state(self) -> BreakerState:
        """The breaker's state."""
        return self.breaker.state

    def allow(self, lease: float) -> BreakerVerdict:
        """May a call go out now? (*lease* is for the fleet breaker: no slot is lost here.)"""
        del lease
        breaker = self.breaker
        if breaker.state is _CLOSED:
            # Only a recorded result moves a closed breaker: admitting a call changes nothing, so
            # the common answer needs neither the lock nor the clock (a result recorded by
            # another thread meanwhile is one that came just after this call was admitted).
            return _ADMITTED
        with self._lock:
            now = self._clock.monotonic()
            allowed, transition = breaker.allow(now)
            retry_at = breaker.retry_at
            trial = allowed and breaker.state is BreakerState.HALF_OPEN
        retry_in = None if retry_at is None else retry_at - now
        return BreakerVerdict(allowed, transition, retry_in, trial)

    async def aallow(self, lease: float) -> BreakerVerdict:
        """Async twin of :meth:`allow` (no I/O: the same call)."""
        return self.allow(lease)

    def record(self, failed: bool | None) -> Transition | None:
        """Record an attempt's result (``None``: neutral, releases a half-open slot)."""
        with self._lock:
            return self.breaker.record(self._clock.monotonic(), failed=failed)

    async def arecord(self, failed: bool | None) -> Transition | None:
        """Async twin of :meth:`record`."""
        return self.record(failed)

    def abandon(self, trial: bool) -> None:
        """Give back the slot a call may hold (a neutral result, whatever *trial* says)."""
        del trial
        self.record(None)
