"""Reporting a process's incidents to the fleet's Redis, and reading the fleet's incidents.

What a fleet incident is, and how reports merge, is :mod:`._fleet_incidents`; this module is the
Redis side (the Lua scripts, :class:`FleetIncidents`, :func:`read_fleet_incidents`). Imported only
when fleet publishing is on or the CLI reads the fleet: it needs redis-py.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Final

from ._backends._redis import DEFAULT_KEY_PREFIX, MISSED, KeyScheme, RedisLink, Script
from ._clock import Clock, SystemClock
from ._fleet_incidents import VERSION, FleetIncident, bounded, group, incident_cause, text
from ._incidents import Incident
from ._redaction import redact_url

__all__ = ["MAX_REPORTS", "FleetIncidents", "read_fleet_incidents"]

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


class FleetIncidents:
    """One process's reports of its incidents to the fleet, and its reads of the fleet's.

    Driven by the :class:`~._fleet_publisher.FleetPublisher` (its link, its pace). Thread-safe.

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
                "v": VERSION,
                "host": host,
                "pid": pid,
                "credentials": self._credentials,
                "cause": cause,
                "ttl_s": self._ttl,
                "keep_s": self._keep,
                "incident": bounded(incident),
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
        fleet_id = text(reply[0])
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
