"""Admission: a call begins (classified, keyed, given its deadline) and may go out at all.

The kill switch and the circuit breaker are asked here, before any quota is spent. A refused
call ends with a :class:`~.call.Conclusion` whose stale reason lets a read be answered from
the cache.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from typing import Any

import httpx

from .._backends.base import BreakerVerdict, Priority
from .._core.cache import cache_key
from .._core.requests import classify, credentials_fingerprint
from .._core.status import StaleReason
from .._errors import CircuitOpenError, IntercomDisabledError
from ..events import KillSwitchChanged
from .call import Call, Conclusion, current_priority
from .deadline import lane_deadline, scoped_deadline
from .effects import Effect, ask_breaker
from .headers import header_triples
from .shared import Shared

__all__ = ["Admission"]

#: Rotated tokens must not grow the fingerprint memo without bound.
_MAX_SCOPES = 64
#: Bounds of a half-open trial slot's lease, in seconds: the call's time to its deadline, so a
#: fleet trial holder that dies frees the slot by then (and a short deadline still gets a second).
_LEASE = (1.0, 60.0)


class Admission:
    """Starts calls and admits them past the kill switch and the breaker.

    Args:
        shared: the client's shared state.
        base_url: the API's base URL (part of every credentials fingerprint and cache key).
    """

    def __init__(self, shared: Shared, base_url: str) -> None:
        self._shared = shared
        self.base_url = base_url
        self.disabled = shared.config.disabled
        self._switch_lock = threading.Lock()
        self._scopes: dict[bytes, str] = {}

    def scope_of(self, request: httpx.Request) -> str:
        """The credentials fingerprint of *request* (memoised per Authorization value)."""
        # The raw value is the memo's key: a lookup by name (httpx.Headers.get) would first work
        # out the encoding of every header of the request, and it is a new request every call.
        found = [
            value for _, name, value in header_triples(request.headers) if name == b"authorization"
        ]
        # Sent twice, the values are joined by Headers.get: worked out, not memoised.
        raw = found[0] if len(found) == 1 else None if found else b""
        scope = None if raw is None else self._scopes.get(raw)
        if scope is None:
            scope = credentials_fingerprint(request.headers.get("authorization", ""), self.base_url)
            if raw is not None:
                if len(self._scopes) > _MAX_SCOPES:
                    self._scopes.clear()
                self._scopes[raw] = scope
        return scope

    def start(self, request: httpx.Request) -> Call:
        """Begin a call: classify it, key it for the cache, fix its deadline."""
        shared = self._shared
        path = request.url.path  # percent-decoded on every read of it: read once
        kind = classify(request.method, path)
        now = shared.clock.monotonic()
        scope = self.scope_of(request)
        key = None
        if kind.is_read and shared.config.cache.enabled:
            key = cache_key(
                scope,
                self.base_url,
                kind.method,
                path,
                request.url.query.decode("ascii", "replace"),
                request.content if kind.method == "POST" else b"",
            )
        priority = current_priority()
        policy = shared.config.deadlines
        deadline = scoped_deadline(shared.clock)
        if deadline is None:
            deadline = now + lane_deadline(policy, priority)
        slow_at = None
        if key is not None and priority is Priority.INTERACTIVE and policy.stale_if_slow:
            slow_at = now + policy.stale_if_slow
        # Positional: binding nine keywords to a 27-field __init__ costs about as much as the rest
        # of it (0.34 of 0.78 µs on one machine, 0.23 of 0.43 on another).
        return Call(request, path, kind, scope, priority, now, deadline, key, slow_at)

    def admit(self, call: Call) -> Generator[Effect, Any, Conclusion | None]:
        """The kill switch and the breaker: ``None`` if the call may go out, else how it ends."""
        shared = self._shared
        if self.disabled:
            shared.refuse(call, StaleReason.DISABLED)
            return Conclusion(error=IntercomDisabledError(), stale_reason=StaleReason.DISABLED)
        now = shared.clock.monotonic()
        verdict: BreakerVerdict = yield self._breaker_question(call, now)
        self._heard(call, verdict)
        if not verdict.allowed:
            shared.refuse(call, StaleReason.CIRCUIT_OPEN)
            retry_in = verdict.retry_in
            wall_retry_at = None if retry_in is None else shared.clock.time() + retry_in
            error = CircuitOpenError(
                f"circuit open: Intercom is failing; {call.kind.method} {call.kind.template} "
                "was not sent",
                retry_at=wall_retry_at,
            )
            return Conclusion(error=error, stale_reason=StaleReason.CIRCUIT_OPEN)
        with shared.lock:
            shared.budget.record_call(now)
        return None

    def readmit(self, call: Call) -> Generator[Effect, Any, bool]:
        """Before a retry: may it still go out? (``False``: the call ends with its last result.)

        The breaker is asked again because it may have opened during the backoff: other calls'
        failures in this process, or, with the fleet breaker, another process's. A retry the
        breaker refuses is the request a new call would not be allowed to send.
        """
        shared = self._shared
        verdict: BreakerVerdict = yield self._breaker_question(call, shared.clock.monotonic())
        self._heard(call, verdict)
        if verdict.allowed:
            return True
        shared.refuse(call, StaleReason.CIRCUIT_OPEN)
        return False

    # Asking the breaker is a question and a hearing, not a generator of its own: it is on every
    # call, where creating and running one more generator cost more than the step.

    @staticmethod
    def _breaker_question(call: Call, now: float) -> Effect:
        """The breaker question for *call* (a half-open trial slot is leased until its deadline)."""
        return ask_breaker(min(max(call.deadline - now, _LEASE[0]), _LEASE[1]))

    def _heard(self, call: Call, verdict: BreakerVerdict) -> None:
        """Take in the breaker's *verdict* on *call*."""
        call.trial = verdict.trial
        self._shared.note_transition(verdict.transition)

    def still_admitted(self, call: Call) -> Conclusion | None:
        """Before every attempt: the kill switch again (a wait may have outlasted it).

        ``None`` when the attempt may go out; else the call ends as refused by the switch.
        """
        if not self.disabled:
            return None
        shared = self._shared
        shared.refuse(call, StaleReason.DISABLED)
        if call.attempts == 0:
            shared.abandon(call)  # it may hold a half-open trial slot it will never use
        return Conclusion(error=IntercomDisabledError(), stale_reason=StaleReason.DISABLED)

    def set_disabled(self, disabled: bool) -> None:
        """Turn the kill switch on (*disabled*) or off; a no-op when already so."""
        with self._switch_lock:
            if self.disabled == disabled:
                return
            self.disabled = disabled
        self._shared.telemetry.emit(KillSwitchChanged(disabled))
