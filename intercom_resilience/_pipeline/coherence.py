"""Coherence: a read never stores an answer older than a write this client made meanwhile.

Every write takes the next number of a sequence and stamps it, as the *write generation*, on every
cache tag it may change: before it is sent and again when it ends (committed, failed, or of
unknown outcome). A read notes the sequence when it starts, and its answer is stored only if none
of its tags was stamped after that. A slow read that began before a concurrent write, and answers
after it, is therefore never cached: the next outage cannot serve the pre-write record.

Storing is check, put, check again: a write that ends between the first check and the put is
seen by the second, and the read drops what it just stored. (A write that ends after the second
check drops it by its own invalidation, which follows its last stamp.)

A stamp matters only to reads that were already in flight when it was made, so stamps older than
a horizon are forgotten (memory stays proportional to the recent write rate, not to every record
ever written). A forgotten tag reads as the *floor*, the newest stamp ever forgotten: a read
older than the horizon may then look out of date (its answer is not stored, a cache miss later),
a younger one is unaffected, and no out-of-date read ever looks current.

The generations are this process's: they order this client's own reads and writes, whatever the
cache backend. Writes made by other processes reach the cache through their invalidations.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from .._clock import Clock
from .._core.cache import READ_HORIZON_S, read_resources, write_invalidations
from .call import Call

__all__ = ["Coherence"]

#: How long a stamp is remembered (the read horizon of :mod:`.._core.cache`).
HORIZON_S = READ_HORIZON_S
#: A bound on the tags remembered whatever the write rate (about 100 B each).
MAX_TAGS = 16_384


class Coherence:
    """Write generations per cache tag, bounded in age and in number."""

    def __init__(
        self,
        clock: Clock,
        *,
        enabled: bool,
        horizon: float = HORIZON_S,
        max_tags: int = MAX_TAGS,
    ) -> None:
        self._clock = clock
        self._enabled = enabled
        self._lock = threading.Lock()
        # tag -> (generation, when stamped), oldest stamp first.
        self._stamps: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._sequence = 0
        self._floor = 0
        self._horizon = horizon
        self._max_tags = max_tags

    def __len__(self) -> int:
        return len(self._stamps)

    def snapshot(self) -> int:
        """Where the sequence stands now (a read calls this as it starts)."""
        with self._lock:
            return self._sequence

    def bump(self, tags: tuple[str, ...]) -> None:
        """A write may change what *tags* name: stamp them with the next generation."""
        if not tags:
            return
        now = self._clock.monotonic()
        with self._lock:
            self._sequence += 1
            stamp = (self._sequence, now)
            stamps = self._stamps
            for tag in tags:
                stamps[tag] = stamp
                stamps.move_to_end(tag)
            self._forget(now)

    def _forget(self, now: float) -> None:
        stamps, too_old = self._stamps, now - self._horizon
        while stamps:
            tag, (generation, stamped) = next(iter(stamps.items()))
            if stamped >= too_old and len(stamps) <= self._max_tags:
                return
            del stamps[tag]
            self._floor = max(self._floor, generation)

    def current(self, tags: tuple[str, ...], seen: int) -> bool:
        """No write stamped *tags* after the sequence stood at *seen*."""
        with self._lock:
            stamps, floor = self._stamps, (self._floor, 0.0)
            for tag in tags:  # noqa: SIM110 - not all(<generator>): twice per cached read
                if stamps.get(tag, floor)[0] > seen:
                    return False
            return True

    # The stage's view, in terms of a call.

    def start(self, call: Call) -> None:
        """A call goes out: a cacheable read notes the sequence; a write stamps its tags."""
        path = call.path
        if call.cache_key is not None:
            call.read_tags = read_resources(call.scope, call.kind.method, path)
            call.generation = self.snapshot()
        elif not call.kind.is_read and self._enabled:
            call.write_tags = write_invalidations(call.scope, call.kind.method, path)
            self.bump(call.write_tags)

    def ended(self, call: Call) -> None:
        """A write ended (however it ended): stamp its tags again, before they are dropped."""
        self.bump(call.write_tags)

    def may_store(self, call: Call) -> bool:
        """May this read's fresh answer be stored (no write of ours overtook it)?"""
        return call.generation is not None and self.current(call.read_tags, call.generation)
