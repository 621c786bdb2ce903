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
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Final

from ._backends._redis import DEFAULT_KEY_PREFIX, MISSED, KeyScheme, RedisLink, Script
from ._clock import Clock, SystemClock
from ._incidents import Alert, Incident, TimelineEntry, format_utc, render_postmortem, scrub
from ._redaction import redact_url

__all__ = [
    "FleetIncident",
    "FleetIncidents",
    "IncidentReport",
    "incident_cause",
    "read_fleet_incidents",
]

_VERSION: Final = 1
#: Timeline entries and endpoints published per report (the counts stay exact).
_MAX_TIMELINE: Final = 100
_MAX_ENDPOINTS: Final = 50
#: Reports kept in Redis at most, all fleets' incidents together (the oldest go first).
MAX_REPORTS: Final = 2000
#: Reports one read returns at most (the most recently updated).
_READ_LIMIT: Final = 500
#: Incidents of this process remembered with the fleet incident they joined.
_REMEMBERED: Final = 64
#: Closed incidents of this process looked at per publication (the newest).
_RECENT_CLOSED: Final = 5

# KEYS: open episodes (hash: episode -> fleet id), their expiries (zset, ms of Redis time),
# reports (hash: "fleet id|process id" -> JSON), their expiries (zset).
_PRUNE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, pair in ipairs({{KEYS[2], KEYS[1]}, {KEYS[4], KEYS[3]}}) do
  local gone = redis.call('ZRANGEBYSCORE', pair[1], '-inf', now)
  for _, member in ipairs(gone) do
    redis.call('ZREM', pair[1], member)
    redis.call('HDEL', pair[2], member)
  end
end
"""

# ARGV: episode, process id, known fleet id or '', '1' if the incident is open, report JSON,
# ttl ms, incident ttl ms, the fleet id's tail ("<cause>-<fingerprint>"), max reports.
# Returns {fleet id, now}.
_REPORT = Script(
    _PRUNE
    + """
local function utc(ms)
  local s = math.floor(ms / 1000)
  local days = math.floor(s / 86400)
  local rem = s - days * 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
    - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return string.format('%04d%02d%02dT%02d%02d%02d.%03dZ', y, m, d, math.floor(rem / 3600),
    math.floor((rem % 3600) / 60), rem % 60, ms % 1000)
end
local ttl, keep = tonumber(ARGV[6]), tonumber(ARGV[7])
local current = redis.call('HGET', KEYS[1], ARGV[1])
local fid = ARGV[3]
if fid == '' then
  fid = current or ('finc-' .. utc(now) .. '-' .. ARGV[8])
end
if ARGV[4] == '1' and ((not current) or current == fid) then
  redis.call('HSET', KEYS[1], ARGV[1], fid)
  redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
end
local field = fid .. '|' .. ARGV[2]
redis.call('HSET', KEYS[3], field, ARGV[5])
redis.call('ZADD', KEYS[4], now + keep, field)
local excess = redis.call('ZCARD', KEYS[4]) - tonumber(ARGV[9])
if excess > 0 then
  for _, old in ipairs(redis.call('ZRANGE', KEYS[4], 0, excess - 1)) do
    redis.call('HDEL', KEYS[3], old)
  end
  redis.call('ZREMRANGEBYRANK', KEYS[4], 0, excess - 1)
end
for _, key in ipairs(KEYS) do
  if redis.call('PTTL', key) < keep then redis.call('PEXPIRE', key, keep) end
end
return {fid, now}
"""
)

# ARGV: episode, fleet id, report field, ttl ms, incident ttl ms. An open incident whose report
# did not change: its episode stays joinable and its report current (1 if the report is there).
_TOUCH = Script(
    """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[1])
end
return redis.call('ZADD', KEYS[4], 'XX', 'CH', now + tonumber(ARGV[5]), ARGV[3])
"""
)

# ARGV: max reports returned. Returns {now, field, JSON, expiry, field, JSON, expiry, ...}.
_READ = Script(
    _PRUNE
    + """
local out = {now}
local fields = redis.call('ZREVRANGE', KEYS[4], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
for i = 1, #fields, 2 do
  local report = redis.call('HGET', KEYS[3], fields[i])
  if report then
    out[#out + 1] = fields[i]
    out[#out + 1] = report
    out[#out + 1] = fields[i + 1]
  end
end
return out
"""
)


def incident_cause(incident: Incident) -> str:
    """What an incident is about, for merging: the rule of its first alert (``unknown``)."""
    return incident.alerts[0].rule if incident.alerts else "unknown"


def _bounded(incident: Incident) -> dict[str, Any]:
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


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


_Parsed = tuple[str, str, str, IncidentReport]


def _report(field: str, payload: str, expiry_ms: float, now_ms: float) -> _Parsed | None:
    """(fleet id, credentials, cause, report) of one stored report, or ``None`` if unreadable."""
    fleet_id, sep, process_id = field.partition("|")
    try:
        data = json.loads(payload)
        if not sep or not isinstance(data, dict) or data.get("v") != _VERSION:
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
        field, payload, expiry = (_text(part) for part in reply[index : index + 3])
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


class FleetIncidents:
    """One process's reports of its incidents to the fleet, and its reads of the fleet's.

    Driven by the :class:`~._fleet.FleetPublisher` (its link, its pace). Thread-safe.

    Args:
        link: the fleet's Redis link.
        key_prefix: the first part of the keys.
        process: ``(process id, host, pid)`` of the publisher.
        credentials: the credentials fingerprint.
        ttl: ``FleetPolicy.ttl``: an episode stays joinable this long after its last open report.
        keep: ``FleetPolicy.incident_ttl``: reports stay this long after their last update.
    """

    def __init__(
        self,
        link: RedisLink,
        key_prefix: str,
        process: tuple[str, str, int],
        credentials: str,
        *,
        ttl: float,
        keep: float,
    ) -> None:
        self._link = link
        self._keys = KeyScheme(key_prefix).fleet_incidents()
        self._process = process
        self._credentials = credentials
        self._ttl, self._keep = ttl, keep
        self._lock = threading.Lock()
        # Local incident id -> (fleet id it joined, or None; the last state sent).
        self._sent: OrderedDict[str, tuple[str | None, object]] = OrderedDict()

    def forget(self) -> None:
        """Redis lost the reports (flushed, restarted): send them all again, to the fleet
        incidents they had joined."""
        with self._lock:
            for local_id, (fleet_id, _) in self._sent.items():
                self._sent[local_id] = (fleet_id, None)

    def joined(self, incident_id: str) -> str | None:
        """The fleet incident this process's incident *incident_id* joined, if known."""
        with self._lock:
            entry = self._sent.get(incident_id)
        return None if entry is None else entry[0]

    def _touch(self, current: Incident | None, due: list[list[Any]]) -> list[Any] | None:
        """The ``_TOUCH`` arguments for the open incident, when its report is filed and was not
        just sent again (*due*)."""
        if current is None or not current.is_open:
            return None
        if any(args[-1][0] == current.id for args in due):
            return None
        with self._lock:
            sent = self._sent.get(current.id)
        if sent is None or sent[0] is None:
            return None
        fleet_id, cause = sent[0], incident_cause(current)
        return [
            f"{self._credentials}|{cause}",
            fleet_id,
            f"{fleet_id}|{self._process[0]}",
            int(self._ttl * 1000),
            int(self._keep * 1000),
        ]

    def due(self, current: Incident | None, closed: Sequence[Incident]) -> list[list[Any]]:
        """The ``_REPORT`` arguments of the incidents whose report changed since it was sent."""
        candidates = [*closed[-_RECENT_CLOSED:], *([current] if current is not None else [])]
        out: list[list[Any]] = []
        with self._lock:
            for incident in candidates:
                state = (
                    incident.closed_at,
                    incident.failed_attempts,
                    incident.refused_calls,
                    incident.stale_served,
                    incident.request_ids[-1:],
                    incident.request_ids_dropped,
                    len(incident.alerts),
                    len(incident.timeline),
                )
                sent = self._sent.get(incident.id)
                if sent is not None and sent[1] == state:
                    continue
                known = sent[0] if sent is not None else None
                out.append(self._args(incident, known, state))
        return out

    def _args(self, incident: Incident, known: str | None, state: object) -> list[Any]:
        process_id, host, pid = self._process
        cause = incident_cause(incident)
        payload = json.dumps(
            {
                "v": _VERSION,
                "host": host,
                "pid": pid,
                "credentials": self._credentials,
                "cause": cause,
                "ttl_s": self._ttl,
                "keep_s": self._keep,
                "incident": _bounded(incident),
            },
            separators=(",", ":"),
            allow_nan=False,
        )
        return [
            f"{self._credentials}|{cause}",
            process_id,
            known or "",
            "1" if incident.is_open else "0",
            payload,
            int(self._ttl * 1000),
            int(self._keep * 1000),
            f"{cause}-{self._credentials[:8]}",
            MAX_REPORTS,
            # Not sent to Redis: what to remember once it answered.
            (incident.id, state),
        ]

    def _answered(self, args: list[Any], reply: object) -> bool:
        """Remember the fleet incident a report was filed under; ``True`` if it is news."""
        if reply is MISSED or not isinstance(reply, list) or not reply:
            return False  # sent again on the next publication
        local_id, state = args[-1]
        fleet_id = _text(reply[0])
        with self._lock:
            known = self._sent.get(local_id)
            self._sent[local_id] = (fleet_id, state)
            self._sent.move_to_end(local_id)
            while len(self._sent) > _REMEMBERED:
                self._sent.popitem(last=False)
        return known is None or known[0] != fleet_id

    def report(self, current: Incident | None, closed: Sequence[Incident]) -> bool:
        """Send the reports that changed (one round trip each; skipped while Redis is down).

        ``True`` when an incident learned the fleet incident it joined (the health snapshot,
        which names it, is then worth publishing again).
        """
        due, learned = self.due(current, closed), False
        for args in due:
            learned |= self._answered(args, self._link.call(_REPORT, self._keys, args[:-1]))
        # An open incident that did not change keeps its episode joinable and its report
        # current (else it would look like a process that stopped reporting).
        touch = self._touch(current, due)
        if touch is not None and self._link.call(_TOUCH, self._keys, touch) == 0:
            self.forget()  # the report is gone (flushed): send it again next time
        return learned

    async def areport(self, current: Incident | None, closed: Sequence[Incident]) -> bool:
        """Async twin of :meth:`report`."""
        due, learned = self.due(current, closed), False
        for args in due:
            reply = await self._link.acall(_REPORT, self._keys, args[:-1])
            learned |= self._answered(args, reply)
        touch = self._touch(current, due)
        if touch is not None and await self._link.acall(_TOUCH, self._keys, touch) == 0:
            self.forget()
        return learned

    def read(self) -> tuple[FleetIncident, ...] | None:
        """The fleet's incidents, newest first (``None``: Redis cannot be reached)."""
        grouped = group(self._link.call(_READ, self._keys, [_READ_LIMIT]))
        return None if grouped is None else grouped[0]

    async def aread(self) -> tuple[FleetIncident, ...] | None:
        """Async twin of :meth:`read`."""
        grouped = group(await self._link.acall(_READ, self._keys, [_READ_LIMIT]))
        return None if grouped is None else grouped[0]


def read_fleet_incidents(
    redis_url: str,
    *,
    key_prefix: str = DEFAULT_KEY_PREFIX,
    socket_timeout: float = 1.0,
    clock: Clock | None = None,
) -> tuple[FleetIncident, ...]:
    """The fleet's incidents in *redis_url*, newest first, without a client (the CLI's).

    Raises ``ConnectionError`` (naming the URL without its password) when Redis cannot be
    reached, ``ValueError`` for a malformed URL.
    """
    link = RedisLink(
        "fleet", redis_url, clock or SystemClock(), None, socket_timeout=socket_timeout
    )
    try:
        reply = link.call(_READ, KeyScheme(key_prefix).fleet_incidents(), [_READ_LIMIT])
    finally:
        link.close()
    grouped = group(reply)
    if grouped is None:
        raise ConnectionError(
            f"Redis at {redact_url(redis_url)} is unreachable: the fleet's incidents cannot be read"
        )
    return grouped[0]
