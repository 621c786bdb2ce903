"""The pipeline: one client's resilience state, its stages, and the driver that orders them.

=================  ==========================================================================
module             what it holds
=================  ==========================================================================
``call``           one call's state (:class:`Call`) and how it ends (:class:`Conclusion`)
``effects``        what the driver asks the shells to do (acquire, sleep, send, cache, …)
``driver``         the order of a call's steps: a sans-I/O generator of effects
``admission``      start a call; the kill switch and the circuit breaker
``pacing``         no rate-limit token now: wait for one, or give up in time
``attempt``        prepare a request (token rotation, timeouts); observe what came back
``judgement``      retry (after how long) or conclude (answer, error, cache instructions)
``stale``          answer from the stale cache when the call failed for an outage
``coherence``      write generations: a read never stores what a write of ours overtook
``coalesce``       identical reads in flight share one request
``reconcile``      resolve a write whose answer was lost (re-send, conflict, lookup)
``telemetry``      the one sink of typed events: log and hooks, health, call capture
``shared``         what several stages share: policies, clock, breaker, retry budget
=================  ==========================================================================

What an attempt's result *means* (outage? retryable? servable stale? a breaker failure? an
incident failure?) is not decided here but in the core's status table (``_core/status.py``).
Nothing in this package does I/O or sleeps; time comes from the injected clock.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx

from .._backends.base import (
    BreakerBackend,
    CacheBackend,
    CachedResponse,
    Grant,
    LimiterBackend,
    Priority,
)
from .._backends.memory_breaker import MemoryBreaker
from .._clock import Clock
from .._config import ResilienceConfig
from .._core.breaker import BreakerState
from .._core.responses import RateLimitInfo
from .._events import EventLog
from .._health import HealthMonitor

if TYPE_CHECKING:
    from .._backends.redis_flights import RedisFlights
    from .._fleet_publisher import FleetPublisher
from .admission import Admission
from .attempt import Attempt
from .call import Call, Conclusion, priority
from .coalesce import Coalescing
from .coherence import Coherence
from .driver import CallDriver, drive
from .effects import BackendEffect, in_process_effects
from .judgement import Judgement
from .pacing import Pacing
from .reconcile import Reconcile
from .shared import Shared
from .stale import STALE_HEADER, StaleAnswer
from .telemetry import Telemetry

__all__ = ["STALE_HEADER", "Call", "CallDriver", "Conclusion", "Pipeline", "priority"]


class _NoLimiter:
    """The limiter when rate limiting is switched off: every acquire is granted."""

    #: Lives in the process: no I/O, never waits (the call driver performs its effects itself).
    in_process = True

    _GRANTED = Grant(granted=True)

    def acquire(self, priority: Priority) -> Grant:
        return self._GRANTED

    async def aacquire(self, priority: Priority) -> Grant:
        return self._GRANTED

    def observe(self, status: int | None, info: RateLimitInfo | None) -> None:
        return None

    async def aobserve(self, status: int | None, info: RateLimitInfo | None) -> None:
        return None


class _NoCache:
    """The cache when the stale-cache fallback is switched off."""

    #: Lives in the process: no I/O, never waits (the call driver performs its effects itself).
    in_process = True

    def get(self, key: str) -> CachedResponse | None:
        return None

    async def aget(self, key: str) -> CachedResponse | None:
        return None

    def put(
        self,
        key: str,
        entry: CachedResponse,
        resources: tuple[str, ...],
        read_started: float | None = None,
    ) -> None:
        return None

    async def aput(
        self,
        key: str,
        entry: CachedResponse,
        resources: tuple[str, ...],
        read_started: float | None = None,
    ) -> None:
        return None

    def invalidate(self, resources: tuple[str, ...]) -> int:
        return 0

    async def ainvalidate(self, resources: tuple[str, ...]) -> int:
        return 0


class Pipeline:
    """One client's resilience state and stages. Thread-safe.

    Args:
        config: the policies.
        clock: the source of time (and of sleeping, for the shells).
        token: the client's token or token callable (called again to rotate after a 401).
        base_url: the API's base URL (part of every credentials fingerprint).
        scope: the fingerprint of the client's credentials (names its limiter buckets).
        events: where events go.
        limiter: the rate-limit backend (``None``: no client-side limiting).
        cache: the stale-cache backend (``None``: no stale fallback).
        breaker: the circuit-breaker backend (``None``: this process's, in memory).
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
        breaker: BreakerBackend | None = None,
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
        self.breaker: BreakerBackend = (
            breaker if breaker is not None else MemoryBreaker(config.breaker, clock)
        )
        self.monitor = (
            monitor
            if monitor is not None
            else HealthMonitor(config.alerts, clock, events=self.events)
        )
        self.telemetry = Telemetry(self.events, self.monitor)
        self.shared = Shared(
            config, clock, self.telemetry, token, rng or random.Random(), self.breaker
        )
        self.admission = Admission(self.shared, base_url)
        self.pacing = Pacing(self.shared)
        self.attempt = Attempt(self.shared, self.admission)
        self.judgement = Judgement(self.shared)
        self.stale = StaleAnswer(self.shared)
        self.coherence = Coherence(clock, enabled=config.cache.enabled)
        self.coalescing = Coalescing(
            self.coherence,
            enabled=config.cache.coalesce,
            clock=clock,
            fleet=config.cache.fleet_coalesce,
            fleet_wait=config.cache.fleet_wait,
        )
        #: The fleet-coalescing locks (``CachePolicy.fleet_coalesce``), set by the client.
        self.flights: RedisFlights | None = None
        self.reconcile = Reconcile(
            self.shared, self.admission, self.pacing, self.attempt, self.judgement
        )
        if config.disabled:
            self.monitor.record_kill_switch(True)
        #: The fleet-health publisher (``docs/fleet.md#fleet-health``), set by the client.
        self.fleet: FleetPublisher | None = None
        # The effects the driver performs itself (those on the backends that live in memory),
        # and the backends they were worked out for (a backend may be swapped later).
        self._in_process: tuple[tuple[object, ...], frozenset[type[BackendEffect]]]
        self._in_process = ((), frozenset())

    def drive(self, request: httpx.Request) -> CallDriver:
        """A driver for one call of *request* (the shells perform what it yields)."""
        return CallDriver(drive(self, request), self, self.in_process)

    @property
    def in_process(self) -> frozenset[type[BackendEffect]]:
        """The effects a call driver performs itself: those on the backends that live in the
        process (see :func:`~.effects.in_process_effects`)."""
        backends = (self.limiter, self.cache, self.breaker)
        worked_out_for, effects = self._in_process
        if worked_out_for != backends:
            effects = in_process_effects(self)
            self._in_process = (backends, effects)
        return effects

    # ----------------------------------------------------------------------------- state

    @property
    def disabled(self) -> bool:
        """Whether the kill switch is on."""
        return self.admission.disabled

    def set_disabled(self, disabled: bool) -> None:
        """Turn the kill switch on (*disabled*) or off; a no-op when already so."""
        self.admission.set_disabled(disabled)

    @property
    def breaker_state(self) -> BreakerState:
        """The breaker's current state."""
        return self.breaker.state

    @property
    def stale_served(self) -> int:
        """How many answers this pipeline served from the stale cache."""
        return self.stale.stale_served

    def close(self) -> None:
        """Release the backends' connections (Redis clients); the pipeline is done."""
        if self.fleet is not None:
            self.fleet.close()
        for backend in (self.limiter, self.cache, self.breaker):
            close = getattr(backend, "close", None)
            if close is not None:
                close()

    async def aclose(self) -> None:
        """Async twin of :meth:`close`."""
        if self.fleet is not None:
            await self.fleet.aclose()
        for backend in (self.limiter, self.cache, self.breaker):
            aclose = getattr(backend, "aclose", None)
            if aclose is not None:
                await aclose()
