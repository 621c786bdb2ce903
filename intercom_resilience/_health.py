"""Health, alerts and incident recording, derived from the client's recent traffic.

The pipeline tells a :class:`HealthMonitor` what happened (each upstream attempt, each call refused
locally, each stale serve, breaker transitions, the kill switch, token rotations, and every answer
the webhook receiver gave); the monitor keeps bounded windowed state and answers three questions
without touching the network:

* **How healthy is the integration?** :meth:`HealthMonitor.health` returns a frozen
  :class:`HealthStatus` (``healthy`` / ``degraded`` / ``unhealthy``, latency percentiles, the
  reasons, the active alerts).
* **Should somebody be told?** Alert rules with the production checklist's thresholds (all from
  :class:`~intercom_resilience.AlertPolicy`) are evaluated after every record. An alert fires once
  when its condition starts to hold and resolves when it stops; both are delivered to ``on_alert``
  and logged at warning level (``alert.fired``, ``alert.resolved``).
* **What happened?** The first alert opens an :class:`~._incidents.Incident`; the last one to
  resolve closes it (``incident.opened``, ``incident.closed``). The monitor also keeps a bounded
  record of recent failures with their Intercom request ids.

=========================  ========  =================================================
rule                       severity  fires when, over the last ``AlertPolicy.window``
=========================  ========  =================================================
``api_unreachable``        P1        more than ``errors_per_window`` 5xx/network errors
``circuit_open``           P1        the circuit breaker is open or half-open
``auth_failure``           P1        Intercom's latest authenticated answer was a 401
``rate_limited``           P2        more than ``rate_limited_per_window`` 429s and
                                     calls refused by the local rate limiter
``high_latency``           P2        p95 latency above ``latency_p95_ms`` (at least
                                     ``min_latency_samples`` attempts)
``deadline_exceeded``      P2        more than ``deadlines_per_window`` calls ended because
                                     their next attempt would not fit before the deadline
``webhook_signature``      P3        more than ``webhook_failures_per_window`` webhook
                                     signature failures
``webhook_handler``        P3        more than ``webhook_handler_errors_per_window``
                                     notifications whose handler raised
``webhook_delayed``        P3        a notification arrived more than ``webhook_delay_s``
                                     after its ``created_at``
``webhook_backlog``        P3        the handler queue is fuller than
                                     ``webhook_backlog_fill`` of its size (now, not
                                     over the window)
``webhook_refused``        P3        ``webhook_error_streak`` consecutive error answers to
                                     deliveries, or error answers for
                                     ``webhook_error_streak_s`` without one success
                                     (until the next 2xx answer)
=========================  ========  =================================================

The status is derived from the active alerts and the breaker, never from a single observation:

=============  ==========================================================  ==================
status         when                                                        readiness (default)
=============  ==========================================================  ==================
``unhealthy``  a P1 alert is active, or the circuit breaker is open        503
``degraded``   a P2 or P3 alert is active, or the kill switch is on        200
``healthy``    otherwise (one absorbed 429 or stale serve included)        200
=============  ==========================================================  ==================

Windowed conditions clear as time passes, which the monitor only notices when it is asked: every
``record_*`` call and :meth:`HealthMonitor.health` re-evaluate, and :meth:`HealthMonitor.evaluate`
does so on its own (for a periodic tick when traffic may stop).

Thread-safe: one lock guards the state. Callbacks and log events run after the lock is released, so
an ``on_alert`` callback may call :meth:`HealthMonitor.health` freely.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Literal

from ._clock import Clock
from ._config import AlertPolicy
from ._core.status import meaning
from ._core.window import SlidingCounter
from ._events import LOGGER_NAME, EventLog
from ._incidents import (
    Alert,
    FailureRecord,
    Incident,
    IncidentRecorder,
    Severity,
    TimelineEntry,
    format_utc,
    scrub,
)
from .events import (
    AlertFired,
    AlertResolved,
    BreakerTransition,
    CallAttempt,
    CallRefused,
    DeadlineExceeded,
    Event,
    IncidentClosed,
    IncidentOpened,
    KillSwitchChanged,
    StaleServed,
    TokenRotated,
    WebhookDeferred,
    WebhookDuplicate,
    WebhookHandled,
    WebhookHandlerFailed,
    WebhookReceived,
    WebhookRejected,
)

__all__ = [
    "RATE_LIMIT_REASONS",
    "RULE_KEYS",
    "Alert",
    "AlertEvent",
    "CacheWarmth",
    "HealthMonitor",
    "HealthStatus",
    "Latency",
    "Severity",
    "Status",
]

#: ``healthy``, ``degraded`` or ``unhealthy``.
Status = Literal["healthy", "degraded", "unhealthy"]

#: ``record_refused`` reasons that mean "refused by the local rate limiter".
RATE_LIMIT_REASONS = frozenset({"rate_limited", "limiter_wait"})

# State changes (breaker, kill switch, rotation) seen before an incident opens are kept this long
# and this many, so the incident's timeline starts where the trouble did.
_MAX_PENDING_CHANGES = 64

_stdlib_logger = logging.getLogger(LOGGER_NAME)


def _nearest_rank(ordered: list[float], percent: int) -> float:
    """The nearest-rank percentile of an ascending, non-empty list (integer maths, no drift)."""
    rank = max(1, (percent * len(ordered) + 99) // 100)
    return ordered[rank - 1]


@dataclasses.dataclass(frozen=True, slots=True)
class Latency:
    """Latency percentiles of the attempts in the health window, in milliseconds.

    Attributes:
        p50: the median (``None`` with no attempts in the window).
        p95: the 95th percentile, nearest rank (``None`` with no attempts).
        samples: attempts the figures are computed from.
    """

    p50: float | None = None
    p95: float | None = None
    samples: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (milliseconds rounded to 0.1)."""
        return {
            "p50": None if self.p50 is None else round(self.p50, 1),
            "p95": None if self.p95 is None else round(self.p95, 1),
            "samples": self.samples,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class CacheWarmth:
    """How warm the stale cache is: what an outage could be answered from right now.

    Attributes:
        entries: answers stored.
        max_entries: the cache's capacity (``CachePolicy.max_entries``).
        oldest_age_s: seconds since the oldest stored answer was fresh (``None`` when the
            cache is empty, or shared in Redis, where ages are not tracked centrally).
    """

    entries: int
    max_entries: int
    oldest_age_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (age rounded to 0.1 s)."""
        return {
            "entries": self.entries,
            "max_entries": self.max_entries,
            "oldest_age_s": None if self.oldest_age_s is None else round(self.oldest_age_s, 1),
        }


@dataclasses.dataclass(frozen=True, slots=True)
class HealthStatus:
    """The integration's health, from recent traffic (no network call was made to compute it).

    Attributes:
        status: ``unhealthy`` while a P1 alert is active (API unreachable, which includes an
            open or half-open breaker; auth failure) or the breaker is open; ``degraded`` while
            a P2/P3 alert is active (rate limited, high latency, deadlines, webhooks) or the
            kill switch is on; else ``healthy``. A single absorbed 429, retry or stale serve
            changes nothing: only the alert rules' thresholds do.
        latency_ms: p50 and p95 of the attempts in the window.
        authenticated: ``False`` after a 401, ``True`` after any other answer from Intercom,
            ``None`` until Intercom has answered.
        rate_limit_remaining: the latest ``X-RateLimit-Remaining`` (``None`` if unknown).
        error: a summary of the latest failure in the window (never contains a credential).
        breaker: the circuit breaker's state (``closed``, ``open``, ``half_open``).
        stale_served: reads answered from the stale cache in the window.
        alerts: the active alerts, most severe first.
        checked_at: Unix time of this snapshot.
        disabled: the kill switch is on.
        reasons: why the status is not ``healthy``, for people.
        incident_id: the open incident, if any.
        cache: how warm the stale cache is (``None`` when there is no cache, or it could not
            be read).
        outbox_depth: writes waiting in the outbox (``None`` until the outbox is used).
        outbox_oldest_age: seconds the oldest of them has waited (``None`` when empty).
    """

    status: Status
    latency_ms: Latency
    authenticated: bool | None
    rate_limit_remaining: int | None
    error: str | None
    breaker: str
    stale_served: int
    alerts: tuple[Alert, ...]
    checked_at: float
    disabled: bool = False
    reasons: tuple[str, ...] = ()
    incident_id: str | None = None
    cache: CacheWarmth | None = None
    outbox_depth: int | None = None
    outbox_oldest_age: float | None = None

    @property
    def healthy(self) -> bool:
        """``status == "healthy"``."""
        return self.status == "healthy"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (``checked_at`` and alert times as UTC ISO-8601)."""
        return {
            "status": self.status,
            "latency_ms": self.latency_ms.to_dict(),
            "authenticated": self.authenticated,
            "rate_limit_remaining": self.rate_limit_remaining,
            "error": self.error,
            "breaker": self.breaker,
            "stale_served": self.stale_served,
            "alerts": [
                {
                    "rule": alert.rule,
                    "severity": alert.severity.value,
                    "title": alert.title,
                    "detail": alert.detail,
                    "fired_at": format_utc(alert.fired_at),
                }
                for alert in self.alerts
            ],
            "checked_at": format_utc(self.checked_at),
            "disabled": self.disabled,
            "outbox_depth": self.outbox_depth,
            "outbox_oldest_age": self.outbox_oldest_age,
            "reasons": list(self.reasons),
            "incident_id": self.incident_id,
            "cache": None if self.cache is None else self.cache.to_dict(),
        }


@dataclasses.dataclass(frozen=True, slots=True)
class AlertEvent:
    """What an ``on_alert`` callback receives.

    Attributes:
        kind: ``fired`` or ``resolved``.
        alert: the alert (with ``resolved_at`` set when resolved).
        at: Unix time of the event.
        incident_id: the incident the alert belongs to.
    """

    kind: Literal["fired", "resolved"]
    alert: Alert
    at: float
    incident_id: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class _Signals:
    """What the rules look at: one evaluation's view of the window."""

    policy: AlertPolicy
    errors: int
    rate_limited: int
    throttled: int
    deadlines: int
    webhook_failures: int
    webhook_handler_errors: int
    webhook_delayed: int
    webhook_depth: int
    webhook_size: int
    webhook_streak: int
    webhook_streak_for: float
    slow: bool
    p95_ms: Callable[[], float | None]
    authenticated: bool | None
    breaker: str
    #: The outbox: (depth, oldest age or None, alert depth, alert age); None until used.
    outbox: tuple[int, float | None, int, float] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class _Rule:
    """An alert rule: *check* returns the detail while the condition holds, else ``None``."""

    key: str
    severity: Severity
    title: str
    check: Callable[[_Signals], str | None]


def _api_unreachable(s: _Signals) -> str | None:
    limit = s.policy.errors_per_window
    if s.errors > limit:
        window = f"{s.policy.window:g}s"
        return f"{s.errors} 5xx/network errors in the last {window} (more than {limit})"
    # An open breaker is the same outage seen from our side: at low traffic the breaker fails
    # calls locally before the error count passes the threshold. One alert, not two, and it stays
    # active through half-open so that it does not flap during trial calls.
    if s.breaker in ("open", "half_open"):
        return f"circuit breaker {s.breaker}: calls fail fast or are served stale"
    return None


def _auth_failure(s: _Signals) -> str | None:
    if s.authenticated is False:
        return "Intercom answered 401: the token is invalid, expired or revoked"
    return None


def _rate_limited(s: _Signals) -> str | None:
    limit = s.policy.rate_limited_per_window
    total = s.rate_limited + s.throttled
    if total > limit:
        return (
            f"{s.rate_limited} 429 response(s) and {s.throttled} call(s) refused by the rate "
            f"limiter in the last {s.policy.window:g}s (more than {limit})"
        )
    return None


def _high_latency(s: _Signals) -> str | None:
    if s.slow:
        p95 = s.p95_ms()
        shown = "?" if p95 is None else f"{p95:.0f}"
        return f"p95 latency {shown} ms over {s.policy.latency_p95_ms:g} ms"
    return None


def _deadline_exceeded(s: _Signals) -> str | None:
    limit = s.policy.deadlines_per_window
    if s.deadlines > limit:
        return (
            f"{s.deadlines} call(s) ended by their deadline in the last {s.policy.window:g}s "
            f"(more than {limit})"
        )
    return None


def _webhook_signature(s: _Signals) -> str | None:
    limit = s.policy.webhook_failures_per_window
    if s.webhook_failures > limit:
        return (
            f"{s.webhook_failures} webhook signature failure(s) in the last "
            f"{s.policy.window:g}s (more than {limit})"
        )
    return None


def _webhook_handler(s: _Signals) -> str | None:
    limit = s.policy.webhook_handler_errors_per_window
    if s.webhook_handler_errors > limit:
        return (
            f"the webhook handler raised for {s.webhook_handler_errors} notification(s) in the "
            f"last {s.policy.window:g}s (more than {limit})"
        )
    return None


def _webhook_delayed(s: _Signals) -> str | None:
    if s.webhook_delayed:
        return (
            f"{s.webhook_delayed} webhook notification(s) arrived more than "
            f"{s.policy.webhook_delay_s:g}s after they were created, in the last "
            f"{s.policy.window:g}s"
        )
    return None


def _webhook_backlog(s: _Signals) -> str | None:
    if s.webhook_size and s.webhook_depth >= s.policy.webhook_backlog_fill * s.webhook_size:
        return (
            f"webhook handler queue at {s.webhook_depth}/{s.webhook_size} "
            f"(over {s.policy.webhook_backlog_fill:.0%}); a full queue answers 429"
        )
    return None


def _webhook_refused(s: _Signals) -> str | None:
    streak = s.webhook_streak
    if not streak:
        return None
    policy = s.policy
    if (
        streak >= policy.webhook_error_streak
        or s.webhook_streak_for >= policy.webhook_error_streak_s
    ):
        return (
            f"{streak} consecutive error answer(s) to webhook deliveries over "
            f"{s.webhook_streak_for:.0f}s: Intercom pauses the subscription after 1,000 in "
            "15 minutes and suspends it after 7 days of errors"
        )
    return None


def _outbox_backlog(s: _Signals) -> str | None:
    if s.outbox is None:
        return None
    depth, age, max_depth, max_age = s.outbox
    if depth > max_depth:
        return f"{depth} writes queued in the outbox (more than {max_depth}): drain it"
    if age is not None and age > max_age:
        return f"the oldest queued write has waited {age:.0f}s (more than {max_age:g}s): drain it"
    return None


_RULES: tuple[_Rule, ...] = (
    _Rule("api_unreachable", Severity.P1, "API unreachable", _api_unreachable),
    _Rule("auth_failure", Severity.P1, "auth failure", _auth_failure),
    _Rule("rate_limited", Severity.P2, "rate limited", _rate_limited),
    _Rule("high_latency", Severity.P2, "high latency", _high_latency),
    _Rule("deadline_exceeded", Severity.P2, "deadline exceeded", _deadline_exceeded),
    _Rule("webhook_signature", Severity.P3, "webhook signature failures", _webhook_signature),
    _Rule("webhook_handler", Severity.P3, "webhook handler failing", _webhook_handler),
    _Rule("webhook_delayed", Severity.P3, "webhook delays", _webhook_delayed),
    _Rule("webhook_backlog", Severity.P3, "webhook backlog", _webhook_backlog),
    _Rule("webhook_refused", Severity.P3, "webhook deliveries refused", _webhook_refused),
    _Rule("outbox_backlog", Severity.P3, "outbox backlog", _outbox_backlog),
)

#: The rule keys, in evaluation order.
RULE_KEYS: tuple[str, ...] = tuple(rule.key for rule in _RULES)

_Notice = Event


#: Quick successes buffered between two readers of the latency samples (see ``record_attempt``).
_PENDING = 256


class HealthMonitor:
    """Health, alerts and incidents for one client (see the module docstring).

    Args:
        policy: the window and thresholds.
        clock: the source of time (``monotonic`` for windows, ``time`` for records).
        on_alert: called with an :class:`AlertEvent` when an alert fires or resolves. Exceptions
            it raises are logged and swallowed: a broken pager must not break API calls.
        events: where ``alert.*`` and ``incident.*`` events go (a default :class:`EventLog`).
        max_samples: latency samples kept (the newest; bounds memory at any traffic).
        max_incidents: closed incidents kept in :attr:`incidents` (the newest).
        min_latency_samples: attempts in the window before p95 can count as slow.
    """

    def __init__(
        self,
        policy: AlertPolicy,
        clock: Clock,
        on_alert: Callable[[AlertEvent], None] | None = None,
        events: EventLog | None = None,
        *,
        max_samples: int = 2048,
        max_incidents: int = 50,
        min_latency_samples: int = 5,
    ) -> None:
        for name, value in (
            ("max_samples", max_samples),
            ("max_incidents", max_incidents),
            ("min_latency_samples", min_latency_samples),
        ):
            if value < 1:
                raise ValueError(f"HealthMonitor.{name} must be >= 1, got {value!r}")
        self.policy = policy
        self.clock = clock
        self.on_alert = on_alert
        self.events = events or EventLog()
        self._max_samples = max_samples
        self._min_latency_samples = min_latency_samples
        self._lock = threading.Lock()
        self._counter = SlidingCounter(
            policy.window,
            (
                "errors",
                "rate_limited",
                "throttled",
                "stale",
                "webhook",
                "deadline",
                "webhook_handler",
                "webhook_delayed",
            ),
        )
        # (monotonic time, milliseconds) per attempt, oldest first, with a running count
        # of the samples over the latency threshold, so that every record is O(1) and only
        # health() sorts.
        self._samples: deque[tuple[float, float]] = deque()
        self._slow = 0
        # Samples of quick successes not yet in _samples (see record_attempt): a fixed list
        # filled by index, so that recording one is a store, not a call. Every reader of the
        # samples (and the next sample taken the slow way) moves them over first.
        self._pending: list[tuple[float, float] | None] = [None] * _PENDING
        self._pending_n = 0
        self._failures: deque[tuple[float, FailureRecord]] = deque(
            maxlen=policy.max_recent_failures
        )
        self._changes: deque[tuple[float, TimelineEntry]] = deque(maxlen=_MAX_PENDING_CHANGES)
        self._active: dict[str, Alert] = {}
        self._recorder: IncidentRecorder | None = None
        self._past: deque[Incident] = deque(maxlen=max_incidents)
        self._sequence = 0
        self._authenticated: bool | None = None
        self._remaining: int | None = None
        self._breaker = "closed"
        self._disabled = False
        self._last_error: tuple[float, str] | None = None
        # The webhook receiver's queue (a gauge) and its run of error answers to Intercom.
        self._webhook_depth = 0
        self._webhook_size = 0
        self._webhook_streak = 0
        self._webhook_streak_since = 0.0
        # (depth, oldest created_at or None, alert depth, alert age), once the outbox is used.
        self._outbox: tuple[int, float | None, int, float] | None = None

    # ------------------------------------------------------------------------------ recording

    def record_outbox(
        self, depth: int, oldest_age: float | None, alert_depth: int, alert_age: float
    ) -> None:
        """Record the outbox's depth and oldest age (``outbox_backlog`` alert past the limits)."""
        with self._lock:
            wall = self.clock.time()
            oldest = None if oldest_age is None else wall - oldest_age
            self._outbox = (depth, oldest, alert_depth, alert_age)
            notices = self._evaluate(self.clock.monotonic(), wall)
        self._dispatch(notices)

    def record_outbox_delta(
        self, delta: int, now: float, alert_depth: int, alert_age: float
    ) -> None:
        """One more (or fewer) queued write, without asking the store (enqueue stays cheap)."""
        with self._lock:
            depth, oldest = (0, None) if self._outbox is None else self._outbox[:2]
            depth = max(0, depth + delta)
            self._outbox = (depth, oldest if oldest is not None else now, alert_depth, alert_age)
            notices = self._evaluate(self.clock.monotonic(), now)
        self._dispatch(notices)

    def observe(self, event: Event) -> None:
        """Take in one of the pipeline's typed events (the pipeline's telemetry sink calls this).

        Events the monitor has no use for are ignored; its own alert and incident events too.
        """
        if isinstance(event, CallAttempt):
            self.record_attempt(
                method=event.method,
                template=event.path,
                status=event.status,
                duration=event.duration_ms / 1000.0,
                request_id=event.request_id,
                error=event.error or event.error_code,
                attempt=event.attempt,
                rate_limit_remaining=event.rate_limit_remaining,
            )
        elif isinstance(event, CallRefused):
            self.record_refused(event.reason, method=event.method, template=event.path)
        elif isinstance(event, StaleServed):
            self.record_stale_served(event.path, event.age_s, event.request_id, method=event.method)
        elif isinstance(event, BreakerTransition):
            self.record_breaker(event.state, event.reason)
        elif isinstance(event, KillSwitchChanged):
            self.record_kill_switch(event.disabled)
        elif isinstance(event, TokenRotated):
            self.record_token_rotation()
        elif isinstance(event, DeadlineExceeded):
            self.record_deadline_exceeded()
        elif isinstance(event, WebhookReceived):
            self.record_webhook_answer(
                True, delay=event.delay_s, queue=(event.queue_depth, event.queue_size)
            )
        elif isinstance(event, WebhookDuplicate):
            self.record_webhook_answer(True)
        elif isinstance(event, WebhookRejected):
            self.record_webhook_answer(
                event.acknowledged,
                # Intercom only POSTs: a 405 answered somebody else, not a delivery.
                delivery=event.reason != "method",
                signature_failure=event.signature_failure,
            )
        elif isinstance(event, WebhookDeferred):
            self.record_webhook_answer(False, queue=(event.queue_depth, event.queue_size))
        elif isinstance(event, WebhookHandled):
            self.record_webhook_handled(event.queue_depth, event.queue_size, failed=False)
        elif isinstance(event, WebhookHandlerFailed):
            self.record_webhook_handled(event.queue_depth, event.queue_size, failed=True)

    def record_attempt(
        self,
        method: str,
        template: str,
        status: int | None,
        duration: float,
        request_id: str | None,
        error: str | None,
        attempt: int,
        rate_limit_remaining: int | None = None,
    ) -> None:
        """Record one upstream attempt (every attempt, retries included).

        The pipeline passes the arguments by position (once per attempt: binding eight keywords
        cost 5% of the call); everything else names them.

        Args:
            method: the HTTP method.
            template: the path template (``/contacts/{id}``), never the raw path.
            status: the HTTP status, ``None`` for a network failure.
            duration: seconds the attempt took.
            request_id: Intercom's request id, if the response had one.
            error: a short summary of what went wrong (an error code, an exception's name).
            attempt: 1 for the first attempt of a call, 2 for its first retry, …
            rate_limit_remaining: the response's ``X-RateLimit-Remaining``, when it had one
                (as :meth:`record_rate_limit_remaining`, under the same lock).
        """
        table = meaning(status)
        outage = table.outage
        ms = max(duration, 0.0) * 1000.0
        quiet = not (outage or table.rate_limited or table.incident_failure)
        if quiet and duration * 1000.0 <= self.policy.latency_p95_ms:
            # The hot path: a quick success. While all is quiet it can neither fire nor resolve
            # an alert, so the rules need not run (health() evaluates them anyway), and its
            # sample waits in a buffer for the next reader. Everything the section below does is
            # plain loads, stores and comparisons: no call, which is where CPython switches
            # threads, so no thread is switched out while holding the lock (one that was, here,
            # made 16 threads queue behind it: 59% of acquisitions waited, 121 ms on average).
            mono = self.clock.monotonic()
            with self._lock:
                if rate_limit_remaining is not None:
                    self._remaining = rate_limit_remaining
                if not self._active and self._recorder is None and self._pending_n < _PENDING:
                    if table.authenticated is not None:
                        self._authenticated = table.authenticated
                    self._pending[self._pending_n] = (mono, ms)
                    self._pending_n += 1
                    return
        with self._lock:
            if rate_limit_remaining is not None:
                self._remaining = rate_limit_remaining
            mono, wall = self.clock.monotonic(), self.clock.time()
            self._add_sample(mono, ms)
            if outage:
                self._counter.add(mono, "errors")
            if table.rate_limited:
                self._counter.add(mono, "rate_limited")
            if table.authenticated is not None:
                # Gateways answer 5xx without looking at credentials; anything else did.
                self._authenticated = table.authenticated
            if table.incident_failure:
                summary = scrub(error) if error else None
                record = FailureRecord(request_id, status, method, template, wall, attempt, summary)
                self._failures.append((mono, record))
                self._last_error = (mono, _error_summary(record))
                if self._recorder is not None:
                    self._recorder.failure(record)
            elif (
                not self._active
                and self._recorder is None
                and duration * 1000.0 <= self.policy.latency_p95_ms
            ):
                # The hot path: a quick success while all is quiet can neither fire nor resolve
                # an alert, so the rules need not run (health() evaluates them anyway).
                return
            notices = self._evaluate(mono, wall)
        self._dispatch(notices)

    def record_refused(
        self, reason: str, *, method: str | None = None, template: str | None = None
    ) -> None:
        """Record a call refused locally (rate limiter, open breaker, kill switch).

        Args:
            reason: why; ``rate_limited``/``limiter_wait`` count as rate limiting (see
                :data:`RATE_LIMIT_REASONS`), others (``circuit_open``, ``disabled``) only as
                refusals.
            method, template: the call's endpoint, counted as affected during an incident.
        """
        with self._lock:
            mono, wall = self.clock.monotonic(), self.clock.time()
            if reason in RATE_LIMIT_REASONS:
                self._counter.add(mono, "throttled")
            if self._recorder is not None:
                self._recorder.refused(method, template)
            notices = self._evaluate(mono, wall)
        self._dispatch(notices)

    def record_stale_served(
        self, template: str, age: float, request_id: str | None, *, method: str | None = None
    ) -> None:
        """Record a read answered from the stale cache.

        Args:
            template: the read's path template.
            age: seconds since the answer was fresh.
            request_id: the request id of the failure that caused the fallback, if any.
            method: the read's HTTP method.
        """
        del template, age, method  # the pipeline logs them; health only needs the count
        with self._lock:
            mono, wall = self.clock.monotonic(), self.clock.time()
            self._counter.add(mono, "stale")
            if self._recorder is not None:
                self._recorder.stale(request_id)
            notices = self._evaluate(mono, wall)
        self._dispatch(notices)

    def record_breaker(self, state: str, reason: str) -> None:
        """Record a circuit breaker transition to *state* (``closed``/``open``/``half_open``)."""
        self._change("breaker", f"circuit {state}: {reason}", breaker=state)

    def record_kill_switch(self, enabled: bool) -> None:
        """Record the kill switch turned on (*enabled*: no request leaves) or off."""
        detail = (
            "kill switch on: integration disabled" if enabled else "kill switch off: re-enabled"
        )
        self._change("kill_switch", detail, disabled=enabled)

    def record_token_rotation(self) -> None:
        """Record that the token callable was called again after a 401 (rotation)."""
        self._change("token_rotation", "token rotated after a 401")

    def record_rate_limit_remaining(self, remaining: int | None) -> None:
        """Record the latest ``X-RateLimit-Remaining`` (``None`` when a response had none)."""
        with self._lock:
            if remaining is not None:
                self._remaining = remaining

    def record_deadline_exceeded(self) -> None:
        """Record a call ended because its next attempt would not fit before its deadline.

        A failure for alerting (``deadline_exceeded``), not an outage: the breaker already
        counted the attempts themselves.
        """
        with self._lock:
            mono, wall = self.clock.monotonic(), self.clock.time()
            self._counter.add(mono, "deadline")
            notices = self._evaluate(mono, wall)
        self._dispatch(notices)

    def record_webhook_failure(self) -> None:
        """Record a webhook whose signature did not verify."""
        with self._lock:
            mono, wall = self.clock.monotonic(), self.clock.time()
            self._counter.add(mono, "webhook")
            notices = self._evaluate(mono, wall)
        self._dispatch(notices)

    def record_webhook_answer(
        self,
        accepted: bool,
        *,
        delivery: bool = True,
        delay: float | None = None,
        signature_failure: bool = False,
        queue: tuple[int, int] | None = None,
    ) -> None:
        """Record the receiver's answer to one webhook delivery.

        Args:
            accepted: the answer was a 2xx (Intercom is done with the notification); anything
                else extends the run of error answers that Intercom pauses and suspends
                subscriptions for.
            delivery: the request could have been Intercom's (``False`` for a request Intercom
                never makes, which leaves the run alone).
            delay: seconds from the notification's ``created_at`` to its receipt, if known.
            signature_failure: the delivery failed its signature check.
            queue: the handler queue's ``(depth, size)`` after the answer.
        """
        with self._lock:
            mono, wall = self.clock.monotonic(), self.clock.time()
            if accepted:
                self._webhook_streak = 0
            elif delivery:
                if not self._webhook_streak:
                    self._webhook_streak_since = mono
                self._webhook_streak += 1
            if signature_failure:
                self._counter.add(mono, "webhook")
            if delay is not None and delay > self.policy.webhook_delay_s:
                self._counter.add(mono, "webhook_delayed")
            if queue is not None:
                self._webhook_depth, self._webhook_size = queue
            notices = self._evaluate(mono, wall)
        self._dispatch(notices)

    def record_webhook_handled(self, depth: int, size: int, *, failed: bool) -> None:
        """Record the webhook handler done with one notification (*failed*: it raised).

        Args:
            depth: notifications still waiting in the handler queue.
            size: the queue's size.
            failed: the handler raised (counted toward ``webhook_handler``).
        """
        with self._lock:
            mono, wall = self.clock.monotonic(), self.clock.time()
            self._webhook_depth, self._webhook_size = depth, size
            if failed:
                self._counter.add(mono, "webhook_handler")
            notices = self._evaluate(mono, wall)
        self._dispatch(notices)

    def evaluate(self) -> None:
        """Re-evaluate the alert rules now (windowed alerts resolve as their window empties)."""
        with self._lock:
            notices = self._evaluate(self.clock.monotonic(), self.clock.time())
        self._dispatch(notices)

    # ------------------------------------------------------------------------------ reading

    def health(self, breaker_state: str | None = None) -> HealthStatus:
        """The current health, from recent traffic (passive: no network).

        Args:
            breaker_state: the breaker's state as the pipeline knows it now (it moves to
                half-open lazily); ``None`` uses the last :meth:`record_breaker`.
        """
        with self._lock:
            mono, wall = self.clock.monotonic(), self.clock.time()
            if breaker_state is not None:
                self._breaker = breaker_state
            notices = self._evaluate(mono, wall)
            status = self._status(mono, wall)
        self._dispatch(notices)
        return status

    @property
    def current_incident(self) -> Incident | None:
        """A snapshot of the open incident, if any."""
        with self._lock:
            return None if self._recorder is None else self._recorder.snapshot()

    @property
    def incidents(self) -> tuple[Incident, ...]:
        """Closed incidents (the newest ``max_incidents``), oldest first.

        The open one, if any, is :attr:`current_incident`: it is not final yet.
        """
        with self._lock:
            return tuple(self._past)

    @property
    def recent_failures(self) -> tuple[FailureRecord, ...]:
        """The newest ``AlertPolicy.max_recent_failures`` failed attempts, oldest first."""
        with self._lock:
            return tuple(record for _, record in self._failures)

    @property
    def active_alerts(self) -> tuple[Alert, ...]:
        """The alerts firing now, most severe first."""
        with self._lock:
            return self._sorted_active()

    # ------------------------------------------------------------------------------ internals

    def _drain(self) -> None:
        """Move the buffered samples of quick successes into the window (lock held)."""
        count, self._pending_n = self._pending_n, 0
        pending = self._pending
        for i in range(count):
            sample = pending[i]
            assert sample is not None
            pending[i] = None
            self._append_sample(*sample)

    def _add_sample(self, mono: float, ms: float) -> None:
        self._drain()  # keep the samples in the order they were taken
        self._append_sample(mono, ms)

    def _append_sample(self, mono: float, ms: float) -> None:
        if len(self._samples) >= self._max_samples:
            self._drop_oldest_sample()
        self._samples.append((mono, ms))
        self._slow += ms > self.policy.latency_p95_ms

    def _drop_oldest_sample(self) -> None:
        _, ms = self._samples.popleft()
        self._slow -= ms > self.policy.latency_p95_ms

    def _expire(self, mono: float) -> None:
        self._drain()
        horizon = mono - self.policy.window
        while self._samples and self._samples[0][0] <= horizon:
            self._drop_oldest_sample()

    def _is_slow(self) -> bool:
        self._drain()
        count = len(self._samples)
        if count < self._min_latency_samples:
            return False
        # Nearest-rank p95 exceeds the threshold exactly when more than the top 5% of samples
        # (count - rank + 1 of them) do: an O(1) test instead of a sort per record.
        rank = (95 * count + 99) // 100
        return self._slow >= count - rank + 1

    def _percentiles(self) -> Latency:
        self._drain()
        if not self._samples:
            return Latency()
        ordered = sorted(ms for _, ms in self._samples)
        return Latency(_nearest_rank(ordered, 50), _nearest_rank(ordered, 95), len(ordered))

    def _change(
        self, kind: str, detail: str, *, breaker: str | None = None, disabled: bool | None = None
    ) -> None:
        with self._lock:
            mono, wall = self.clock.monotonic(), self.clock.time()
            if breaker is not None:
                self._breaker = breaker
            if disabled is not None:
                self._disabled = disabled
            entry = TimelineEntry(wall, kind, scrub(detail))
            if self._recorder is not None:
                self._recorder.add_entry(entry.at, entry.kind, entry.detail)
            else:
                self._changes.append((mono, entry))
            notices = self._evaluate(mono, wall)
        self._dispatch(notices)

    def _signals(self, mono: float) -> _Signals:
        self._expire(mono)
        totals = self._counter.totals(mono)

        def p95() -> float | None:
            return self._percentiles().p95

        return _Signals(
            policy=self.policy,
            errors=int(totals["errors"]),
            rate_limited=int(totals["rate_limited"]),
            throttled=int(totals["throttled"]),
            deadlines=int(totals["deadline"]),
            webhook_failures=int(totals["webhook"]),
            webhook_handler_errors=int(totals["webhook_handler"]),
            webhook_delayed=int(totals["webhook_delayed"]),
            webhook_depth=self._webhook_depth,
            webhook_size=self._webhook_size,
            webhook_streak=self._webhook_streak,
            webhook_streak_for=(mono - self._webhook_streak_since) if self._webhook_streak else 0.0,
            slow=self._is_slow(),
            p95_ms=p95,
            authenticated=self._authenticated,
            breaker=self._breaker,
            outbox=self._outbox_signal(),
        )

    def _outbox_signal(self) -> tuple[int, float | None, int, float] | None:
        if self._outbox is None:
            return None
        depth, oldest, max_depth, max_age = self._outbox
        age = None if oldest is None or depth == 0 else max(0.0, self.clock.time() - oldest)
        return depth, age, max_depth, max_age

    def _evaluate(self, mono: float, wall: float) -> list[_Notice]:
        """Fire and resolve alerts; open and close the incident. Caller holds the lock."""
        signals = self._signals(mono)
        notices: list[_Notice] = []
        fired: list[Alert] = []
        resolved: list[Alert] = []
        for rule in _RULES:
            detail = rule.check(signals)
            active = self._active.get(rule.key)
            if detail is not None and active is None:
                fired.append(Alert(rule.key, rule.severity, rule.title, scrub(detail), wall))
            elif detail is None and active is not None:
                resolved.append(dataclasses.replace(active, resolved_at=wall))
        # Fire before resolving, so that an alert handing over to another continues the incident.
        if fired and self._recorder is None:
            notices.append(self._open_incident(mono, wall, fired))
        recorder = self._recorder
        for alert in fired:
            self._active[alert.rule] = alert
            if recorder is not None:
                recorder.alert_fired(alert)
            notices.append(AlertFired(alert, self._incident_id()))
        for alert in resolved:
            del self._active[alert.rule]
            if recorder is not None:
                recorder.alert_resolved(alert)
            notices.append(AlertResolved(alert, self._incident_id()))
        if recorder is not None and not self._active:
            notices.append(self._close_incident(wall, recorder))
        return notices

    def _incident_id(self) -> str | None:
        return None if self._recorder is None else self._recorder.id

    def _open_incident(self, mono: float, wall: float, fired: list[Alert]) -> _Notice:
        self._sequence += 1
        stamp = format_utc(wall)[:19].replace("-", "").replace(":", "")
        recorder = IncidentRecorder(
            f"inc-{stamp}Z-{self._sequence}", wall, self.policy.max_request_ids
        )
        horizon = mono - self.policy.window
        # The failures and state changes that led to the first alert belong to the incident:
        # the postmortem needs their request ids and the breaker opening that preceded it.
        for seen, record in self._failures:
            if seen > horizon:
                recorder.failure(record)
        for seen, entry in self._changes:
            if seen > horizon:
                recorder.add_entry(entry.at, entry.kind, entry.detail)
        self._changes.clear()
        worst = Severity.worst(alert.severity for alert in fired)
        titles = ", ".join(alert.title for alert in fired)
        recorder.add_entry(wall, "incident.opened", f"incident opened: {titles}")
        self._recorder = recorder
        return IncidentOpened(recorder.id, None if worst is None else worst.value)

    def _close_incident(self, wall: float, recorder: IncidentRecorder) -> _Notice:
        recorder.close(wall)
        incident = recorder.snapshot()
        self._past.append(incident)
        self._recorder = None
        severity = incident.severity
        return IncidentClosed(
            incident.id,
            None if severity is None else severity.value,
            incident.duration,
            incident.failed_attempts,
            len(incident.request_ids) + incident.request_ids_dropped,
        )

    def _sorted_active(self) -> tuple[Alert, ...]:
        return tuple(sorted(self._active.values(), key=lambda a: (a.severity.rank, a.fired_at)))

    def _status(self, mono: float, wall: float) -> HealthStatus:
        """Build the snapshot. Caller holds the lock and has just evaluated (samples expired).

        The status follows the alert rules and the breaker, never a single observation: one
        absorbed 429 or one stale serve is what the pipeline is for, and a readiness probe that
        pulled the pod for it would turn a blip into an outage. See the module docstring.
        """
        totals = self._counter.totals(mono)
        latency = self._percentiles()
        alerts = self._sorted_active()
        bad: list[str] = []
        if self._authenticated is False:
            bad.append("authentication failed (401)")
        if self._breaker == "open":
            bad.append("circuit open")
        meh: list[str] = []
        for alert in alerts:
            (bad if alert.severity is Severity.P1 else meh).append(
                f"{alert.severity.value} alert: {alert.title}"
            )
        if self._breaker == "half_open":
            meh.append("circuit half-open: testing recovery")
        if self._disabled:
            meh.append("kill switch on: no request leaves the process")
        status: Status = "unhealthy" if bad else "degraded" if meh else "healthy"
        error = None
        if self._last_error is not None and self._last_error[0] > mono - self.policy.window:
            error = self._last_error[1]
        return HealthStatus(
            status=status,
            latency_ms=latency,
            authenticated=self._authenticated,
            rate_limit_remaining=self._remaining,
            error=error,
            breaker=self._breaker,
            stale_served=int(totals["stale"]),
            alerts=alerts,
            checked_at=wall,
            disabled=self._disabled,
            reasons=tuple(dict.fromkeys(bad + meh)),
            incident_id=None if self._recorder is None else self._recorder.id,
            outbox_depth=None if self._outbox is None else self._outbox[0],
            outbox_oldest_age=None if (signal := self._outbox_signal()) is None else signal[1],
        )

    def _dispatch(self, notices: list[_Notice]) -> None:
        """Log and deliver, outside the lock (a callback may read the monitor)."""
        for notice in notices:
            self.events.emit(notice)
            if not isinstance(notice, (AlertFired, AlertResolved)) or self.on_alert is None:
                continue
            alert = notice.alert
            at = alert.fired_at if alert.resolved_at is None else alert.resolved_at
            kind: Literal["fired", "resolved"] = (
                "fired" if isinstance(notice, AlertFired) else "resolved"
            )
            payload = AlertEvent(kind, alert, at, notice.incident_id)
            try:
                self.on_alert(payload)
            except Exception:
                _stdlib_logger.exception("intercom_resilience on_alert callback failed")

    def __repr__(self) -> str:
        return (
            f"HealthMonitor(breaker={self._breaker!r}, active_alerts={sorted(self._active)!r}, "
            f"incident={None if self._recorder is None else self._recorder.id!r})"
        )


def _error_summary(record: FailureRecord) -> str:
    status = "network error" if record.status is None else str(record.status)
    text = f"{record.method} {record.template}: {status}"
    if record.error:
        text += f" {record.error}"
    if record.request_id:
        text += f" (request id {record.request_id})"
    return scrub(text)
