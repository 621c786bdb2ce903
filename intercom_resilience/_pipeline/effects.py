"""The effects a call's driver yields, and what the shells send back for each.

The driver (:mod:`.driver`) never does I/O: when a call needs something from the world it yields
one of these, and the sync or async shell performs it and sends the result back in. Two effects
are the shells' own, because they *are* the I/O: :class:`Send` (the network) and :class:`Sleep`.
The others talk to the state backends (limiter, cache: memory or Redis) and perform themselves,
so that each has exactly one sync and one async line:

=================  ============================================  ==============================
effect             what the shell does                           what it sends back
=================  ============================================  ==============================
``Acquire``        take a rate-limit token                       a ``Grant``
``Sleep``          sleep on the client's clock                   ``None``
``Send``           send through the inner transport, read body   a :class:`Sent`
``ObserveRate``    feed a response's rate headers to the limiter ``None``
``CachePut``       store a fresh read                            ``None``
``Invalidate``     drop the reads a write made obsolete          entries dropped
``CacheGet``       look up the stale answer                      a ``CachedResponse`` or ``None``
``AskBreaker``     may a call go out (memory or fleet breaker)   a ``BreakerVerdict``
``TellBreaker``    record an attempt's result in the breaker     a ``Transition`` or ``None``
=================  ============================================  ==============================

An effect on a backend that lives in the process (the memory limiter, cache and breaker, or a
switched-off one) does no I/O and never waits, so the shells do not see it at all: the
:class:`~.driver.CallDriver` performs it as soon as the driver yields it and sends the result
straight back (:func:`in_process_effects` says which effects those are for one client). Handing
each of them to a shell and back cost a few microseconds per effect, five or six times a call.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import AsyncIterator, Iterator
from functools import lru_cache
from types import TracebackType
from typing import Any, ClassVar, Protocol

import httpx

from .._backends.base import (
    BreakerBackend,
    BreakerVerdict,
    CacheBackend,
    CachedResponse,
    Grant,
    LimiterBackend,
    Priority,
)
from .._clock import Clock
from .._core.breaker import Transition
from .._core.record import record
from .._core.responses import RateLimitInfo
from .._core.status import BreakerCount

__all__ = [
    "ACQUIRE",
    "TELL_BREAKER",
    "Acquire",
    "AskBreaker",
    "Backends",
    "BackendEffect",
    "CacheGet",
    "CachePut",
    "Effect",
    "Invalidate",
    "ObserveRate",
    "Send",
    "Sent",
    "Sleep",
    "TellBreaker",
    "ask_breaker",
    "bounded_body",
    "in_process_effects",
    "sending",
]


class Backends(Protocol):
    """Where backend effects are performed: the client's limiter, cache and breaker."""

    @property
    def limiter(self) -> LimiterBackend:
        """The rate-limit backend."""
        ...

    @property
    def cache(self) -> CacheBackend:
        """The stale-cache backend."""
        ...

    @property
    def flights(self) -> Any:
        """The fleet-coalescing locks (a ``RedisFlights``; ``None`` without fleet coalescing)."""
        ...

    @property
    def breaker(self) -> BreakerBackend:
        """The circuit-breaker backend."""
        ...


class Effect:
    """Something the driver needs done; the base of every effect."""

    __slots__ = ()


@record
class Sleep(Effect):
    """Wait *seconds* on the client's clock (a rate-limit wait or a backoff)."""

    seconds: float


@record
class Send(Effect):
    """Send *request* through the inner transport and read the whole body by *deadline*.

    httpx's timeouts bound each socket operation, not the whole response: a body that drips a
    byte at a time would outlive any deadline. The shell reads the body through
    :func:`bounded_body`, which gives up (``httpx.ReadTimeout``) once *deadline* (a monotonic
    time of the client's clock) has passed.
    """

    request: httpx.Request
    deadline: float = math.inf


@dataclasses.dataclass(slots=True)
class Sent:
    """What came back from a :class:`Send`: a response and its body, or the network error."""

    response: httpx.Response | None = None
    content: bytes = b""
    error: httpx.TransportError | httpx.DecodingError | None = None


#: What a send may fail with and still be an answer for the driver (anything else propagates).
_SEND_ERRORS = (httpx.TransportError, httpx.DecodingError)


class sending:  # lower case: it reads as the function it replaced, ``with sending() as sent``
    """Collect one send's result; a network failure inside the block is kept, not raised.

    A body that does not match its ``Content-Encoding`` raises ``httpx.DecodingError``, which is
    not a transport error; the driver treats both alike (the answer never arrived intact).
    (A class rather than a generator context manager: it runs once per attempt.)
    """

    __slots__ = ("_sent",)

    def __init__(self) -> None:
        self._sent = Sent()

    def __enter__(self) -> Sent:
        return self._sent

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if exc is not None and isinstance(exc, _SEND_ERRORS):
            self._sent.response = None
            self._sent.error = exc
            return True
        return False


class _DeadlineStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response stream that raises ``httpx.ReadTimeout`` once a deadline has passed."""

    def __init__(self, stream: Any, clock: Clock, deadline: float, request: httpx.Request) -> None:
        self._stream = stream
        self._clock = clock
        self._deadline = deadline
        self._request = request

    def _check(self) -> None:
        if self._clock.monotonic() > self._deadline:
            raise httpx.ReadTimeout(
                "the response did not arrive by the deadline", request=self._request
            )

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._stream:
            self._check()
            yield chunk

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            self._check()
            yield chunk

    def close(self) -> None:
        self._stream.close()

    async def aclose(self) -> None:
        await self._stream.aclose()


def bounded_body(response: httpx.Response, clock: Clock, send: Send) -> httpx.Response:
    """*response*, its body to be read no later than the deadline of *send* (see :class:`Send`).

    A body already in memory (the fake's, a mock's) is left alone: it cannot drip.
    """
    if not isinstance(response.stream, httpx.ByteStream) and send.deadline != math.inf:
        response.stream = _DeadlineStream(response.stream, clock, send.deadline, send.request)
    return response


class BackendEffect(Effect):
    """An effect on the state backends: performs itself, in a sync and an async flavour."""

    __slots__ = ()

    #: The backend of :class:`Backends` the effect works on (``None``: performed by the shells
    #: whatever the backends are, e.g. because it may wait for another thread or task).
    backend: ClassVar[str | None] = None

    def run(self, backends: Backends) -> Any:
        """Perform the effect (sync shell)."""
        raise NotImplementedError

    async def arun(self, backends: Backends) -> Any:
        """Perform the effect (async shell)."""
        raise NotImplementedError


@record
class Acquire(BackendEffect):
    """Take one token from the app and workspace buckets at *priority*."""

    backend: ClassVar[str | None] = "limiter"

    priority: Priority

    def run(self, backends: Backends) -> Grant:
        return backends.limiter.acquire(self.priority)

    async def arun(self, backends: Backends) -> Grant:
        return await backends.limiter.aacquire(self.priority)


#: The acquire of each priority, built once (the driver yields one per attempt).
ACQUIRE: dict[Priority, Acquire] = {level: Acquire(level) for level in Priority}


@record
class ObserveRate(BackendEffect):
    """Feed an attempt's status and rate-limit headers back to the limiter."""

    backend: ClassVar[str | None] = "limiter"

    status: int | None
    info: RateLimitInfo | None

    def run(self, backends: Backends) -> None:
        backends.limiter.observe(self.status, self.info)

    async def arun(self, backends: Backends) -> None:
        await backends.limiter.aobserve(self.status, self.info)


@record
class CachePut(BackendEffect):
    """Store a fresh read under *key*, tagged with *tags*."""

    backend: ClassVar[str | None] = "cache"

    key: str
    entry: CachedResponse
    tags: tuple[str, ...]
    read_started: float | None = None  # the read's start, clock.monotonic()

    def run(self, backends: Backends) -> None:
        backends.cache.put(self.key, self.entry, self.tags, self.read_started)

    async def arun(self, backends: Backends) -> None:
        await backends.cache.aput(self.key, self.entry, self.tags, self.read_started)


@record
class Invalidate(BackendEffect):
    """Drop every cached read tagged with one of *tags*."""

    backend: ClassVar[str | None] = "cache"

    tags: tuple[str, ...]

    def run(self, backends: Backends) -> int:
        return backends.cache.invalidate(self.tags)

    async def arun(self, backends: Backends) -> int:
        return await backends.cache.ainvalidate(self.tags)


@record
class CacheGet(BackendEffect):
    """Look up the stored read under *key*."""

    backend: ClassVar[str | None] = "cache"

    key: str

    def run(self, backends: Backends) -> CachedResponse | None:
        return backends.cache.get(self.key)

    async def arun(self, backends: Backends) -> CachedResponse | None:
        return await backends.cache.aget(self.key)


@record
class AskBreaker(BackendEffect):
    """May a call go out? A trial slot it is granted is held at most *lease* seconds."""

    backend: ClassVar[str | None] = "breaker"

    lease: float

    def run(self, backends: Backends) -> BreakerVerdict:
        return backends.breaker.allow(self.lease)

    async def arun(self, backends: Backends) -> BreakerVerdict:
        return await backends.breaker.aallow(self.lease)


@record
class TellBreaker(BackendEffect):
    """Record an attempt's result: ``True`` an outage, ``False`` a success, ``None`` neutral."""

    backend: ClassVar[str | None] = "breaker"

    failed: bool | None

    def run(self, backends: Backends) -> Transition | None:
        return backends.breaker.record(self.failed)

    async def arun(self, backends: Backends) -> Transition | None:
        return await backends.breaker.arecord(self.failed)


#: The breaker record of each way the status table counts an attempt, built once (one per
#: attempt): an outage, a success, or neutral.
TELL_BREAKER: dict[BreakerCount, TellBreaker] = {
    BreakerCount.FAILURE: TellBreaker(True),
    BreakerCount.SUCCESS: TellBreaker(False),
    BreakerCount.IGNORED: TellBreaker(None),
}


def ask_breaker(lease: float) -> AskBreaker:
    """The breaker question for a trial slot leased *lease* seconds, rounded up to a whole second
    (built once per second of lease: one is asked per attempt, and a lease is only the bound on
    how long a dead holder keeps the slot, so a fraction more is harmless)."""
    return _asking(math.ceil(lease))


@lru_cache(maxsize=128)
def _asking(whole: int) -> AskBreaker:
    return AskBreaker(float(whole))


#: Every effect that works on one backend, by the backend's name in :class:`Backends`.
_ON_BACKEND: tuple[type[BackendEffect], ...] = (
    Acquire,
    ObserveRate,
    CachePut,
    Invalidate,
    CacheGet,
    AskBreaker,
    TellBreaker,
)


def in_process_effects(backends: Backends) -> frozenset[type[BackendEffect]]:
    """The effects the call driver may perform itself for *backends*: those on a backend that
    says it lives in the process (``in_process = True``: no I/O, never waits). A backend that
    does not say so (Redis, one of the user's own) is always left to the shells."""
    return frozenset(
        effect
        for effect in _ON_BACKEND
        if effect.backend is not None
        and getattr(getattr(backends, effect.backend), "in_process", False) is True
    )
