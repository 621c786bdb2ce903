"""Judgement: after an attempt, try again (and after how long), or conclude the call.

The retry decision itself (which results may be repeated for which requests) is the status
table's and :func:`~intercom_resilience._core.retry.judge`'s; this stage applies the call's
limits to it: attempts, deadline, retry budget. Concluding turns the last attempt into the
answer or the error, with the cache instructions for the stale stage.
"""

from __future__ import annotations

import dataclasses

import httpx

from .._backends.base import CachedResponse, Priority
from .._core.breaker import BreakerState
from .._core.cache import scope_tag
from .._core.outcome import Outcome
from .._core.retry import Verdict, backoff, server_wait
from .._core.status import Forget, StaleReason
from .._errors import (
    DeadlineExceededError,
    OutcomeUnknownError,
    RateLimitedError,
    wrap_transport_error,
)
from .._sdk_bodies import ensure_error_body, sdk_readable
from ..events import CallRetry, DeadlineExceeded, RetryBudgetExhausted
from .call import Call, Conclusion
from .shared import Shared, where

__all__ = ["Judgement"]

# Enum members read on every call, bound to module names (see _core/__init__.py).
_ROTATE_TOKEN, _RETRY = Verdict.ROTATE_TOKEN, Verdict.RETRY

#: Headers of a fresh read worth keeping in the stale cache.
_KEPT_HEADERS = ("content-type", "x-request-id")


class Judgement:
    """Decides between another attempt and the end of the call."""

    def __init__(self, shared: Shared) -> None:
        self._shared = shared

    def next_wait(self, call: Call) -> float | None:
        """After an attempt: seconds to wait before the next one, or ``None`` to stop."""
        verdict = call.verdict
        if verdict is _ROTATE_TOKEN:
            return 0.0
        shared = self._shared
        policy = shared.config.retry
        if verdict is not _RETRY or not policy.enabled:
            return None
        if shared.breaker.state is BreakerState.OPEN:
            # The circuit opened (this attempt's failure, or the fleet's, as the breaker last
            # told): a retry would be one more request at a failing Intercom that a new call
            # would not be allowed to send.
            shared.refuse(call, StaleReason.CIRCUIT_OPEN)
            return None
        outcome = call.outcome
        assert outcome is not None
        # Background work waits out a 429 storm within its (long) deadline: each retry waits for
        # the server's reset, so it cannot multiply load, and the job must not fail for quota.
        patient = outcome.means.rate_limited and call.priority is Priority.BACKGROUND
        if call.attempts >= policy.max_attempts and not patient:
            return None
        waited = server_wait(policy, outcome, shared.clock.time())
        wait = waited if waited is not None else backoff(policy, call.attempts, shared.rng.random())
        now = shared.clock.monotonic()
        # Never sleep just to fail: the next attempt needs time of its own after the wait.
        if now + wait + shared.config.deadlines.minimum > call.deadline:
            call.cut_short = wait
            shared.telemetry.emit(
                DeadlineExceeded(
                    *where(call),
                    attempt=call.attempts,
                    status=outcome.status,
                    wait_s=round(wait, 3),
                    left_s=round(max(call.deadline - now, 0.0), 3),
                    request_id=outcome.request_id,
                )
            )
            return None
        with shared.lock:
            spent = patient or shared.budget.try_spend(now)
        if not spent:
            shared.telemetry.emit(RetryBudgetExhausted(*where(call)))
            return None
        shared.telemetry.emit(
            CallRetry(
                *where(call),
                attempt=call.attempts,
                status=outcome.status,
                error=outcome.error_name,
                wait_s=round(wait, 3),
                request_id=outcome.request_id,
            )
        )
        return wait

    def conclude(self, call: Call) -> Conclusion:
        """After the last attempt: the answer or the error, and the cache instructions."""
        outcome = call.outcome
        assert outcome is not None
        kind = call.kind
        if outcome.means.ok:
            assert call.response is not None
            content_type = outcome.headers.get("content-type", "")
            response = sdk_readable(call.response, call.request, content_type=content_type)
            if kind.is_read and call.cache_key is not None:
                return Conclusion(
                    response=response,
                    store=self._entry(call, response),
                    store_tags=(*call.read_tags, scope_tag(call.scope)),
                )
            return Conclusion(response=response, invalidate=call.write_tags)
        conclusion = self._failed(call, outcome)
        dropped = self._obsolete(call, outcome)
        return dataclasses.replace(conclusion, invalidate=dropped) if dropped else conclusion

    def _obsolete(self, call: Call, outcome: Outcome) -> tuple[str, ...]:
        """What a failed call makes the cache forget.

        A write that may have been applied (a lost answer, a 5xx after commit) drops what it may
        have changed: under-invalidating serves a lie later. A read answered 404 drops its own
        entry (the record is gone: the next outage must not bring it back). A 401 or 403 drops
        everything those credentials cached.
        """
        if call.cache_key is None and not call.write_tags:
            return ()
        forget = outcome.means.forget
        if forget is Forget.CREDENTIALS:
            return (scope_tag(call.scope),)
        if call.write_tags:
            return call.write_tags if call.may_have_applied else ()
        if forget is Forget.RECORD and call.read_tags and not call.read_tags[0].endswith("*"):
            return call.read_tags[:1]  # the instance tag: this record and what lies under it
        return ()

    def _failed(self, call: Call, outcome: Outcome) -> Conclusion:
        kind = call.kind
        request_id = outcome.request_id
        stale_reason = outcome.means.stale if kind.is_read else None
        if stale_reason is StaleReason.TIMEOUT and call.entry is not None:
            # The attempt's timeouts were cut to the read's latency budget: it was slow.
            stale_reason = StaleReason.SLOW
        if call.cut_short is not None and outcome.status is not None:
            return Conclusion(
                error=self._cut_short(call, call.cut_short),
                stale_reason=stale_reason,
                failure_request_id=request_id,
            )
        if call.verdict is Verdict.OUTCOME_UNKNOWN:
            error: BaseException = OutcomeUnknownError(
                kind.method,
                kind.template,
                status_code=outcome.status,
                request_id=request_id,
                reason=outcome.error_name or "",
            )
            return Conclusion(error=error, failure_request_id=request_id)
        if call.error is not None:
            error = wrap_transport_error(call.error)
            return Conclusion(error=error, stale_reason=stale_reason, failure_request_id=request_id)
        assert call.response is not None
        return Conclusion(
            response=ensure_error_body(sdk_readable(call.response, call.request), call.request),
            stale_reason=stale_reason,
            failure_request_id=request_id,
        )

    def _cut_short(self, call: Call, wait: float) -> BaseException:
        """The error of a call whose next attempt would not fit before its deadline."""
        outcome = call.outcome
        assert outcome is not None
        where_ = f"{call.kind.method} {call.kind.template}"
        left = max(call.deadline - self._shared.clock.monotonic(), 0.0)
        if outcome.means.rate_limited:
            return RateLimitedError(
                f"Intercom rate-limited {where_} and asks to wait {wait:.1f}s, past the call's "
                f"deadline ({left:.1f}s left)",
                retry_at=self._shared.clock.time() + wait,
                retry_after=wait,
                request_id=outcome.request_id,
            )
        return DeadlineExceededError(
            f"{where_} failed with {outcome.status}; the next attempt (after {wait:.1f}s) would "
            f"end past the call's deadline ({left:.1f}s left)",
            retry_after=wait,
            status_code=outcome.status,
            request_id=outcome.request_id,
        )

    def _entry(self, call: Call, response: httpx.Response) -> CachedResponse:
        """What the stale cache keeps of a fresh read."""
        fresh = call.response
        assert fresh is not None
        assert call.outcome is not None
        # The outcome's plain dict of the headers: httpx.Headers lookups scan the whole list.
        headers = call.outcome.headers
        return CachedResponse(  # status, headers, content, stored at, request id
            fresh.status_code,
            tuple([(name, headers[name]) for name in _KEPT_HEADERS if name in headers]),
            response.content,
            self._shared.clock.time(),
            call.outcome.request_id,
        )
