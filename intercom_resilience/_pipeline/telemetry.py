"""The one sink of everything a call tells the world: the log and hooks, health, and capture.

Every stage reports by building a typed event (:mod:`intercom_resilience.events`) and handing it
here. The sink sends it to the event log (structlog or ``logging``, and the user's hooks) and to
the health monitor, and turns a finished call into the :class:`~intercom_resilience.CallInfo`
that ``capture_calls()`` collects. No stage talks to the monitor or the capture directly.
"""

from __future__ import annotations

from .. import _callinfo
from .._events import EventLog
from .._health import HealthMonitor
from ..events import CallFinished, Event

__all__ = ["Telemetry"]


class Telemetry:
    """Routes typed events to the log and hooks, the health monitor and call capture.

    Args:
        events: the client's event log (hooks, structlog or ``logging``).
        monitor: the client's health monitor.
    """

    __slots__ = ("attempted", "events", "monitor", "wants_debug")

    def __init__(self, events: EventLog, monitor: HealthMonitor) -> None:
        self.events = events
        self.monitor = monitor
        #: An attempt nobody listens for as an event (:meth:`wants_debug` is false): the health
        #: monitor takes it in exactly as it would take its :class:`~..events.CallAttempt`. The
        #: monitor's own method, bound once: a forwarding call per attempt cost more than it did.
        self.attempted = monitor.record_attempt
        #: Would a debug event go anywhere? Hot paths skip building ones nobody reads. (The
        #: event log's own method, bound once, like :attr:`attempted`: asked on every attempt.)
        self.wants_debug = events.wants_debug

    def emit(self, event: Event) -> None:
        """Log *event* (and hand it to the hooks), then let the health monitor take it in."""
        self.events.emit(event)
        self.monitor.observe(event)

    def wants_finished(self) -> bool:
        """Is anyone interested in how a call finished (a capture, a hook, debug logging)?"""
        return _callinfo.capturing() or self.events.wants_debug()

    def finished(self, event: CallFinished) -> None:
        """A call ended: capture its :class:`~intercom_resilience.CallInfo` and emit the event."""
        _callinfo.record(
            _callinfo.CallInfo(
                method=event.method,
                path=event.path,
                status=event.status,
                attempts=event.attempts,
                stale=event.stale,
                age=event.age,
                request_id=event.request_id,
                failure_request_id=event.failure_request_id,
                reason=event.reason,
                reconciled=event.reconciled,
                reconciled_by=event.reconciled_by,
                coalesced=event.coalesced,
            )
        )
        self.emit(event)
