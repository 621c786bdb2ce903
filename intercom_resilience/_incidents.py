"""Incidents: what happened, in order, with every Intercom request id, and how to tell people.

An incident is the span from the first alert firing to recovery (every alert resolved). While it is
open, the health monitor (:mod:`._health`) feeds an :class:`IncidentRecorder`; readers only ever see
frozen :class:`Incident` snapshots, which export to JSON and back so that a later process (the
``postmortem`` subcommand) can render them::

    text = incident.to_json()
    same = Incident.from_json(text)          # same == incident
    print(render_postmortem(same))           # Markdown, times in UTC ISO-8601
    print(render_status_update(same, now=clock.time()))

This module is the lower layer of the two: it defines the vocabulary the records are made of
(:class:`Severity`, :class:`Alert`, :class:`TimelineEntry`, :class:`FailureRecord`) and knows
nothing of rules or windows. Rendering is plain string formatting. Every free-text field passes
:func:`scrub` when it is recorded *and* when it is rendered, so a token that slipped into an error
message never reaches a report, even from a hand-edited incident file.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import math
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from ._core.status import meaning
from ._events import redact

__all__ = [
    "FORMAT_VERSION",
    "Alert",
    "FailureRecord",
    "Incident",
    "IncidentRecorder",
    "Severity",
    "TimelineEntry",
    "TimelineKind",
    "UpdateStatus",
    "format_utc",
    "is_failure",
    "render_postmortem",
    "render_status_update",
    "scrub",
]

#: Version of the incident file format written by :meth:`Incident.to_dict`.
FORMAT_VERSION = 1

#: Distinct endpoints counted per incident; more (a caller passing raw paths instead of templates)
#: are counted under ``_OTHER_ENDPOINTS`` so memory stays bounded.
_MAX_ENDPOINTS = 256
_OTHER_ENDPOINTS = "(other endpoints)"

# Intercom access tokens are base64 of "tok:..." (so they start "dG9rO"); query-string and
# key=value forms cover the rest. The Bearer form is handled by _events.redact.
_TOKEN_PATTERNS = (
    re.compile(r"dG9rO[A-Za-z0-9+/=_-]*"),
    re.compile(r"(?i)\b((?:access_)?token|api_key|secret)(\s*[=:]\s*)[^\s&,;\"']+"),
)
_MD_CELL = str.maketrans({"|": "\\|", "\n": " ", "\r": " "})


def scrub(text: str) -> str:
    """Mask anything in *text* that looks like a credential (``Bearer …``, Intercom tokens).

    The library never hands a token to the health monitor; this is the second lock on that door,
    applied to error summaries when recorded and to every free-text field when rendered.
    """
    masked = str(redact(None, "scrub", {"text": text})["text"])
    masked = _TOKEN_PATTERNS[0].sub("[redacted]", masked)
    return _TOKEN_PATTERNS[1].sub(r"\1\2[redacted]", masked)


def is_failure(status: int | None) -> bool:
    """Does an attempt with this status count as a failure for incidents and the failure record?

    Network failures (``None``), 5xx, 408, 401, 403 and 429 do: Intercom could not or would not
    serve us. Other 4xx (400, 404, 409, 410, 422) are answers about the request, normal traffic
    that would drown the record.
    """
    return meaning(status).incident_failure


def format_utc(timestamp: float) -> str:
    """Unix time → ISO-8601 in UTC with a ``Z`` (``2026-01-01T00:00:00Z``; milliseconds if any)."""
    moment = datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc)
    if moment.microsecond:
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _format_duration(seconds: float) -> str:
    seconds = max(0, math.floor(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


class Severity(enum.Enum):
    """Alert severities, as in the runbook: P1 is the most severe.

    ========  ==========================================  ==================
    level     meaning                                     respond within
    ========  ==========================================  ==================
    ``P1``    critical: all calls failing                 15 minutes
    ``P2``    degraded: calls slow or partly refused      1 hour
    ``P3``    partial impact (one feature, e.g. webhooks)  4 hours
    ``P4``    no user impact                              next business day
    ========  ==========================================  ==================
    """

    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"

    @property
    def rank(self) -> int:
        """1 for P1 … 4 for P4: lower is more severe."""
        return int(self.value[1])

    @property
    def meaning(self) -> str:
        """What the level means, in the runbook's words."""
        return _MEANINGS[self]

    @property
    def respond_within(self) -> str:
        """The response time the runbook asks for, for people."""
        return _RESPONSE[self][0]

    @property
    def response_seconds(self) -> float | None:
        """The response time in seconds (``None`` for P4: next business day)."""
        return _RESPONSE[self][1]

    @property
    def update_every(self) -> float:
        """Seconds between status updates while an incident of this severity is open."""
        return _UPDATE_EVERY[self]

    @staticmethod
    def worst(severities: Iterable[Severity]) -> Severity | None:
        """The most severe of *severities* (``None`` when there are none)."""
        return min(severities, key=lambda s: s.rank, default=None)


_MEANINGS = {
    Severity.P1: "critical: all calls failing",
    Severity.P2: "degraded: calls slow or partly refused",
    Severity.P3: "partial impact",
    Severity.P4: "no user impact",
}
_RESPONSE: dict[Severity, tuple[str, float | None]] = {
    Severity.P1: ("15 minutes", 15 * 60.0),
    Severity.P2: ("1 hour", 3600.0),
    Severity.P3: ("4 hours", 4 * 3600.0),
    Severity.P4: ("next business day", None),
}
# How often a chat channel hears from us: twice per response time for P1, then once per response
# time; P4 once a day.
_UPDATE_EVERY = {
    Severity.P1: 30 * 60.0,
    Severity.P2: 3600.0,
    Severity.P3: 4 * 3600.0,
    Severity.P4: 24 * 3600.0,
}


def _as_float(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"incident file: {field} must be a number, got {value!r}")
    return float(value)


def _as_opt_float(value: Any, field: str) -> float | None:
    return None if value is None else _as_float(value, field)


def _as_int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"incident file: {field} must be an integer, got {value!r}")
    return value


def _as_str(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"incident file: {field} must be a string, got {value!r}")
    return value


def _as_opt_str(value: Any, field: str) -> str | None:
    return None if value is None else _as_str(value, field)


def _as_list(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"incident file: {field} must be a list, got {value!r}")
    return value


def _as_map(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"incident file: {field} must be an object, got {value!r}")
    return value


@dataclasses.dataclass(frozen=True, slots=True)
class Alert:
    """One alert: a rule whose condition held, from when it fired until it resolved.

    Attributes:
        rule: the rule's key (``api_unreachable``, ``auth_failure``, …).
        severity: how bad it is.
        title: the rule's short name for people ("API unreachable").
        detail: what was measured when it fired ("14 5xx/transport errors in the last 60s").
        fired_at: Unix time it fired.
        resolved_at: Unix time it resolved (``None`` while active).
    """

    rule: str
    severity: Severity
    title: str
    detail: str
    fired_at: float
    resolved_at: float | None = None

    @property
    def active(self) -> bool:
        """Still firing."""
        return self.resolved_at is None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (times as Unix seconds; see :meth:`from_dict`)."""
        return {
            "rule": self.rule,
            "severity": self.severity.value,
            "title": self.title,
            "detail": self.detail,
            "fired_at": self.fired_at,
            "resolved_at": self.resolved_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alert:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` naming a bad field."""
        data = _as_map(data, "alert")
        try:
            severity = Severity(data.get("severity"))
        except ValueError:
            raise ValueError(
                f"incident file: alert.severity must be P1-P4, got {data.get('severity')!r}"
            ) from None
        return cls(
            rule=_as_str(data.get("rule"), "alert.rule"),
            severity=severity,
            title=_as_str(data.get("title"), "alert.title"),
            detail=_as_str(data.get("detail"), "alert.detail"),
            fired_at=_as_float(data.get("fired_at"), "alert.fired_at"),
            resolved_at=_as_opt_float(data.get("resolved_at"), "alert.resolved_at"),
        )


#: Kinds of timeline entry the monitor writes (a file may hold others; they render as-is).
TimelineKind = Literal[
    "incident.opened",
    "incident.closed",
    "alert.fired",
    "alert.resolved",
    "breaker",
    "kill_switch",
    "token_rotation",
    "failure.first",
    "failure.last",
]


@dataclasses.dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One line of an incident's timeline.

    Attributes:
        at: Unix time.
        kind: what sort of event (see ``TimelineKind``).
        detail: what happened, for people.
    """

    at: float
    kind: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {"at": self.at, "kind": self.kind, "detail": self.detail}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TimelineEntry:
        """Inverse of :meth:`to_dict`."""
        data = _as_map(data, "timeline entry")
        return cls(
            at=_as_float(data.get("at"), "timeline.at"),
            kind=_as_str(data.get("kind"), "timeline.kind"),
            detail=_as_str(data.get("detail"), "timeline.detail"),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class FailureRecord:
    """One failed upstream attempt, kept in the client's bounded record of recent failures.

    Attributes:
        request_id: Intercom's request id (``None`` for network failures and some gateway errors).
        status: the HTTP status, ``None`` when no response arrived.
        method: the HTTP method.
        template: the path template (``/contacts/{id}``), never a path with ids in it.
        at: Unix time of the failure.
        attempt: which attempt of its call this was (1 for the first).
        error: a short summary (error code or exception name), scrubbed of credentials.
    """

    request_id: str | None
    status: int | None
    method: str
    template: str
    at: float
    attempt: int
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {
            "request_id": self.request_id,
            "status": self.status,
            "method": self.method,
            "template": self.template,
            "at": self.at,
            "attempt": self.attempt,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FailureRecord:
        """Inverse of :meth:`to_dict`."""
        data = _as_map(data, "failure")
        status = data.get("status")
        return cls(
            request_id=_as_opt_str(data.get("request_id"), "failure.request_id"),
            status=None if status is None else _as_int(status, "failure.status"),
            method=_as_str(data.get("method"), "failure.method"),
            template=_as_str(data.get("template"), "failure.template"),
            at=_as_float(data.get("at"), "failure.at"),
            attempt=_as_int(data.get("attempt"), "failure.attempt"),
            error=_as_opt_str(data.get("error"), "failure.error"),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Incident:
    """A frozen snapshot of one incident: from the first alert to recovery.

    Attributes:
        id: a stable identifier (``inc-20260101T000000Z-1``).
        opened_at: Unix time the first alert fired.
        closed_at: Unix time the last alert resolved (``None`` while open).
        alerts: every alert that fired during the incident, in firing order.
        timeline: what happened, in time order (alerts, breaker transitions, kill switch, token
            rotations, first and last failure, opening and closing).
        failed_attempts: upstream attempts that failed (see :func:`is_failure`), including those
            in the alert window just before the incident opened.
        refused_calls: calls refused locally (breaker open, kill switch, rate limiter).
        stale_served: reads answered from the stale cache.
        endpoints: ``"METHOD /template"`` → failures and refusals counted against it.
        request_ids: Intercom request ids of the failures, oldest first (the most recent
            ``AlertPolicy.max_request_ids`` are kept).
        request_ids_dropped: older request ids that were dropped to keep that bound.
        first_failure_at, last_failure_at: Unix times of the first and last failed attempt.
    """

    id: str
    opened_at: float
    closed_at: float | None
    alerts: tuple[Alert, ...] = ()
    timeline: tuple[TimelineEntry, ...] = ()
    failed_attempts: int = 0
    refused_calls: int = 0
    stale_served: int = 0
    endpoints: Mapping[str, int] = dataclasses.field(default_factory=dict)
    request_ids: tuple[str, ...] = ()
    request_ids_dropped: int = 0
    first_failure_at: float | None = None
    last_failure_at: float | None = None

    @property
    def is_open(self) -> bool:
        """The incident has not recovered yet."""
        return self.closed_at is None

    @property
    def severity(self) -> Severity | None:
        """The worst severity among the incident's alerts."""
        return Severity.worst(alert.severity for alert in self.alerts)

    @property
    def duration(self) -> float | None:
        """Seconds from opening to closing (``None`` while open)."""
        return None if self.closed_at is None else self.closed_at - self.opened_at

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict; :meth:`from_dict` restores an equal :class:`Incident`."""
        return {
            "format": FORMAT_VERSION,
            "id": self.id,
            "opened_at": self.opened_at,
            "closed_at": self.closed_at,
            "severity": None if self.severity is None else self.severity.value,
            "alerts": [alert.to_dict() for alert in self.alerts],
            "timeline": [entry.to_dict() for entry in self.timeline],
            "failed_attempts": self.failed_attempts,
            "refused_calls": self.refused_calls,
            "stale_served": self.stale_served,
            "endpoints": dict(sorted(self.endpoints.items())),
            "request_ids": list(self.request_ids),
            "request_ids_dropped": self.request_ids_dropped,
            "first_failure_at": self.first_failure_at,
            "last_failure_at": self.last_failure_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Incident:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` naming the first bad field.

        ``severity`` is derived from the alerts, so its stored value is informative only.
        """
        data = _as_map(data, "incident")
        version = data.get("format", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise ValueError(
                f"incident file: format {version!r} is not supported (expected {FORMAT_VERSION})"
            )
        endpoints = _as_map(data.get("endpoints", {}), "endpoints")
        return cls(
            id=_as_str(data.get("id"), "id"),
            opened_at=_as_float(data.get("opened_at"), "opened_at"),
            closed_at=_as_opt_float(data.get("closed_at"), "closed_at"),
            alerts=tuple(Alert.from_dict(a) for a in _as_list(data.get("alerts", []), "alerts")),
            timeline=tuple(
                TimelineEntry.from_dict(e) for e in _as_list(data.get("timeline", []), "timeline")
            ),
            failed_attempts=_as_int(data.get("failed_attempts", 0), "failed_attempts"),
            refused_calls=_as_int(data.get("refused_calls", 0), "refused_calls"),
            stale_served=_as_int(data.get("stale_served", 0), "stale_served"),
            endpoints={
                _as_str(k, "endpoints key"): _as_int(v, f"endpoints[{k!r}]")
                for k, v in endpoints.items()
            },
            request_ids=tuple(
                _as_str(r, "request_ids[]")
                for r in _as_list(data.get("request_ids", []), "request_ids")
            ),
            request_ids_dropped=_as_int(data.get("request_ids_dropped", 0), "request_ids_dropped"),
            first_failure_at=_as_opt_float(data.get("first_failure_at"), "first_failure_at"),
            last_failure_at=_as_opt_float(data.get("last_failure_at"), "last_failure_at"),
        )

    def to_json(self, *, indent: int | None = 2) -> str:
        """The incident as JSON text (the file the ``postmortem`` subcommand reads)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> Incident:
        """Inverse of :meth:`to_json`; raises ``ValueError`` for invalid JSON or fields."""
        return cls.from_dict(json.loads(text))


class IncidentRecorder:
    """The mutable side of an open incident. Not thread-safe: the health monitor's lock guards it.

    Args:
        incident_id: the id the snapshots carry.
        opened_at: Unix time of the first alert.
        max_request_ids: request ids kept (the oldest are dropped and counted).
    """

    __slots__ = (
        "_alerts",
        "_endpoints",
        "_entries",
        "_request_ids",
        "closed_at",
        "failed_attempts",
        "first_failure_at",
        "id",
        "last_failure_at",
        "max_request_ids",
        "opened_at",
        "refused_calls",
        "request_ids_dropped",
        "stale_served",
    )

    def __init__(self, incident_id: str, opened_at: float, max_request_ids: int) -> None:
        self.id = incident_id
        self.opened_at = opened_at
        self.closed_at: float | None = None
        self.max_request_ids = max_request_ids
        self._alerts: list[Alert] = []
        self._entries: list[TimelineEntry] = []
        # An ordered set: a failure's id may reach us twice (the attempt, then the stale serve
        # it caused), and the most recent ids are the ones worth keeping.
        self._request_ids: OrderedDict[str, None] = OrderedDict()
        self._endpoints: dict[str, int] = {}
        self.request_ids_dropped = 0
        self.failed_attempts = 0
        self.refused_calls = 0
        self.stale_served = 0
        self.first_failure_at: float | None = None
        self.last_failure_at: float | None = None

    def add_entry(self, at: float, kind: str, detail: str) -> None:
        """Append a timeline entry."""
        self._entries.append(TimelineEntry(at, kind, scrub(detail)))

    def alert_fired(self, alert: Alert) -> None:
        """Note an alert that fired during the incident."""
        self._alerts.append(alert)
        self.add_entry(
            alert.fired_at, "alert.fired", f"{alert.severity.value} {alert.title}: {alert.detail}"
        )

    def alert_resolved(self, alert: Alert) -> None:
        """Note that *alert* (with its ``resolved_at``) resolved."""
        # The newest still-active firing of that rule: a rule can fire, resolve and fire again
        # within one incident, even at the same instant, so fired_at alone is ambiguous.
        for i in range(len(self._alerts) - 1, -1, -1):
            known = self._alerts[i]
            if known.rule == alert.rule and known.active:
                self._alerts[i] = alert
                break
        at = alert.fired_at if alert.resolved_at is None else alert.resolved_at
        self.add_entry(at, "alert.resolved", f"{alert.severity.value} {alert.title} resolved")

    def add_request_id(self, request_id: str | None) -> None:
        """Keep *request_id* (bounded; the most recent are kept)."""
        if not request_id:
            return
        ids = self._request_ids
        if request_id in ids:
            ids.move_to_end(request_id)
            return
        ids[request_id] = None
        while len(ids) > self.max_request_ids:
            ids.popitem(last=False)
            self.request_ids_dropped += 1

    def _count_endpoint(self, method: str | None, template: str | None) -> None:
        if template is None:
            return
        key = f"{method} {template}" if method else template
        if key not in self._endpoints and len(self._endpoints) >= _MAX_ENDPOINTS:
            key = _OTHER_ENDPOINTS
        self._endpoints[key] = self._endpoints.get(key, 0) + 1

    def failure(self, record: FailureRecord) -> None:
        """Count a failed attempt."""
        self.failed_attempts += 1
        if self.first_failure_at is None or record.at < self.first_failure_at:
            self.first_failure_at = record.at
        if self.last_failure_at is None or record.at > self.last_failure_at:
            self.last_failure_at = record.at
        self._count_endpoint(record.method, record.template)
        self.add_request_id(record.request_id)

    def refused(self, method: str | None, template: str | None) -> None:
        """Count a call refused locally."""
        self.refused_calls += 1
        self._count_endpoint(method, template)

    def stale(self, request_id: str | None) -> None:
        """Count a stale serve (and keep the id of the failure that caused it)."""
        self.stale_served += 1
        self.add_request_id(request_id)

    def close(self, at: float) -> None:
        """Mark recovery."""
        self.closed_at = at
        self.add_entry(at, "incident.closed", "all alerts resolved; incident closed")

    def snapshot(self) -> Incident:
        """A frozen copy of the incident as it stands."""
        entries: list[TimelineEntry] = []
        if self.first_failure_at is not None:
            entries.append(TimelineEntry(self.first_failure_at, "failure.first", "first failure"))
        if self.last_failure_at is not None and self.last_failure_at != self.first_failure_at:
            entries.append(TimelineEntry(self.last_failure_at, "failure.last", "last failure"))
        entries += self._entries
        # A stable sort keeps recording order for entries of the same instant, and a failure
        # comes before what it caused at that instant (the alert, the breaker opening).
        entries.sort(key=lambda entry: entry.at)
        return Incident(
            id=self.id,
            opened_at=self.opened_at,
            closed_at=self.closed_at,
            alerts=tuple(self._alerts),
            timeline=tuple(entries),
            failed_attempts=self.failed_attempts,
            refused_calls=self.refused_calls,
            stale_served=self.stale_served,
            endpoints=dict(self._endpoints),
            request_ids=tuple(self._request_ids),
            request_ids_dropped=self.request_ids_dropped,
            first_failure_at=self.first_failure_at,
            last_failure_at=self.last_failure_at,
        )


# --------------------------------------------------------------------------------- rendering


def _cell(text: str) -> str:
    """Free text made safe for one Markdown table cell."""
    return scrub(text).translate(_MD_CELL)


def _code(text: str) -> str:
    """Free text as an inline code span (request ids come from the server: trust nothing)."""
    cleaned = scrub(text).replace("`", "'").replace("\n", " ").replace("\r", " ")
    return f"`{cleaned}`"


def _title(incident: Incident) -> str:
    if not incident.alerts:
        return "Intercom integration incident"
    worst = incident.severity
    first = next(a for a in incident.alerts if a.severity is worst)
    return f"Intercom {scrub(first.title)}"


def _impact_lines(incident: Incident) -> list[str]:
    lines = [
        f"- {incident.failed_attempts} failed request(s) to Intercom "
        "(5xx, network errors, 401/403, 429).",
        f"- {incident.refused_calls} call(s) refused locally "
        "(circuit open, kill switch or rate limiter).",
        f"- {incident.stale_served} read(s) answered from the stale cache.",
    ]
    if incident.endpoints:
        lines.append(f"- Endpoints affected ({len(incident.endpoints)}):")
        ranked = sorted(incident.endpoints.items(), key=lambda kv: (-kv[1], kv[0]))
        lines.extend(f"  - {_code(name)}: {count}" for name, count in ranked)
    else:
        lines.append("- Endpoints affected: none recorded.")
    return lines


def render_postmortem(
    incident: Incident,
    *,
    title: str | None = None,
    request_ids_by: Sequence[tuple[str, Incident]] | None = None,
) -> str:
    """The incident as a Markdown postmortem, ready for people to complete.

    Contains the title, date, start and end times (UTC ISO-8601), duration, severity (the worst
    alert), the alerts, impact, the timeline in order, every Intercom request id, and placeholders
    marked ``TODO`` for the summary, root cause and action items.

    *request_ids_by* (a fleet incident's processes: a label and that process's own incident)
    lists the request ids per process instead of the incident's own list.
    """
    severity = incident.severity
    opened = format_utc(incident.opened_at)
    heading = scrub(title) if title else _title(incident)
    end = "ongoing" if incident.closed_at is None else format_utc(incident.closed_at)
    duration = "ongoing" if incident.duration is None else _format_duration(incident.duration)
    sev_text = (
        "none recorded"
        if severity is None
        else f"{severity.value} ({severity.meaning}; respond within {severity.respond_within})"
    )
    state = "ongoing" if incident.is_open else "resolved"
    out = [
        f"# Postmortem: {heading}",
        "",
        f"Incident {_code(incident.id)}, status **{state}**.",
        "",
        "| | |",
        "|---|---|",
        f"| Date | {opened[:10]} (UTC) |",
        f"| Started | {opened} |",
        f"| Resolved | {end} |",
        f"| Duration | {duration} |",
        f"| Severity | {sev_text} |",
        "",
        "## Summary",
        "",
        "> **TODO (summary):** what happened and who was affected, in two or three sentences.",
        "",
        "## Alerts",
        "",
    ]
    if incident.alerts:
        out += ["| Severity | Alert | Fired | Resolved | Detail |", "|---|---|---|---|---|"]
        for alert in incident.alerts:
            resolved = "active" if alert.resolved_at is None else format_utc(alert.resolved_at)
            out.append(
                f"| {alert.severity.value} | {_cell(alert.title)} | {format_utc(alert.fired_at)} "
                f"| {resolved} | {_cell(alert.detail)} |"
            )
    else:
        out.append("None recorded.")
    out += ["", "## Impact", "", *_impact_lines(incident), "", "## Timeline (UTC)", ""]
    if incident.timeline:
        out += ["| Time | Event | Detail |", "|---|---|---|"]
        for entry in sorted(incident.timeline, key=lambda e: e.at):
            out.append(f"| {format_utc(entry.at)} | {_cell(entry.kind)} | {_cell(entry.detail)} |")
    else:
        out.append("No entries.")
    out += ["", "## Intercom request ids", ""]
    if request_ids_by is not None:
        out += _request_ids_by_process(request_ids_by)
    elif incident.request_ids:
        out.append("Quote these to Intercom support; most recent last.")
        out.append("")
        if incident.request_ids_dropped:
            out.append(
                f"- ({incident.request_ids_dropped} older id(s) dropped to keep the record bounded)"
            )
        out.extend(f"- {_code(request_id)}" for request_id in incident.request_ids)
    else:
        out.append("None recorded (network failures carry no request id).")
    out += [
        "",
        "## Root cause",
        "",
        "> **TODO (root cause):** why it happened; Intercom status page links if it was theirs.",
        "",
        "## Action items",
        "",
        "- [ ] **TODO (action items):** owner, action, due date.",
        "",
    ]
    return "\n".join(out)


def _request_ids_by_process(parts: Sequence[tuple[str, Incident]]) -> list[str]:
    out = ["Quote these to Intercom support; per process, most recent last.", ""]
    for label, part in parts:
        state = "ongoing" if part.is_open else f"closed {format_utc(part.closed_at or 0.0)}"
        out.append(
            f"### {_code(label)}: incident {_code(part.id)}, opened "
            f"{format_utc(part.opened_at)}, {state}"
        )
        out.append("")
        if part.request_ids_dropped:
            dropped = part.request_ids_dropped
            out.append(f"- ({dropped} older id(s) dropped to keep the record bounded)")
        out.extend(f"- {_code(request_id)}" for request_id in part.request_ids)
        if not part.request_ids:
            out.append("- none recorded (network failures carry no request id)")
        out.append("")
    return out[:-1]


#: The states a status update can announce.
UpdateStatus = Literal["investigating", "monitoring", "resolved"]
_UPDATE_STATUSES: tuple[str, ...] = ("investigating", "monitoring", "resolved")
_DEFAULT_ACTIONS: dict[str, str] = {
    "investigating": "Investigating. The client retries, fails fast and serves cached reads "
    "where it can.",
    "monitoring": "A fix is in place; we are watching error rates.",
    "resolved": "Resolved. A postmortem will follow.",
}


def render_status_update(
    incident: Incident,
    *,
    now: float,
    status: UpdateStatus | None = None,
    impact: str | None = None,
    action: str | None = None,
) -> str:
    """A short status update for a chat channel: severity, status, impact, action, next update.

    Args:
        incident: the incident to report on.
        now: Unix time of the update (the next update is due ``severity.update_every`` later).
        status: ``investigating``, ``monitoring`` or ``resolved``; by default ``resolved`` for a
            closed incident, else ``investigating``.
        impact: overrides the impact line derived from the counts.
        action: overrides the default action line of the status.
    """
    if status is None:
        status = "investigating" if incident.is_open else "resolved"
    if status not in _UPDATE_STATUSES:
        raise ValueError(f"status must be one of {', '.join(_UPDATE_STATUSES)}, got {status!r}")
    severity = incident.severity
    level = "P?" if severity is None else severity.value
    if impact is None:
        impact = (
            f"{incident.failed_attempts} failed request(s) to Intercom across "
            f"{len(incident.endpoints)} endpoint(s); {incident.refused_calls} refused locally; "
            f"{incident.stale_served} read(s) served from cache (possibly stale)."
        )
    if action is None:
        action = _DEFAULT_ACTIONS[status]
    if status == "resolved":
        end = incident.closed_at if incident.closed_at is not None else now
        next_line = f"Next update: none (resolved at {format_utc(end)})."
    else:
        interval = (severity or Severity.P4).update_every
        next_line = f"Next update: {format_utc(now + interval)}."
    lines = [
        f"[{level}] {_title(incident)} — {status.upper()}",
        f"Incident {incident.id}, started {format_utc(incident.opened_at)}.",
        f"Impact: {scrub(impact)}",
        f"Action: {scrub(action)}",
        next_line,
    ]
    return "\n".join(lines)
