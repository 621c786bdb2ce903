"""Simulated time for many concurrent asyncio tasks: a discrete-event clock.

:class:`~intercom_resilience.VirtualClock` advances by every sleep it is asked for, which is right
for one caller but wrong for sixteen: sixteen tasks each sleeping 0.1 s would move it 1.6 s. A
:class:`SimClock` instead keeps a queue of wake-up times. Time stands still while any participant
task is running; when every participant is asleep, the clock jumps to the earliest wake-up and
resumes that task (ties in the order they fell asleep). Sleeps overlap as they do in real time, and
a run is fully deterministic: no wall clock, no thread scheduling.

The library, the fake's transport and the raw "other app" drivers all sleep on the one clock, so
the fake's fixed windows, ``X-RateLimit-Reset`` and the limiter's waits agree to the microsecond.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

__all__ = ["START", "SimClock", "SkewedClock", "run_tasks"]

# A whole window boundary of the fake's clock-aligned windows, plus an odd offset so that the
# client's view of time does not start on a fake window boundary.
START = 1_767_225_600.0 + 3.37


class SimClock:
    """A :class:`~intercom_resilience.Clock` whose ``asleep`` waits for simulated time to pass.

    Only ``asleep`` is meaningful for participants (tasks started by :func:`run_tasks`); ``sleep``
    (sync callers) is refused, as blocking the loop would freeze every participant.
    """

    def __init__(self, start: float = START) -> None:
        self._now = start
        self._queue: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._running = 0
        #: every sleep asked for, by any participant (for assertions on waits)
        self.sleeps = 0

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:
        raise RuntimeError("SimClock drives asyncio tasks only; use asleep")

    async def asleep(self, seconds: float) -> None:
        """Suspend until *seconds* of simulated time have passed (after every earlier waker)."""
        self.sleeps += 1
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._queue, (self._now + max(seconds, 0.0), next(self._order), future))
        self._running -= 1
        if self._running < 0:
            raise RuntimeError("SimClock.asleep outside SimClock.run: nobody would wake it")
        self._advance()
        await future

    def _advance(self) -> None:
        # Time moves only when nobody can run: then the earliest sleeper wakes, alone.
        if self._running == 0 and self._queue:
            wake, _, future = heapq.heappop(self._queue)
            # Whole microseconds, like the limiter's arithmetic: float sums of waits would
            # otherwise land a hair before a window boundary the limiter computed exactly.
            self._now = max(self._now, round(wake * 1_000_000) / 1_000_000)
            self._running += 1
            future.set_result(None)

    async def _participant(self, body: Awaitable[Any]) -> Any:
        try:
            return await body
        finally:
            self._running -= 1
            self._advance()

    async def run(self, bodies: list[Coroutine[Any, Any, Any]]) -> list[Any]:
        """Run *bodies* as participants until all of them return; their results, in order."""
        self._running += len(bodies)
        return list(await asyncio.gather(*(self._participant(body) for body in bodies)))

    def __repr__(self) -> str:
        return f"SimClock(now={self._now!r}, waiting={len(self._queue)})"


async def run_tasks(clock: SimClock, *bodies: Callable[[], Coroutine[Any, Any, Any]]) -> list[Any]:
    """Run each zero-argument coroutine function as a participant of *clock*."""
    return await clock.run([body() for body in bodies])


class SkewedClock:
    """*clock* as seen by a host whose clock is *skew* seconds behind (Intercom's, in a test
    where the client's clock runs ahead). Sleeping is the shared clock's."""

    def __init__(self, clock: SimClock, skew: float) -> None:
        self._clock = clock
        self._skew = skew

    def time(self) -> float:
        return self._clock.time() - self._skew

    def monotonic(self) -> float:
        return self._clock.monotonic() - self._skew

    def sleep(self, seconds: float) -> None:
        self._clock.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await self._clock.asleep(seconds)
