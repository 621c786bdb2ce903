"""Fleet incidents: one incident for the fleet when several processes see the same trouble.

Every process keeps its own incidents (:mod:`._incidents`); when Intercom breaks, each of 50 pods
opens one. A process that publishes its health to the fleet (:mod:`._fleet`) also publishes a
*report* of each of its incidents (the incident as ``Incident.to_dict`` writes it, bounded and
scrubbed) whenever it changed, next to its health snapshot. One Lua script, in Redis server time,
files the report under a fleet incident:

* the *episode* of an incident is its credentials fingerprint and its cause (the rule of its
  first alert, ``api_unreachable``, ``auth_failure``...);
* the first process to report an open incident of an episode names the fleet incident
  (``finc-<UTC time of Redis>-<cause>-<fingerprint>``); every process that reports an open
  incident of that episode while it is open joins it. An episode stays open while a member
  keeps reporting an open incident, and ``FleetPolicy.ttl`` after the last such report (so a
  flapping outage stays one fleet incident, and a dead process does not hold it open);
* a process remembers the fleet incident its incident joined, so its later reports (and the
  closing one) land in the same place even after the episode moved on.

Reports stay ``FleetPolicy.incident_ttl`` seconds after their last update (a day by default: the
postmortem is written the next morning). :func:`read_fleet_incidents` groups them back into
:class:`FleetIncident` objects, whose :meth:`~FleetIncident.postmortem` renders one Markdown
postmortem listing every process's request ids. No token is stored: reports carry the
credentials *fingerprint*, and every free-text field passes :func:`~._incidents.scrub`.

Redis down costs the process nothing: reports are skipped (the process's own incidents are
untouched) and the ones that changed meanwhile are sent on the first publication after it is back.

This module holds what a fleet incident *is* (it needs no redis-py); the scripts and the
publishing side are :mod:`._fleet_reports`'s.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Final

from ._incidents import Alert, Incident, TimelineEntry, format_utc, render_postmortem, scrub

__all__ = [
    "VERSION",
    "FleetIncident",
    "IncidentReport",
    "bounded",
    "group",
    "incident_cause",
    "text",
]

VERSION: Final = 1
#: Timeline entries and endpoints published per report (the counts stay exact).
_MAX_TIMELINE: Final = 100
_MAX_ENDPOINTS: Final = 50


def incident_cause(incident: Incident) -> str:
    """What an incident is about, for merging: the rule of its first alert (``unknown``)."""
    return incident.alerts[0].rule if incident.alerts else "unknown"


def bounded(incident: Incident) -> dict[str, Any]:
    """The published form of *incident*: its file format, scrubbed, its long lists bounded."""
    data = incident.to_dict()
    for alert in data["alerts"]:
        alert["title"], alert["detail"] = scrub(alert["title"]), scrub(alert["detail"])
    data["timeline"] = [
        {**entry, "detail": scrub(entry["detail"])} for entry in data["timeline"][:_MAX_TIMELINE]
    ]
    ranked = sorted(incident.endpoints.items(), key=lambda kv: (-kv[1], kv[0]))
    data["endpoints"] = dict(ranked[:_MAX_ENDPOINTS])
    return data


@dataclasses.dataclass(frozen=True, slots=True)
class IncidentReport:
    """One process's incident, as filed under a fleet incident.

    Attributes:
        process_id: the reporting process (``host:pid:random``, as in ``fleet status``).
        host: its host name.
        pid: its process id.
        incident: its own incident (request ids, counts, timeline; long lists bounded).
        updated_at: Unix time (Redis server time) of its last report.
        reporting: an open incident whose process still reports it (``False``: the process
            stopped reporting, killed or partitioned, before its incident closed).
    """

    process_id: str
    host: str
    pid: int
    incident: Incident
    updated_at: float
    reporting: bool

    @property
    def label(self) -> str:
        """What the postmortem names the process by: its process id, as ``fleet status``
        shows it (``host:pid`` alone is ambiguous: two clients in one process are two rows)."""
        return self.process_id


@dataclasses.dataclass(frozen=True, slots=True)
class FleetIncident:
    """The incidents that several processes opened for one cause, merged.

    Attributes:
        id: the fleet incident's id (``finc-20261203T170102.123Z-api_unreachable-1a2b3c4d``).
        credentials: the credentials fingerprint they share (never the token).
        cause: the rule of the first alert (``api_unreachable``, ``auth_failure``...).
        reports: one per process, by when it opened.
    """

    id: str
    credentials: str
    cause: str
    reports: tuple[IncidentReport, ...]

    @property
    def opened_at(self) -> float:
        """When the first process opened its incident."""
        return min(report.incident.opened_at for report in self.reports)

    @property
    def is_open(self) -> bool:
        """A process still reports its incident open."""
        return any(report.incident.is_open and report.reporting for report in self.reports)

    @property
    def closed_at(self) -> float | None:
        """When the last process closed (or last reported) its incident; ``None`` while open."""
        if self.is_open:
            return None
        return max(report.incident.closed_at or report.updated_at for report in self.reports)

    def merged(self) -> Incident:
        """One :class:`Incident` of the whole fleet: counts summed, alerts and timelines merged
        (each entry naming its process), every process's request ids."""
        alerts: list[Alert] = []
        timeline: list[TimelineEntry] = []
        endpoints: dict[str, int] = {}
        for report in self.reports:
            part = report.incident
            alerts += part.alerts
            timeline += [
                TimelineEntry(e.at, e.kind, f"[{report.label}] {e.detail}") for e in part.timeline
            ]
            if part.is_open and not report.reporting:
                lost = f"[{report.label}] stopped reporting"
                timeline.append(TimelineEntry(report.updated_at, "process.lost", lost))
            for name, count in part.endpoints.items():
                endpoints[name] = endpoints.get(name, 0) + count
        firsts = [r.incident.first_failure_at for r in self.reports if r.incident.first_failure_at]
        lasts = [r.incident.last_failure_at for r in self.reports if r.incident.last_failure_at]
        return Incident(
            id=self.id,
            opened_at=self.opened_at,
            closed_at=self.closed_at,
            alerts=tuple(sorted(alerts, key=lambda a: a.fired_at)),
            timeline=tuple(sorted(timeline, key=lambda e: e.at)),
            failed_attempts=sum(r.incident.failed_attempts for r in self.reports),
            refused_calls=sum(r.incident.refused_calls for r in self.reports),
            stale_served=sum(r.incident.stale_served for r in self.reports),
            endpoints=endpoints,
            request_ids=tuple(rid for r in self.reports for rid in r.incident.request_ids),
            request_ids_dropped=sum(r.incident.request_ids_dropped for r in self.reports),
            first_failure_at=min(firsts, default=None),
            last_failure_at=max(lasts, default=None),
        )

    def postmortem(self, *, title: str | None = None) -> str:
        """The fleet incident as one Markdown postmortem, request ids listed per process."""
        processes = ", ".join(report.label for report in self.reports)
        text = render_postmortem(
            self.merged(),
            title=title,
            request_ids_by=[(report.label, report.incident) for report in self.reports],
        )
        # Which processes took part goes right under the heading's status line.
        head, sep, rest = text.partition("\n\n| | |")
        note = (
            f"\n\nFleet incident of {len(self.reports)} process(es) ({scrub(processes)}), "
            f"cause `{scrub(self.cause)}`, credentials `{self.credentials}`."
        )
        return head + note + sep + rest

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (each process's incident in the incident file format)."""
        return {
            "id": self.id,
            "credentials": self.credentials,
            "cause": self.cause,
            "opened_at": format_utc(self.opened_at),
            "closed_at": None if self.closed_at is None else format_utc(self.closed_at),
            "open": self.is_open,
            "processes": [
                {
                    "process_id": r.process_id,
                    "host": r.host,
                    "pid": r.pid,
                    "reporting": r.reporting,
                    "updated_at": format_utc(r.updated_at),
                    "incident": r.incident.to_dict(),
                }
                for r in self.reports
            ],
        }


def text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


_Parsed = tuple[str, str, str, IncidentReport]


def _report(field: str, payload: str, expiry_ms: float, now_ms: float) -> _Parsed | None:
    """(fleet id, credentials, cause, report) of one stored report, or ``None`` if unreadable."""
    fleet_id, sep, process_id = field.partition("|")
    try:
        data = json.loads(payload)
        if not sep or not isinstance(data, dict) or data.get("v") != VERSION:
            return None
        incident = Incident.from_dict(data["incident"])
        host, pid, keep, ttl = data["host"], data["pid"], data["keep_s"], data["ttl_s"]
        credentials, cause = data["credentials"], data["cause"]
        if not (isinstance(host, str) and isinstance(pid, int) and isinstance(cause, str)):
            return None
        if not isinstance(credentials, str):
            return None
        updated = (expiry_ms - float(keep) * 1000.0) / 1000.0
        reporting = now_ms / 1000.0 - updated <= float(ttl)
    except (ValueError, KeyError, TypeError):
        return None
    return (
        fleet_id,
        credentials,
        cause,
        IncidentReport(process_id, host, pid, incident, updated, reporting),
    )


def group(reply: object) -> tuple[tuple[FleetIncident, ...], int] | None:
    """The fleet incidents of one ``_READ`` reply, newest first, and how many reports were
    unreadable; ``None`` when the reply is not a read's."""
    if not isinstance(reply, list) or not reply or not isinstance(reply[0], int):
        return None
    now_ms = float(reply[0])
    found: dict[str, tuple[str, str, list[IncidentReport]]] = {}
    unreadable = 0
    for index in range(1, len(reply) - 2, 3):
        field, payload, expiry = (text(part) for part in reply[index : index + 3])
        try:
            parsed = _report(field, payload, float(expiry), now_ms)
        except ValueError:
            parsed = None
        if parsed is None:
            unreadable += 1
            continue
        fleet_id, credentials, cause, report = parsed
        found.setdefault(fleet_id, (credentials, cause, []))[2].append(report)
    incidents = [
        FleetIncident(
            fleet_id,
            credentials,
            cause,
            tuple(sorted(reports, key=lambda r: (r.incident.opened_at, r.process_id))),
        )
        for fleet_id, (credentials, cause, reports) in found.items()
    ]
    incidents.sort(key=lambda fi: (fi.opened_at, fi.id), reverse=True)
    return tuple(incidents), unreadable
