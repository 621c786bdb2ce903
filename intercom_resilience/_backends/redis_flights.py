"""The fleet-coalescing lock of one read, in Redis (``CachePolicy.fleet_coalesce``).

One key per read (:meth:`~._redis.KeyScheme.flight`), next to the shared cache's entry of that
read. Its value says how the fleet's flight of that read stands:

* ``held:<token>``: a process took the lock (``SET NX PX``) and is fetching; the lock expires on
  its own after ``CachePolicy.fleet_wait``, so a leader that dies or hangs strands nobody;
* ``done:<stored_at>``: the leader put its answer in the shared cache; a waiter reads that entry,
  and takes it only if its ``stored_at`` is this one (the put may have been refused, or the entry
  replaced since: then the waiter fetches for itself). Kept ``fleet_wait`` too;
* no key: nobody is fetching (never was, finished without an answer, or expired).

Every call goes through the cache's :class:`~._redis.RedisLink` (its latch, its timeouts): Redis
down means :data:`~._redis.MISSED`, and the caller fetches for itself.
"""

from __future__ import annotations

from typing import Any

from ._redis import MISSED, KeyScheme, RedisLink, Script

__all__ = ["RedisFlights"]

# ARGV: token, ttl ms. 1 if this caller took the lock.
_LOCK = Script(
    """
if redis.call('SET', KEYS[1], 'held:' .. ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""
)

# The lock's value (nil when there is none).
_PEEK = Script("return redis.call('GET', KEYS[1])")

# ARGV: token, marker ('' when there is no answer to share), ttl ms. Only the holder lands.
_LAND = Script(
    """
if redis.call('GET', KEYS[1]) ~= 'held:' .. ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], 'done:' .. ARGV[2], 'PX', ARGV[3])
end
return 1
"""
)


def _state(reply: Any) -> str | None:
    if reply is MISSED:
        return None
    if reply is None:
        return ""
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


class RedisFlights:
    """Lock, peek and land the fleet's flights of reads (see the module docstring).

    Args:
        link: the shared cache's Redis link.
        keys: the cache's key scheme.
    """

    def __init__(self, link: RedisLink, keys: KeyScheme) -> None:
        self._link = link
        self._keys = keys

    def lock(self, key: str, token: str, ttl_ms: int) -> bool | None:
        """Take the lock of the read cached under *key*: ``True``, ``False`` (another process
        holds it), ``None`` (Redis unavailable)."""
        reply = self._link.call(_LOCK, (self._keys.flight(key),), (token, ttl_ms))
        return None if reply is MISSED else reply == 1

    async def alock(self, key: str, token: str, ttl_ms: int) -> bool | None:
        """Async twin of :meth:`lock`."""
        reply = await self._link.acall(_LOCK, (self._keys.flight(key),), (token, ttl_ms))
        return None if reply is MISSED else reply == 1

    def peek(self, key: str) -> str | None:
        """The lock's value: ``held:…``, ``done:…``, ``""`` (none); ``None``: Redis unavailable."""
        return _state(self._link.call(_PEEK, (self._keys.flight(key),), ()))

    async def apeek(self, key: str) -> str | None:
        """Async twin of :meth:`peek`."""
        return _state(await self._link.acall(_PEEK, (self._keys.flight(key),), ()))

    def land(self, key: str, token: str, marker: str | None, ttl_ms: int) -> None:
        """The holder is done: ``done:<marker>`` (an answer is in the cache) or release."""
        self._link.call(_LAND, (self._keys.flight(key),), (token, marker or "", ttl_ms))

    async def aland(self, key: str, token: str, marker: str | None, ttl_ms: int) -> None:
        """Async twin of :meth:`land`."""
        await self._link.acall(_LAND, (self._keys.flight(key),), (token, marker or "", ttl_ms))
