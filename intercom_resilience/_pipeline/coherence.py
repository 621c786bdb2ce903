"""Coherence: a read never stores an answer older than a write this client made meanwhile.

Every cache tag has a *write generation*. A write bumps the generation of every tag it may change
before it is sent and again when it ends (committed, failed, or of unknown outcome); a read
notes the generations of its tags when it starts, and its answer is stored only if none moved.
A slow read that began before a concurrent write, and answers after it, is therefore never
cached: the next outage cannot serve the pre-write record.

Storing is check, put, check again: a write that ends between the first check and the put is
seen by the second, and the read drops what it just stored. (A write that ends after the second
check drops it by its own invalidation, which follows its last bump.)

The generations are this process's: they order this client's own reads and writes, whatever the
cache backend. Writes made by other processes reach the cache through their invalidations.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from .._core.cache import read_resources, write_invalidations
from .call import Call

__all__ = ["Coherence"]

#: Tags whose generation is remembered; older ones fall to the floor (see :class:`Coherence`).
_MAX_TAGS = 16_384


class Coherence:
    """Write generations per cache tag, bounded.

    A forgotten tag reads as the *floor*: the highest generation ever forgotten. So forgetting
    can only make a read look out of date (its answer is not stored: a cache miss later), never
    make an out-of-date read look current.
    """

    def __init__(self, *, enabled: bool, max_tags: int = _MAX_TAGS) -> None:
        self._enabled = enabled
        self._lock = threading.Lock()
        self._generations: OrderedDict[str, int] = OrderedDict()
        self._sequence = 0
        self._floor = 0
        self._max_tags = max_tags

    def _read(self, tags: tuple[str, ...]) -> tuple[int, ...]:
        get, floor = self._generations.get, self._floor
        return tuple(get(tag, floor) for tag in tags)

    def snapshot(self, tags: tuple[str, ...]) -> tuple[int, ...]:
        """The generations of *tags* now (a read calls this as it starts)."""
        with self._lock:
            return self._read(tags)

    def bump(self, tags: tuple[str, ...]) -> None:
        """A write may change what *tags* name: move their generations on."""
        if not tags:
            return
        with self._lock:
            generations = self._generations
            for tag in tags:
                self._sequence += 1
                generations[tag] = self._sequence
                generations.move_to_end(tag)
            while len(generations) > self._max_tags:
                _, forgotten = generations.popitem(last=False)
                self._floor = max(self._floor, forgotten)

    def current(self, tags: tuple[str, ...], seen: tuple[int, ...]) -> bool:
        """No write bumped *tags* since *seen* was taken."""
        with self._lock:
            return self._read(tags) == seen

    # The stage's view, in terms of a call.

    def start(self, call: Call) -> None:
        """A call goes out: a cacheable read notes its generations; a write bumps its tags."""
        path = call.request.url.path
        if call.cache_key is not None:
            call.read_tags = read_resources(call.scope, call.kind.method, path)
            call.generations = self.snapshot(call.read_tags)
        elif not call.kind.is_read and self._enabled:
            call.write_tags = write_invalidations(call.scope, call.kind.method, path)
            self.bump(call.write_tags)

    def ended(self, call: Call) -> None:
        """A write ended (however it ended): bump its tags again, before they are dropped."""
        self.bump(call.write_tags)

    def may_store(self, call: Call) -> bool:
        """May this read's fresh answer be stored (no write of ours overtook it)?"""
        return call.generations is not None and self.current(call.read_tags, call.generations)
