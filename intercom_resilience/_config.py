"""Configuration: one frozen, validated :class:`ResilienceConfig` made of small policy objects.

Each policy is an immutable value object (in the spirit of urllib3's ``Retry``): construct it with
keyword arguments, derive variants with :meth:`replace`, and share it freely between clients and
threads. Validation happens at construction, so a bad value fails where it was written, with a
message naming the field (``RetryPolicy.max_delay must be >= base_delay ...``), never in the
middle of an incident.

:meth:`ResilienceConfig.from_env` reads ``INTERCOM_RESILIENCE_<SECTION>_<FIELD>`` variables, for
example ``INTERCOM_RESILIENCE_RETRY_MAX_ATTEMPTS=5`` or ``INTERCOM_RESILIENCE_CACHE_BACKEND=redis``;
the top-level fields are ``INTERCOM_RESILIENCE_DISABLED``, ``INTERCOM_RESILIENCE_REDIS_URL`` and
``INTERCOM_RESILIENCE_STATUS_PAGE_URL``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, TypeVar, Union

from ._redaction import redact_text, redact_url

__all__ = [
    "AlertPolicy",
    "BreakerPolicy",
    "CachePolicy",
    "DeadlinePolicy",
    "FleetPolicy",
    "OutboxPolicy",
    "RateLimitPolicy",
    "ResilienceConfig",
    "RetryPolicy",
    "TimeoutPolicy",
]

Backend = Literal["memory", "redis"]
_BACKENDS: tuple[str, ...] = ("memory", "redis")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})

_P = TypeVar("_P", bound="_Policy")


class _Policy:
    """Shared behaviour of the policy value objects: field checks and ``replace``."""

    __slots__ = ()

    def replace(self: _P, **changes: Any) -> _P:
        """Return a copy with *changes* applied (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    # Small checks that name the field; each policy's __post_init__ composes them.
    def _name(self, field: str) -> str:
        return f"{type(self).__name__}.{field}"

    def _number(self, field: str, *, minimum: float = 0.0, strict: bool = False) -> float:
        value = getattr(self, field)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{self._name(field)} must be a number, got {value!r}")
        if math.isnan(value) or math.isinf(value):
            raise ValueError(f"{self._name(field)} must be finite, got {value!r}")
        if strict and value <= minimum:
            raise ValueError(f"{self._name(field)} must be > {minimum:g}, got {value!r}")
        if not strict and value < minimum:
            raise ValueError(f"{self._name(field)} must be >= {minimum:g}, got {value!r}")
        return float(value)

    def _integer(self, field: str, *, minimum: int) -> int:
        value = getattr(self, field)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{self._name(field)} must be an integer, got {value!r}")
        if value < minimum:
            raise ValueError(f"{self._name(field)} must be >= {minimum}, got {value!r}")
        return value

    def _fraction(self, field: str, *, allow_zero: bool = True, allow_one: bool = True) -> float:
        value = self._number(field)
        if (value == 0 and not allow_zero) or value > 1 or (value == 1 and not allow_one):
            lo = "[0" if allow_zero else "(0"
            hi = "1]" if allow_one else "1)"
            raise ValueError(f"{self._name(field)} must be in {lo}, {hi}, got {value!r}")
        return value

    def _flag(self, field: str) -> None:
        if not isinstance(getattr(self, field), bool):
            raise ValueError(f"{self._name(field)} must be a bool, got {getattr(self, field)!r}")

    def _backend(self, field: str) -> None:
        if getattr(self, field) not in _BACKENDS:
            raise ValueError(
                f"{self._name(field)} must be one of {', '.join(_BACKENDS)}, "
                f"got {getattr(self, field)!r}"
            )


@dataclasses.dataclass(frozen=True, kw_only=True)
class RetryPolicy(_Policy):
    """How failed attempts are retried.

    Backoff is exponential with full jitter: attempt *n* waits a random time in
    ``[0, min(max_delay, base_delay * 2**(n-1))]``. Server-given waits (``Retry-After``, then
    ``X-RateLimit-Reset``) are honoured but never beyond ``max_server_wait``.

    Attributes:
        enabled: retry at all.
        max_attempts: attempts per call, the first included.
        base_delay: seconds; the first backoff's upper bound.
        max_delay: seconds; the cap on any computed backoff.
        max_server_wait: seconds; the cap on waits taken from response headers.
        budget_ratio: retries may add at most this share of the request rate.
        budget_floor: retries always allowed per budget window, however quiet the traffic.
        budget_window: seconds of history the retry budget looks at.
    """

    enabled: bool = True
    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_server_wait: float = 60.0
    budget_ratio: float = 0.1
    budget_floor: int = 10
    budget_window: float = 60.0

    def __post_init__(self) -> None:
        self._flag("enabled")
        self._integer("max_attempts", minimum=1)
        base = self._number("base_delay")
        if self._number("max_delay") < base:
            raise ValueError(
                f"RetryPolicy.max_delay must be >= base_delay ({base!r}), got {self.max_delay!r}"
            )
        self._number("max_server_wait")
        self._fraction("budget_ratio")
        self._integer("budget_floor", minimum=0)
        self._number("budget_window", strict=True)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RateLimitPolicy(_Policy):
    """Client-side pacing against Intercom's quotas.

    Intercom allows ``app_per_minute`` requests per app and ``workspace_per_minute`` per workspace,
    enforced evenly over fixed ``window`` -second windows (10,000 and 25,000 a minute, 10 s). Each
    attempt, retries included, spends one token from both.

    Attributes:
        enabled: pace requests at all.
        app_per_minute: the app's quota.
        workspace_per_minute: the workspace's quota (shared by every app of the workspace).
        window: seconds; the length of Intercom's enforcement window.
        burst: share of one window's quota that may leave at once, without pacing.
        max_wait: seconds a caller may wait for a token before ``RateLimitedError``.
        background_reserve: share of each window that background calls leave to interactive ones.
        backend: ``memory`` (this process) or ``redis`` (shared by every process of the fleet).
        redis_fallback_share: share of the quota each process uses on its own while Redis is
            down (per process: N processes may together use N times this share).
        workspace: a name for the workspace, shared by the apps (tokens) that belong to it, so
            that with the ``redis`` backend they draw on one workspace bucket; by default each
            token's workspace bucket is its own.
    """

    enabled: bool = True
    app_per_minute: int = 10_000
    workspace_per_minute: int = 25_000
    window: float = 10.0
    burst: float = 0.1
    max_wait: float = 30.0
    background_reserve: float = 0.2
    backend: Backend = "memory"
    redis_fallback_share: float = 0.25
    workspace: str | None = None

    def __post_init__(self) -> None:
        self._flag("enabled")
        self._integer("app_per_minute", minimum=1)
        self._integer("workspace_per_minute", minimum=1)
        window = self._number("window", strict=True)
        if window > 60:
            raise ValueError(f"RateLimitPolicy.window must be <= 60 seconds, got {window!r}")
        self._fraction("burst", allow_zero=False)
        self._number("max_wait")
        self._fraction("background_reserve", allow_one=False)
        self._backend("backend")
        self._fraction("redis_fallback_share", allow_zero=False)
        if self.workspace is not None and (
            not isinstance(self.workspace, str) or not self.workspace.strip()
        ):
            raise ValueError(
                f"RateLimitPolicy.workspace must be a non-empty string, got {self.workspace!r}"
            )

    def window_quota(self, per_minute: int) -> int:
        """Requests allowed in one window for a quota of *per_minute* (never below one)."""
        return max(1, int(per_minute * self.window / 60.0))


@dataclasses.dataclass(frozen=True, kw_only=True)
class BreakerPolicy(_Policy):
    """The circuit breaker: closed, open, half-open.

    The circuit opens when, over the last ``window`` seconds, at least ``min_calls`` calls were
    made and the share of them that failed (transport errors and 5xx only) reaches
    ``failure_ratio``, or when ``consecutive_failures`` calls in a row failed (a busy client's
    window holds many earlier successes, which the share would need half a window to outweigh).
    After ``cooldown`` seconds it lets ``half_open_calls`` trial calls through;
    if they all succeed it closes, if one fails it opens again.

    Attributes:
        enabled: break the circuit at all.
        window: seconds of attempt history the failure share is computed over.
        min_calls: attempts needed in the window before the circuit may open.
        failure_ratio: share of failed attempts (network errors, 5xx) that opens the circuit.
        consecutive_failures: failed attempts with no success between them that open the circuit
            whatever the window's share (``None``: the share alone decides). With the fleet
            breaker the run is the fleet's: the first attempts of an outage, whoever sent them.
        cooldown: seconds the circuit stays open before trial calls.
        half_open_calls: trial calls that must all succeed to close the circuit.
        backend: ``memory`` (this process) or ``redis`` (one breaker for every process with the
            same credentials, the fleet breaker of ``docs/fleet.md``; needs
            ``ResilienceConfig.redis_url``).
    """

    enabled: bool = True
    # Short, like Intercom's own 10 s windows: at a steady rate the circuit opens about half a
    # window into a full outage.
    window: float = 10.0
    min_calls: int = 10
    failure_ratio: float = 0.5
    # As many as min_calls: never sooner than the share would open a client that just started.
    consecutive_failures: int | None = 10
    cooldown: float = 15.0
    half_open_calls: int = 3
    backend: Backend = "memory"

    def __post_init__(self) -> None:
        self._flag("enabled")
        self._number("window", strict=True)
        self._integer("min_calls", minimum=1)
        self._fraction("failure_ratio", allow_zero=False)
        if self.consecutive_failures is not None:
            self._integer("consecutive_failures", minimum=1)
        self._number("cooldown", strict=True)
        self._integer("half_open_calls", minimum=1)
        self._backend("backend")


@dataclasses.dataclass(frozen=True, kw_only=True)
class CachePolicy(_Policy):
    """The stale-cache fallback: the last good answer to every read, served during outages.

    Attributes:
        enabled: keep and serve stale reads at all.
        max_entries: LRU capacity.
        stale_window: seconds after which a stored answer is too old to serve.
        max_bytes: total budget: in memory, everything the cache holds (bodies, headers, keys,
            tags, index); in Redis, the stored payloads.
        max_entry_bytes: bodies larger than this are not stored.
        backend: ``memory`` or ``redis`` (shared by every process).
        coalesce: identical reads in flight at the same time share one request (the first one's;
            needs ``enabled``, which keys reads). Off by default: a waiting read waits in real
            time, which a simulated clock driving many tasks would not see.
        fleet_coalesce: also share searches and lists across the fleet's processes, through a
            short lock in Redis and the shared Redis cache (``docs/fleet.md#fleet-coalescing``);
            needs ``coalesce`` and ``backend="redis"``. Never for writes, nor for reads of one
            record (those are cheap; the in-process coalescing covers their bursts).
        fleet_wait: seconds the fleet lock lives, which is also the longest a read waits for
            another process's answer (never beyond its own latency budget or deadline) before
            it sends its own request.
    """

    enabled: bool = True
    max_entries: int = 10_000
    stale_window: float = 3600.0
    max_bytes: int = 64 * 1024 * 1024
    max_entry_bytes: int = 1024 * 1024
    backend: Backend = "memory"
    coalesce: bool = False
    fleet_coalesce: bool = False
    fleet_wait: float = 2.0

    def __post_init__(self) -> None:
        self._flag("enabled")
        self._flag("coalesce")
        self._flag("fleet_coalesce")
        wait = self._number("fleet_wait", strict=True)
        if wait > 60:
            raise ValueError(f"CachePolicy.fleet_wait must be <= 60 (a short lock), got {wait!r}")
        self._integer("max_entries", minimum=1)
        self._number("stale_window", strict=True)
        self._integer("max_bytes", minimum=1)
        entry = self._integer("max_entry_bytes", minimum=1)
        if entry > self.max_bytes:
            raise ValueError(
                f"CachePolicy.max_entry_bytes must be <= max_bytes ({self.max_bytes}), got {entry}"
            )
        self._backend("backend")
        if self.fleet_coalesce and not (self.enabled and self.coalesce and self.backend == "redis"):
            raise ValueError(
                "CachePolicy.fleet_coalesce needs enabled=True, coalesce=True and "
                f"backend='redis' (got enabled={self.enabled}, coalesce={self.coalesce}, "
                f"backend={self.backend!r})"
            )


@dataclasses.dataclass(frozen=True, kw_only=True)
class TimeoutPolicy(_Policy):
    """Timeouts of one attempt, in seconds (a shorter ``timeout`` given to the SDK still wins).

    Attributes:
        connect: seconds to establish a connection.
        read: seconds to wait for the response.
        write: seconds to send the request.
        pool: seconds to wait for a free connection from the pool.
    """

    connect: float = 5.0
    read: float = 30.0
    write: float = 30.0
    pool: float = 10.0

    def __post_init__(self) -> None:
        for field in ("connect", "read", "write", "pool"):
            self._number(field, strict=True)


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeadlinePolicy(_Policy):
    """How long a call may take, from the facade call to its answer: waits, attempts, backoff.

    The interactive default is 8 seconds: a healthy Intercom answers in well under a second, so
    8 seconds leave room for two or three retries with backoff, and end well inside the 10–30 s
    that web servers and load balancers give a request (a web request that waits longer for
    Intercom has already failed its user). A 429 whose reset is further away than that ends at
    once with ``RateLimitedError`` (or a stale answer) rather than holding the request. The
    background lane (``client.background()``) gets 5 minutes: enough to wait out several
    10-second rate-limit windows, a 429 storm or a short outage. No wait (limiter, backoff,
    server-directed) that would end past the deadline is slept: the call ends at once with an
    error that says how long to wait. A call may set its own with ``client.deadline(seconds)``
    or the SDK's ``request_options={"timeout_in_seconds": ...}``.

    Attributes:
        interactive: seconds; the deadline of ordinary (interactive) calls.
        background: seconds; the deadline of calls made inside ``client.background()``.
        minimum: seconds; a per-call deadline below this is refused before anything is sent.
        stale_if_slow: seconds; an interactive read that has a servable cached answer gets it
            once this much time is spent (``capture_calls()`` says ``reason="slow"``), and no
            longer waits for the rest of its deadline; ``None`` turns it off.
    """

    interactive: float = 8.0
    background: float = 300.0
    minimum: float = 0.05
    stale_if_slow: float | None = 2.0

    def __post_init__(self) -> None:
        interactive = self._number("interactive", strict=True)
        self._number("background", strict=True)
        minimum = self._number("minimum", strict=True)
        for field in ("interactive", "background"):
            if getattr(self, field) < minimum:
                raise ValueError(
                    f"DeadlinePolicy.{field} must be >= minimum ({minimum!r}), "
                    f"got {getattr(self, field)!r}"
                )
        if self.stale_if_slow is not None:
            budget = self._number("stale_if_slow", strict=True)
            if budget > interactive:
                raise ValueError(
                    f"DeadlinePolicy.stale_if_slow must be <= interactive ({interactive!r}), "
                    f"got {budget!r}"
                )

    def check(self, seconds: object, field: str = "deadline") -> float:
        """*seconds* as a per-call deadline, or ``ValueError`` naming *field* and the minimum."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise ValueError(f"{field} must be a number of seconds, got {seconds!r}")
        if math.isnan(seconds) or math.isinf(seconds) or seconds < self.minimum:
            raise ValueError(
                f"{field} must be a finite number of seconds >= DeadlinePolicy.minimum "
                f"({self.minimum:g}), got {seconds!r}"
            )
        return float(seconds)


@dataclasses.dataclass(frozen=True, kw_only=True)
class AlertPolicy(_Policy):
    """Health window and alert thresholds (defaults from Intercom's production checklist).

    Attributes:
        window: seconds of recent traffic that health and alerts look at.
        errors_per_window: more 5xx/transport errors than this → P1 "API unreachable".
        rate_limited_per_window: more 429s than this → P2 "rate limited".
        latency_p95_ms: p95 latency above this → P2 "high latency".
        webhook_failures_per_window: more webhook signature failures than this → P3 "webhook
            signature failures".
        webhook_handler_errors_per_window: more webhook handler errors than this → P3 "webhook
            handler failing".
        webhook_delay_s: a notification received more than this many seconds after its
            ``created_at`` → P3 "webhook delays".
        webhook_backlog_fill: the webhook handler's queue fuller than this share of its size →
            P3 "webhook backlog".
        webhook_error_streak: this many consecutive error answers to webhook deliveries → P3
            "webhook deliveries refused" (Intercom pauses a subscription after 1,000 in 15 min).
        webhook_error_streak_s: error answers to webhook deliveries, without one success, for
            this many seconds → the same P3 (Intercom suspends after 7 days of errors).
        deadlines_per_window: more calls ended by their deadline than this → P2 "deadline
            exceeded".
        max_request_ids: request ids kept per incident (the oldest are dropped and counted).
        max_recent_failures: failures kept in the client's recent-failure record.
    """

    window: float = 60.0
    errors_per_window: int = 10
    rate_limited_per_window: int = 5
    latency_p95_ms: float = 3000.0
    webhook_failures_per_window: int = 0
    webhook_handler_errors_per_window: int = 0
    webhook_delay_s: float = 300.0
    webhook_backlog_fill: float = 0.8
    webhook_error_streak: int = 500
    webhook_error_streak_s: float = 3600.0
    deadlines_per_window: int = 5
    max_request_ids: int = 1000
    max_recent_failures: int = 200

    def __post_init__(self) -> None:
        self._number("window", strict=True)
        self._integer("errors_per_window", minimum=0)
        self._integer("rate_limited_per_window", minimum=0)
        self._number("latency_p95_ms", strict=True)
        self._integer("webhook_failures_per_window", minimum=0)
        self._integer("webhook_handler_errors_per_window", minimum=0)
        self._number("webhook_delay_s", strict=True)
        self._fraction("webhook_backlog_fill", allow_zero=False)
        self._integer("webhook_error_streak", minimum=1)
        self._number("webhook_error_streak_s", strict=True)
        self._integer("deadlines_per_window", minimum=0)
        self._integer("max_request_ids", minimum=1)
        self._integer("max_recent_failures", minimum=1)


OutboxBackend = Literal["sqlite", "redis"]
_OUTBOX_BACKENDS: tuple[str, ...] = ("sqlite", "redis")


@dataclasses.dataclass(frozen=True, kw_only=True)
class OutboxPolicy(_Policy):
    """The durable write outbox: writes that cannot go out now wait there (``docs/writes.md``).

    Attributes:
        queue_when_unavailable: a write refused before anything was sent (breaker open, kill
            switch, no rate-limit token in time, a deadline, a refused connection) is queued
            and the call raises :class:`~intercom_resilience.WriteQueuedError` with its id;
            without it, only ``client.outbox.enqueue(...)`` queues.
        backend: ``sqlite`` (a local file, WAL mode) or ``redis`` (a stream with a consumer
            group, shared by a fleet; needs ``ResilienceConfig.redis_url``).
        path: the SQLite file.
        redis_key: the Redis stream's key (the dead letters are under ``<key>:dead``).
        fallback_path: with the ``redis`` backend, a SQLite file that takes the writes while
            Redis is unreachable (``None``: enqueueing then fails with
            :class:`~intercom_resilience.OutboxUnavailableError`).
        lease: seconds a drain holds the outbox; a worker killed mid-drain is replaced after it.
            One write's replay has half of it as its deadline.
        batch: entries read per round of a drain.
        alert_depth: the ``outbox_backlog`` alert fires past this many queued writes.
        alert_age: ... or when the oldest queued write is older than this many seconds.
    """

    queue_when_unavailable: bool = False
    backend: OutboxBackend = "sqlite"
    path: str = "intercom-outbox.sqlite3"
    redis_key: str = "intercom-resilience:outbox"
    fallback_path: str | None = None
    lease: float = 60.0
    batch: int = 100
    alert_depth: int = 1000
    alert_age: float = 900.0

    def __post_init__(self) -> None:
        self._flag("queue_when_unavailable")
        if self.backend not in _OUTBOX_BACKENDS:
            raise ValueError(
                f"OutboxPolicy.backend must be one of {', '.join(_OUTBOX_BACKENDS)}, "
                f"got {self.backend!r}"
            )
        for name in ("path", "redis_key"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"OutboxPolicy.{name} must be a non-empty string, got {value!r}")
        if self.fallback_path is not None and (
            not isinstance(self.fallback_path, str) or not self.fallback_path.strip()
        ):
            raise ValueError(
                f"OutboxPolicy.fallback_path must be a non-empty string or None, "
                f"got {self.fallback_path!r}"
            )
        self._number("lease", strict=True)
        self._integer("batch", minimum=1)
        self._integer("alert_depth", minimum=1)
        self._number("alert_age", strict=True)


@dataclasses.dataclass(frozen=True, kw_only=True)
class FleetPolicy(_Policy):
    """Fleet health: every process publishes its health to Redis; any process reads the fleet's.

    Attributes:
        publish: publish this process's health snapshot (``docs/fleet.md#fleet-health``).
            ``None`` (the default): whenever ``ResilienceConfig.redis_url`` is set, since a
            process that shares Redis with others is part of their fleet and a fleet view
            with holes in it misleads; ``True`` requires ``redis_url``; ``False`` never.
        interval: publish at most once per this many seconds, when a call ends or the health
            is read (at once when the breaker, the kill switch or the active alerts change; no
            background thread).
        ttl: seconds a snapshot stays in Redis without a refresh; a process silent for longer
            leaves the fleet's view. Must exceed ``interval``. Also how long a fleet incident
            stays joinable after its last open process last published
            (``docs/fleet.md#fleet-incidents``).
        incident_ttl: seconds a process's incident report stays in Redis after its last
            update, for ``fleet_incidents()`` and ``fleet postmortem``. Must exceed ``ttl``.
        key_prefix: the first part of the fleet's Redis keys (health and incidents), so that
            one Redis can hold several fleets; every process of one fleet, and the CLI
            (``--key-prefix``), must use the same.
    """

    publish: bool | None = None
    interval: float = 5.0
    ttl: float = 30.0
    incident_ttl: float = 86_400.0
    key_prefix: str = "intercom-resilience"

    def __post_init__(self) -> None:
        if self.publish is not None:
            self._flag("publish")
        interval = self._number("interval", strict=True)
        ttl = self._number("ttl", strict=True)
        if ttl <= interval:
            raise ValueError(
                f"FleetPolicy.ttl must be > FleetPolicy.interval ({interval:g}), got {ttl!r}"
            )
        if self._number("incident_ttl", strict=True) <= ttl:
            raise ValueError(
                f"FleetPolicy.incident_ttl must be > FleetPolicy.ttl ({ttl:g}), "
                f"got {self.incident_ttl!r}"
            )
        prefix = self.key_prefix
        # The same rule as the Redis key scheme's (which needs redis-py, optional here).
        if not isinstance(prefix, str) or not prefix or prefix.strip() != prefix:
            raise ValueError(f"FleetPolicy.key_prefix must be a non-empty string, got {prefix!r}")
        if any(char in prefix for char in "*?[]{}"):
            raise ValueError(
                f"FleetPolicy.key_prefix must not contain glob or hash-tag characters: {prefix!r}"
            )


@dataclasses.dataclass(frozen=True, kw_only=True)
class ResilienceConfig(_Policy):
    """Every policy of the pipeline, in one frozen object.

    Example::

        config = ResilienceConfig(
            retry=RetryPolicy(max_attempts=5),
            rate_limit=RateLimitPolicy(app_per_minute=1_000, backend="redis"),
            redis_url="redis://cache:6379/0",
        )

    Attributes:
        retry: the :class:`RetryPolicy`.
        rate_limit: the :class:`RateLimitPolicy`.
        breaker: the :class:`BreakerPolicy`.
        cache: the :class:`CachePolicy`.
        timeouts: the :class:`TimeoutPolicy`.
        deadlines: the :class:`DeadlinePolicy`.
        alerts: the :class:`AlertPolicy`.
        outbox: the :class:`OutboxPolicy`.
        fleet: the :class:`FleetPolicy`.
        redis_url: where the ``redis`` backends live (required when one is selected).
        disabled: start with the kill switch on (no request leaves the process).
        status_page_url: Intercom's Statuspage host, for ``triage`` and ``preflight``.
    """

    SECTIONS: ClassVar[tuple[str, ...]] = (
        "retry",
        "rate_limit",
        "breaker",
        "cache",
        "timeouts",
        "deadlines",
        "alerts",
        "outbox",
        "fleet",
    )
    ENV_PREFIX: ClassVar[str] = "INTERCOM_RESILIENCE_"
    #: Variables of the library's own test suite, never read as configuration.
    TEST_PREFIX: ClassVar[str] = "INTERCOM_RESILIENCE_TEST_"

    retry: RetryPolicy = dataclasses.field(default_factory=RetryPolicy)
    rate_limit: RateLimitPolicy = dataclasses.field(default_factory=RateLimitPolicy)
    breaker: BreakerPolicy = dataclasses.field(default_factory=BreakerPolicy)
    cache: CachePolicy = dataclasses.field(default_factory=CachePolicy)
    timeouts: TimeoutPolicy = dataclasses.field(default_factory=TimeoutPolicy)
    deadlines: DeadlinePolicy = dataclasses.field(default_factory=DeadlinePolicy)
    alerts: AlertPolicy = dataclasses.field(default_factory=AlertPolicy)
    outbox: OutboxPolicy = dataclasses.field(default_factory=OutboxPolicy)
    fleet: FleetPolicy = dataclasses.field(default_factory=FleetPolicy)
    redis_url: str | None = None
    disabled: bool = False
    status_page_url: str = "https://www.intercomstatus.com"

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for section in self.SECTIONS:
            expected = hints[section]
            if not isinstance(getattr(self, section), expected):
                raise ValueError(
                    f"ResilienceConfig.{section} must be a {expected.__name__}, "
                    f"got {getattr(self, section)!r}"
                )
        self._flag("disabled")
        uses_redis = (
            self.rate_limit.backend == "redis"
            or self.cache.backend == "redis"
            or self.breaker.backend == "redis"
            or self.outbox.backend == "redis"
        )
        if self.redis_url is not None and not isinstance(self.redis_url, str):
            raise ValueError(
                "ResilienceConfig.redis_url must be a string, "
                f"got {redact_text(repr(self.redis_url))}"
            )
        if uses_redis and not self.redis_url:
            raise ValueError(
                "ResilienceConfig.redis_url is required when a backend is 'redis' "
                "(set INTERCOM_RESILIENCE_REDIS_URL)"
            )
        if self.fleet.publish is True and not self.redis_url:
            raise ValueError(
                "ResilienceConfig.redis_url is required when FleetPolicy.publish is True "
                "(set INTERCOM_RESILIENCE_REDIS_URL)"
            )
        if not isinstance(self.status_page_url, str) or not self.status_page_url.startswith(
            ("http://", "https://")
        ):
            raise ValueError(
                "ResilienceConfig.status_page_url must be an http(s) URL, "
                f"got {redact_text(repr(self.status_page_url))}"
            )

    def __repr__(self) -> str:
        # The generated repr would print redis_url as given, password included.
        fields = ", ".join(
            f"{field.name}={self._shown(field.name)!r}"
            for field in dataclasses.fields(self)
            if field.repr
        )
        return f"{type(self).__name__}({fields})"

    @property
    def publishes_fleet_health(self) -> bool:
        """Whether this configuration publishes the process's health to the fleet."""
        if self.fleet.publish is None:
            return bool(self.redis_url)
        return self.fleet.publish

    def _shown(self, name: str) -> Any:
        value = getattr(self, name)
        if name in ("redis_url", "status_page_url") and isinstance(value, str):
            return redact_url(value)
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ResilienceConfig:
        """Build a configuration from ``INTERCOM_RESILIENCE_*`` variables over the defaults.

        Unknown ``INTERCOM_RESILIENCE_*`` names raise ``ValueError`` (a typo must not be silently
        ignored), as do values that do not parse; both name the variable. Names under
        ``INTERCOM_RESILIENCE_TEST_`` belong to the library's own test suite (its Redis URL) and
        are not configuration.
        """
        env = os.environ if environ is None else environ
        ours = {
            k: v
            for k, v in env.items()
            if k.startswith(cls.ENV_PREFIX) and not k.startswith(cls.TEST_PREFIX)
        }
        known: set[str] = set()
        sections: dict[str, Any] = {}
        hints = typing.get_type_hints(cls)
        for section in cls.SECTIONS:
            policy_cls = hints[section]
            policy_hints = typing.get_type_hints(policy_cls)
            changes: dict[str, Any] = {}
            for field in dataclasses.fields(policy_cls):
                name = f"{cls.ENV_PREFIX}{section.upper()}_{field.name.upper()}"
                known.add(name)
                if name in ours:
                    changes[field.name] = _parse_env(name, ours[name], policy_hints[field.name])
            sections[section] = policy_cls(**changes)
        top: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            if field.name in cls.SECTIONS:
                continue
            name = f"{cls.ENV_PREFIX}{field.name.upper()}"
            known.add(name)
            if name in ours:
                top[field.name] = _parse_env(name, ours[name], hints[field.name])
        unknown = sorted(set(ours) - known)
        if unknown:
            raise ValueError(f"unknown configuration variable(s): {', '.join(unknown)}")
        return cls(**sections, **top)


def _parse_env(name: str, raw: str, annotation: Any) -> Any:
    """Parse one environment value by its field's type; errors name the variable."""
    text = raw.strip()
    options = _optional_inner(annotation)
    if options is not None:
        if text == "" or text.lower() == "none":
            return None
        annotation = options
    if annotation is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError(f"{name} must be a boolean (1/0, true/false), got {raw!r}")
    if annotation is int:
        try:
            return int(text.replace("_", ""))
        except ValueError:
            raise ValueError(f"{name} must be an integer, got {raw!r}") from None
    if annotation is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{name} must be a number, got {raw!r}") from None
    return text


def _optional_inner(annotation: Any) -> Any | None:
    """``X | None`` → ``X``; anything else → ``None``."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return None
