"""intercom-resilience: the official Intercom SDK, with a resilience pipeline under it.

Use :class:`ResilientIntercom` (or :class:`AsyncResilientIntercom`) wherever you used
``intercom.Intercom``; nothing else in your code changes. Every request then passes a rate limiter
that keeps you inside Intercom's quotas, retries that never duplicate a write, a circuit
breaker, and a stale-cache fallback that keeps reads answering during outages.
"""

from __future__ import annotations

from ._callinfo import CallInfo, CapturedCalls, capture_calls
from ._client import AsyncResilientIntercom, ResilientIntercom
from ._clock import Clock, SystemClock, VirtualClock
from ._config import (
    AlertPolicy,
    BreakerPolicy,
    CachePolicy,
    DeadlinePolicy,
    FleetPolicy,
    OutboxPolicy,
    RateLimitPolicy,
    ResilienceConfig,
    RetryPolicy,
    TimeoutPolicy,
)
from ._core.breaker import BreakerState
from ._core.limiter import Priority
from ._core.status import StaleReason
from ._errors import (
    CircuitOpenError,
    DeadlineExceededError,
    IntercomConnectError,
    IntercomConnectTimeout,
    IntercomDisabledError,
    IntercomNetworkError,
    IntercomPoolTimeout,
    IntercomReadError,
    IntercomReadTimeout,
    IntercomRemoteProtocolError,
    IntercomResilienceError,
    IntercomTooManyRedirects,
    IntercomWriteError,
    IntercomWriteTimeout,
    OutcomeUnknownError,
    PaginationLoopError,
    RateLimitedError,
    request_id_of,
)
from ._fleet import FleetHealth, ProcessHealth
from ._fleet_incidents import FleetIncident, IncidentReport
from ._health import AlertEvent, CacheWarmth, HealthStatus, Latency
from ._incidents import (
    Alert,
    FailureRecord,
    Incident,
    Severity,
    TimelineEntry,
    render_postmortem,
    render_status_update,
)
from ._outbox import (
    AsyncOutbox,
    DrainReport,
    Outbox,
    OutboxEntry,
    OutboxError,
    OutboxStatus,
    OutboxUnavailableError,
    WriteQueuedError,
)
from ._sdk import install_request_id_on_api_error
from ._warming import WarmProgress, WarmReport
from ._webhooks import verify_webhook_signature

install_request_id_on_api_error()

__version__ = "0.1.0.dev0"

__all__ = [
    "Alert",
    "AlertEvent",
    "AlertPolicy",
    "AsyncOutbox",
    "AsyncResilientIntercom",
    "BreakerPolicy",
    "BreakerState",
    "CachePolicy",
    "CacheWarmth",
    "CallInfo",
    "CapturedCalls",
    "CircuitOpenError",
    "Clock",
    "DeadlineExceededError",
    "DeadlinePolicy",
    "DrainReport",
    "FailureRecord",
    "FleetHealth",
    "FleetIncident",
    "FleetPolicy",
    "HealthStatus",
    "Incident",
    "IncidentReport",
    "IntercomConnectError",
    "IntercomConnectTimeout",
    "IntercomDisabledError",
    "IntercomNetworkError",
    "IntercomPoolTimeout",
    "IntercomReadError",
    "IntercomReadTimeout",
    "IntercomRemoteProtocolError",
    "IntercomResilienceError",
    "IntercomTooManyRedirects",
    "IntercomWriteError",
    "IntercomWriteTimeout",
    "Latency",
    "Outbox",
    "OutboxEntry",
    "OutboxError",
    "OutboxPolicy",
    "OutboxStatus",
    "OutboxUnavailableError",
    "OutcomeUnknownError",
    "PaginationLoopError",
    "Priority",
    "ProcessHealth",
    "RateLimitPolicy",
    "RateLimitedError",
    "ResilienceConfig",
    "ResilientIntercom",
    "RetryPolicy",
    "Severity",
    "StaleReason",
    "SystemClock",
    "TimelineEntry",
    "TimeoutPolicy",
    "VirtualClock",
    "WarmProgress",
    "WarmReport",
    "WriteQueuedError",
    "__version__",
    "capture_calls",
    "render_postmortem",
    "render_status_update",
    "request_id_of",
    "verify_webhook_signature",
]
