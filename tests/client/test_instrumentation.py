"""Prometheus and OpenTelemetry hooks, fed by real traffic on the fake."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from intercom.core.api_error import ApiError

from intercom_resilience import ResilientIntercom, VirtualClock
from intercom_resilience.testing import FakeIntercom

prometheus_client = pytest.importorskip("prometheus_client")


def _traffic(client: ResilientIntercom, fake: FakeIntercom) -> None:
    contact = client.contacts.create(request={"email": "m@example.com"})
    client.contacts.find(contact_id=contact.id)
    fake.faults.fail_next(1, status=503, path="/contacts/*", method="GET")
    client.contacts.find(contact_id=contact.id)  # one retry
    fake.faults.outage(seconds=600)
    for _ in range(30):
        with contextlib.suppress(ApiError):
            client.contacts.find(contact_id=contact.id)  # stale, then breaker


def test_prometheus_hook(fake: FakeIntercom, clock: VirtualClock) -> None:
    from intercom_resilience.instrumentation import PrometheusHook

    registry = prometheus_client.CollectorRegistry()
    client = ResilientIntercom(
        token="fake-token",
        transport=fake.transport(),
        clock=clock,
        event_hooks=[PrometheusHook(registry)],
    )
    _traffic(client, fake)

    def value(name: str, **labels: str) -> float:
        found = registry.get_sample_value(name, labels)
        return 0.0 if found is None else found

    assert value("intercom_requests_total", method="POST", path="/contacts", status="200") == 1
    assert value("intercom_requests_total", method="GET", path="/contacts/{id}", status="503") >= 1
    assert value("intercom_retries_total", method="GET", path="/contacts/{id}") >= 1
    stale = value("intercom_stale_served_total", path="/contacts/{id}", reason="server_error")
    stale += value("intercom_stale_served_total", path="/contacts/{id}", reason="circuit_open")
    assert stale == client.stale_served > 0
    assert value("intercom_breaker_transitions_total", state="open") == 1
    assert value("intercom_alerts_total", rule="api_unreachable", severity="P1", kind="fired") == 1
    assert (
        value("intercom_request_duration_seconds_count", method="GET", path="/contacts/{id}") >= 2
    )
    exposition = prometheus_client.generate_latest(registry).decode()
    assert "fake-token" not in exposition
    assert "/contacts/{id}" in exposition


def test_opentelemetry_hook(fake: FakeIntercom, clock: VirtualClock) -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from intercom_resilience.instrumentation import OpenTelemetryHook

    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    client = ResilientIntercom(
        token="fake-token",
        transport=fake.transport(),
        clock=clock,
        event_hooks=[OpenTelemetryHook(meter)],
    )
    _traffic(client, fake)
    data = reader.get_metrics_data()
    totals: dict[str, Any] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                totals[metric.name] = sum(
                    getattr(point, "value", getattr(point, "count", 0))
                    for point in metric.data.data_points
                )
    assert totals["intercom.requests"] >= 3
    assert totals["intercom.retries"] >= 1
    assert totals["intercom.stale_served"] == client.stale_served
    assert totals["intercom.breaker.transitions"] == 1
    assert totals["intercom.request.duration"] == totals["intercom.requests"]
