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
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading

from .._backends.base import CachedResponse
from .call import Call
from .coherence import Coherence
from .effects import BackendEffect, Backends

__all__ = ["Coalescing", "Flight", "JoinFlight"]


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


@dataclasses.dataclass(frozen=True, slots=True)
class JoinFlight(BackendEffect):
    """Wait for *flight* to land, at most *timeout* seconds: its shared answer, or ``None``."""

    flight: Flight
    timeout: float

    def run(self, backends: Backends) -> CachedResponse | None:
        return self.flight.wait(self.timeout)

    async def arun(self, backends: Backends) -> CachedResponse | None:
        return await self.flight.await_answer(self.timeout)


class Coalescing:
    """The flights of one client, by cache key."""

    def __init__(self, coherence: Coherence, *, enabled: bool) -> None:
        self._coherence = coherence
        self._enabled = enabled
        self._lock = threading.Lock()
        self._flights: dict[str, Flight] = {}

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
