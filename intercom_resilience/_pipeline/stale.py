"""The answer: the last good read when the call failed for an outage, else the conclusion.

A stale answer is rebuilt from the cache entry as the response the SDK parses, marked with its
age (``x-intercom-resilience-stale-age``), counted, and reported; ``capture_calls()`` sees it
as stale with its age and reason.
"""

from __future__ import annotations

import threading

import httpx

from .._backends.base import CachedResponse
from .._core.cache import is_servable
from ..events import CallFinished, StaleServed
from .call import Call, Conclusion
from .shared import Shared, where

__all__ = ["STALE_HEADER", "StaleAnswer"]

#: The response header that carries a stale answer's age in seconds.
STALE_HEADER = "x-intercom-resilience-stale-age"


class StaleAnswer:
    """Answers a concluded call, from the stale cache when it may."""

    def __init__(self, shared: Shared) -> None:
        self._shared = shared
        self._lock = threading.Lock()
        self.stale_served = 0

    def hold_in_reserve(self, call: Call, entry: CachedResponse | None) -> None:
        """Before a read's first attempt: keep *entry* if it may be served, and give the read
        its latency budget as deadline (stale-if-slow, stale-while-rate-limited)."""
        call.looked_up = True
        shared = self._shared
        if entry is None:
            return
        if not is_servable(entry.stored_at, shared.clock.time(), shared.config.cache.stale_window):
            return
        call.entry = entry
        if call.slow_at is not None:
            call.deadline = min(call.deadline, call.slow_at)

    def serve(
        self, call: Call, conclusion: Conclusion, entry: CachedResponse
    ) -> httpx.Response | None:
        """The response to serve from *entry*, or ``None`` when it is too old to serve."""
        shared = self._shared
        now = shared.clock.time()
        if not is_servable(entry.stored_at, now, shared.config.cache.stale_window):
            return None
        reason = conclusion.stale_reason
        assert reason is not None
        age = max(0.0, now - entry.stored_at)
        headers = [*entry.headers, (STALE_HEADER, f"{age:.3f}")]
        response = httpx.Response(
            entry.status, headers=headers, content=entry.content, request=call.request
        )
        with self._lock:
            self.stale_served += 1
        telemetry = shared.telemetry
        telemetry.emit(
            StaleServed(
                *where(call),
                reason=reason.value,
                age_s=round(age, 3),
                request_id=conclusion.failure_request_id,
            )
        )
        if telemetry.wants_finished():
            telemetry.finished(
                CallFinished(
                    *where(call),
                    status=entry.status,
                    attempts=call.attempts,
                    stale=True,
                    age=age,
                    reason=reason.value,
                    request_id=entry.request_id,
                    failure_request_id=conclusion.failure_request_id,
                )
            )
        return response

    def shared(self, call: Call, entry: CachedResponse) -> httpx.Response:
        """The fresh answer of the identical read this call waited for (``coalesce``, in this
        process or across the fleet)."""
        telemetry = self._shared.telemetry
        if telemetry.wants_finished():
            telemetry.finished(
                CallFinished(
                    *where(call),
                    status=entry.status,
                    attempts=0,  # it sent nothing: another call's request answered it
                    stale=False,
                    age=None,
                    reason=None,
                    request_id=entry.request_id,
                    failure_request_id=None,
                    coalesced=True,
                )
            )
        return httpx.Response(
            entry.status, headers=entry.headers, content=entry.content, request=call.request
        )

    def finish(self, call: Call, conclusion: Conclusion) -> httpx.Response:
        """The conclusion's response, or raise its error (no stale answer was served)."""
        telemetry = self._shared.telemetry
        if telemetry.wants_finished():
            outcome = call.outcome
            fresh = outcome is not None and outcome.means.ok and conclusion.error is None
            if fresh:
                assert outcome is not None
                request_id = outcome.request_id
            else:
                request_id = conclusion.failure_request_id
            telemetry.finished(
                CallFinished(
                    *where(call),
                    status=None if outcome is None else outcome.status,
                    attempts=call.attempts,
                    stale=False,
                    age=None,
                    reason=None,
                    request_id=request_id,
                    failure_request_id=None,
                    reconciled=conclusion.reconciled is not None,
                    reconciled_by=conclusion.reconciled,
                )
            )
        if conclusion.error is not None:
            raise conclusion.error
        assert conclusion.response is not None
        return conclusion.response
