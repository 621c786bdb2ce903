"""The call driver: the order of a call's steps, in one place, as a generator of effects.

In the style of h11 and hishel, the driver is sans-I/O: it decides, and whenever it needs the
world it *yields an effect* (:mod:`.effects`) and is sent the result back. The sync and async
shells (:mod:`intercom_resilience._transport`) only perform effects; they hold no decision and no
step order, so the two clients cannot drift apart. One call::

    admission (AskBreaker) ──refused──────────────────────────────────────────────┐
        │ admitted                                                   │
        ▼                                                            │
    CacheGet (an interactive read: an answer held in reserve)        │
        │                                                            │
    ┌─► a retry: admission.readmit (AskBreaker again) ──open────────►┤
    │   Acquire ──no token──► pacing ──wait──► Sleep ──► Acquire …   │
    │       │ token                 └──cannot wait in time──────────►┤
    │       ▼                                                        │
    │   admission.still_admitted (the kill switch) ──off────────────►┤
    │   attempt.prepare ──► Send ──► attempt.observe ──► TellBreaker │
    │                                                    ObserveRate │
    │                                                    │           │
    │                                judgement.next_wait ┤           │
    └────────── Sleep ◄── retry after a wait ────────────┘           │
                                       │ stop                        │
                                       ▼                             ▼
                judgement.conclude / reconcile.resolve ────────► conclusion
                                                                     │
        CachePut (a fresh read no write overtook) / Invalidate ◄─────┤
        CacheGet ──► stale.serve (an outage, and a servable entry) ◄─┤
                                                  stale.finish ◄─────┘

Effects on backends that live in the process (the memory limiter, cache and breaker) are
performed by :class:`CallDriver` as they are yielded; the shells see the sends, the sleeps and the
effects on Redis.

A call the shell stops mid-way (cancelled, interrupted) is closed by the shell; the driver then
gives back a half-open breaker slot the call may hold.
"""

from __future__ import annotations

from collections.abc import Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from .admission import Admission
from .attempt import Attempt
from .call import Call, Conclusion
from .coalesce import Coalescing, JoinFlight
from .coherence import Coherence
from .effects import (
    ACQUIRE,
    BackendEffect,
    Backends,
    CacheGet,
    CachePut,
    Effect,
    Invalidate,
    ObserveRate,
    Send,
    Sleep,
)
from .judgement import Judgement
from .pacing import Pacing
from .reconcile import Reconcile
from .shared import Shared
from .stale import StaleAnswer

__all__ = ["CallDriver", "Stages", "drive"]


class Stages(Protocol):
    """The stages a driver runs a call through (a :class:`~._pipeline.Pipeline` has them)."""

    @property
    def shared(self) -> Shared:
        """The state the stages share."""
        ...

    @property
    def admission(self) -> Admission:
        """Start and admit (kill switch, breaker)."""
        ...

    @property
    def pacing(self) -> Pacing:
        """Wait for a rate-limit token, or give up in time."""
        ...

    @property
    def attempt(self) -> Attempt:
        """Prepare a request, observe its result."""
        ...

    @property
    def judgement(self) -> Judgement:
        """Retry or conclude."""
        ...

    @property
    def stale(self) -> StaleAnswer:
        """Answer, from the stale cache when it may."""
        ...

    @property
    def coherence(self) -> Coherence:
        """Write generations: what a read may store."""
        ...

    @property
    def coalescing(self) -> Coalescing:
        """Identical reads in flight share one request."""
        ...

    @property
    def reconcile(self) -> Reconcile:
        """Resolve a write whose answer was lost (the write-safety table)."""
        ...


#: A call's driver: yields effects, is sent their results, returns the response.
Driver = Generator[Effect, Any, httpx.Response]


def drive(stages: Stages, request: httpx.Request) -> Driver:
    """Drive one call of *request* through every stage; the shells perform what it yields."""
    admission, stale = stages.admission, stages.stale
    fleet = stages.coalescing.fleet  # fleet_join is a generator: none is made per call when off
    call = admission.start(request)
    conclusion = yield from admission.admit(call)
    if conclusion is None:
        stages.coherence.start(call)
        flight = stages.coalescing.join(call)
        if flight is not None:
            # The same read is in flight: wait for its answer (no longer than we would wait for
            # our own), and go on alone if there is nothing to share.
            patience = (call.slow_at or call.deadline) - stages.shared.clock.monotonic()
            shared = yield JoinFlight(flight, patience)
            if shared is not None:
                return stale.shared(call, shared)
        try:
            # A search or list another process is fetching (fleet_coalesce): its answer, from
            # the shared cache, for this read and the reads of this process that follow it.
            shared = (yield from stages.coalescing.fleet_join(call)) if fleet else None
            if shared is not None:
                stages.coalescing.land(call, shared)
                return stale.shared(call, shared)
            if call.slow_at is not None and call.cache_key is not None:
                # A read with a latency budget: is there an answer to fall back on if it is slow?
                stale.hold_in_reserve(call, (yield CacheGet(call.cache_key)))
            conclusion = yield from _attempts(stages, call)
            if conclusion is None:
                # No more attempts: conclude with the last one's result. A write whose answer
                # was lost is reconciled (_core/writes.py), not given up on.
                reconcile = stages.reconcile
                if reconcile.wanted(call):
                    conclusion = yield from reconcile.resolve(call)
                else:
                    conclusion = stages.judgement.conclude(call)
        except GeneratorExit:
            # Stopped by the shell mid-call (cancelled, interrupted): no attempt will report.
            stages.coalescing.land(call, None)
            stages.shared.abandon(call)
            raise
    return (yield from _answer(stages, call, conclusion))


def _attempts(stages: Stages, call: Call) -> Generator[Effect, Any, Conclusion | None]:
    """Attempts until one concludes the call: pacing, sending, judging, backing off.

    ``None``: no more attempts, the call concludes with the last one's result (by the caller:
    a generator of its own for that cost more than the step).
    """
    admission, pacing, attempt = stages.admission, stages.pacing, stages.attempt
    judgement, clock = stages.judgement, stages.shared.clock
    while True:
        if call.attempts and not (yield from admission.readmit(call)):
            return None  # the breaker opened during the backoff
        grant = yield ACQUIRE[call.priority]
        while not grant.granted:
            wait = pacing.on_refused(call, grant)
            if isinstance(wait, Conclusion):
                return wait
            yield from _nap(admission, wait)
            refused = admission.still_admitted(call)  # the switch may have cut the wait short
            if refused is not None:
                return refused
            grant = yield ACQUIRE[call.priority]
        # A wait may have lasted long enough for the kill switch to be turned on.
        refused = admission.still_admitted(call)
        if refused is not None:
            return refused
        prepared = attempt.prepare(call, grant)
        started = clock.monotonic()
        sent = yield Send(prepared, call.deadline)
        outcome = attempt.observe(call, sent, clock.monotonic() - started)
        yield from stages.shared.count_for_breaker(outcome.means.breaker)
        yield ObserveRate(outcome.status, outcome.rate_limit)
        wait_before_next = judgement.next_wait(call)
        if wait_before_next is None:
            return None
        if wait_before_next > 0:
            yield from _nap(admission, wait_before_next)


#: Waits are slept in slices of at most this, so that the kill switch cuts them short.
NAP = 0.25


def _nap(admission: Admission, seconds: float) -> Generator[Effect, Any, None]:
    """Sleep *seconds*, in slices, stopping early once the kill switch is on."""
    while seconds > 0 and not admission.disabled:
        piece = min(seconds, NAP)
        yield Sleep(piece)
        seconds -= piece


def _answer(stages: Stages, call: Call, conclusion: Conclusion) -> Driver:
    """The cache instructions of *conclusion*, then the answer: stale if it may, else its own."""
    coherence, stale = stages.coherence, stages.stale
    stages.coalescing.land(call, conclusion.store)  # followers answer with it, or go on alone
    coherence.ended(call)
    key = call.cache_key
    stored = None
    if conclusion.store is not None and key is not None and coherence.may_store(call):
        yield CachePut(key, conclusion.store, conclusion.store_tags, call.started)
        if not coherence.may_store(call):  # a write of ours ended during the put
            yield Invalidate(call.read_tags[:1])
        else:
            stored = conclusion.store
    landing = stages.coalescing.fleet_land(call, stored)
    if landing is not None:  # the fleet's waiters read the shared entry, or fetch alone
        yield landing
    if conclusion.invalidate:
        yield Invalidate(conclusion.invalidate)
    if conclusion.stale_reason is not None and key is not None:
        entry = call.entry if call.looked_up else (yield CacheGet(key))
        if entry is not None:
            answer = stale.serve(call, conclusion, entry)
            if answer is not None:
                return answer
    return stale.finish(call, conclusion)


class CallDriver:
    """A driver as the shells use it: iterate for effects, set :attr:`reply`, read :attr:`result`.

    ::

        with pipeline.drive(request) as call:
            for effect in call:
                call.reply = perform(effect)
        return call.result

    Leaving the ``with`` block early (an exception while performing an effect) closes the
    driver, which abandons the call cleanly.

    Effects on in-process backends (*in_process*, see :func:`~.effects.in_process_effects`) are
    performed here, on *backends*, as soon as the driver yields them: they do no I/O and never
    wait, so both shells would do exactly the same with them. The shells see the rest.
    """

    __slots__ = ("_backends", "_driver", "_in_process", "_result", "reply")

    def __init__(
        self,
        driver: Driver,
        backends: Backends | None = None,
        in_process: frozenset[type[BackendEffect]] = frozenset(),
    ) -> None:
        self._driver = driver
        self._backends = backends
        self._in_process = in_process if backends is not None else frozenset()
        self._result: httpx.Response | None = None
        #: The result of the effect last yielded, sent in on the next step.
        self.reply: Any = None

    def __iter__(self) -> CallDriver:
        return self

    def __next__(self) -> Effect:
        reply, self.reply = self.reply, None
        send, in_process = self._driver.send, self._in_process
        try:
            effect = send(reply)
            while type(effect) in in_process:
                if TYPE_CHECKING:  # what in_process holds; not checked at run time (every effect)
                    assert isinstance(effect, BackendEffect)
                    assert self._backends is not None
                effect = send(effect.run(self._backends))
            return effect
        except StopIteration as done:
            self._result = done.value
            raise StopIteration from None

    @property
    def result(self) -> httpx.Response:
        """The call's response, once the driver has finished."""
        assert self._result is not None, "the driver has not finished"
        return self._result

    def __enter__(self) -> CallDriver:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._driver.close()
