"""Coalescing: identical reads in flight at the same time share one upstream request.

A dashboard refresh or a webhook fan-out often asks for the same record many times at once.
The first read of a cache key (same credentials, method, URL and body: the key says so) becomes
the *leader* of a flight; reads of that key that start while it is in flight are *followers*:
they send nothing and wait for the leader's answer. The leader lands the flight with its fresh
answer, which every follower then answers with as its own (a new response, parsed by its own
SDK call).

Followers never get less than they would have alone:

* only a fresh, intact 2xx answer is shared; when the leader fails (or answers stale, or an
  error), each follower goes on as if it had been first, with its own retries and stale cache;
* a follower waits no longer than its own latency budget (``stale_if_slow``, else its
  deadline), then goes on alone;
* a write of ours that the leader's read did not see (one stamped its tags after the leader
  started: see :mod:`.coherence`) ends the sharing: nobody joins the flight afterwards, and its
  answer is not shared. A follower thus never answers with a record older than a write this
  client had already made when the follower started.

Within one process (one client). Waiting is the shells' business (:class:`JoinFlight`): a
thread blocks on an event, a task awaits one on its own loop.

**Across the fleet** (``CachePolicy.fleet_coalesce``, searches and lists only): the leader of a
process's flight then also asks Redis for the read's fleet lock (``SET NX PX``,
:mod:`.._backends.redis_flights`). The process that gets it fetches; its fresh answer goes to the
shared Redis cache as usual, and the lock becomes ``done`` with that entry's ``stored_at``.
Another process that finds the lock held polls it (a few milliseconds, doubling, at most every
50 ms) and reads the shared entry once it is ``done``, no longer than ``CachePolicy.fleet_wait``
nor its own latency budget or deadline. It fetches for itself when the lock vanishes without an
answer (the leader failed, or died and the lock expired), when the entry is not the leader's
(refused, replaced), when its patience is spent, or when Redis does not answer. The lock is
never taken for writes, nor for reads of one record.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
from collections.abc import Generator
from typing import Any

from .._backends.base import CachedResponse
from .._clock import Clock
from .._core.record import record
from .._core.requests import is_collection_read
from .call import Call
from .coherence import Coherence
from .effects import BackendEffect, Backends, CacheGet, Effect, Sleep

__all__ = ["Coalescing", "FleetLand", "FleetLock", "FleetPeek", "Flight", "JoinFlight"]

#: The first pause between two looks at another process's fleet lock; it doubles up to the cap.
FIRST_POLL = 0.005
MAX_POLL = 0.05


class Flight:
    """One read in flight, and the answer it lands with (``None``: nothing to share).

    Most flights land with nobody following them, so the event a follower thread blocks on is
    made by the first follower (:meth:`follow`, under the coalescing lock), not per read.
    """

    __slots__ = (
        "_done",
        "_landed",
        "_lock",
        "_waiting_loops",
        "answer",
        "followers",
        "generation",
        "tags",
    )

    def __init__(self, generation: int, tags: tuple[str, ...]) -> None:
        self._done: threading.Event | None = None
        self._landed = False
        self._lock = threading.Lock()
        self._waiting_loops: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self.answer: CachedResponse | None = None
        #: Reads that joined this flight instead of sending.
        self.followers = 0
        #: The write sequence when the leader started, and the leader's cache tags.
        self.generation = generation
        self.tags = tags

    def follow(self) -> None:
        """One more read joins (called under the coalescing lock, before the flight lands)."""
        with self._lock:
            self.followers += 1
            if self._done is None:
                self._done = threading.Event()
                if self._landed:
                    self._done.set()

    def land(self, answer: CachedResponse | None) -> None:
        """The leader is done: wake every follower, with *answer* to share (or ``None``)."""
        with self._lock:
            self.answer = answer
            self._landed = True
            done = self._done
            waiting, self._waiting_loops = self._waiting_loops, []
        if done is not None:
            done.set()
        for loop, event in waiting:
            # A closed loop raises RuntimeError: nobody is waiting there any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

    def wait(self, timeout: float) -> CachedResponse | None:
        """Block until the flight lands (at most *timeout* seconds); the shared answer."""
        done = self._done
        assert done is not None, "only a follower waits (Coalescing.join made it one)"
        done.wait(max(0.0, timeout))
        return self.answer

    async def await_answer(self, timeout: float) -> CachedResponse | None:
        """Async twin of :meth:`wait`, on the running loop."""
        event = asyncio.Event()
        with self._lock:
            if self._landed:
                return self.answer
            self._waiting_loops.append((asyncio.get_running_loop(), event))
        try:
            await asyncio.wait_for(event.wait(), max(0.0, timeout))
        except TimeoutError:
            return None
        return self.answer


@record
class JoinFlight(BackendEffect):
    """Wait for *flight* to land, at most *timeout* seconds: its shared answer, or ``None``."""

    flight: Flight
    timeout: float

    def run(self, backends: Backends) -> CachedResponse | None:
        return self.flight.wait(self.timeout)

    async def arun(self, backends: Backends) -> CachedResponse | None:
        return await self.flight.await_answer(self.timeout)


@record
class FleetLock(BackendEffect):
    """Take the fleet lock of the read cached under *key*: ``True`` (fetch for the fleet),
    ``False`` (another process fetches), ``None`` (Redis unavailable: fetch alone)."""

    key: str
    token: str
    ttl_ms: int

    def run(self, backends: Backends) -> bool | None:
        if backends.flights is None:  # a pipeline built without the Redis cache's locks
            return None
        result: bool | None = backends.flights.lock(self.key, self.token, self.ttl_ms)
        return result

    async def arun(self, backends: Backends) -> bool | None:
        if backends.flights is None:
            return None
        result: bool | None = await backends.flights.alock(self.key, self.token, self.ttl_ms)
        return result


@record
class FleetPeek(BackendEffect):
    """The fleet lock's value (``held:…``, ``done:…``, ``""``; ``None``: Redis unavailable)."""

    key: str

    def run(self, backends: Backends) -> str | None:
        result: str | None = backends.flights.peek(self.key)
        return result

    async def arun(self, backends: Backends) -> str | None:
        result: str | None = await backends.flights.apeek(self.key)
        return result


@record
class FleetLand(BackendEffect):
    """The fleet's leader is done: mark the lock ``done`` with *marker*, or release it."""

    key: str
    token: str
    marker: str | None
    ttl_ms: int

    def run(self, backends: Backends) -> None:
        backends.flights.land(self.key, self.token, self.marker, self.ttl_ms)

    async def arun(self, backends: Backends) -> None:
        await backends.flights.aland(self.key, self.token, self.marker, self.ttl_ms)


def _marker(entry: CachedResponse) -> str:
    """What names the leader's entry in the shared cache (floats round-trip through repr)."""
    return repr(entry.stored_at)


class Coalescing:
    """The flights of one client, by cache key (and, with *fleet*, the fleet's, in Redis).

    Args:
        coherence: write generations (a follower never answers with what a write overtook).
        enabled: coalesce in process (``CachePolicy.coalesce``).
        clock: paces the fleet waits.
        fleet: also coalesce searches and lists across the fleet (``fleet_coalesce``).
        fleet_wait: the fleet lock's life, and a fleet follower's longest wait, in seconds.
    """

    def __init__(
        self,
        coherence: Coherence,
        *,
        enabled: bool,
        clock: Clock | None = None,
        fleet: bool = False,
        fleet_wait: float = 2.0,
    ) -> None:
        self._coherence = coherence
        self._enabled = enabled
        self._lock = threading.Lock()
        self._flights: dict[str, Flight] = {}
        self._clock = clock
        self.fleet = fleet and clock is not None
        self._fleet_ttl_ms = max(1, round(fleet_wait * 1000))
        self._fleet_wait = fleet_wait

    # ------------------------------------------------------------------ across the fleet

    def fleet_join(self, call: Call) -> Generator[Effect, Any, CachedResponse | None]:
        """Lead the fleet's flight of *call* (``None``, ``call.fleet_token`` set), or wait for
        another process's answer: the shared entry, or ``None`` to fetch alone."""
        key, clock = call.cache_key, self._clock
        if not self.fleet or key is None or clock is None or not is_collection_read(call.kind):
            return None
        token = secrets.token_hex(8)
        taken = yield FleetLock(key, token, self._fleet_ttl_ms)
        if taken is None:
            return None  # Redis is not answering: fetch alone
        if taken:
            call.fleet_token = token
            return None
        give_up = min(clock.monotonic() + self._fleet_wait, call.slow_at or call.deadline)
        pause = FIRST_POLL
        while (left := give_up - clock.monotonic()) > 0:
            yield Sleep(min(pause, left))
            pause = min(pause * 2, MAX_POLL)
            state = yield FleetPeek(key)
            if not state or not state.startswith(("held:", "done:")):
                return None  # no lock: the leader failed or died (expired), or Redis is gone
            if state.startswith("done:"):
                entry: CachedResponse | None = yield CacheGet(key)
                fresh = entry is not None and _marker(entry) == state[5:]
                if not fresh or call.generation is None:
                    return None
                assert entry is not None
                # A write of ours since this read started: the leader's answer may predate it.
                return entry if self._coherence.current(call.read_tags, call.generation) else None
        return None

    def fleet_land(self, call: Call, stored: CachedResponse | None) -> FleetLand | None:
        """The effect that ends the fleet flight *call* leads (``None`` if it leads none)."""
        token, key = call.fleet_token, call.cache_key
        if token is None or key is None:
            return None
        call.fleet_token = None
        marker = None if stored is None else _marker(stored)
        return FleetLand(key, token, marker, self._fleet_ttl_ms)

    def join(self, call: Call) -> Flight | None:
        """Lead a new flight (``None``: send as usual) or follow one in flight (the flight)."""
        key = call.cache_key
        if not self._enabled or key is None or call.generation is None:
            return None
        with self._lock:
            flight = self._flights.get(key)
            if flight is not None and self._coherence.current(flight.tags, flight.generation):
                flight.follow()
                return flight
            # First, or the flight in the air was overtaken by a write of ours: lead anew.
            call.flight = self._flights[key] = Flight(call.generation, call.read_tags)
            return None

    def land(self, call: Call, answer: CachedResponse | None) -> None:
        """A leader is done (however it ended): share *answer* if no write of ours overtook it."""
        flight = call.flight
        if flight is None:
            return
        call.flight = None
        key = call.cache_key
        with self._lock:
            if key is not None and self._flights.get(key) is flight:
                del self._flights[key]
        if answer is not None and not self._coherence.current(flight.tags, flight.generation):
            answer = None
        flight.land(answer)

    def __len__(self) -> int:
        return len(self._flights)
