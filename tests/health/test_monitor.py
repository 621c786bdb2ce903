"""The health monitor: status, alert thresholds, callbacks, events and the incident record."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from intercom_resilience import AlertPolicy, VirtualClock
from intercom_resilience._events import EventLog
from intercom_resilience._health import AlertEvent, HealthMonitor, Severity
from intercom_resilience.events import Event


class Recorder:
    """Collects alert events and emitted events."""

    def __init__(self) -> None:
        self.alerts: list[AlertEvent] = []
        self.events: list[tuple[str, dict[str, Any]]] = []

    def on_alert(self, event: AlertEvent) -> None:
        self.alerts.append(event)

    def hook(self, event: Event) -> None:
        self.events.append((event.name, event.fields()))

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def kinds(self) -> list[tuple[str, str]]:
        return [(e.kind, e.alert.rule) for e in self.alerts]


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


def make(
    clock: VirtualClock, rec: Recorder, policy: AlertPolicy | None = None, **kwargs: Any
) -> HealthMonitor:
    return HealthMonitor(
        policy or AlertPolicy(),
        clock,
        on_alert=rec.on_alert,
        events=EventLog(hooks=[rec.hook]),
        **kwargs,
    )


def attempt(
    monitor: HealthMonitor,
    status: int | None,
    *,
    duration: float = 0.05,
    request_id: str | None = None,
    template: str = "/contacts/{id}",
    method: str = "GET",
    error: str | None = None,
    n: int = 1,
) -> None:
    for _ in range(n):
        monitor.record_attempt(
            method=method,
            template=template,
            status=status,
            duration=duration,
            request_id=request_id,
            error=error,
            attempt=1,
        )


def test_a_fresh_monitor_is_healthy_and_knows_nothing(clock: VirtualClock, rec: Recorder) -> None:
    health = make(clock, rec).health()
    assert health.status == "healthy"
    assert health.healthy
    assert health.authenticated is None
    assert health.latency_ms.p50 is None
    assert health.latency_ms.p95 is None
    assert health.rate_limit_remaining is None
    assert health.error is None
    assert health.breaker == "closed"
    assert health.alerts == ()
    assert health.checked_at == clock.time()
    json.dumps(health.to_dict())


def test_successful_traffic_is_healthy_with_percentiles(clock: VirtualClock, rec: Recorder) -> None:
    monitor = make(clock, rec)
    for ms in range(1, 101):  # 1..100 ms
        attempt(monitor, 200, duration=ms / 1000)
    monitor.record_rate_limit_remaining(1500)
    health = monitor.health()
    assert health.status == "healthy"
    assert health.authenticated is True
    assert health.latency_ms.p50 == pytest.approx(50.0)
    assert health.latency_ms.p95 == pytest.approx(95.0)
    assert health.latency_ms.samples == 100
    assert health.rate_limit_remaining == 1500
    monitor.record_rate_limit_remaining(None)  # a response without the header keeps the last
    assert monitor.health().rate_limit_remaining == 1500
    assert rec.alerts == []


def test_api_unreachable_fires_on_more_than_ten_errors_once(
    clock: VirtualClock, rec: Recorder
) -> None:
    monitor = make(clock, rec)
    attempt(monitor, 503, n=5)
    attempt(monitor, None, n=5)  # network failures count too
    assert rec.alerts == []  # ten is not more than ten
    attempt(monitor, 500)
    assert rec.kinds() == [("fired", "api_unreachable")]
    assert rec.alerts[0].alert.severity is Severity.P1
    attempt(monitor, 500, n=50)
    assert rec.kinds() == [("fired", "api_unreachable")]  # no flood while active
    assert monitor.health().status == "unhealthy"


def test_errors_per_window_is_configurable(clock: VirtualClock, rec: Recorder) -> None:
    monitor = make(clock, rec, AlertPolicy(errors_per_window=2))
    attempt(monitor, 200, n=20)
    attempt(monitor, 502, n=3)
    assert rec.kinds() == [("fired", "api_unreachable")]


def test_alert_resolves_when_the_window_empties(clock: VirtualClock, rec: Recorder) -> None:
    monitor = make(clock, rec)
    attempt(monitor, 503, n=11, request_id="req-1")
    incident = monitor.current_incident
    assert incident is not None
    clock.advance(30)
    monitor.evaluate()
    still = monitor.current_incident
    assert still is not None  # still within the minute
    clock.advance(31)
    health = monitor.health()
    assert rec.kinds() == [("fired", "api_unreachable"), ("resolved", "api_unreachable")]
    resolved = rec.alerts[1]
    assert resolved.alert.resolved_at == clock.time()
    assert resolved.incident_id == incident.id
    assert monitor.current_incident is None
    (closed,) = monitor.incidents
    assert closed.closed_at == clock.time()
    assert closed.duration == pytest.approx(61.0)
    assert health.alerts == ()
    assert health.error is None  # the last failure is older than the window


def test_auth_failure_fires_on_any_401_and_resolves_on_success(
    clock: VirtualClock, rec: Recorder
) -> None:
    monitor = make(clock, rec)
    attempt(monitor, 200)
    attempt(monitor, 401, request_id="r401", error="token_revoked")
    health = monitor.health()
    assert health.status == "unhealthy"
    assert health.authenticated is False
    assert health.error == "GET /contacts/{id}: 401 token_revoked (request id r401)"
    assert rec.kinds() == [("fired", "auth_failure")]
    assert rec.alerts[0].alert.title == "auth failure"
    # A 5xx from a gateway says nothing about the credentials.
    attempt(monitor, 502)
    assert monitor.health().authenticated is False
    clock.advance(600)
    monitor.evaluate()
    assert monitor.active_alerts[0].rule == "auth_failure"  # persists until proven otherwise
    monitor.record_token_rotation()
    attempt(monitor, 200)
    assert monitor.health().authenticated is True
    assert rec.kinds()[-1] == ("resolved", "auth_failure")
    kinds = [entry.kind for entry in monitor.incidents[-1].timeline]
    assert "token_rotation" in kinds


def test_rate_limited_fires_on_more_than_five(clock: VirtualClock, rec: Recorder) -> None:
    monitor = make(clock, rec)
    attempt(monitor, 429, n=3)
    health = monitor.health()
    assert health.status == "healthy"  # absorbed 429s below the threshold change nothing
    assert health.reasons == ()
    monitor.record_refused("rate_limited")
    monitor.record_refused("limiter_wait")
    assert rec.alerts == []  # 5 is not more than 5
    monitor.record_refused("circuit_open")  # not rate limiting
    assert rec.alerts == []
    attempt(monitor, 429)
    assert rec.kinds() == [("fired", "rate_limited")]
    assert rec.alerts[0].alert.severity is Severity.P2
    health = monitor.health()
    assert health.status == "degraded"  # P2 alone is not unhealthy
    assert health.reasons == ("P2 alert: rate limited",)


def test_limiter_refusals_count_toward_the_alert_only(clock: VirtualClock, rec: Recorder) -> None:
    monitor = make(clock, rec)
    monitor.record_refused("rate_limited", method="GET", template="/contacts")
    assert monitor.health().status == "healthy"
    for _ in range(5):
        monitor.record_refused("limiter_wait", method="GET", template="/contacts")
    health = monitor.health()
    assert health.status == "degraded"
    assert [alert.rule for alert in health.alerts] == ["rate_limited"]


def test_high_latency_needs_enough_samples(clock: VirtualClock, rec: Recorder) -> None:
    monitor = make(clock, rec)
    attempt(monitor, 200, duration=5.0, n=4)
    assert rec.alerts == []
    assert monitor.health().status == "healthy"  # four samples are too few to judge
    attempt(monitor, 200, duration=5.0)
    assert rec.kinds() == [("fired", "high_latency")]
    assert "p95 latency 5000 ms over 3000 ms" in rec.alerts[0].alert.detail
    assert monitor.health().status == "degraded"


def test_high_latency_tracks_the_95th_percentile(clock: VirtualClock, rec: Recorder) -> None:
    monitor = make(clock, rec, AlertPolicy(latency_p95_ms=1000))
    attempt(monitor, 200, duration=0.1, n=95)
    attempt(monitor, 200, duration=2.0, n=5)  # exactly the top 5%: p95 is still fast
    assert rec.alerts == []
    attempt(monitor, 200, duration=2.0)  # now 6 of 101
    assert rec.kinds() == [("fired", "high_latency")]
    attempt(monitor, 200, duration=0.1, n=100)
    assert rec.kinds()[-1] == ("resolved", "high_latency")


@given(
    durations=st.lists(st.floats(min_value=0, max_value=10), min_size=1, max_size=60),
    threshold=st.floats(min_value=1, max_value=9000),
)
def test_slow_test_agrees_with_the_sorted_percentile(
    durations: list[float], threshold: float
) -> None:
    clock = VirtualClock()
    monitor = HealthMonitor(
        AlertPolicy(latency_p95_ms=threshold), clock, events=EventLog(), min_latency_samples=1
    )
    for seconds in durations:
        attempt(monitor, 200, duration=seconds)
    ordered = sorted(d * 1000 for d in durations)
    # Nearest rank by its definition: the smallest value with at least 95% of values <= it.
    p95 = next(v for v in ordered if 100 * sum(x <= v for x in ordered) >= 95 * len(ordered))
    p50 = next(v for v in ordered if 100 * sum(x <= v for x in ordered) >= 50 * len(ordered))
    health = monitor.health()
    assert health.latency_ms.p95 == p95
    assert health.latency_ms.p50 == p50
    assert ("high_latency" in [a.rule for a in health.alerts]) == (p95 > threshold)


def test_samples_are_bounded(clock: VirtualClock, rec: Recorder) -> None:
    monitor = make(clock, rec, max_samples=16)
    attempt(monitor, 200, n=100)
    assert monitor.health().latency_ms.samples == 16


def test_webhook_failures_fire_p3_and_resolve(clock: VirtualClock, rec: Recorder) -> None:
    monitor = make(clock, rec)
    monitor.record_webhook_failure()
    assert rec.kinds() == [("fired", "webhook_signature")]
    assert rec.alerts[0].alert.severity is Severity.P3
    assert monitor.health().status == "degraded"
    clock.advance(61)
    monitor.evaluate()
    assert rec.kinds()[-1] == ("resolved", "webhook_signature")
    assert monitor.health().status == "healthy"


def test_breaker_open_is_unhealthy_and_alerts(clock: VirtualClock, rec: Recorder) -> None:
    monitor = make(clock, rec)
    monitor.record_breaker("open", "6 of 10 recent calls failed")
    health = monitor.health()
    assert health.status == "unhealthy"
    assert health.breaker == "open"
    # an open breaker is the "API unreachable" P1, even before errors pass the threshold
    assert rec.kinds() == [("fired", "api_unreachable")]
    monitor.record_breaker("half_open", "cooldown elapsed")
    assert rec.kinds() == [("fired", "api_unreachable")]  # not recovered yet: no flapping
    monitor.record_breaker("closed", "trial calls succeeded")
    assert rec.kinds()[-1] == ("resolved", "api_unreachable")
    assert monitor.health().status == "healthy"


def test_health_takes_the_breaker_state_it_is_given(clock: VirtualClock, rec: Recorder) -> None:
    monitor = make(clock, rec)
    assert monitor.health("open").breaker == "open"
    assert monitor.health().breaker == "open"
    assert monitor.health("closed").status == "healthy"


def test_failures_below_the_thresholds_are_not_unhealthy(
    clock: VirtualClock, rec: Recorder
) -> None:
    monitor = make(clock, rec)
    attempt(monitor, 200, n=2)
    attempt(monitor, 503, n=3)  # the breaker (told by the pipeline) decides "most calls fail"
    assert monitor.health().status == "healthy"
    assert rec.alerts == []
    attempt(monitor, 503, n=8)  # 11 errors: more than 10 in a minute
    health = monitor.health()
    assert health.status == "unhealthy"
    assert "P1 alert: API unreachable" in health.reasons


def test_stale_serves_are_counted_and_the_kill_switch_degrades(
    clock: VirtualClock, rec: Recorder
) -> None:
    monitor = make(clock, rec)
    monitor.record_stale_served("/contacts/{id}", 12.0, None)
    health = monitor.health()
    assert health.status == "healthy"  # a stale serve is the fallback working
    assert health.stale_served == 1
    clock.advance(61)
    assert monitor.health().stale_served == 0
    monitor.record_kill_switch(True)
    health = monitor.health()
    assert health.status == "degraded"
    assert health.disabled
    monitor.record_kill_switch(False)
    assert monitor.health().status == "healthy"


def test_not_found_is_not_a_failure(clock: VirtualClock, rec: Recorder) -> None:
    monitor = make(clock, rec)
    attempt(monitor, 404, n=20)
    attempt(monitor, 422, n=20)
    health = monitor.health()
    assert health.status == "healthy"
    assert health.authenticated is True
    assert monitor.recent_failures == ()


def test_recent_failures_are_bounded_and_complete(clock: VirtualClock, rec: Recorder) -> None:
    monitor = make(clock, rec, AlertPolicy(max_recent_failures=3))
    for i in range(5):
        monitor.record_attempt(
            method="POST",
            template="/contacts/search",
            status=503,
            duration=0.2,
            request_id=f"r{i}",
            error="service_unavailable",
            attempt=i + 1,
        )
        clock.advance(1)
    failures = monitor.recent_failures
    assert [f.request_id for f in failures] == ["r2", "r3", "r4"]
    last = failures[-1]
    assert (last.status, last.method, last.template, last.attempt) == (
        503,
        "POST",
        "/contacts/search",
        5,
    )
    assert last.at == clock.time() - 1
    assert last.error == "service_unavailable"


def test_tokens_never_reach_health_or_records(clock: VirtualClock, rec: Recorder) -> None:
    monitor = make(clock, rec)
    attempt(monitor, 401, error="rejected Authorization: Bearer s3cr3t-token-value")
    attempt(monitor, 500, error="echo access_token=abc123 dG9rOmFiY2RlZg==")
    health = monitor.health()
    text = json.dumps(health.to_dict()) + repr(monitor.recent_failures)
    for secret in ("s3cr3t-token-value", "abc123", "dG9rOmFiY2RlZg"):
        assert secret not in text
    assert "[redacted]" in text


def test_callback_gets_fire_and_resolve_and_may_read_the_monitor(
    clock: VirtualClock,
) -> None:
    seen: list[tuple[str, str]] = []
    holder: list[HealthMonitor] = []

    def on_alert(event: AlertEvent) -> None:
        seen.append((event.kind, holder[0].health().status))  # must not deadlock

    monitor = HealthMonitor(AlertPolicy(), clock, on_alert=on_alert, events=EventLog())
    holder.append(monitor)
    attempt(monitor, 401)
    attempt(monitor, 200)
    assert seen == [("fired", "unhealthy"), ("resolved", "healthy")]


def test_a_broken_callback_does_not_break_recording(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    def on_alert(event: AlertEvent) -> None:
        raise RuntimeError("pager down")

    monitor = HealthMonitor(AlertPolicy(), clock, on_alert=on_alert, events=EventLog())
    attempt(monitor, 401)
    assert monitor.active_alerts[0].rule == "auth_failure"
    assert "on_alert callback failed" in caplog.text


def test_events_are_warnings(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another test may have configured structlog for the session; this one reads stdlib logging.
    monkeypatch.setattr(structlog, "is_configured", lambda: False)
    monitor = HealthMonitor(AlertPolicy(), clock, events=EventLog())
    with caplog.at_level("DEBUG", logger="intercom_resilience"):
        attempt(monitor, 401)
        attempt(monitor, 200)
    assert [(r.getMessage().split()[0], r.levelname) for r in caplog.records] == [
        ("incident.opened", "WARNING"),
        ("alert.fired", "WARNING"),
        ("alert.resolved", "WARNING"),
        ("incident.closed", "WARNING"),
    ]
    fields = [r.__dict__["event_fields"] for r in caplog.records]
    assert fields[1]["rule"] == "auth_failure"
    assert fields[1]["severity"] == "P1"
    assert fields[0]["incident_id"] == fields[3]["incident_id"]


def test_incident_records_what_led_to_it(clock: VirtualClock, rec: Recorder) -> None:
    monitor = make(clock, rec, AlertPolicy(errors_per_window=2))
    clock.advance(10)
    attempt(monitor, 503, request_id="ancient")  # outside the window when the alert fires
    clock.advance(100)
    monitor.record_kill_switch(True)  # state changes before the first alert are kept
    clock.advance(1)
    monitor.record_kill_switch(False)
    clock.advance(1)
    attempt(monitor, 503, request_id="a", template="/contacts")
    clock.advance(1)
    attempt(monitor, None, template="/contacts")
    clock.advance(1)
    attempt(monitor, 502, request_id="b", template="/conversations", method="POST")
    incident = monitor.current_incident
    assert incident is not None
    assert [a.rule for a in incident.alerts] == ["api_unreachable"]
    assert incident.request_ids == ("a", "b")
    assert incident.failed_attempts == 3
    assert incident.endpoints == {"GET /contacts": 2, "POST /conversations": 1}
    clock.advance(1)
    monitor.record_breaker("open", "too many failures")
    clock.advance(1)
    monitor.record_refused("circuit_open", method="GET", template="/contacts")
    monitor.record_stale_served("/contacts", 30.0, "c", method="GET")
    clock.advance(20)
    monitor.record_breaker("half_open", "cooldown elapsed")
    clock.advance(1)
    attempt(monitor, 200, template="/contacts")
    monitor.record_breaker("closed", "trial calls succeeded")
    clock.advance(61)
    monitor.evaluate()
    (closed,) = monitor.incidents
    assert closed.closed_at == clock.time()
    assert closed.refused_calls == 1
    assert closed.stale_served == 1
    assert closed.request_ids == ("a", "b", "c")
    assert closed.endpoints["GET /contacts"] == 3
    assert closed.severity is Severity.P1
    assert [a.rule for a in closed.alerts] == ["api_unreachable"]  # one outage, one alert
    kinds = [entry.kind for entry in closed.timeline]
    assert kinds == [
        "kill_switch",
        "kill_switch",
        "failure.first",
        "failure.last",
        "incident.opened",
        "alert.fired",
        "breaker",
        "breaker",
        "breaker",
        "alert.resolved",
        "incident.closed",
    ]
    times = [entry.at for entry in closed.timeline]
    assert times == sorted(times)
    assert closed.first_failure_at == clock.time() - 61 - 1 - 20 - 1 - 1 - 2
    assert all(not alert.active for alert in closed.alerts)


def test_request_ids_are_bounded_most_recent_kept(clock: VirtualClock, rec: Recorder) -> None:
    monitor = make(clock, rec, AlertPolicy(errors_per_window=0, max_request_ids=3))
    for i in range(10):
        attempt(monitor, 500, request_id=f"id-{i}")
    incident = monitor.current_incident
    assert incident is not None
    assert incident.request_ids == ("id-7", "id-8", "id-9")
    assert incident.request_ids_dropped == 7
    assert incident.failed_attempts == 10


def test_a_new_incident_after_recovery(clock: VirtualClock, rec: Recorder) -> None:
    monitor = make(clock, rec)
    attempt(monitor, 401)
    attempt(monitor, 200)
    clock.advance(5)
    attempt(monitor, 401)
    # Only closed incidents are in .incidents (as documented); the open one is current_incident.
    (first,) = monitor.incidents
    second = monitor.current_incident
    assert first.closed_at is not None
    assert second is not None and second.is_open
    assert first.id != second.id
    attempt(monitor, 200)
    assert [incident.id for incident in monitor.incidents] == [first.id, second.id]
    assert not any(incident.is_open for incident in monitor.incidents)


def test_closed_incidents_are_bounded(clock: VirtualClock, rec: Recorder) -> None:
    monitor = make(clock, rec, max_incidents=2)
    for _ in range(5):
        attempt(monitor, 401)
        attempt(monitor, 200)
        clock.advance(1)
    assert len(monitor.incidents) == 2
    assert monitor.incidents[-1].id.endswith("-5")


def test_invalid_bounds_are_refused(clock: VirtualClock) -> None:
    with pytest.raises(ValueError, match="max_samples"):
        HealthMonitor(AlertPolicy(), clock, max_samples=0)


def test_concurrent_recording_is_consistent(clock: VirtualClock) -> None:
    monitor = HealthMonitor(AlertPolicy(max_request_ids=100_000), clock, events=EventLog())
    seen: list[AlertEvent] = []
    monitor.on_alert = seen.append
    per_thread = 400

    def work(worker: int) -> None:
        for i in range(per_thread):
            attempt(monitor, 503, request_id=f"{worker}-{i}")
            monitor.health()

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    incident = monitor.current_incident
    assert incident is not None
    assert incident.failed_attempts == 4 * per_thread
    assert len(set(incident.request_ids)) == 4 * per_thread
    assert [e.kind for e in seen] == ["fired"]


def test_repr_is_informative(clock: VirtualClock, rec: Recorder) -> None:
    monitor = make(clock, rec)
    attempt(monitor, 401)
    assert "auth_failure" in repr(monitor)


def test_a_rule_firing_twice_at_one_instant_resolves_both(
    clock: VirtualClock, rec: Recorder
) -> None:
    """Regression (found by the alert state machine, seed 5): the second firing of a rule at the
    same instant stayed 'active' in the closed incident, because resolution matched the first."""
    monitor = make(clock, rec)
    monitor.record_breaker("open", "outage")
    monitor.record_webhook_failure()  # keeps the incident open across the breaker flap
    monitor.record_breaker("closed", "trial calls succeeded")
    monitor.record_breaker("open", "outage again")  # same instant: same fired_at
    monitor.record_breaker("closed", "recovered")
    clock.advance(61)
    monitor.evaluate()
    (incident,) = monitor.incidents
    assert [a.rule for a in incident.alerts].count("api_unreachable") == 2
    assert all(not alert.active for alert in incident.alerts)


class _LockSpyClock(VirtualClock):
    """A virtual clock that notes, at every read, whether the monitor's lock was held."""

    monitor: HealthMonitor | None = None
    held: list[bool]

    def monotonic(self) -> float:
        if self.monitor is not None:
            self.held.append(self.monitor._lock.locked())
        return super().monotonic()


def test_a_quick_success_takes_the_lock_for_stores_only() -> None:
    """The convoy of issue #19: a thread switched out inside the monitor's lock made 16 threads
    queue behind it (59% of acquisitions waited, 121 ms each). CPython switches threads at
    calls, so a quick success reads the clock (and does every other call) outside the lock."""
    clock = _LockSpyClock()
    clock.held = []
    monitor = HealthMonitor(AlertPolicy(), clock)
    clock.monitor = monitor
    for _ in range(3):
        monitor.record_attempt(
            method="GET",
            template="/contacts/{id}",
            status=200,
            duration=0.01,
            request_id="r",
            error=None,
            attempt=1,
            rate_limit_remaining=7,
        )
    assert clock.held == [False, False, False]


def test_buffered_quick_successes_all_count() -> None:
    """The samples a quick success leaves in the buffer reach every reader, in order, however
    many arrive between two readers (more than the buffer holds, too)."""
    clock = VirtualClock()
    monitor = HealthMonitor(AlertPolicy(latency_p95_ms=3000.0), clock, max_samples=10_000)
    for i in range(700):
        monitor.record_attempt(
            method="GET",
            template="/contacts/{id}",
            status=200,
            duration=(i % 100) / 1000,
            request_id=None,
            error=None,
            attempt=1,
        )
        clock.advance(0.001)
    latency = monitor.health().latency_ms
    assert latency.samples == 700
    assert (latency.p50, latency.p95) == (49.0, 94.0)
    clock.advance(AlertPolicy().window + 1)
    assert monitor.health().latency_ms.samples == 0  # they expire like any other sample
