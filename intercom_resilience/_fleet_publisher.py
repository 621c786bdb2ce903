"""Publishing a process's health to the fleet's Redis, and reading the fleet's (``docs/fleet.md``).

The what is :mod:`._fleet` (snapshots, aggregation); this module is the Redis side: the Lua
scripts, :class:`FleetPublisher` (one per client that publishes) and :func:`read_fleet` (the
CLI's). Imported only when fleet publishing is on or the CLI reads the fleet: it needs redis-py.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ._backends._redis import DEFAULT_KEY_PREFIX, MISSED, KeyScheme, RedisLink, Script
from ._clock import Clock, SystemClock
from ._config import FleetPolicy
from ._events import EventLog
from ._fleet import FleetHealth, aggregate, snapshot_json, unseen
from ._fleet_reports import FleetIncidents
from ._health import HealthStatus
from ._incidents import Incident
from ._redaction import redact_url

__all__ = ["FleetPublisher", "read_fleet"]

# KEYS: members (zset, id -> expiry in ms of Redis time), snapshots (hash, id -> JSON).
# Expired members go first, so a lapsed process never survives a publication or a read.
_PRUNE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, id in ipairs(gone) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
end
"""

# ARGV: process id, snapshot JSON, ttl in ms. Returns {Redis time (ms), 1 if the process was
# not a member (its first publication, or Redis lost it: a flush, a restart, a lapse)}.
_PUBLISH = Script(
    _PRUNE
    + """
local ttl = tonumber(ARGV[3])
local added = redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
-- The family outlives its last publisher by one ttl, then vanishes with it.
for _, key in ipairs(KEYS) do
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
return {now, added}
"""
)

# Returns {now, id, snapshot, expiry, id, snapshot, expiry, ...}.
_READ = Script(
    _PRUNE
    + """
local out = {now}
local members = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #members, 2 do
  local snapshot = redis.call('HGET', KEYS[2], members[i])
  if snapshot then
    out[#out + 1] = members[i]
    out[#out + 1] = snapshot
    out[#out + 1] = members[i + 1]
  end
end
return out
"""
)

# ARGV: process id.
_LEAVE = Script(
    """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
"""
)


class FleetPublisher:
    """One client's publication of its health to the fleet, and its reads of the fleet's.

    Thread-safe. Never raises because of Redis: a publication that cannot happen is skipped.

    Args:
        policy: the interval and the ttl.
        redis_url: the fleet's Redis.
        clock: paces the publications (``monotonic``) and the latch's probes.
        credentials: the client's credentials fingerprint (published, never the token).
        health: returns the client's current health (passive).
        signature: a cheap summary of the health's state (breaker, kill switch, alerts): when
            it changes, the next call publishes even within the interval.
        incidents: returns the open incident and the closed ones (oldest first), reported to
            the fleet's incidents (:mod:`._fleet_incidents`) when they changed.
        events: where ``fleet.redis_unavailable`` / ``fleet.redis_recovered`` go.
    """

    def __init__(
        self,
        policy: FleetPolicy,
        redis_url: str,
        clock: Clock,
        credentials: str,
        health: Callable[[], HealthStatus],
        signature: Callable[[], object],
        *,
        incidents: Callable[[], tuple[Incident | None, Sequence[Incident]]] = lambda: (None, ()),
        events: EventLog | None = None,
    ) -> None:
        self.policy = policy
        self._signature = signature
        self._published: object = None
        self._clock = clock
        self._credentials = credentials
        self._health = health
        self._incidents = incidents
        self.link = RedisLink("fleet", redis_url, clock, events)
        self._keys = KeyScheme(policy.key_prefix).fleet()
        self.host = socket.gethostname()
        self.pid = os.getpid()
        #: ``host:pid:random``: unique per client, also across pid reuse and containers.
        self.process_id = f"{self.host}:{self.pid}:{secrets.token_hex(4)}"
        #: This process's incident reports, and the fleet's incidents.
        self.incidents = FleetIncidents(
            self.link,
            policy.key_prefix,
            (self.process_id, self.host, self.pid),
            credentials,
            ttl=policy.ttl,
            keep=policy.incident_ttl,
        )
        self._lock = threading.Lock()
        self._next = float("-inf")
        self._calls = 0
        self._failed = 0

    # ------------------------------------------------------------------ what is published

    def count(self, *, failed: bool) -> None:
        """Count one finished call (*failed*: it raised, or Intercom answered 5xx)."""
        with self._lock:
            self._calls += 1
            self._failed += failed

    def counters(self, stale_served: int) -> dict[str, int]:
        """The published counters."""
        with self._lock:
            return {"calls": self._calls, "failed": self._failed, "stale_served": stale_served}

    def _due(self, force: bool) -> bool:
        # A change of breaker state, kill switch or active alerts is published at once: the
        # moment a process breaks is the moment the fleet's view matters.
        signature = self._signature()
        now = self._clock.monotonic()
        with self._lock:
            if not force and now < self._next and signature == self._published:
                return False
            self._next = now + self.policy.interval
            self._published = signature
            return True

    def _args(self, stale_served: int) -> list[Any]:
        health = self._health()
        joined = None if health.incident_id is None else self.incidents.joined(health.incident_id)
        payload = snapshot_json(
            health,
            host=self.host,
            pid=self.pid,
            credentials=self._credentials,
            counters=self.counters(stale_served),
            ttl=self.policy.ttl,
            fleet_incident_id=joined,
        )
        return [self.process_id, payload, int(self.policy.ttl * 1000)]

    # ------------------------------------------------------------------ publishing

    def after_call(self, stale_served: int) -> None:
        """A call ended: publish if due, and only while Redis is up (costs a call nothing)."""
        if self.link.latch.up and self._due(False):
            self._send(stale_served)

    async def aafter_call(self, stale_served: int) -> None:
        """Async twin of :meth:`after_call`."""
        if self.link.latch.up and self._due(False):
            await self._asend(stale_served)

    def publish(self, stale_served: int, *, force: bool = False) -> bool:
        """Publish now if due (or *force*); may probe a Redis that was down. ``True`` if sent."""
        return self._due(force) and self._send(stale_served)

    async def apublish(self, stale_served: int, *, force: bool = False) -> bool:
        """Async twin of :meth:`publish`."""
        return self._due(force) and await self._asend(stale_served)

    def _send(self, stale_served: int) -> bool:
        # The health snapshot, then the incident reports that changed (none, mostly).
        reply = self.link.call(_PUBLISH, self._keys, self._args(stale_served))
        if reply is MISSED:
            return False
        self._check_lost(reply)
        if self.incidents.report(*self._incidents()):  # the snapshot names the fleet incident
            self.link.call(_PUBLISH, self._keys, self._args(stale_served))
        return True

    async def _asend(self, stale_served: int) -> bool:
        reply = await self.link.acall(_PUBLISH, self._keys, self._args(stale_served))
        if reply is MISSED:
            return False
        self._check_lost(reply)
        if await self.incidents.areport(*self._incidents()):
            await self.link.acall(_PUBLISH, self._keys, self._args(stale_served))
        return True

    def _check_lost(self, reply: object) -> None:
        # Not a member before this publication: Redis lost what we had sent (flushed,
        # restarted, or we were silent past the ttl), so the incident reports go again.
        if isinstance(reply, list) and len(reply) == 2 and reply[1] == 1:
            self.incidents.forget()

    # ------------------------------------------------------------------ reading

    def read(self) -> FleetHealth:
        """The fleet's health (``unknown``, ``reachable=False`` when Redis cannot be reached)."""
        reply = self.link.call(_READ, self._keys, [])
        if reply is MISSED:
            return unseen("Redis is unreachable: the fleet cannot be seen", time.time())
        return aggregate(reply)

    async def aread(self) -> FleetHealth:
        """Async twin of :meth:`read`."""
        reply = await self.link.acall(_READ, self._keys, [])
        if reply is MISSED:
            return unseen("Redis is unreachable: the fleet cannot be seen", time.time())
        return aggregate(reply)

    def read_after(self, stale_served: int) -> FleetHealth:
        """Publish this process's snapshot (forced), then :meth:`read` the fleet's."""
        self.publish(stale_served, force=True)
        return self.read()

    async def aread_after(self, stale_served: int) -> FleetHealth:
        """Async twin of :meth:`read_after`."""
        await self.apublish(stale_served, force=True)
        return await self.aread()

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Leave the fleet's view now (a closed client publishes no more), then disconnect."""
        if self.link.latch.up:
            self.link.call(_LEAVE, self._keys, [self.process_id])
        self.link.close()

    async def aclose(self) -> None:
        """Async twin of :meth:`close`."""
        if self.link.latch.up:
            await self.link.acall(_LEAVE, self._keys, [self.process_id])
        await self.link.aclose()

    def __repr__(self) -> str:
        return f"FleetPublisher({self.process_id!r}, {self.link!r})"


def read_fleet(
    redis_url: str,
    *,
    key_prefix: str = DEFAULT_KEY_PREFIX,
    socket_timeout: float = 1.0,
    clock: Clock | None = None,
) -> FleetHealth:
    """Read the fleet's health from *redis_url* without a client (the CLI's ``fleet status``).

    Args:
        redis_url: the fleet's Redis (a malformed URL raises ``ValueError`` naming it,
            without its password).
        key_prefix: the keys' prefix (``KeyScheme``).
        socket_timeout: seconds a connect or the read may take.
        clock: the latch's clock (tests).
    """
    link = RedisLink(
        "fleet", redis_url, clock or SystemClock(), None, socket_timeout=socket_timeout
    )
    try:
        reply = link.call(_READ, KeyScheme(key_prefix).fleet(), [])
    finally:
        link.close()
    if reply is MISSED:
        return unseen(
            f"Redis at {redact_url(redis_url)} is unreachable: the fleet cannot be seen",
            time.time(),
        )
    return aggregate(reply)
