"""Metrics hooks: Prometheus and OpenTelemetry, fed by the pipeline's events.

Both are event hooks (``callable(event_name, fields)``), off unless you pass one to a client::

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

from collections.abc import Mapping
from typing import Any

__all__ = ["OpenTelemetryHook", "PrometheusHook"]


def _status_label(fields: Mapping[str, Any]) -> str:
    status = fields.get("status")
    return "error" if status is None else str(status)


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

    def __call__(self, event: str, fields: Mapping[str, Any]) -> None:
        """Record one pipeline event."""
        if event == "call.attempt":
            method, path = fields.get("method", "?"), fields.get("path", "?")
            self.requests.labels(method, path, _status_label(fields)).inc()
            self.duration.labels(method, path).observe(float(fields.get("duration_ms", 0)) / 1000)
        elif event == "call.retry":
            self.retries.labels(fields.get("method", "?"), fields.get("path", "?")).inc()
        elif event == "call.stale_served":
            self.stale.labels(fields.get("path", "?"), fields.get("reason", "?")).inc()
        elif event == "call.refused":
            self.refused.labels(fields.get("reason", "?")).inc()
        elif event == "breaker.transition":
            self.breaker.labels(fields.get("state", "?")).inc()
        elif event in ("alert.fired", "alert.resolved"):
            kind = event.split(".", 1)[1]
            self.alerts.labels(fields.get("rule", "?"), fields.get("severity", "?"), kind).inc()


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

    def __call__(self, event: str, fields: Mapping[str, Any]) -> None:
        """Record one pipeline event."""
        if event == "call.attempt":
            where = {"method": fields.get("method", "?"), "path": fields.get("path", "?")}
            self.requests.add(1, {**where, "status": _status_label(fields)})
            self.duration.record(float(fields.get("duration_ms", 0)) / 1000, where)
        elif event == "call.retry":
            self.retries.add(
                1, {"method": fields.get("method", "?"), "path": fields.get("path", "?")}
            )
        elif event == "call.stale_served":
            self.stale.add(
                1, {"path": fields.get("path", "?"), "reason": fields.get("reason", "?")}
            )
        elif event == "call.refused":
            self.refused.add(1, {"reason": fields.get("reason", "?")})
        elif event == "breaker.transition":
            self.breaker.add(1, {"state": fields.get("state", "?")})
        elif event in ("alert.fired", "alert.resolved"):
            kind = event.split(".", 1)[1]
            attributes = {"rule": fields.get("rule", "?"), "severity": fields.get("severity", "?")}
            self.alerts.add(1, {**attributes, "kind": kind})
