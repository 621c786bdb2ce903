"""Metrics hooks: Prometheus and OpenTelemetry, fed by the pipeline's events.

Both are event hooks (``hook(event)``, receiving the typed events of
:mod:`intercom_resilience.events`), off unless you pass one to a client::

    from intercom_resilience import ResilientIntercom
    from intercom_resilience.instrumentation import PrometheusHook

    client = ResilientIntercom(token=..., event_hooks=[PrometheusHook()])

They need their extra (``intercom-resilience[prometheus]`` or ``intercom-resilience[otel]``);
constructing one without it raises an ``ImportError`` that names the extra. Labels use path
*templates* (``/contacts/{id}``), never raw paths, so cardinality stays bounded and no identifier
or credential ever becomes a label.

Metrics (Prometheus names; OpenTelemetry uses the same names with dots):

===================================== ========= ==========================================
``intercom_requests_total``           counter   attempts, by method, path, status
``intercom_request_duration_seconds`` histogram attempt latency, by method and path
``intercom_retries_total``            counter   retries scheduled, by method and path
``intercom_stale_served_total``       counter   reads answered from the stale cache, by reason
``intercom_refused_total``            counter   calls refused locally, by reason
``intercom_breaker_transitions_total`` counter  circuit breaker transitions, by new state
``intercom_alerts_total``             counter   alerts fired and resolved, by rule and severity
===================================== ========= ==========================================
"""

from __future__ import annotations

from typing import Any

from .events import (
    AlertFired,
    AlertResolved,
    BreakerTransition,
    CallAttempt,
    CallRefused,
    CallRetry,
    Event,
    StaleServed,
)

__all__ = ["OpenTelemetryHook", "PrometheusHook"]


def _status_label(status: int | None) -> str:
    return "error" if status is None else str(status)


def _alert_kind(event: AlertFired | AlertResolved) -> str:
    return "fired" if isinstance(event, AlertFired) else "resolved"


class PrometheusHook:
    """Exports the pipeline's events as Prometheus metrics.

    Args:
        registry: the ``CollectorRegistry`` to register with (the default global one when
            ``None``). Give each hook its own registry in tests.
        namespace: the metric name prefix.

    .. versionadded:: 0.1
    """

    def __init__(self, registry: Any = None, namespace: str = "intercom") -> None:
        try:
            import prometheus_client as prom
        except ImportError as error:  # pragma: no cover - exercised without the extra
            raise ImportError(
                "PrometheusHook needs prometheus-client: "
                "pip install 'intercom-resilience[prometheus]'"
            ) from error
        kwargs: dict[str, Any] = {"namespace": namespace}
        if registry is not None:
            kwargs["registry"] = registry
        self.requests = prom.Counter(
            "requests", "Attempts sent to Intercom.", ["method", "path", "status"], **kwargs
        )
        self.duration = prom.Histogram(
            "request_duration_seconds", "Attempt latency.", ["method", "path"], **kwargs
        )
        self.retries = prom.Counter("retries", "Retries scheduled.", ["method", "path"], **kwargs)
        self.stale = prom.Counter(
            "stale_served", "Reads answered from the stale cache.", ["path", "reason"], **kwargs
        )
        self.refused = prom.Counter("refused", "Calls refused locally.", ["reason"], **kwargs)
        self.breaker = prom.Counter(
            "breaker_transitions", "Circuit breaker transitions.", ["state"], **kwargs
        )
        self.alerts = prom.Counter(
            "alerts", "Alerts fired and resolved.", ["rule", "severity", "kind"], **kwargs
        )

    def __call__(self, event: Event) -> None:
        """Record one pipeline event."""
        if isinstance(event, CallAttempt):
            self.requests.labels(event.method, event.path, _status_label(event.status)).inc()
            self.duration.labels(event.method, event.path).observe(event.duration_ms / 1000)
        elif isinstance(event, CallRetry):
            self.retries.labels(event.method, event.path).inc()
        elif isinstance(event, StaleServed):
            self.stale.labels(event.path, event.reason).inc()
        elif isinstance(event, CallRefused):
            self.refused.labels(event.reason).inc()
        elif isinstance(event, BreakerTransition):
            self.breaker.labels(event.state).inc()
        elif isinstance(event, (AlertFired, AlertResolved)):
            alert = event.alert
            self.alerts.labels(alert.rule, alert.severity.value, _alert_kind(event)).inc()


class OpenTelemetryHook:
    """Exports the pipeline's events as OpenTelemetry metrics.

    Args:
        meter: the ``Meter`` to create instruments on (``metrics.get_meter("intercom_resilience")``
            from the global provider when ``None``).

    .. versionadded:: 0.1
    """

    def __init__(self, meter: Any = None) -> None:
        try:
            from opentelemetry import metrics
        except ImportError as error:  # pragma: no cover - exercised without the extra
            raise ImportError(
                "OpenTelemetryHook needs opentelemetry-api: pip install 'intercom-resilience[otel]'"
            ) from error
        meter = meter if meter is not None else metrics.get_meter("intercom_resilience")
        self.requests = meter.create_counter("intercom.requests", description="Attempts sent.")
        self.duration = meter.create_histogram(
            "intercom.request.duration", unit="s", description="Attempt latency."
        )
        self.retries = meter.create_counter("intercom.retries", description="Retries scheduled.")
        self.stale = meter.create_counter(
            "intercom.stale_served", description="Reads answered from the stale cache."
        )
        self.refused = meter.create_counter("intercom.refused", description="Calls refused.")
        self.breaker = meter.create_counter(
            "intercom.breaker.transitions", description="Circuit breaker transitions."
        )
        self.alerts = meter.create_counter("intercom.alerts", description="Alerts.")

    def __call__(self, event: Event) -> None:
        """Record one pipeline event."""
        if isinstance(event, CallAttempt):
            where = {"method": event.method, "path": event.path}
            self.requests.add(1, {**where, "status": _status_label(event.status)})
            self.duration.record(event.duration_ms / 1000, where)
        elif isinstance(event, CallRetry):
            self.retries.add(1, {"method": event.method, "path": event.path})
        elif isinstance(event, StaleServed):
            self.stale.add(1, {"path": event.path, "reason": event.reason})
        elif isinstance(event, CallRefused):
            self.refused.add(1, {"reason": event.reason})
        elif isinstance(event, BreakerTransition):
            self.breaker.add(1, {"state": event.state})
        elif isinstance(event, (AlertFired, AlertResolved)):
            alert = event.alert
            attributes = {"rule": alert.rule, "severity": alert.severity.value}
            self.alerts.add(1, {**attributes, "kind": _alert_kind(event)})
