"""The alert state machine under random traffic: properties that must hold whatever happens.

* an alert never fires twice while it is active, and resolves only when active;
* the alerts the callback has been told about are exactly the active ones;
* an incident is open exactly while some alert is active, and closes when the last resolves;
* every incident's request-id record stays within its bound and survives a JSON round trip.
"""

from __future__ import annotations

import hypothesis
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from intercom_resilience import AlertPolicy, VirtualClock
from intercom_resilience._events import EventLog
from intercom_resilience._health import AlertEvent, HealthMonitor
from intercom_resilience._incidents import Incident
from intercom_resilience.events import Event, IncidentOpened

STATUSES = st.sampled_from([200, 201, 204, 401, 403, 404, 422, 429, 500, 502, 503, None])
MAX_IDS = 4


class AlertMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = VirtualClock()
        self.policy = AlertPolicy(
            window=30.0,
            errors_per_window=3,
            rate_limited_per_window=2,
            latency_p95_ms=500.0,
            max_request_ids=MAX_IDS,
            max_recent_failures=8,
            webhook_delay_s=60.0,
            webhook_error_streak=3,
            webhook_error_streak_s=20.0,
        )
        # A model of the run of error answers to webhook deliveries: (length, started at).
        self.streak = 0
        self.streak_since = 0.0
        self.active: dict[str, AlertEvent] = {}
        self.opened: list[str] = []
        self.monitor = HealthMonitor(
            self.policy, self.clock, on_alert=self.on_alert, events=EventLog(hooks=[self.hook])
        )
        self.next_id = 0

    def on_alert(self, event: AlertEvent) -> None:
        rule_key = event.alert.rule
        hypothesis.event(f"{event.kind} {rule_key}")
        if event.kind == "fired":
            assert rule_key not in self.active, f"{rule_key} fired twice while active"
            assert event.alert.resolved_at is None
            self.active[rule_key] = event
        else:
            assert rule_key in self.active, f"{rule_key} resolved while not active"
            assert event.alert.fired_at == self.active[rule_key].alert.fired_at
            assert event.alert.resolved_at is not None
            del self.active[rule_key]
        assert event.incident_id is not None

    def hook(self, event: Event) -> None:
        if isinstance(event, IncidentOpened):
            self.opened.append(event.incident_id)

    @rule(status=STATUSES, duration=st.floats(min_value=0, max_value=2), with_id=st.booleans())
    def attempt(self, status: int | None, duration: float, with_id: bool) -> None:
        self.next_id += 1
        self.monitor.record_attempt(
            method="GET",
            template=f"/contacts/{{id}}/{self.next_id % 3}",
            status=status,
            duration=duration,
            request_id=f"req-{self.next_id}" if with_id else None,
            error="boom" if status != 200 else None,
            attempt=1 + self.next_id % 4,
        )

    @rule(reason=st.sampled_from(["rate_limited", "limiter_wait", "circuit_open", "disabled"]))
    def refused(self, reason: str) -> None:
        self.monitor.record_refused(reason, method="GET", template="/contacts")

    @rule(request_id=st.one_of(st.none(), st.sampled_from(["req-1", "stale-1", "stale-2"])))
    def stale(self, request_id: str | None) -> None:
        self.monitor.record_stale_served("/contacts/{id}", 5.0, request_id)

    @rule()
    def webhook_failure(self) -> None:
        self.monitor.record_webhook_failure()

    @rule(
        accepted=st.booleans(),
        delivery=st.booleans(),
        delay=st.one_of(st.none(), st.floats(min_value=0, max_value=120)),
        signature_failure=st.booleans(),
        depth=st.integers(min_value=0, max_value=10),
    )
    def webhook_answer(
        self,
        accepted: bool,
        delivery: bool,
        delay: float | None,
        signature_failure: bool,
        depth: int,
    ) -> None:
        if accepted:
            self.streak = 0
        elif delivery:
            if not self.streak:
                self.streak_since = self.clock.monotonic()
            self.streak += 1
        self.monitor.record_webhook_answer(
            accepted,
            delivery=delivery,
            delay=delay,
            signature_failure=signature_failure,
            queue=(depth, 10),
        )

    @rule(depth=st.integers(min_value=0, max_value=10), failed=st.booleans())
    def webhook_handled(self, depth: int, failed: bool) -> None:
        self.monitor.record_webhook_handled(depth, 10, failed=failed)

    @invariant()
    def refusal_alert_follows_the_run_of_error_answers(self) -> None:
        self.monitor.evaluate()
        lasted = self.clock.monotonic() - self.streak_since
        expected = bool(self.streak) and (self.streak >= 3 or lasted >= 20.0)
        active = "webhook_refused" in {a.rule for a in self.monitor.active_alerts}
        assert active == expected

    @rule(state=st.sampled_from(["open", "half_open", "closed"]))
    def breaker(self, state: str) -> None:
        self.monitor.record_breaker(state, "test")

    @rule(enabled=st.booleans())
    def kill_switch(self, enabled: bool) -> None:
        self.monitor.record_kill_switch(enabled)

    @rule()
    def rotation(self) -> None:
        self.monitor.record_token_rotation()

    @rule(seconds=st.floats(min_value=0, max_value=45))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.monitor.evaluate()

    @precondition(lambda self: bool(self.active))
    @rule()
    def recover(self) -> None:
        # Everything that can hold an alert up clears: the incident must close.
        self.monitor.record_breaker("closed", "recovered")
        self.monitor.record_webhook_answer(True, queue=(0, 10))
        self.streak = 0
        self.monitor.record_attempt(
            method="GET",
            template="/me",
            status=200,
            duration=0.01,
            request_id=None,
            error=None,
            attempt=1,
        )
        self.clock.advance(self.policy.window + 1)
        self.monitor.evaluate()
        # Latency samples older than the window are gone; one fast call is not a p95.
        assert self.active == {}
        assert self.monitor.current_incident is None

    @invariant()
    def callback_view_matches_monitor(self) -> None:
        assert {a.rule for a in self.monitor.active_alerts} == set(self.active)

    @invariant()
    def incident_open_iff_alert_active(self) -> None:
        current = self.monitor.current_incident
        assert (current is not None) == bool(self.active)
        if current is not None:
            assert current.closed_at is None
            assert {e.incident_id for e in self.active.values()} == {current.id}

    @invariant()
    def incidents_are_well_formed(self) -> None:
        incidents = self.monitor.incidents
        current = self.monitor.current_incident
        closed = self.opened[:-1] if current is not None else self.opened
        if incidents:
            assert [i.id for i in incidents] == closed[-len(incidents) :]
        assert all(not incident.is_open for incident in incidents)  # the open one is current
        for incident in (*incidents, *([current] if current is not None else [])):
            assert len(incident.request_ids) <= MAX_IDS
            assert len(set(incident.request_ids)) == len(incident.request_ids)
            assert incident.request_ids_dropped >= 0
            assert incident.alerts, "an incident starts with an alert"
            assert Incident.from_json(incident.to_json()) == incident
            times = [entry.at for entry in incident.timeline]
            assert times == sorted(times)
            if incident.closed_at is not None:
                assert incident.closed_at >= incident.opened_at
                assert all(not alert.active for alert in incident.alerts)
                assert incident.timeline[-1].kind == "incident.closed"

    @invariant()
    def health_agrees_with_alerts(self) -> None:
        health = self.monitor.health()
        assert {a.rule for a in health.alerts} == set(self.active)
        if any(e.alert.severity.value == "P1" for e in self.active.values()):
            assert health.status == "unhealthy"
        elif self.active:
            assert health.status != "healthy"
        assert len(self.monitor.recent_failures) <= self.policy.max_recent_failures


AlertMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestAlertMachine = AlertMachine.TestCase
