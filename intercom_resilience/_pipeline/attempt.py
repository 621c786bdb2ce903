"""The attempt: prepare one request for the wire, then describe what came back.

Preparing rotates the token after a 401 (when the token is a callable) and bounds every httpx
timeout by the policy and by the time the call has left. Observing turns a response or a network
failure into an :class:`~intercom_resilience._core.outcome.Outcome`, asks the status table what it
means, judges whether it may be retried, and counts it for the breaker.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import httpx

from .._backends.base import Grant
from .._core.outcome import Outcome
from .._core.requests import RequestKind
from .._core.responses import (
    EMPTY_SUCCESSES,
    OBJECT_DATA_TEMPLATES,
    error_codes,
    malformed_json,
    read_headers,
)
from .._core.retry import Verdict, judge
from .._core.status import Network, RetryRule
from ..events import CallAttempt, TokenRotated
from .admission import Admission
from .call import Call
from .effects import Sent
from .headers import header_triples
from .shared import Shared, where

__all__ = ["Attempt"]

#: The smallest timeout handed to httpx (a call at its deadline still gets a well-formed request).
_MIN_TIMEOUT = 0.001
#: Distinct sets of request timeouts memoised (the SDK sends one; per-call overrides add a few).
_MAX_TIMEOUT_SETS = 64
# Enum members read on every call, bound to module names (see _core/__init__.py).
_ROTATE_TOKEN, _IF_IDEMPOTENT = Verdict.ROTATE_TOKEN, RetryRule.IF_IDEMPOTENT


def _network(error: httpx.TransportError) -> Network:
    # Nothing is sent before a connection (or a pool slot) is had.
    if isinstance(error, (httpx.ConnectTimeout, httpx.PoolTimeout)):
        return Network.CONNECT_TIMEOUT
    if isinstance(error, httpx.ConnectError):
        return Network.CONNECT
    if isinstance(error, httpx.TimeoutException):
        return Network.TIMEOUT
    return Network.AMBIGUOUS


def _as_transport_error(
    error: httpx.TransportError | httpx.DecodingError, request: httpx.Request
) -> httpx.TransportError:
    """*error* as a transport error: an undecodable body becomes a protocol error.

    A body that does not match its ``Content-Encoding`` (gzip that is not gzip) never arrived
    intact, as with a dropped connection: reads are retried, and a write's outcome is unknown.
    """
    if isinstance(error, httpx.TransportError):
        return error
    return httpx.RemoteProtocolError(
        f"response body could not be decoded: {error}", request=request
    )


def _header_dict(headers: httpx.Headers) -> dict[str, str]:
    """The headers of a response that the decisions read, as :func:`read_headers` gives them."""
    return read_headers(header_triples(headers), headers.encoding)


@lru_cache(maxsize=1024)
def _shape(kind: RequestKind) -> tuple[bool, bool, bool]:
    """What a success of *kind* must look like: ``(is_list, has_body, data_is_object)``.

    Reads of a collection (not ending in an id) may be pages the SDK iterates; every operation
    but a few documented as empty answers a 200/201 with a body; two searches' ``data`` is an
    object. Fixed per operation, so worked out once per path template.
    """
    operation = (kind.method, kind.template)
    return (
        kind.is_read and not kind.template.endswith("{id}"),
        operation not in EMPTY_SUCCESSES,
        operation in OBJECT_DATA_TEMPLATES,
    )


class Attempt:
    """Prepares attempts and observes their results."""

    def __init__(self, shared: Shared, admission: Admission) -> None:
        self._shared = shared
        self._admission = admission
        # The SDK sends the same timeouts with every request: bounded by the policy once.
        self._bounded: dict[tuple[tuple[str, Any], ...], tuple[dict[str, float], float]] = {}

    def _policy_bounded(self, current: Mapping[str, Any]) -> tuple[dict[str, float], float]:
        """The request's httpx timeouts each bounded by the policy's, and the longest of them."""
        key: tuple[tuple[str, Any], ...] | None
        try:
            key = tuple(current.items())
            found = self._bounded.get(key)
        except TypeError:  # an unhashable value: not memoised
            key, found = None, None
        if found is not None:
            return found
        timeouts = self._shared.config.timeouts
        base = {}
        for name, policy_value in (
            ("connect", timeouts.connect),
            ("read", timeouts.read),
            ("write", timeouts.write),
            ("pool", timeouts.pool),
        ):
            value = current.get(name)
            base[name] = policy_value if value is None else min(float(value), policy_value)
        found = (base, max(base.values()))
        if key is not None and len(self._bounded) < _MAX_TIMEOUT_SETS:
            self._bounded[key] = found
        return found

    def prepare(self, call: Call, grant: Grant) -> httpx.Request:
        """The request for the next attempt: a fresh token after a 401, bounded timeouts."""
        shared = self._shared
        call.tokens_left = grant.remaining
        request = call.request
        token = shared.token
        if call.verdict is _ROTATE_TOKEN and callable(token):
            request.headers["authorization"] = f"Bearer {token()}"
            call.scope = self._admission.scope_of(request)
            call.rotated = True
            shared.telemetry.emit(TokenRotated(*where(call)))
        left = max(call.deadline - shared.clock.monotonic(), _MIN_TIMEOUT)
        base, longest = self._policy_bounded(request.extensions.get("timeout") or {})
        if left >= longest:
            bounded = dict(base)  # the call has time for every timeout
        else:
            # As common: the SDK asks 60 s of every timeout, longer than most deadlines. Spelled
            # out, not a comprehension (a function call of its own, on every attempt).
            connect, read, write, pool = base["connect"], base["read"], base["write"], base["pool"]
            bounded = {
                "connect": connect if connect < left else left,
                "read": read if read < left else left,
                "write": write if write < left else left,
                "pool": pool if pool < left else left,
            }
        request.extensions["timeout"] = bounded
        call.attempts += 1
        return request

    def observe(self, call: Call, sent: Sent, duration: float) -> Outcome:
        """Describe what one attempt brought back, judge it, and report it."""
        if sent.error is not None or sent.response is None:
            assert sent.error is not None
            return self._failed(call, _as_transport_error(sent.error, call.request), duration)
        response = sent.response
        status = response.status_code
        headers = _header_dict(response.headers)
        is_list, has_body, data_is_object = _shape(call.kind)
        problem = malformed_json(
            status,
            sent.content,
            is_list=is_list,
            expects_body=has_body and status in (200, 201),
            content_type=headers.get("content-type", ""),
            data_is_object=data_is_object,
        )
        if problem is not None:
            # The SDK cannot read it: like a response that never arrived intact. Reads are
            # retried (then served stale), and a write's outcome is unknown (never re-sent).
            broken = httpx.RemoteProtocolError(
                f"malformed response: {problem}", request=call.request
            )
            return self._failed(call, broken, duration)
        call.response = response
        call.error = None
        outcome = Outcome.from_response(status, headers, sent.content, duration)
        return self._judged(call, outcome)

    def _failed(self, call: Call, error: httpx.TransportError, duration: float) -> Outcome:
        call.response = None
        call.error = error
        network = _network(error)
        connect = network in (Network.CONNECT, Network.CONNECT_TIMEOUT)
        outcome = Outcome.from_error(error, connect=connect, duration=duration, network=network)
        return self._judged(call, outcome)

    def _judged(self, call: Call, outcome: Outcome) -> Outcome:
        shared = self._shared
        call.outcome = outcome
        verdict = judge(
            call.kind, outcome, can_rotate_token=callable(shared.token), rotated=call.rotated
        )
        call.verdict = verdict
        # Processed for sure (2xx), or perhaps (a lost answer, a 5xx): a write may have landed.
        means = outcome.means
        if means.ok or means.retry is _IF_IDEMPOTENT:
            call.may_have_applied = True
        if means.retry is _IF_IDEMPOTENT:
            call.maybe_processed = True  # reconciliation needs to know (_pipeline/reconcile.py)
        codes = None if outcome.means.ok else error_codes(outcome.body)
        info = outcome.rate_limit
        telemetry = shared.telemetry
        remaining = None if info is None else info.remaining
        if not telemetry.wants_debug():
            # Nobody listens for the event (no hook, no debug logging): only the health monitor
            # takes the attempt in, without an event built for it (nor the event's rounded
            # milliseconds: round() with digits formats the float, a fifth of this method).
            kind = call.kind
            telemetry.attempted(  # method, template, status, duration, request id, error, …
                kind.method,
                kind.template,
                outcome.status,
                outcome.duration,
                outcome.request_id,
                outcome.error_name or (codes[0] if codes else None),
                call.attempts,
                remaining,
            )
            return outcome
        telemetry.emit(
            CallAttempt(
                *where(call),
                attempt=call.attempts,
                status=outcome.status,
                error=outcome.error_name,
                duration_ms=round(outcome.duration * 1000, 3),
                request_id=outcome.request_id,
                verdict=verdict.value,
                tokens_left=call.tokens_left,
                error_code=codes[0] if codes else None,
                rate_limit_remaining=remaining,
            )
        )
        return outcome
