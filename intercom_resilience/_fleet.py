"""Fleet health: every process publishes its health snapshot to Redis, any process reads them all.

A process's snapshot (status, breaker, latency, counters, active alerts, open incident) is written
to one hash under the ``fleet`` key family (:meth:`~._backends._redis.KeyScheme.fleet`), with its
expiry (Redis server time) in a sorted set next to it. Both are written by one Lua script, which
also drops the snapshots whose expiry has passed, so a process that stops publishing (killed,
partitioned, scaled down) leaves the fleet's view ``FleetPolicy.ttl`` seconds after its last
publication, whatever the hosts' clocks say. A process that closes its client leaves at once.

Publishing rides on the pipeline's own activity: when a call ends, or when the health is read,
at most once per ``FleetPolicy.interval``, and at once when the breaker's state, the kill switch
or the set of active alerts changed since the last publication. There is no background thread.
Redis going away costs the calls nothing: the call path publishes only while the Redis seam's
latch says Redis is up (one attribute read otherwise); reading the health (sync client) or the
fleet's health is what probes a Redis that was down, at the latch's pace, and the process rejoins
on the first success.

:func:`read_fleet` and :meth:`FleetPublisher.read` aggregate: the worst status wins
(``unhealthy`` > ``degraded`` > ``healthy``), with counts per status and one row per process.
A Redis that cannot be reached gives ``status="unknown"`` with ``reachable=False``: not seeing
the fleet is not the same as the fleet being healthy.

This module holds what the fleet's health *is* (and needs no redis-py: the package imports
without the ``redis`` extra); publishing and reading it is :mod:`._fleet_publisher`'s.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final, Literal

from ._health import HealthStatus, Status
from ._incidents import Alert, Severity, format_utc, scrub

__all__ = [
    "FleetHealth",
    "FleetPublishingOff",
    "FleetStatus",
    "ProcessHealth",
    "aggregate",
    "snapshot_json",
    "unseen",
]

#: A process's status, or ``unknown`` for a fleet that cannot be seen (or has no process).
FleetStatus = Literal["healthy", "degraded", "unhealthy", "unknown"]

_ORDER: Final[dict[str, int]] = {"healthy": 0, "degraded": 1, "unhealthy": 2}
_VERSION: Final = 1
#: Alerts published per process at most (there are 11 rules; this bounds a damaged monitor).
_MAX_ALERTS: Final = 20


class FleetPublishingOff(RuntimeError):
    """``fleet_health()`` on a client that does not publish (no ``redis_url``, or
    ``FleetPolicy.publish=False``)."""


@dataclasses.dataclass(frozen=True, slots=True)
class ProcessHealth:
    """One process's latest published health, as the fleet sees it.

    Attributes:
        process_id: ``host:pid:random`` (one per client: two clients in one process are two rows).
        host: the host name the process runs on.
        pid: its process id.
        credentials: the fingerprint of its credentials (never the token).
        status: ``healthy``, ``degraded`` or ``unhealthy`` (see ``HealthStatus.status``).
        breaker: its circuit breaker's state.
        p50_ms: median attempt latency in its health window (``None`` without attempts).
        p95_ms: the 95th percentile (``None`` without attempts).
        counters: ``calls``, ``failed`` (calls that raised or were answered 5xx) and
            ``stale_served``, since the client was built.
        alerts: its active alerts, most severe first.
        incident_id: its open incident, if any.
        reasons: why it is not healthy, for people.
        disabled: its kill switch is on.
        published_at: Unix time (Redis server time) of the snapshot.
        expires_in_s: seconds left before it leaves the fleet's view unless refreshed.
        fleet_incident_id: the fleet incident its open incident joined
            (``docs/fleet.md#fleet-incidents``), once known.
    """

    process_id: str
    host: str
    pid: int
    credentials: str
    status: Status
    breaker: str
    p50_ms: float | None
    p95_ms: float | None
    counters: Mapping[str, int]
    alerts: tuple[Alert, ...]
    incident_id: str | None
    reasons: tuple[str, ...]
    disabled: bool
    published_at: float
    expires_in_s: float
    fleet_incident_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (times as UTC ISO-8601)."""
        return {
            "process_id": self.process_id,
            "host": self.host,
            "pid": self.pid,
            "credentials": self.credentials,
            "status": self.status,
            "breaker": self.breaker,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "counters": dict(self.counters),
            "alerts": [
                {"rule": a.rule, "severity": a.severity.value, "title": a.title}
                for a in self.alerts
            ],
            "incident_id": self.incident_id,
            "fleet_incident_id": self.fleet_incident_id,
            "reasons": list(self.reasons),
            "disabled": self.disabled,
            "published_at": format_utc(self.published_at),
            "expires_in_s": round(self.expires_in_s, 1),
        }


@dataclasses.dataclass(frozen=True, slots=True)
class FleetHealth:
    """The health of every process that published recently, aggregated.

    Attributes:
        status: the worst status of the processes; ``unknown`` when Redis cannot be reached
            or no process has published.
        reachable: whether Redis answered (``False``: the fleet could not be seen).
        processes: one row per live process, by process id.
        counts: how many processes are ``healthy``, ``degraded`` and ``unhealthy``.
        checked_at: Unix time of the read (Redis server time when it answered).
        error: why the fleet could not be seen (never contains a credential).
        unreadable: snapshots that could not be parsed (another version, damage); skipped.
    """

    status: FleetStatus
    reachable: bool
    processes: tuple[ProcessHealth, ...]
    counts: Mapping[str, int]
    checked_at: float
    error: str | None = None
    unreadable: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {
            "status": self.status,
            "reachable": self.reachable,
            "counts": dict(self.counts),
            "processes": [row.to_dict() for row in self.processes],
            "checked_at": format_utc(self.checked_at),
            "error": self.error,
            "unreadable": self.unreadable,
        }


def unseen(error: str, at: float) -> FleetHealth:
    return FleetHealth("unknown", False, (), _counts(()), at, error=error)


def _counts(rows: tuple[ProcessHealth, ...]) -> Mapping[str, int]:
    counts = dict.fromkeys(_ORDER, 0)
    for row in rows:
        counts[row.status] += 1
    return MappingProxyType(counts)


def _optional_number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _alert(raw: object) -> Alert | None:
    if not isinstance(raw, dict):
        return None
    rule, severity, title = raw.get("rule"), raw.get("severity"), raw.get("title")
    fired_at = _optional_number(raw.get("fired_at"))
    if not (isinstance(rule, str) and isinstance(title, str)) or fired_at is None:
        return None
    try:
        level = Severity(severity)
    except ValueError:
        return None
    detail = raw.get("detail")
    return Alert(rule, level, title, detail if isinstance(detail, str) else "", fired_at)


def _row(process_id: str, payload: str, expiry_ms: float, now_ms: float) -> ProcessHealth | None:
    """One snapshot parsed, or ``None`` when it is not one this version can read."""
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("v") != _VERSION:
        return None
    status, breaker = data.get("status"), data.get("breaker")
    host, pid, ttl = data.get("host"), data.get("pid"), _optional_number(data.get("ttl_s"))
    if status not in _ORDER or not isinstance(breaker, str) or ttl is None:
        return None
    if not isinstance(host, str) or isinstance(pid, bool) or not isinstance(pid, int):
        return None
    raw_counters = data.get("counters")
    counters = {
        str(k): v
        for k, v in (raw_counters.items() if isinstance(raw_counters, dict) else ())
        if isinstance(v, int) and not isinstance(v, bool)
    }
    raw_alerts = data.get("alerts")
    alerts = tuple(
        a for a in map(_alert, raw_alerts if isinstance(raw_alerts, list) else ()) if a is not None
    )
    raw_reasons = data.get("reasons")
    reasons = tuple(
        r for r in (raw_reasons if isinstance(raw_reasons, list) else ()) if isinstance(r, str)
    )
    incident, fleet_incident = data.get("incident_id"), data.get("fleet_incident_id")
    credentials = data.get("credentials")
    expires_in = max(0.0, (expiry_ms - now_ms) / 1000.0)
    return ProcessHealth(
        process_id=process_id,
        host=host,
        pid=pid,
        credentials=credentials if isinstance(credentials, str) else "",
        status=status,
        breaker=breaker,
        p50_ms=_optional_number(data.get("p50_ms")),
        p95_ms=_optional_number(data.get("p95_ms")),
        counters=MappingProxyType(counters),
        alerts=alerts,
        incident_id=incident if isinstance(incident, str) else None,
        fleet_incident_id=fleet_incident if isinstance(fleet_incident, str) else None,
        reasons=reasons,
        disabled=data.get("disabled") is True,
        published_at=(expiry_ms - ttl * 1000.0) / 1000.0,
        expires_in_s=expires_in,
    )


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def aggregate(reply: object) -> FleetHealth:
    """The :class:`FleetHealth` of one ``_READ`` reply (malformed parts are skipped, counted)."""
    if not isinstance(reply, list) or not reply or not isinstance(reply[0], int):
        return unseen("Redis answered something that is not a fleet read", time.time())
    now_ms = float(reply[0])
    rows: list[ProcessHealth] = []
    unreadable = 0
    for index in range(1, len(reply) - 2, 3):
        process_id, payload, expiry = reply[index : index + 3]
        try:
            expiry_ms = float(_text(expiry))
        except ValueError:
            expiry_ms = now_ms
        row = _row(_text(process_id), _text(payload), expiry_ms, now_ms)
        if row is None:
            unreadable += 1
        else:
            rows.append(row)
    ordered = tuple(sorted(rows, key=lambda r: r.process_id))
    status: FleetStatus = "unknown"
    if ordered:
        worst = max(ordered, key=lambda r: _ORDER[r.status]).status
        status = worst
    return FleetHealth(
        status, True, ordered, _counts(ordered), now_ms / 1000.0, unreadable=unreadable
    )


def snapshot_json(
    health: HealthStatus,
    *,
    host: str,
    pid: int,
    credentials: str,
    counters: Mapping[str, int],
    ttl: float,
    fleet_incident_id: str | None = None,
) -> str:
    """The published form of one process's health (no token, nothing unscrubbed)."""
    return json.dumps(
        {
            "v": _VERSION,
            "host": host,
            "pid": pid,
            "credentials": credentials,
            "status": health.status,
            "breaker": health.breaker,
            "p50_ms": health.latency_ms.p50,
            "p95_ms": health.latency_ms.p95,
            "counters": dict(counters),
            "alerts": [
                {
                    "rule": a.rule,
                    "severity": a.severity.value,
                    "title": a.title,
                    "detail": scrub(a.detail),
                    "fired_at": a.fired_at,
                }
                for a in health.alerts[:_MAX_ALERTS]
            ],
            "incident_id": health.incident_id,
            "fleet_incident_id": fleet_incident_id,
            "reasons": [scrub(r) for r in health.reasons],
            "disabled": health.disabled,
            "ttl_s": ttl,
        },
        separators=(",", ":"),
    )
