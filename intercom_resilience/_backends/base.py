"""The protocols between the pipeline and the state backends, and the values they exchange.

A backend that lives in the process (no I/O, never waits: the memory ones) says so with a class
attribute ``in_process = True``; the call driver then performs its effects itself instead of
handing each to the sync or async shell and back. A backend without it (Redis, or one of your
own) is always performed by the shells, so an async backend is awaited.
"""

from __future__ import annotations

from typing import Protocol

from .._core.breaker import BreakerState, Transition
from .._core.limiter import Grant, Priority
from .._core.record import record
from .._core.responses import RateLimitInfo

__all__ = [
    "BreakerBackend",
    "BreakerVerdict",
    "CacheBackend",
    "CachedResponse",
    "Grant",
    "LimiterBackend",
    "Priority",
]


class LimiterBackend(Protocol):
    """Holds the app and workspace buckets of one set of credentials.

    ``acquire`` never blocks: it takes a token or says how long to wait; the shell sleeps.
    ``observe`` feeds every response back (server truth re-synchronises the buckets).
    """

    def acquire(self, priority: Priority) -> Grant:
        """Take one token from both buckets, or say how long until one is available."""
        ...

    async def aacquire(self, priority: Priority) -> Grant:
        """Async twin of :meth:`acquire`."""
        ...

    def observe(self, status: int | None, info: RateLimitInfo | None) -> None:
        """Feed back a response's status and rate-limit headers (``None`` for network failures)."""
        ...

    async def aobserve(self, status: int | None, info: RateLimitInfo | None) -> None:
        """Async twin of :meth:`observe`."""
        ...


@record
class CachedResponse:
    """A stored successful read: enough to rebuild the response the SDK parses.

    Attributes:
        status: the HTTP status (2xx).
        headers: the response headers worth keeping (content type, rate-limit headers).
        content: the raw body.
        stored_at: Unix time of the fresh response.
        request_id: Intercom's request id of the fresh response, if it had one.
    """

    status: int
    headers: tuple[tuple[str, str], ...]
    content: bytes
    stored_at: float
    request_id: str | None = None


class CacheBackend(Protocol):
    """The stale cache's storage: an LRU bounded by entries and bytes, with a staleness window.

    Keys are opaque strings made by ``_core.cache`` (they already include the credentials
    fingerprint and the base URL). ``resources`` tags an entry with the resources it reads, so a
    write can drop exactly the reads it made obsolete. Errors of a remote backend never propagate:
    a broken cache degrades to "no cache".
    """

    def get(self, key: str) -> CachedResponse | None:
        """The entry stored under *key*, if any and not older than the stale window."""
        ...

    async def aget(self, key: str) -> CachedResponse | None:
        """Async twin of :meth:`get`."""
        ...

    def put(
        self,
        key: str,
        entry: CachedResponse,
        resources: tuple[str, ...],
        read_started: float | None = None,
    ) -> None:
        """Store *entry* (silently skipped when larger than the per-entry cap).

        *read_started* is when (``clock.monotonic()``) the read that fetched *entry* began: a
        shared backend refuses the entry if another process invalidated one of *resources*
        since then (this process's own writes are ordered by the pipeline's write generations).
        """
        ...

    async def aput(
        self,
        key: str,
        entry: CachedResponse,
        resources: tuple[str, ...],
        read_started: float | None = None,
    ) -> None:
        """Async twin of :meth:`put`."""
        ...

    def invalidate(self, resources: tuple[str, ...]) -> int:
        """Drop every entry tagged with any of *resources*; returns how many were dropped."""
        ...

    async def ainvalidate(self, resources: tuple[str, ...]) -> int:
        """Async twin of :meth:`invalidate`."""
        ...


@record
class BreakerVerdict:
    """The breaker's answer to "may a call go out now?".

    Attributes:
        allowed: the call may be sent.
        transition: the change of state the question caused or revealed, if any.
        retry_in: seconds until an open breaker lets a trial call through (``None`` unless open).
        trial: the call holds a half-open trial slot (it must report back, or give it up).
    """

    allowed: bool
    transition: Transition | None = None
    retry_in: float | None = None
    trial: bool = False


class BreakerBackend(Protocol):
    """Holds one client's circuit breaker: in this process (memory) or shared by a fleet (Redis).

    ``allow`` is asked once per call by admission; ``record`` is told every attempt's result
    (``True`` an outage, ``False`` a success, ``None`` neutral); ``abandon`` gives back the trial
    slot of a call that ends without reporting (it must not block: it may run while a call is
    being cancelled).
    """

    @property
    def state(self) -> BreakerState:
        """The breaker's state as this process last saw it."""
        ...

    def allow(self, lease: float) -> BreakerVerdict:
        """May a call go out now? A trial slot granted is held at most *lease* seconds."""
        ...

    async def aallow(self, lease: float) -> BreakerVerdict:
        """Async twin of :meth:`allow`."""
        ...

    def record(self, failed: bool | None) -> Transition | None:
        """Record an attempt's result; returns the transition it caused or revealed, if any."""
        ...

    async def arecord(self, failed: bool | None) -> Transition | None:
        """Async twin of :meth:`record`."""
        ...

    def abandon(self, trial: bool) -> None:
        """A call ends without reporting; *trial*: it held a trial slot."""
        ...
