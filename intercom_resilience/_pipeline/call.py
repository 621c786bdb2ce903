"""One call's state as it moves through the driver, and what ends it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

import httpx

from .._backends.base import CachedResponse, Priority
from .._core.outcome import Outcome
from .._core.record import record
from .._core.requests import RequestKind
from .._core.retry import Verdict
from .._core.status import StaleReason

if TYPE_CHECKING:
    from .coalesce import Flight

__all__ = ["Call", "Conclusion", "current_priority", "priority"]

_priority: ContextVar[Priority] = ContextVar(
    "intercom_resilience_priority", default=Priority.INTERACTIVE
)


def current_priority() -> Priority:
    """The priority of calls made now, in this thread or task."""
    return _priority.get()


@contextmanager
def priority(level: Priority) -> Iterator[None]:
    """Run the block's calls at *level* (see :meth:`ResilientIntercom.background`)."""
    token = _priority.set(level)
    try:
        yield
    finally:
        _priority.reset(token)


@dataclasses.dataclass(slots=True)
class Call:
    """The state of one call as it moves through the driver.

    Attributes:
        request: the request as the SDK built it.
        path: its URL path (``request.url.path``, decoded once).
        kind: its classification (read/write, idempotency, path template).
        scope: the credentials fingerprint (never the token).
        priority: interactive or background.
        started: monotonic time at the start.
        deadline: monotonic time after which no further attempt or wait begins.
        cache_key: where a successful read is stored (``None`` when not cacheable).
        slow_at: for an interactive read, the monotonic time its latency budget is spent
            (``DeadlinePolicy.stale_if_slow``); ``None`` when it has none.
        attempts: attempts sent so far.
        rotated: the token was rotated once after a 401.
        outcome: the last attempt's outcome.
        response: the last attempt's response, when one arrived.
        error: the last attempt's network error, when one happened.
        verdict: the retry decision about the last attempt.
        tokens_left: rate-limit tokens left after this attempt's acquire, when known.
        looked_up: the stale cache was consulted before the first attempt.
        entry: what that lookup found (a servable answer held in reserve), if anything.
        cut_short: the wait that did not fit before the deadline, when one ended the retries.
        read_tags: the cache tags of a cacheable read.
        generation: where the write sequence stood when the read started (see ``coherence``).
        write_tags: the cache tags a write may change.
        flight: the flight this read leads, while it is in the air (see ``coalesce``).
        fleet_token: the fleet lock this read holds, while it fetches for the fleet.
        may_have_applied: an attempt of this write may have been processed by Intercom.
        maybe_processed: an attempt failed in a way that may have left it processed (a 5xx, a
            read timeout, a dropped connection): reconciliation reads it.
        trial: admission gave the call a half-open breaker trial slot (given back if abandoned).
    """

    request: httpx.Request
    path: str
    kind: RequestKind
    scope: str
    priority: Priority
    started: float
    deadline: float
    cache_key: str | None
    slow_at: float | None = None
    attempts: int = 0
    rotated: bool = False
    outcome: Outcome | None = None
    response: httpx.Response | None = None
    error: httpx.TransportError | None = None
    verdict: Verdict | None = None
    tokens_left: float | None = None
    looked_up: bool = False
    entry: CachedResponse | None = None
    cut_short: float | None = None
    read_tags: tuple[str, ...] = ()
    generation: int | None = None
    write_tags: tuple[str, ...] = ()
    may_have_applied: bool = False
    maybe_processed: bool = False
    flight: Flight | None = None
    fleet_token: str | None = None
    trial: bool = False


@record
class Conclusion:
    """How a call ends, before the stale-cache stage has had its say.

    Exactly one of ``response`` and ``error`` is set. The driver first performs the cache
    instructions: store ``store`` under the call's key (tagged ``store_tags``) and drop
    ``invalidate``; when ``stale_reason`` is set it looks the call's key up and, if a servable
    entry is there, answers with it instead.
    """

    response: httpx.Response | None = None
    error: BaseException | None = None
    store: CachedResponse | None = None
    store_tags: tuple[str, ...] = ()
    invalidate: tuple[str, ...] = ()
    stale_reason: StaleReason | None = None
    failure_request_id: str | None = None
    #: How a write's lost answer was reconciled (``resent``, ``conflict``, ``lookup``), if it was.
    reconciled: str | None = None
