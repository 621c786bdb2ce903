"""The pipeline's shared brain: every decision of a call, for both the sync and the async shell.

A :class:`Pipeline` holds one client's state (breaker, retry budget, kill switch, health monitor,
the limiter and cache backends) and turns each request into a :class:`Call`. The shells in
:mod:`._transport` only move bytes, sleep, and talk to the backends; every *decision* is a method
here, so the sync and async clients cannot drift apart. The order of stages (SPEC §3)::

    kill switch → stale-cache fallback → circuit breaker → retry → rate limiter → attempt timeout

Nothing here performs network I/O or sleeps; time comes from the injected clock.
"""

from __future__ import annotations

import dataclasses
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpx

from . import _callinfo
from ._backends.base import CacheBackend, CachedResponse, Grant, LimiterBackend, Priority
from ._clock import Clock
from ._config import ResilienceConfig
from ._core.breaker import BreakerState, CircuitBreaker, Transition
from ._core.cache import (
    StaleReason,
    cache_key,
    is_servable,
    read_resources,
    stale_reason_for,
    write_invalidations,
)
from ._core.outcome import Outcome
from ._core.requests import RequestKind, classify, credentials_fingerprint
from ._core.responses import error_codes, malformed_json
from ._core.retry import RetryBudget, Verdict, backoff, judge, server_wait
from ._errors import (
    CircuitOpenError,
    IntercomDisabledError,
    IntercomResilienceError,
    OutcomeUnknownError,
    RateLimitedError,
    wrap_transport_error,
)
from ._events import EventLog
from ._health import HealthMonitor
from ._sdk_bodies import ensure_error_body, sdk_readable

__all__ = ["Call", "Conclusion", "Pipeline"]


def _first_code(outcome: Outcome) -> str | None:
    """The first ``error.list`` code of a failed response, as a short error summary."""
    codes = error_codes(outcome.body)
    return codes[0] if codes else None


#: Headers of a fresh read worth keeping in the stale cache.
_KEPT_HEADERS = ("content-type", "x-request-id")
STALE_HEADER = "x-intercom-resilience-stale-age"

_priority: ContextVar[Priority] = ContextVar(
    "intercom_resilience_priority", default=Priority.INTERACTIVE
)


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
    """The state of one call as it moves through the pipeline.

    Attributes:
        request: the request as the SDK built it.
        kind: its classification (read/write, idempotency, path template).
        scope: the credentials fingerprint (never the token).
        priority: interactive or background.
        started: monotonic time at the start.
        deadline: monotonic time after which no further attempt or wait begins.
        cache_key: where a successful read is stored (``None`` when not cacheable).
        attempts: attempts sent so far.
        rotated: the token was rotated once after a 401.
        outcome: the last attempt's outcome.
        response: the last attempt's response, when one arrived.
        error: the last attempt's network error, when one happened.
        verdict: the retry decision about the last attempt.
        next_wait: the wait chosen before the next attempt.
        tokens_left: rate-limit tokens left after this attempt's acquire, when known.
    """

    request: httpx.Request
    kind: RequestKind
    scope: str
    priority: Priority
    started: float
    deadline: float
    cache_key: str | None
    attempts: int = 0
    rotated: bool = False
    outcome: Outcome | None = None
    response: httpx.Response | None = None
    error: httpx.TransportError | None = None
    verdict: Verdict | None = None
    next_wait: float = 0.0
    tokens_left: float | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Conclusion:
    """What the shell must do to finish a call.

    Exactly one of ``response`` and ``error`` is set. Before using them the shell performs the
    cache instructions: store ``store`` under the call's key (tagged ``store_tags``), drop
    ``invalidate``, and when ``stale_reason`` is set look up the call's key and, if an entry is
    there, answer with :meth:`Pipeline.stale_response` instead.
    """

    response: httpx.Response | None = None
    error: BaseException | None = None
    store: CachedResponse | None = None
    store_tags: tuple[str, ...] = ()
    invalidate: tuple[str, ...] = ()
    stale_reason: StaleReason | None = None
    failure_request_id: str | None = None


class _NoLimiter:
    """The limiter when rate limiting is switched off: every acquire is granted."""

    _GRANTED = Grant(granted=True)

    def acquire(self, priority: Priority) -> Grant:
        return self._GRANTED

    async def aacquire(self, priority: Priority) -> Grant:
        return self._GRANTED

    def observe(self, status: int | None, info: Any) -> None:
        return None

    async def aobserve(self, status: int | None, info: Any) -> None:
        return None


class _NoCache:
    """The cache when the stale-cache fallback is switched off."""

    def get(self, key: str) -> CachedResponse | None:
        return None

    async def aget(self, key: str) -> CachedResponse | None:
        return None

    def put(self, key: str, entry: CachedResponse, resources: tuple[str, ...]) -> None:
        return None

    async def aput(self, key: str, entry: CachedResponse, resources: tuple[str, ...]) -> None:
        return None

    def invalidate(self, resources: tuple[str, ...]) -> int:
        return 0

    async def ainvalidate(self, resources: tuple[str, ...]) -> int:
        return 0


class Pipeline:
    """One client's resilience state and decisions. Thread-safe.

    Args:
        config: the policies.
        clock: the source of time (and of sleeping, for the shells).
        token: the client's token or token callable (called again to rotate after a 401).
        base_url: the API's base URL (part of every credentials fingerprint).
        scope: the fingerprint of the client's credentials (names its limiter buckets).
        events: where events go.
        limiter: the rate-limit backend (``None``: no client-side limiting).
        cache: the stale-cache backend (``None``: no stale fallback).
        monitor: the health monitor (a default one over ``config.alerts`` when ``None``).
        rng: randomness for backoff jitter (seed it for reproducible tests).
    """

    def __init__(
        self,
        *,
        config: ResilienceConfig,
        clock: Clock,
        token: str | Callable[[], str],
        base_url: str,
        scope: str,
        events: EventLog | None = None,
        limiter: LimiterBackend | None = None,
        cache: CacheBackend | None = None,
        monitor: HealthMonitor | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.base_url = base_url
        self.scope = scope
        self.events = events if events is not None else EventLog()
        # `is None`, not `or`: an empty cache has len() == 0 and is falsy.
        self.limiter: LimiterBackend = limiter if limiter is not None else _NoLimiter()
        self.cache: CacheBackend = cache if cache is not None else _NoCache()
        self.monitor = (
            monitor
            if monitor is not None
            else HealthMonitor(config.alerts, clock, events=self.events)
        )
        self.breaker = CircuitBreaker(config.breaker)
        self.budget = RetryBudget(
            config.retry.budget_ratio, config.retry.budget_floor, config.retry.budget_window
        )
        self.disabled = config.disabled
        if self.disabled:
            self.monitor.record_kill_switch(True)
        self.stale_served = 0
        self._token = token
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._scopes: dict[str, str] = {}

    # ----------------------------------------------------------------------------- start

    def scope_of(self, request: httpx.Request) -> str:
        """The credentials fingerprint of *request* (memoised per Authorization value)."""
        auth = request.headers.get("authorization", "")
        scope = self._scopes.get(auth)
        if scope is None:
            scope = credentials_fingerprint(auth, self.base_url)
            if len(self._scopes) > 64:  # rotated tokens must not grow this without bound
                self._scopes.clear()
            self._scopes[auth] = scope
        return scope

    def start(self, request: httpx.Request) -> Call:
        """Begin a call: classify it and fix its deadline."""
        kind = classify(request.method, request.url.path)
        now = self.clock.monotonic()
        scope = self.scope_of(request)
        cache_key = None
        if kind.is_read and self.config.cache.enabled:
            cache_key = self.cache_key(scope, request, kind)
        return Call(
            request=request,
            kind=kind,
            scope=scope,
            priority=_priority.get(),
            started=now,
            deadline=now + self.config.retry.deadline,
            cache_key=cache_key,
        )

    def cache_key(self, scope: str, request: httpx.Request, kind: RequestKind) -> str:
        """The stale-cache key of a read (credentials, base URL, method, path, query, body)."""
        return cache_key(
            scope,
            self.base_url,
            kind.method,
            request.url.path,
            request.url.query.decode("ascii", "replace"),
            request.content if kind.method == "POST" else b"",
        )

    def preflight(self, call: Call) -> Conclusion | None:
        """The kill switch and the breaker: may this call go out at all?"""
        if self.disabled:
            self._refuse(call, StaleReason.DISABLED)
            return Conclusion(error=IntercomDisabledError(), stale_reason=StaleReason.DISABLED)
        now = self.clock.monotonic()
        with self._lock:
            allowed, transition = self.breaker.allow(now)
            retry_at = self.breaker.retry_at
        self._note_transition(transition)
        if not allowed:
            self._refuse(call, StaleReason.CIRCUIT_OPEN)
            wall_retry_at = None if retry_at is None else self.clock.time() + (retry_at - now)
            error = CircuitOpenError(
                f"circuit open: Intercom is failing; {call.kind.method} {call.kind.template} "
                "was not sent",
                retry_at=wall_retry_at,
            )
            return Conclusion(error=error, stale_reason=StaleReason.CIRCUIT_OPEN)
        with self._lock:
            self.budget.record_call(now)
        return None

    # ----------------------------------------------------------------------------- limiter

    def on_limited(self, call: Call, grant: Grant) -> float:
        """A token was refused: how long to wait, or raise :class:`RateLimitedError`."""
        now = self.clock.monotonic()
        remaining = min(self.config.rate_limit.max_wait, call.deadline - now)
        if grant.wait > remaining:
            retry_at = self.clock.time() + grant.wait
            raise RateLimitedError(
                f"no rate-limit token for {call.kind.method} {call.kind.template} within "
                f"{max(remaining, 0.0):.1f}s (next expected in {grant.wait:.1f}s)",
                retry_at=retry_at,
            )
        # Never spin: a backend that says "wait 0" but refuses gets a small pause.
        wait = max(grant.wait, 0.001)
        # The 429s this library prevents are these waits: make them countable.
        self.events.emit("debug", "limiter.wait", **self._where(call), wait_s=round(wait, 4))
        return wait

    # ----------------------------------------------------------------------------- attempt

    def prepare(self, call: Call) -> httpx.Request:
        """The request for the next attempt: a fresh token after a 401, a bounded timeout."""
        request = call.request
        if call.verdict is Verdict.ROTATE_TOKEN and callable(self._token):
            new_token = self._token()
            request.headers["authorization"] = f"Bearer {new_token}"
            call.scope = self.scope_of(request)
            call.rotated = True
            self.events.emit("warning", "call.token_rotated", **self._where(call))
            self.monitor.record_token_rotation()
        timeouts = self.config.timeouts
        current = request.extensions.get("timeout") or {}
        left = max(call.deadline - self.clock.monotonic(), 0.001)

        def bound(name: str, policy_value: float) -> float:
            value = current.get(name)
            chosen = policy_value if value is None else min(float(value), policy_value)
            return min(chosen, left)

        request.extensions["timeout"] = {
            "connect": bound("connect", timeouts.connect),
            "read": bound("read", timeouts.read),
            "write": bound("write", timeouts.write),
            "pool": bound("pool", timeouts.pool),
        }
        call.attempts += 1
        return request

    def observe_response(
        self, call: Call, response: httpx.Response, content: bytes, duration: float
    ) -> None:
        """Record an attempt that got a response."""
        headers = dict(response.headers.items())  # one pass: httpx.Headers lookups are O(n)
        problem = malformed_json(
            response.status_code,
            content,
            # Reads of a collection (not ending in an id) may be pages the SDK iterates.
            is_list=call.kind.is_read and not call.kind.template.endswith("{id}"),
        )
        if problem is not None:
            # The SDK cannot read it: like a response that never arrived intact. Reads are
            # retried (then served stale), and a write's outcome is unknown (never re-sent).
            broken = httpx.RemoteProtocolError(
                f"malformed response: {problem}", request=call.request
            )
            self.observe_error(call, broken, duration)
            return
        call.response = response
        call.error = None
        self._observe(call, Outcome.from_response(response.status_code, headers, content, duration))

    def observe_error(self, call: Call, error: httpx.TransportError, duration: float) -> None:
        """Record an attempt that failed on the network."""
        call.response = None
        call.error = error
        # Connect errors (and a pool timeout) happen before a byte is sent.
        connect = isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
        self._observe(call, Outcome.from_error(error, connect=connect, duration=duration))

    def _observe(self, call: Call, outcome: Outcome) -> None:
        call.outcome = outcome
        call.verdict = judge(
            call.kind,
            outcome,
            can_rotate_token=callable(self._token),
            rotated=call.rotated,
        )
        now = self.clock.monotonic()
        failed: bool | None
        if outcome.is_outage:
            failed = True
        elif outcome.status == 429:
            failed = None  # the limiter's business, not an outage
        else:
            failed = False
        with self._lock:
            transition = self.breaker.record(now, failed=failed)
        self._note_transition(transition)
        if self.events.wants("debug"):  # per-attempt events are the hot path
            self.events.emit(
                "debug",
                "call.attempt",
                **self._where(call),
                attempt=call.attempts,
                status=outcome.status,
                error=outcome.error_name,
                duration_ms=round(outcome.duration * 1000, 3),
                request_id=outcome.request_id,
                verdict=call.verdict.value,
                tokens_left=call.tokens_left,
            )
        self.monitor.record_attempt(
            method=call.kind.method,
            template=call.kind.template,
            status=outcome.status,
            duration=outcome.duration,
            request_id=outcome.request_id,
            error=outcome.error_name or _first_code(outcome),
            attempt=call.attempts,
        )
        info = outcome.rate_limit
        if info is not None:
            self.monitor.record_rate_limit_remaining(info.remaining)

    # ----------------------------------------------------------------------------- retry

    def should_retry(self, call: Call) -> bool:
        """After an attempt: retry? (tenacity's ``retry``; also sets ``call.next_wait``)."""
        verdict = call.verdict
        if verdict is Verdict.ROTATE_TOKEN:
            call.next_wait = 0.0
            return True
        if verdict is not Verdict.RETRY or not self.config.retry.enabled:
            return False
        policy = self.config.retry
        if call.attempts >= policy.max_attempts:
            return False
        assert call.outcome is not None
        waited = server_wait(policy, call.outcome, self.clock.time())
        wait = waited if waited is not None else backoff(policy, call.attempts, self._rng.random())
        now = self.clock.monotonic()
        if now + wait > call.deadline:
            return False
        with self._lock:
            if not self.budget.try_spend(now):
                self.events.emit("warning", "retry_budget.exhausted", **self._where(call))
                return False
        call.next_wait = wait
        self.events.emit(
            "warning",
            "call.retry",
            **self._where(call),
            attempt=call.attempts,
            status=call.outcome.status,
            error=call.outcome.error_name,
            wait_s=round(wait, 3),
            request_id=call.outcome.request_id,
        )
        return True

    # ----------------------------------------------------------------------------- finish

    def conclude(self, call: Call) -> Conclusion:
        """After the last attempt: the answer, the error, and the cache instructions."""
        outcome = call.outcome
        assert outcome is not None
        kind = call.kind
        if outcome.ok:
            assert call.response is not None
            response = sdk_readable(call.response, call.request)
            store = None
            tags: tuple[str, ...] = ()
            invalidate: tuple[str, ...] = ()
            if kind.is_read and call.cache_key is not None:
                store = CachedResponse(
                    status=call.response.status_code,
                    headers=tuple(
                        (name, call.response.headers[name])
                        for name in _KEPT_HEADERS
                        if name in call.response.headers
                    ),
                    content=response.content,
                    stored_at=self.clock.time(),
                    request_id=outcome.request_id,
                )
                tags = self._read_tags(call)
            elif not kind.is_read and self.config.cache.enabled:
                invalidate = self._write_tags(call)
            self._capture_success(call, status=outcome.status, request_id=outcome.request_id)
            return Conclusion(
                response=response, store=store, store_tags=tags, invalidate=invalidate
            )

        request_id = outcome.request_id
        error: BaseException | None = None
        if call.verdict is Verdict.OUTCOME_UNKNOWN:
            error = OutcomeUnknownError(
                kind.method,
                kind.template,
                status_code=outcome.status,
                request_id=request_id,
                reason=outcome.error_name or "",
            )
        elif call.error is not None:
            error = wrap_transport_error(call.error)
        stale_reason = self._stale_reason(call) if kind.is_read else None
        if error is not None:
            return Conclusion(error=error, stale_reason=stale_reason, failure_request_id=request_id)
        assert call.response is not None
        return Conclusion(
            response=ensure_error_body(sdk_readable(call.response, call.request), call.request),
            stale_reason=stale_reason,
            failure_request_id=request_id,
        )

    def refused(self, call: Call, error: IntercomResilienceError | BaseException) -> Conclusion:
        """A call stopped before (another) attempt: the limiter refused a token."""
        reason = StaleReason.LIMITER_WAIT if isinstance(error, RateLimitedError) else None
        if reason is not None:
            self._refuse(call, reason)
        if call.attempts == 0:
            self.abandoned(call)
        return Conclusion(error=error, stale_reason=reason if call.kind.is_read else None)

    def abandoned(self, call: Call) -> None:
        """A call ends without its last attempt reporting back (refused, cancelled).

        A half-open breaker waits for its trial calls' verdicts: give back the slot this call may
        hold, or the breaker would wait forever for a verdict that never comes.
        """
        with self._lock:
            self.breaker.record(self.clock.monotonic(), failed=None)

    def _stale_reason(self, call: Call) -> StaleReason | None:
        outcome = call.outcome
        assert outcome is not None
        # 4xx other than 408/429 are answers: never masked by the cache.
        return stale_reason_for(
            outcome.status, timed_out=isinstance(call.error, httpx.TimeoutException)
        )

    def answer(
        self, call: Call, conclusion: Conclusion, entry: CachedResponse | None
    ) -> httpx.Response:
        """Finish a call: the stale answer from *entry* if one may be served, else the response
        (or error) of the conclusion. *entry* is what the shell found under the call's key when
        the conclusion asked for a stale lookup."""
        if entry is not None:
            stale = self.stale_response(call, entry, conclusion)
            if stale is not None:
                return stale
        answered = call.outcome is not None and call.outcome.ok and conclusion.error is None
        if not answered:  # fresh answers were captured by conclude()
            self._capture_failure(call, conclusion)
        if conclusion.error is not None:
            raise conclusion.error
        assert conclusion.response is not None
        return conclusion.response

    def stale_response(
        self, call: Call, entry: CachedResponse, conclusion: Conclusion
    ) -> httpx.Response | None:
        """The response to serve from *entry*, or ``None`` if it is too old to serve."""
        now = self.clock.time()
        if not is_servable(entry.stored_at, now, self.config.cache.stale_window):
            return None
        age = max(0.0, now - entry.stored_at)
        reason = conclusion.stale_reason
        assert reason is not None
        headers = [*entry.headers, (STALE_HEADER, f"{age:.3f}")]
        response = httpx.Response(
            entry.status, headers=headers, content=entry.content, request=call.request
        )
        with self._lock:
            self.stale_served += 1
        self.monitor.record_stale_served(
            call.kind.template, age, conclusion.failure_request_id, method=call.kind.method
        )
        self.events.emit(
            "warning",
            "call.stale_served",
            **self._where(call),
            reason=reason.value,
            age_s=round(age, 3),
            request_id=conclusion.failure_request_id,
        )
        _callinfo.record(
            _callinfo.CallInfo(
                method=call.kind.method,
                path=call.kind.template,
                status=entry.status,
                attempts=call.attempts,
                stale=True,
                age=age,
                request_id=entry.request_id,
                failure_request_id=conclusion.failure_request_id,
                reason=reason.value,
            )
        )
        return response

    def _capture_failure(self, call: Call, conclusion: Conclusion) -> None:
        """Note a call that ends without a stale answer (for the call-info capture)."""
        _callinfo.record(
            _callinfo.CallInfo(
                method=call.kind.method,
                path=call.kind.template,
                status=None if call.outcome is None else call.outcome.status,
                attempts=call.attempts,
                request_id=conclusion.failure_request_id,
            )
        )

    # ----------------------------------------------------------------------------- helpers

    def _read_tags(self, call: Call) -> tuple[str, ...]:
        return read_resources(call.scope, call.kind.method, call.request.url.path)

    def _write_tags(self, call: Call) -> tuple[str, ...]:
        return write_invalidations(call.scope, call.kind.method, call.request.url.path)

    def _capture_success(self, call: Call, *, status: int | None, request_id: str | None) -> None:
        """Note a call answered fresh by Intercom (for the call-info capture)."""
        _callinfo.record(
            _callinfo.CallInfo(
                method=call.kind.method,
                path=call.kind.template,
                status=status,
                attempts=call.attempts,
                request_id=request_id,
            )
        )

    def _note_transition(self, transition: Transition | None) -> None:
        if transition is None:
            return
        # The incident timeline (the health monitor) is where transitions are kept.
        self.monitor.record_breaker(transition.state.value, transition.reason)
        self.events.emit(
            "warning",
            "breaker.transition",
            previous=transition.previous.value,
            state=transition.state.value,
            reason=transition.reason,
        )

    def _refuse(self, call: Call, reason: StaleReason) -> None:
        self.events.emit("debug", "call.refused", reason=reason.value, **self._where(call))
        self.monitor.record_refused(
            reason.value, method=call.kind.method, template=call.kind.template
        )

    def set_disabled(self, disabled: bool) -> None:
        """Turn the kill switch on (*disabled*) or off; a no-op when already so."""
        with self._lock:
            if self.disabled == disabled:
                return
            self.disabled = disabled
        self.events.emit("warning", "kill_switch.changed", disabled=disabled)
        self.monitor.record_kill_switch(disabled)

    @staticmethod
    def _where(call: Call) -> dict[str, Any]:
        return {
            "method": call.kind.method,
            "path": call.kind.template,
            "priority": call.priority.value,
        }

    def close(self) -> None:
        """Release the backends' connections (Redis clients); the pipeline is done."""
        for backend in (self.limiter, self.cache):
            close = getattr(backend, "close", None)
            if close is not None:
                close()

    async def aclose(self) -> None:
        """Async twin of :meth:`close`."""
        for backend in (self.limiter, self.cache):
            aclose = getattr(backend, "aclose", None)
            if aclose is not None:
                await aclose()

    @property
    def breaker_state(self) -> BreakerState:
        """The breaker's current state."""
        return self.breaker.state
