"""Reconciliation: after an ambiguous failure of a write, find out what happened, exactly once.

The attempt loop never re-sends a write that repeating could duplicate: it ends with
``Verdict.OUTCOME_UNKNOWN``. This stage then applies the write's row of the write-safety table
(:mod:`intercom_resilience._core.writes`):

* ``idempotent``: re-send; the answer is the real object (``reconciled_by="resent"``);
* ``conflict``: re-send; a 409 ``conflict`` naming the existing id means the first attempt
  created it: fetch and answer with it (``"conflict"``), unless it existed before this call;
* ``lookup``: look for the write's trace; found, it is the answer (``"lookup"``); absent, re-send
  (and look again if that one is lost too);
* ``unresolvable``: :class:`~intercom_resilience.OutcomeUnknownError`, with how to check by hand.

A ``DELETE`` retried after an attempt that may have landed and answered 404 is done, too.

Every request of this stage passes the limiter (``Acquire``, waiting as the attempt loop does),
is sent through the same shells (``Send``), counts for the breaker, spends the retry budget and
fits in the call's deadline. Re-sends count as attempts (``RetryPolicy.max_attempts``). A spent
budget does not stop the first ``max_attempts`` requests of a reconciliation: the budget exists to
stop blind retries from multiplying a failing load, while these requests are bounded per write
already, go out only for a write whose answer was lost, and are what the caller would otherwise
send by hand later, unpaced (when the budget has room they still spend it, so they hold back
other calls' blind retries). Past them, a lookup that keeps failing needs the budget. When any of
these runs out the write's outcome stays unknown and the caller is told so.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Generator, Mapping
from typing import Any
from urllib.parse import urlencode

import httpx

from .._backends.base import Grant
from .._core.cache import write_invalidations
from .._core.outcome import Outcome
from .._core.retry import Verdict, backoff, server_wait
from .._core.status import RetryRule, meaning
from .._core.writes import (
    Resolution,
    Trace,
    WriteRule,
    conflict_id,
    deleted_body,
    find_trace,
    rule_for,
    trace_request,
)
from .._errors import OutcomeUnknownError
from .._sdk_bodies import sdk_readable
from ..events import CallReconciled, RetryBudgetExhausted
from .admission import Admission
from .attempt import Attempt, _header_dict, _network
from .call import Call, Conclusion
from .effects import Acquire, Effect, ObserveRate, Send, Sent, Sleep
from .judgement import Judgement
from .pacing import Pacing
from .shared import Shared, where

__all__ = ["Reconcile"]

#: What a reconciliation step yields, is sent, and returns.
Steps = Generator[Effect, Any, Any]

#: What to tell a caller whose write's row names no way of checking by hand.
_BY_HAND = {
    Resolution.IDEMPOTENT: "sending it again is safe",
    Resolution.CONFLICT: "check the resource before retrying",
    Resolution.LOOKUP: "check the resource before retrying",
    Resolution.UNRESOLVABLE: "check the resource before retrying",
}

_DROPPED_HEADERS = frozenset({"content-length", "content-type", "transfer-encoding"})


class _GaveUp(Exception):
    """Deadline, budget, attempts or the kill switch ended reconciliation."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


@dataclasses.dataclass(slots=True)
class _Progress:
    """What one reconciliation has done so far."""

    rule: WriteRule
    resolution: Resolution
    body: Mapping[str, Any] | None
    since: float  # wall-clock time the call started
    first: Outcome  # the ambiguous attempt
    requests: int = 0  # requests this stage sent (re-sends and lookups)


def _json_body(request: httpx.Request) -> Mapping[str, Any] | None:
    try:
        body = json.loads(request.content or b"{}")
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


class Reconcile:
    """Resolves the writes whose answers were lost, per the write-safety table."""

    def __init__(
        self,
        shared: Shared,
        admission: Admission,
        pacing: Pacing,
        attempt: Attempt,
        judgement: Judgement,
    ) -> None:
        self._shared = shared
        self._admission = admission
        self._pacing = pacing
        self._attempt = attempt
        self._judgement = judgement

    def wanted(self, call: Call) -> bool:
        """After the last attempt: does this call need reconciling rather than concluding?"""
        kind = call.kind
        if kind.is_read or not self._shared.config.retry.enabled:
            return False
        if call.verdict is Verdict.OUTCOME_UNKNOWN:
            return rule_for(kind.method, kind.template) is not None
        outcome = call.outcome
        if (
            call.verdict is Verdict.RETRY
            and call.cut_short is None
            and outcome is not None
            and outcome.means.retry is RetryRule.IF_IDEMPOTENT
        ):
            # An idempotent write whose retries stopped (the budget) on an answer that may have
            # followed a commit: reconciling it is re-sending it, within its attempts.
            return rule_for(kind.method, kind.template) is not None
        # A DELETE re-sent after an attempt that may have landed: its 404 means it had.
        return (
            kind.method == "DELETE"
            and call.maybe_processed
            and outcome is not None
            and outcome.status == 404
        )

    # ------------------------------------------------------------------------------ the stage

    def resolve(self, call: Call) -> Generator[Effect, Any, Conclusion]:
        """Apply the write's row; the conclusion is the real object, or outcome unknown."""
        kind = call.kind
        rule = rule_for(kind.method, kind.template)
        assert rule is not None
        assert call.outcome is not None
        if call.verdict is Verdict.FAIL:  # the DELETE answered 404
            return self._deleted(call, "resent", requests=0)
        body = _json_body(call.request)
        clock = self._shared.clock
        progress = _Progress(
            rule=rule,
            resolution=rule.resolution_for(body),
            body=body,
            since=clock.time() - (clock.monotonic() - call.started),
            first=call.outcome,
        )
        if progress.resolution is Resolution.UNRESOLVABLE:
            return self._unknown(call, progress, "the write-safety table has no safe way")
        try:
            return (yield from self._run(call, progress))
        except _GaveUp as stop:
            return self._unknown(call, progress, stop.why)

    def _run(self, call: Call, progress: _Progress) -> Generator[Effect, Any, Conclusion]:
        rule, body = progress.rule, progress.body
        while True:
            if progress.resolution is Resolution.LOOKUP:
                assert body is not None
                trace = trace_request(rule, call.request.url.path, body)
                if trace is None:
                    raise _GaveUp("the request carries nothing to look its trace up by")
                # Let the write settle first: a lookup that misses a write about to show would
                # lead to a duplicate re-send (Intercom's reads may lag its writes).
                yield from self._pause(call, call.outcome)
                found = yield from self._look_up(call, progress, trace)
                if found is not None:
                    return self._answer(call, progress, *found, how="lookup")
            yield from self._resend(call, progress)
            verdict = call.verdict
            outcome = call.outcome
            assert outcome is not None
            if verdict is Verdict.SUCCESS:
                conclusion = self._judgement.conclude(call)
                self._report(call, progress, "resent", outcome.request_id)
                return dataclasses.replace(conclusion, reconciled="resent")
            if verdict is Verdict.FAIL:
                if outcome.status == 409 and progress.resolution is Resolution.CONFLICT:
                    existing = yield from self._existing(call, progress, outcome)
                    if existing is not None:
                        return existing
                if outcome.status == 404 and call.kind.method == "DELETE":
                    return self._deleted(call, "resent", requests=progress.requests)
                # Intercom's answer about the write (a 4xx): the caller gets it as it is.
                return self._judgement.conclude(call)
            # Lost again (or a 429, a refused connection): wait, then look or re-send again.
            if progress.resolution is not Resolution.LOOKUP:
                yield from self._pause(call, outcome)

    # ----------------------------------------------------------------------------- requests

    def _admit(self, call: Call, progress: _Progress) -> Generator[Effect, Any, Grant]:
        """One more request of this stage: deadline, kill switch, budget, then a token."""
        shared = self._shared
        now = shared.clock.monotonic()
        if now + shared.config.deadlines.minimum > call.deadline:
            raise _GaveUp("the call's deadline came first")
        if self._admission.still_admitted(call) is not None:
            raise _GaveUp("the kill switch is on")
        with shared.lock:
            spent = shared.budget.try_spend(now)
        if not spent and progress.requests >= shared.config.retry.max_attempts:
            shared.telemetry.emit(RetryBudgetExhausted(*where(call)))
            raise _GaveUp("the retry budget is spent")
        grant: Grant = yield Acquire(call.priority)
        while not grant.granted:
            wait = self._pacing.on_refused(call, grant)
            if isinstance(wait, Conclusion):
                raise _GaveUp("no rate-limit token in time")
            yield Sleep(wait)
            grant = yield Acquire(call.priority)
        return grant

    def _resend(self, call: Call, progress: _Progress) -> Generator[Effect, Any, None]:
        """Send the write again, as one more attempt of the call."""
        if call.attempts >= self._shared.config.retry.max_attempts:
            raise _GaveUp(f"all {call.attempts} attempts are spent")
        grant = yield from self._admit(call, progress)
        if call.verdict is Verdict.OUTCOME_UNKNOWN:
            call.verdict = Verdict.RETRY  # not a token rotation: prepare leaves the token alone
        clock = self._shared.clock
        prepared = self._attempt.prepare(call, grant)
        started = clock.monotonic()
        sent = yield Send(prepared, call.deadline)
        outcome = self._attempt.observe(call, sent, clock.monotonic() - started)
        progress.requests += 1
        yield from self._shared.count_for_breaker(outcome.means.breaker)
        yield ObserveRate(outcome.status, outcome.rate_limit)

    def _get(
        self, call: Call, progress: _Progress, path: str, params: tuple[tuple[str, str], ...] = ()
    ) -> Generator[Effect, Any, httpx.Response | None]:
        """``GET path`` with the call's credentials; ``None`` when no answer came back."""
        yield from self._admit(call, progress)
        shared = self._shared
        original = call.request
        url = original.url.copy_with(path=path, query=urlencode(params).encode() or None)
        headers = [
            (name, value)
            for name, value in original.headers.multi_items()
            if name.lower() not in _DROPPED_HEADERS
        ]
        request = httpx.Request("GET", url, headers=headers)
        left = max(call.deadline - shared.clock.monotonic(), 0.001)
        timeouts = shared.config.timeouts
        request.extensions["timeout"] = {
            "connect": min(timeouts.connect, left),
            "read": min(timeouts.read, left),
            "write": min(timeouts.write, left),
            "pool": min(timeouts.pool, left),
        }
        started = shared.clock.monotonic()
        sent: Sent = yield Send(request, call.deadline)
        progress.requests += 1
        duration = shared.clock.monotonic() - started
        if sent.response is None:
            error = sent.error
            network = _network(error) if isinstance(error, httpx.TransportError) else None
            yield from shared.count_for_breaker(meaning(None, network).breaker)
            yield ObserveRate(None, None)
            return None
        response = sent.response
        outcome = Outcome.from_response(
            response.status_code, _header_dict(response.headers), sent.content, duration
        )
        yield from shared.count_for_breaker(outcome.means.breaker)
        yield ObserveRate(outcome.status, outcome.rate_limit)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=sent.content,
            request=request,
        )

    def _look_up(
        self, call: Call, progress: _Progress, trace: Trace
    ) -> Generator[Effect, Any, tuple[int, Any, str | None] | None]:
        """The write's answer found by its trace, or ``None`` when it is certainly absent."""
        body = progress.body
        assert body is not None
        while True:
            response = yield from self._get(call, progress, trace.path, trace.params)
            if response is not None and response.status_code == 200:
                try:
                    payload = response.json()
                except ValueError:
                    payload = None
                found = find_trace(progress.rule, body, progress.since, payload)
                if found is None:
                    return None
                return found[0], found[1], response.headers.get("x-request-id")
            if response is not None and response.status_code == 404:
                return None  # no parent object: the write cannot have happened
            # The lookup itself failed: look again after a pause, within the same limits.
            yield from self._pause(call, None)

    def _existing(
        self, call: Call, progress: _Progress, conflict: Outcome
    ) -> Generator[Effect, Any, Conclusion | None]:
        """After a 409: the object the first attempt created, or ``None`` if it is older."""
        rule = progress.rule
        existing = _conflict_id(conflict)
        if existing is None or rule.fetch is None:
            return None
        while True:
            response = yield from self._get(call, progress, rule.fetch.format(id=existing))
            if response is not None and response.status_code == 200:
                try:
                    payload = response.json()
                except ValueError:
                    payload = None
                created = payload.get("created_at") if isinstance(payload, dict) else None
                if isinstance(created, int | float) and created < int(progress.since):
                    return None  # it existed before this call: the 409 is the real answer
                return self._answer(
                    call, progress, 200, payload, response.headers.get("x-request-id"), "conflict"
                )
            if response is not None and 400 <= response.status_code < 500:
                return None
            yield from self._pause(call, None)

    def _pause(self, call: Call, outcome: Outcome | None) -> Generator[Effect, Any, None]:
        """Back off before the next request of this stage (the server's wait when it gave one)."""
        shared = self._shared
        policy = shared.config.retry
        waited = None if outcome is None else server_wait(policy, outcome, shared.clock.time())
        step = max(call.attempts, 1)
        wait = waited if waited is not None else backoff(policy, step, shared.rng.random())
        if shared.clock.monotonic() + wait + shared.config.deadlines.minimum > call.deadline:
            raise _GaveUp("the call's deadline came first")
        if wait > 0:
            yield Sleep(wait)

    # ------------------------------------------------------------------------------ answers

    def _answer(
        self,
        call: Call,
        progress: _Progress,
        status: int,
        payload: Any,
        request_id: str | None,
        how: str,
    ) -> Conclusion:
        """The write's real object as the SDK reads it, with the caches the write made stale."""
        headers = {"content-type": "application/json"}
        if request_id is not None:
            headers["x-request-id"] = request_id
        content = b"" if payload is None else json.dumps(payload).encode()
        response = httpx.Response(status, headers=headers, content=content, request=call.request)
        self._report(call, progress, how, request_id)
        return Conclusion(
            response=sdk_readable(response, call.request),
            invalidate=self._invalidations(call),
            reconciled=how,
        )

    def _deleted(self, call: Call, how: str, *, requests: int) -> Conclusion:
        """A DELETE whose 404 came after an attempt that may have landed: it had."""
        outcome = call.outcome
        assert outcome is not None
        headers = {"content-type": "application/json"}
        if outcome.request_id is not None:
            headers["x-request-id"] = outcome.request_id
        response = httpx.Response(
            200,
            headers=headers,
            content=json.dumps(deleted_body(call.request.url.path)).encode(),
            request=call.request,
        )
        self._shared.telemetry.emit(
            CallReconciled(
                *where(call),
                resolution=Resolution.IDEMPOTENT.value,
                how=how,
                requests=requests,
                request_id=outcome.request_id,
                detail="a re-sent DELETE answered 404: the first one had landed",
            )
        )
        return Conclusion(
            response=sdk_readable(response, call.request),
            invalidate=self._invalidations(call),
            reconciled=how,
        )

    def _invalidations(self, call: Call) -> tuple[str, ...]:
        if not self._shared.config.cache.enabled:
            return ()
        return write_invalidations(call.scope, call.kind.method, call.request.url.path)

    def _unknown(self, call: Call, progress: _Progress, why: str) -> Conclusion:
        """The write's outcome stays unknown: the caller gets everything to resolve it by hand."""
        first = progress.first
        kind = call.kind
        self._shared.telemetry.emit(
            CallReconciled(
                *where(call),
                resolution=progress.resolution.value,
                how=None,
                requests=progress.requests,
                request_id=first.request_id,
                detail=why,
            )
        )
        error = OutcomeUnknownError(
            kind.method,
            kind.template,
            status_code=first.status,
            request_id=first.request_id,
            reason=first.error_name or "",
            resolution=progress.resolution.value,
            hint=f"{why}; {progress.rule.by_hand or _BY_HAND[progress.resolution]}",
            resent=call.attempts > 1,
        )
        # The write may have been applied: what it may have changed must not be served stale.
        return Conclusion(
            error=error, failure_request_id=first.request_id, invalidate=self._invalidations(call)
        )

    def _report(self, call: Call, progress: _Progress, how: str, request_id: str | None) -> None:
        self._shared.telemetry.emit(
            CallReconciled(
                *where(call),
                resolution=progress.resolution.value,
                how=how,
                requests=progress.requests,
                request_id=request_id,
                detail="",
            )
        )


def _conflict_id(outcome: Outcome) -> str | None:
    """The existing id named by a 409 ``conflict`` error list."""
    body = outcome.body
    errors = body.get("errors") if isinstance(body, dict) else None
    for error in errors if isinstance(errors, list) else []:
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            found = conflict_id(error["message"])
            if found is not None:
                return found
    return None
