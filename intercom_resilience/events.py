"""The pipeline's events, as types: what an event hook receives.

Every event the library emits is an instance of one of the frozen dataclasses below, each with a
fixed :class:`EventName` and log level. Event hooks (``event_hooks=[...]`` on a client) receive
the event object and match on its type, never on a string::

    from intercom_resilience.events import CallRetry, Event, StaleServed

    def hook(event: Event) -> None:
        if isinstance(event, StaleServed):
            statsd.increment("intercom.stale", tags=[f"reason:{event.reason}"])
        elif isinstance(event, CallRetry):
            statsd.increment("intercom.retry")

When the event is logged (structlog, or the standard ``logging`` module), its name is the log
event and :meth:`Event.fields` are the key-value pairs: the schema documented in
``docs/observability.md``. Renaming a field or an event is a change to this module alone, and a
hook that matches on a type cannot silently stop matching.

.. versionadded:: 0.1
"""

from __future__ import annotations

import dataclasses
import enum
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from ._incidents import Alert

__all__ = [
    "AlertFired",
    "AlertResolved",
    "BreakerTransition",
    "CacheEntryTooLarge",
    "CallAttempt",
    "CallFinished",
    "CallReconciled",
    "CallRefused",
    "CallRetry",
    "DeadlineExceeded",
    "Event",
    "EventName",
    "HealthProbeFailed",
    "IncidentClosed",
    "IncidentOpened",
    "KillSwitchChanged",
    "Level",
    "LimiterWait",
    "OutboxDeadLettered",
    "OutboxFallback",
    "OutboxQueued",
    "RedisRecovered",
    "RedisUnavailable",
    "RetryBudgetExhausted",
    "StaleServed",
    "TokenRotated",
    "WebhookDeferred",
    "WebhookDuplicate",
    "WebhookHandled",
    "WebhookHandlerFailed",
    "WebhookReceived",
    "WebhookRejected",
]

#: A log level of the library's events.
Level = Literal["debug", "info", "warning", "error"]


class EventName(str, enum.Enum):
    """Every event name the library emits (the ``event`` of its log lines)."""

    CALL_ATTEMPT = "call.attempt"
    CALL_RETRY = "call.retry"
    CALL_REFUSED = "call.refused"
    CALL_STALE_SERVED = "call.stale_served"
    CALL_TOKEN_ROTATED = "call.token_rotated"  # noqa: S105 - an event name, not a credential
    CALL_FINISHED = "call.finished"
    CALL_DEADLINE_EXCEEDED = "call.deadline_exceeded"
    CALL_RECONCILED = "call.reconciled"
    RETRY_BUDGET_EXHAUSTED = "retry_budget.exhausted"
    LIMITER_WAIT = "limiter.wait"
    LIMITER_REDIS_UNAVAILABLE = "limiter.redis_unavailable"
    LIMITER_REDIS_RECOVERED = "limiter.redis_recovered"
    CACHE_REDIS_UNAVAILABLE = "cache.redis_unavailable"
    CACHE_REDIS_RECOVERED = "cache.redis_recovered"
    CACHE_ENTRY_TOO_LARGE = "cache.entry_too_large"
    BREAKER_TRANSITION = "breaker.transition"
    KILL_SWITCH_CHANGED = "kill_switch.changed"
    OUTBOX_QUEUED = "outbox.queued"
    OUTBOX_DEAD_LETTERED = "outbox.dead_lettered"
    OUTBOX_FALLBACK = "outbox.fallback"
    ALERT_FIRED = "alert.fired"
    ALERT_RESOLVED = "alert.resolved"
    INCIDENT_OPENED = "incident.opened"
    INCIDENT_CLOSED = "incident.closed"
    HEALTH_PROBE_FAILED = "health.probe_failed"
    WEBHOOK_RECEIVED = "webhook.received"
    WEBHOOK_DUPLICATE = "webhook.duplicate"
    WEBHOOK_REJECTED = "webhook.rejected"
    WEBHOOK_DEFERRED = "webhook.deferred"
    WEBHOOK_HANDLED = "webhook.handled"
    WEBHOOK_HANDLER_FAILED = "webhook.handler_failed"
    WEBHOOK_REDIS_UNAVAILABLE = "webhook.redis_unavailable"
    WEBHOOK_REDIS_RECOVERED = "webhook.redis_recovered"
    FLEET_REDIS_UNAVAILABLE = "fleet.redis_unavailable"
    FLEET_REDIS_RECOVERED = "fleet.redis_recovered"

    def __str__(self) -> str:
        return self.value


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """The base of every event: a name, a level, and the fields that are logged."""

    #: The event's name (subclasses fix it).
    NAME: ClassVar[EventName]
    #: The level it is logged at (subclasses fix it).
    LEVEL: ClassVar[Level] = "debug"

    @property
    def name(self) -> EventName:
        """The event's name, as logged."""
        return self.NAME

    @property
    def level(self) -> Level:
        """The level the event is logged at."""
        return self.LEVEL

    def fields(self) -> dict[str, Any]:
        """The logged key-value pairs (the documented schema of this event)."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}


@dataclasses.dataclass(frozen=True, slots=True)
class _CallEvent(Event):
    """Fields common to the call events."""

    method: str
    path: str
    priority: str


@dataclasses.dataclass(frozen=True, slots=True)
class CallAttempt(_CallEvent):
    """One request was sent to Intercom and this came back (``call.attempt``, debug)."""

    NAME: ClassVar[EventName] = EventName.CALL_ATTEMPT

    attempt: int
    status: int | None
    error: str | None
    duration_ms: float
    request_id: str | None
    verdict: str
    tokens_left: float | None
    #: A short summary of an error answer (its first ``error.list`` code), for the health record.
    error_code: str | None = dataclasses.field(default=None, repr=False)
    #: The response's ``X-RateLimit-Remaining``, when it had one.
    rate_limit_remaining: int | None = dataclasses.field(default=None, repr=False)

    def fields(self) -> dict[str, Any]:
        """The documented fields (the error code and remaining quota feed health only)."""
        return {
            "method": self.method,
            "path": self.path,
            "priority": self.priority,
            "attempt": self.attempt,
            "status": self.status,
            "error": self.error,
            "duration_ms": self.duration_ms,
            "request_id": self.request_id,
            "verdict": self.verdict,
            "tokens_left": self.tokens_left,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class CallRetry(_CallEvent):
    """The failed attempt will be retried after ``wait_s`` seconds (``call.retry``, warning)."""

    NAME: ClassVar[EventName] = EventName.CALL_RETRY
    LEVEL: ClassVar[Level] = "warning"

    attempt: int
    status: int | None
    error: str | None
    wait_s: float
    request_id: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class DeadlineExceeded(_CallEvent):
    """A retry was due, but its wait would end past the call's deadline: the call ends now
    (``call.deadline_exceeded``, warning). ``wait_s`` is the wait that did not fit in
    ``left_s``."""

    NAME: ClassVar[EventName] = EventName.CALL_DEADLINE_EXCEEDED
    LEVEL: ClassVar[Level] = "warning"

    attempt: int
    status: int | None
    wait_s: float
    left_s: float
    request_id: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class RetryBudgetExhausted(_CallEvent):
    """A retry was due but the retry budget is spent (``retry_budget.exhausted``, warning)."""

    NAME: ClassVar[EventName] = EventName.RETRY_BUDGET_EXHAUSTED
    LEVEL: ClassVar[Level] = "warning"


@dataclasses.dataclass(frozen=True, slots=True)
class TokenRotated(_CallEvent):
    """After a 401 the token callable was called again (``call.token_rotated``, warning)."""

    NAME: ClassVar[EventName] = EventName.CALL_TOKEN_ROTATED
    LEVEL: ClassVar[Level] = "warning"


@dataclasses.dataclass(frozen=True, slots=True)
class CallRefused(_CallEvent):
    """The call was stopped before sending anything (``call.refused``, debug).

    ``reason`` is ``circuit_open``, ``disabled`` or ``limiter_wait``.
    """

    NAME: ClassVar[EventName] = EventName.CALL_REFUSED

    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class StaleServed(_CallEvent):
    """A failed read was answered with the last good answer (``call.stale_served``, warning)."""

    NAME: ClassVar[EventName] = EventName.CALL_STALE_SERVED
    LEVEL: ClassVar[Level] = "warning"

    reason: str
    age_s: float
    #: The request id of the failure that caused the fallback, if Intercom sent one.
    request_id: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class CallFinished(_CallEvent):
    """A call ended, and this is how it was served (``call.finished``, debug).

    The same facts as the :class:`~intercom_resilience.CallInfo` that ``capture_calls()``
    collects: ``status`` is what the caller saw (``None`` for an error), ``attempts`` the upstream
    attempts made, and for stale answers ``age`` and ``reason``.
    """

    NAME: ClassVar[EventName] = EventName.CALL_FINISHED

    status: int | None
    attempts: int
    stale: bool
    age: float | None
    reason: str | None
    request_id: str | None
    failure_request_id: str | None
    #: A write's lost answer was reconciled: the answer is the real object.
    reconciled: bool = False
    #: How: ``resent``, ``conflict`` or ``lookup`` (``None`` when not reconciled).
    reconciled_by: str | None = None
    #: Answered by an identical read's request (in this process, or another's through Redis).
    coalesced: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class CallReconciled(_CallEvent):
    """A write's answer was lost and reconciliation ran (``call.reconciled``, info).

    ``resolution`` is the write's row in the write-safety table (``idempotent``, ``conflict``,
    ``lookup``, ``unresolvable``); ``how`` is what resolved it (``resent``, ``conflict``,
    ``lookup``), or ``None`` when the outcome stays unknown (a warning then, ``detail`` says why);
    ``requests`` counts the re-sends and lookups it made.
    """

    NAME: ClassVar[EventName] = EventName.CALL_RECONCILED
    LEVEL: ClassVar[Level] = "info"

    resolution: str
    how: str | None
    requests: int
    request_id: str | None
    detail: str

    @property
    def level(self) -> Level:
        """``info`` when resolved, ``warning`` when the outcome stays unknown."""
        return "info" if self.how is not None else "warning"


@dataclasses.dataclass(frozen=True, slots=True)
class OutboxQueued(Event):
    """A write was queued in the outbox (``outbox.queued``, info)."""

    NAME: ClassVar[EventName] = EventName.OUTBOX_QUEUED
    LEVEL: ClassVar[Level] = "info"

    method: str
    path: str
    entry_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class OutboxDeadLettered(Event):
    """A queued write went to the dead letters (``outbox.dead_lettered``, warning).

    Intercom rejected it (a 4xx: ``status``, ``error``, ``request_id``), or an interrupted
    replay of an unresolvable write left its outcome unknown.
    """

    NAME: ClassVar[EventName] = EventName.OUTBOX_DEAD_LETTERED
    LEVEL: ClassVar[Level] = "warning"

    method: str
    path: str
    entry_id: str
    status: int | None
    error: str
    request_id: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class OutboxFallback(Event):
    """Redis was unreachable: a write was queued in the local fallback file instead
    (``outbox.fallback``, warning)."""

    NAME: ClassVar[EventName] = EventName.OUTBOX_FALLBACK
    LEVEL: ClassVar[Level] = "warning"

    error: str
    location: str


@dataclasses.dataclass(frozen=True, slots=True)
class LimiterWait(_CallEvent):
    """The call waits for rate-limit quota: a 429 avoided (``limiter.wait``, debug)."""

    NAME: ClassVar[EventName] = EventName.LIMITER_WAIT

    wait_s: float


@dataclasses.dataclass(frozen=True, slots=True)
class RedisUnavailable(Event):
    """A Redis backend is unreachable (``limiter.redis_unavailable``, ``cache.redis_unavailable``,
    ``webhook.redis_unavailable``, ``fleet.redis_unavailable``; warning). The limiter paces
    locally at ``fallback_share`` of the quota meanwhile; the cache runs without Redis; the
    webhook receiver's replay store remembers notification ids in this process only; the fleet
    link (health, incidents, fleet coalescing) stops publishing and reads the fleet as
    ``unknown``, while the process's own health and incidents go on."""

    LEVEL: ClassVar[Level] = "warning"

    component: Literal["limiter", "cache", "webhooks", "fleet"]
    error: str
    detail: str
    retry_in_s: float
    fallback_share: float | None = None

    @property
    def name(self) -> EventName:
        """``limiter.redis_unavailable``, ``cache.redis_unavailable``,
        ``webhook.redis_unavailable`` or ``fleet.redis_unavailable``."""
        if self.component == "limiter":
            return EventName.LIMITER_REDIS_UNAVAILABLE
        if self.component == "webhooks":
            return EventName.WEBHOOK_REDIS_UNAVAILABLE
        if self.component == "fleet":
            return EventName.FLEET_REDIS_UNAVAILABLE
        return EventName.CACHE_REDIS_UNAVAILABLE

    def fields(self) -> dict[str, Any]:
        """``error``, ``detail``, ``retry_in`` (and the limiter's ``fallback_share``)."""
        fields: dict[str, Any] = {
            "error": self.error,
            "detail": self.detail,
            "retry_in": self.retry_in_s,
        }
        if self.fallback_share is not None:
            fields["fallback_share"] = self.fallback_share
        return fields


@dataclasses.dataclass(frozen=True, slots=True)
class RedisRecovered(Event):
    """A Redis backend answers again (``limiter.redis_recovered``, ``cache.redis_recovered``,
    ``webhook.redis_recovered``, ``fleet.redis_recovered``; warning), after ``downtime_s``
    seconds."""

    LEVEL: ClassVar[Level] = "warning"

    component: Literal["limiter", "cache", "webhooks", "fleet"]
    downtime_s: float

    @property
    def name(self) -> EventName:
        """``limiter.redis_recovered``, ``cache.redis_recovered``, ``webhook.redis_recovered``
        or ``fleet.redis_recovered``."""
        if self.component == "limiter":
            return EventName.LIMITER_REDIS_RECOVERED
        if self.component == "webhooks":
            return EventName.WEBHOOK_REDIS_RECOVERED
        if self.component == "fleet":
            return EventName.FLEET_REDIS_RECOVERED
        return EventName.CACHE_REDIS_RECOVERED

    def fields(self) -> dict[str, Any]:
        """``downtime`` (seconds)."""
        return {"downtime": round(self.downtime_s, 3)}


@dataclasses.dataclass(frozen=True, slots=True)
class CacheEntryTooLarge(Event):
    """A response was too large to keep in the stale cache (``cache.entry_too_large``, debug)."""

    NAME: ClassVar[EventName] = EventName.CACHE_ENTRY_TOO_LARGE

    size: int
    limit: int


@dataclasses.dataclass(frozen=True, slots=True)
class BreakerTransition(Event):
    """The circuit breaker changed state (``breaker.transition``, warning)."""

    NAME: ClassVar[EventName] = EventName.BREAKER_TRANSITION
    LEVEL: ClassVar[Level] = "warning"

    previous: str
    state: str
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class KillSwitchChanged(Event):
    """``client.disable()`` or ``client.enable()`` (``kill_switch.changed``, warning)."""

    NAME: ClassVar[EventName] = EventName.KILL_SWITCH_CHANGED
    LEVEL: ClassVar[Level] = "warning"

    disabled: bool


@dataclasses.dataclass(frozen=True, slots=True)
class _AlertEventBase(Event):
    LEVEL: ClassVar[Level] = "warning"

    alert: Alert
    incident_id: str | None

    def fields(self) -> dict[str, Any]:
        """``rule``, ``severity``, ``title``, ``detail``, ``incident_id``."""
        return {
            "rule": self.alert.rule,
            "severity": self.alert.severity.value,
            "title": self.alert.title,
            "detail": self.alert.detail,
            "incident_id": self.incident_id,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class AlertFired(_AlertEventBase):
    """An alert rule started to hold (``alert.fired``, warning)."""

    NAME: ClassVar[EventName] = EventName.ALERT_FIRED


@dataclasses.dataclass(frozen=True, slots=True)
class AlertResolved(_AlertEventBase):
    """An alert rule stopped holding (``alert.resolved``, warning)."""

    NAME: ClassVar[EventName] = EventName.ALERT_RESOLVED


@dataclasses.dataclass(frozen=True, slots=True)
class IncidentOpened(Event):
    """The first alert fired: an incident is being recorded (``incident.opened``, warning)."""

    NAME: ClassVar[EventName] = EventName.INCIDENT_OPENED
    LEVEL: ClassVar[Level] = "warning"

    incident_id: str
    severity: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class IncidentClosed(Event):
    """Every alert resolved: the incident is in ``client.incidents`` (``incident.closed``)."""

    NAME: ClassVar[EventName] = EventName.INCIDENT_CLOSED
    LEVEL: ClassVar[Level] = "warning"

    incident_id: str
    severity: str | None
    duration: float | None
    failed_attempts: int
    request_ids: int


@dataclasses.dataclass(frozen=True, slots=True)
class HealthProbeFailed(Event):
    """The ``GET /me`` probe of ``check_health()`` failed (``health.probe_failed``, debug)."""

    NAME: ClassVar[EventName] = EventName.HEALTH_PROBE_FAILED


# ------------------------------------------------------------------------------------ webhooks
#
# The webhook receiver (:mod:`intercom_resilience.webhooks`) answers every delivery with one of
# these: received or duplicate (a 2xx: Intercom is done with it), rejected (a 4xx: bad input) or
# deferred (503/429: Intercom redelivers later). Each carries the HTTP status it answered.


@dataclasses.dataclass(frozen=True, slots=True)
class WebhookReceived(Event):
    """A signed notification was accepted and queued for the handler, or a ``ping`` answered
    (``webhook.received``, debug).

    ``delay_s`` is receipt time minus the notification's ``created_at`` (``None`` without one);
    ``queue_depth`` the notifications waiting for the handler after this one, of ``queue_size``.
    """

    NAME: ClassVar[EventName] = EventName.WEBHOOK_RECEIVED

    notification_id: str
    topic: str
    delay_s: float | None
    queue_depth: int
    queue_size: int
    status: int = 200


@dataclasses.dataclass(frozen=True, slots=True)
class WebhookDuplicate(Event):
    """A notification id seen before: acknowledged, not handled again (``webhook.duplicate``,
    debug)."""

    NAME: ClassVar[EventName] = EventName.WEBHOOK_DUPLICATE

    notification_id: str
    topic: str
    status: int = 200


@dataclasses.dataclass(frozen=True, slots=True)
class WebhookRejected(Event):
    """A delivery was refused for what it is (``webhook.rejected``, warning); the handler never
    saw it.

    ``reason`` is one of ``signature_missing``, ``signature_malformed``, ``signature_mismatch``,
    ``signature_unusable`` (a signature failure: the P3 ``webhook_signature`` alert),
    ``too_large`` (413), ``empty``, ``not_json``, ``invalid`` (400), ``stale`` (older than the
    receiver's ``max_age``) or ``method`` (405).
    """

    NAME: ClassVar[EventName] = EventName.WEBHOOK_REJECTED
    LEVEL: ClassVar[Level] = "warning"

    reason: str
    status: int
    #: Answered 2xx all the same (``stale``): Intercom is done with it and will not redeliver.
    acknowledged: bool = False

    @property
    def signature_failure(self) -> bool:
        """Whether the delivery failed its signature check."""
        return self.reason.startswith("signature_")


@dataclasses.dataclass(frozen=True, slots=True)
class WebhookDeferred(Event):
    """A valid delivery was refused for now so that Intercom redelivers it later
    (``webhook.deferred``, warning): ``disabled`` (the kill switch, 503) or ``queue_full`` (the
    handler's queue, 429)."""

    NAME: ClassVar[EventName] = EventName.WEBHOOK_DEFERRED
    LEVEL: ClassVar[Level] = "warning"

    reason: str
    status: int
    queue_depth: int
    queue_size: int


@dataclasses.dataclass(frozen=True, slots=True)
class WebhookHandled(Event):
    """The handler returned for one notification (``webhook.handled``, debug)."""

    NAME: ClassVar[EventName] = EventName.WEBHOOK_HANDLED

    notification_id: str
    topic: str
    duration_ms: float
    queue_depth: int
    queue_size: int


@dataclasses.dataclass(frozen=True, slots=True)
class WebhookHandlerFailed(Event):
    """The handler raised for one notification (``webhook.handler_failed``, warning): counted
    toward the P3 ``webhook_handler`` alert. ``error`` is the exception's type, never its message
    (the handler's data stays in the handler's logs)."""

    NAME: ClassVar[EventName] = EventName.WEBHOOK_HANDLER_FAILED
    LEVEL: ClassVar[Level] = "warning"

    notification_id: str
    topic: str
    error: str
    duration_ms: float
    queue_depth: int
    queue_size: int
