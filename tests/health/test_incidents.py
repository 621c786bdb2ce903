"""Incident records: JSON round trip, postmortem and status-update rendering, credential masking."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intercom_resilience import AlertPolicy, VirtualClock
from intercom_resilience._events import EventLog
from intercom_resilience._health import HealthMonitor
from intercom_resilience._incidents import (
    Alert,
    FailureRecord,
    Incident,
    IncidentRecorder,
    Severity,
    TimelineEntry,
    format_utc,
    is_failure,
    render_postmortem,
    render_status_update,
    scrub,
)

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z

times = st.floats(min_value=0, max_value=4e9, allow_nan=False)
texts = st.text(max_size=30)
alerts = st.builds(
    Alert,
    rule=texts,
    severity=st.sampled_from(Severity),
    title=texts,
    detail=texts,
    fired_at=times,
    resolved_at=st.one_of(st.none(), times),
)
entries = st.builds(TimelineEntry, at=times, kind=texts, detail=texts)
incidents = st.builds(
    Incident,
    id=texts,
    opened_at=times,
    closed_at=st.one_of(st.none(), times),
    alerts=st.lists(alerts, max_size=4).map(tuple),
    timeline=st.lists(entries, max_size=6).map(tuple),
    failed_attempts=st.integers(0, 10**6),
    refused_calls=st.integers(0, 10**6),
    stale_served=st.integers(0, 10**6),
    endpoints=st.dictionaries(texts, st.integers(0, 1000), max_size=4),
    request_ids=st.lists(texts, max_size=6).map(tuple),
    request_ids_dropped=st.integers(0, 10**6),
    first_failure_at=st.one_of(st.none(), times),
    last_failure_at=st.one_of(st.none(), times),
)


@given(incidents)
def test_json_round_trip_is_identity(incident: Incident) -> None:
    text = incident.to_json()
    assert Incident.from_json(text) == incident
    assert Incident.from_json(text.encode()) == incident
    assert Incident.from_dict(json.loads(json.dumps(incident.to_dict()))) == incident


@given(
    st.builds(
        FailureRecord,
        request_id=st.one_of(st.none(), texts),
        status=st.one_of(st.none(), st.integers(100, 599)),
        method=texts,
        template=texts,
        at=times,
        attempt=st.integers(1, 10),
        error=st.one_of(st.none(), texts),
    )
)
def test_failure_record_round_trip(record: FailureRecord) -> None:
    assert FailureRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record


def sample_incident(**changes: Any) -> Incident:
    base = Incident(
        id="inc-20260101T000000Z-1",
        opened_at=T0,
        closed_at=T0 + 754.5,
        alerts=(
            Alert("rate_limited", Severity.P2, "rate limited", "9 429s", T0, T0 + 700),
            Alert(
                "api_unreachable", Severity.P1, "API unreachable", "14 errors", T0 + 60, T0 + 754.5
            ),
        ),
        timeline=(
            TimelineEntry(T0 - 5, "failure.first", "first failure"),
            TimelineEntry(T0, "incident.opened", "incident opened: rate limited"),
            TimelineEntry(T0, "alert.fired", "P2 rate limited: 9 429s"),
            TimelineEntry(T0 + 60, "alert.fired", "P1 API unreachable: 14 errors"),
            TimelineEntry(T0 + 61, "breaker", "circuit open: 6 of 10 recent calls failed"),
            TimelineEntry(T0 + 754.5, "incident.closed", "all alerts resolved; incident closed"),
        ),
        failed_attempts=23,
        refused_calls=40,
        stale_served=17,
        endpoints={"GET /contacts/{id}": 50, "POST /conversations": 3},
        request_ids=("req-aaa", "req-bbb"),
        request_ids_dropped=2,
        first_failure_at=T0 - 5,
        last_failure_at=T0 + 700,
    )
    return Incident(**{**{f: getattr(base, f) for f in base.__dataclass_fields__}, **changes})


def test_incident_properties() -> None:
    incident = sample_incident()
    assert incident.severity is Severity.P1
    assert incident.duration == 754.5
    assert not incident.is_open
    assert sample_incident(closed_at=None).duration is None
    assert sample_incident(alerts=()).severity is None
    assert incident.to_dict()["severity"] == "P1"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": 3}, "id"),
        ({"opened_at": "yesterday"}, "opened_at"),
        ({"opened_at": True}, "opened_at"),
        ({"format": 99}, "format"),
        ({"alerts": [{"rule": "x"}]}, "alert.severity"),
        ({"alerts": {}}, "alerts"),
        ({"request_ids": [1]}, "request_ids"),
        ({"endpoints": {"GET /": "many"}}, "endpoints"),
        ({"failed_attempts": 1.5}, "failed_attempts"),
        ({"timeline": ["x"]}, "timeline"),
    ],
)
def test_from_dict_names_the_bad_field(change: dict[str, Any], field: str) -> None:
    data = {**sample_incident().to_dict(), **change}
    with pytest.raises(ValueError, match=re.escape(field)):
        Incident.from_dict(data)


def test_from_json_rejects_non_objects() -> None:
    with pytest.raises(ValueError):
        Incident.from_json("[1, 2]")
    with pytest.raises(ValueError):
        Incident.from_json("{not json")


def test_postmortem_has_every_section() -> None:
    text = render_postmortem(sample_incident())
    assert text.startswith("# Postmortem: Intercom API unreachable\n")
    assert "| Date | 2026-01-01 (UTC) |" in text
    assert "| Started | 2026-01-01T00:00:00Z |" in text
    assert "| Resolved | 2026-01-01T00:12:34.500Z |" in text
    assert "| Duration | 12m 34s |" in text
    assert "| Severity | P1 (critical: all calls failing; respond within 15 minutes) |" in text
    for heading in (
        "## Summary",
        "## Alerts",
        "## Impact",
        "## Timeline (UTC)",
        "## Intercom request ids",
        "## Root cause",
        "## Action items",
    ):
        assert heading in text
    assert text.count("TODO") == 3
    assert "- `req-aaa`" in text
    assert "- `req-bbb`" in text
    assert "2 older id(s) dropped" in text
    assert "- 23 failed request(s) to Intercom" in text
    assert "- 40 call(s) refused locally" in text
    assert "- 17 read(s) answered from the stale cache." in text
    assert "  - `GET /contacts/{id}`: 50" in text
    # Timeline rows in time order.
    rows = [line for line in text.splitlines() if line.startswith(("| 2026-", "| 2025-"))]
    stamps = [row.split("|")[1].strip() for row in rows]
    assert stamps == sorted(stamps)
    assert "| 2025-12-31T23:59:55Z | failure.first | first failure |" in text


def test_postmortem_of_an_open_incident_and_a_custom_title() -> None:
    text = render_postmortem(sample_incident(closed_at=None), title="Contacts outage")
    assert text.startswith("# Postmortem: Contacts outage\n")
    assert "| Resolved | ongoing |" in text
    assert "| Duration | ongoing |" in text
    assert "status **ongoing**" in text


def test_postmortem_of_an_empty_incident() -> None:
    text = render_postmortem(Incident(id="inc-x", opened_at=T0, closed_at=T0 + 3725))
    assert "# Postmortem: Intercom integration incident" in text
    assert "| Duration | 1h 02m 05s |" in text
    assert "| Severity | none recorded |" in text
    assert "None recorded (network failures carry no request id)." in text
    assert "Endpoints affected: none recorded." in text


def test_untrusted_text_cannot_break_the_markdown() -> None:
    incident = sample_incident(
        request_ids=("evil`id\n# heading",),
        timeline=(TimelineEntry(T0, "breaker", "a | b\nc"),),
    )
    text = render_postmortem(incident)
    assert "- `evil'id # heading`" in text
    assert "| 2026-01-01T00:00:00Z | breaker | a \\| b c |" in text
    assert "\n# heading" not in text


SECRETS = (
    "Bearer abcdefSECRET123",
    "dG9rOmFiY2RlZjEyMzQ1Njc4OTA=",  # intercom-resilience: allow-token
    "access_token=zzzTOPSECRET",
)


def test_reports_mask_tokens_from_a_hand_built_incident() -> None:
    leaky = " / ".join(SECRETS)
    incident = sample_incident(
        alerts=(Alert("auth_failure", Severity.P1, f"auth {leaky}", leaky, T0, None),),
        timeline=(TimelineEntry(T0, "alert.fired", f"401 with Authorization: {leaky}"),),
        request_ids=(SECRETS[0],),
        endpoints={f"GET /x?{SECRETS[2]}": 1},
        closed_at=None,
    )
    reports = render_postmortem(incident) + render_status_update(
        incident, now=T0, impact=leaky, action=leaky
    )
    for secret in (
        "abcdefSECRET123",
        "dG9rOmFiY2RlZjEyMzQ1Njc4OTA",  # intercom-resilience: allow-token
        "zzzTOPSECRET",
    ):
        assert secret not in reports
    assert "Bearer [redacted]" in reports


def test_monitor_recorded_incident_never_holds_a_token() -> None:
    clock = VirtualClock(T0)
    monitor = HealthMonitor(AlertPolicy(), clock, events=EventLog())
    monitor.record_attempt(
        method="GET",
        template="/me",
        status=401,
        duration=0.1,
        request_id="r-1",
        error="Authorization: Bearer abcdefSECRET123",
        attempt=1,
    )
    incident = monitor.current_incident
    assert incident is not None
    dump = incident.to_json() + render_postmortem(incident) + repr(monitor.recent_failures)
    assert "abcdefSECRET123" not in dump


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Bearer abc.def", "Bearer [redacted]"),
        ("token=abc&x=1", "token=[redacted]&x=1"),
        ("api_key: k-123", "api_key: [redacted]"),
        ("id dG9rOmFiYw== end", "id [redacted] end"),
        ("a plain message", "a plain message"),
    ],
)
def test_scrub(text: str, expected: str) -> None:
    assert scrub(text) == expected


def test_status_update_investigating_by_default() -> None:
    incident = sample_incident(closed_at=None)
    text = render_status_update(incident, now=T0 + 600)
    lines = text.splitlines()
    assert lines[0] == "[P1] Intercom API unreachable — INVESTIGATING"
    assert lines[1] == "Incident inc-20260101T000000Z-1, started 2026-01-01T00:00:00Z."
    assert lines[2].startswith("Impact: 23 failed request(s) to Intercom across 2 endpoint(s)")
    assert lines[3].startswith("Action: Investigating.")
    assert lines[4] == "Next update: 2026-01-01T00:40:00Z."  # P1: every 30 minutes


def test_status_update_monitoring_and_resolved() -> None:
    open_incident = sample_incident(closed_at=None, alerts=sample_incident().alerts[:1])
    text = render_status_update(
        open_incident, now=T0, status="monitoring", impact="Contacts sync paused.", action="Fixed."
    )
    assert text.splitlines()[0] == "[P2] Intercom rate limited — MONITORING"
    assert "Impact: Contacts sync paused." in text
    assert "Action: Fixed." in text
    assert "Next update: 2026-01-01T01:00:00Z." in text  # P2: hourly
    resolved = render_status_update(sample_incident(), now=T0 + 9999)
    assert "— RESOLVED" in resolved
    assert "Next update: none (resolved at 2026-01-01T00:12:34.500Z)." in resolved
    with pytest.raises(ValueError, match="status"):
        render_status_update(sample_incident(), now=T0, status="panicking")  # type: ignore[arg-type]


def test_severity_vocabulary() -> None:
    assert [s.rank for s in Severity] == [1, 2, 3, 4]
    assert Severity.worst([Severity.P3, Severity.P1, Severity.P2]) is Severity.P1
    assert Severity.worst([]) is None
    assert Severity.P1.response_seconds == 900
    assert Severity.P2.respond_within == "1 hour"
    assert Severity.P3.response_seconds == 4 * 3600
    assert Severity.P4.response_seconds is None
    assert Severity.P4.respond_within == "next business day"
    assert "all calls failing" in Severity.P1.meaning
    assert Severity.P4.meaning == "no user impact"


@pytest.mark.parametrize(
    ("status", "failure"),
    [
        (None, True),
        (500, True),
        (503, True),
        (429, True),
        (401, True),
        (403, True),
        (408, True),
        (200, False),
        (404, False),
        (400, False),
        (409, False),
        (410, False),
        (422, False),
    ],
)
def test_is_failure(status: int | None, failure: bool) -> None:
    assert is_failure(status) is failure


def test_format_utc() -> None:
    assert format_utc(T0) == "2026-01-01T00:00:00Z"
    assert format_utc(T0 + 0.25) == "2026-01-01T00:00:00.250Z"


def test_recorder_deduplicates_and_bounds_ids() -> None:
    recorder = IncidentRecorder("inc", T0, max_request_ids=2)
    for rid in ("a", "b", "a", "c", None, ""):
        recorder.add_request_id(rid)
    snapshot = recorder.snapshot()
    assert snapshot.request_ids == ("a", "c")  # "a" was seen again, so "b" was the oldest
    assert snapshot.request_ids_dropped == 1


def test_recorder_bounds_endpoints() -> None:
    recorder = IncidentRecorder("inc", T0, max_request_ids=2)
    for i in range(300):
        recorder.refused("GET", f"/raw/{i}")
    endpoints = recorder.snapshot().endpoints
    assert len(endpoints) == 257
    assert endpoints["(other endpoints)"] == 300 - 256
