"""The fleet outbox: a Redis Stream with a consumer group (extra ``redis``).

Entries are stream entries (``XADD``); drainers read them through one consumer group, so an
entry is delivered to one consumer, and stays in the group's pending list until acknowledged
(``XACK``, then ``XDEL``). One drainer replays at a time (a lease key, ``SET NX PX``), which
keeps the order per resource across the fleet; a drainer killed mid-drain loses its lease after
``OutboxPolicy.lease`` seconds, and the next one claims its pending entries (``XAUTOCLAIM``).
Each entry is marked *sent* (``HSETNX <key>:sent``) before it is sent, so that a replay after a
crash is reconciled, never blindly repeated. Dead letters go to the stream ``<key>:dead``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ._model import NewEntry, OutboxEntry, OutboxError, OutboxUnavailableError, State, safe_url

__all__ = ["RedisStore"]

_GROUP = "drainers"

#: Renew the lease only if we hold it, or take it if nobody does.
_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisStore:
    """An outbox in the Redis stream *key* at *url*.

    Args:
        url: the Redis URL (``ResilienceConfig.redis_url``).
        key: the stream key (``OutboxPolicy.redis_key``).
        timeout: socket timeout in seconds.
    """

    backend = "redis"

    def __init__(self, url: str, key: str, *, timeout: float = 2.0) -> None:
        try:
            import redis
        except ImportError as error:  # pragma: no cover - the extra is installed in CI
            raise ImportError(
                "the redis outbox needs the 'redis' extra: pip install 'intercom-resilience[redis]'"
            ) from error
        self._redis_errors = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
        self._response_error = redis.exceptions.ResponseError
        self.key = key
        self.url = safe_url(url)
        self.location = f"{key} at {self.url}"
        self._client: Any = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._acquire = self._client.register_script(_ACQUIRE)
        self._release = self._client.register_script(_RELEASE)
        self._group_ready = False

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except self._redis_errors as error:
            raise OutboxUnavailableError(
                f"Redis outbox {self.location}: cannot {doing}: {type(error).__name__}: {error}"
            ) from error

    def _group(self) -> None:
        if self._group_ready:
            return
        try:
            self._client.xgroup_create(self.key, _GROUP, id="0", mkstream=True)
        except self._response_error as error:
            if "BUSYGROUP" not in str(error):
                # WRONGTYPE: the key holds something else. Not an outage: a configuration error.
                raise OutboxError(
                    f"Redis outbox {self.location}: cannot use the key as a stream "
                    f"({type(error).__name__}: {error}); set OutboxPolicy.redis_key to a free key"
                ) from error
        self._group_ready = True

    def add(self, entry: NewEntry) -> str:
        """``XADD``: durable once Redis acknowledged it (as durable as Redis is configured)."""
        fields = {
            "method": entry.method,
            "path": entry.path,
            "body": entry.body,
            "content_type": entry.content_type or "",
            "resource": entry.resource,
            "created_at": repr(entry.created_at),
        }
        with self._errors("queue a write"):
            self._group()
            return str(_text(self._client.xadd(self.key, fields)))

    def acquire(self, owner: str, now: float, lease: float) -> bool:
        """Take or renew the lease key (Redis's own clock expires it)."""
        del now
        with self._errors("take the drain lease"):
            return bool(self._acquire(keys=[f"{self.key}:lease"], args=[owner, int(lease * 1000)]))

    def release_lease(self, owner: str) -> None:
        """Give the lease back, if held."""
        with self._errors("give the drain lease back"):
            self._release(keys=[f"{self.key}:lease"], args=[owner])

    def _entry(self, entry_id: Any, fields: dict[Any, Any], state: State) -> OutboxEntry:
        get = {_text(k): v for k, v in fields.items()}
        ident = str(_text(entry_id))
        sent = None if state == "dead" else self._client.hget(f"{self.key}:sent", ident)
        attempts = 0 if state == "dead" else self._client.hget(f"{self.key}:attempts", ident)
        status = _text(get.get("status"))
        return OutboxEntry(
            id=ident,
            method=str(_text(get["method"])),
            path=str(_text(get["path"])),
            body=bytes(get.get("body") or b""),
            content_type=_text(get.get("content_type")) or None,
            resource=str(_text(get["resource"])),
            created_at=float(str(_text(get["created_at"]))),
            state=state,
            attempts=int(attempts or 0),
            first_sent_at=None if sent is None else float(str(_text(sent))),
            error=_text(get.get("error")) or _text(self._client.hget(f"{self.key}:error", ident)),
            status=int(status) if status else None,
            request_id=_text(get.get("request_id")) or None,
        )

    def head(self, owner: str, after: str | None, limit: int) -> list[OutboxEntry]:
        """This owner's pending entries after *after*, then new ones; oldest first.

        At the start of a drain (``after is None``) every entry another (dead) drainer had
        read is claimed first: the lease says that drainer is gone.
        """
        with self._errors("read the queue"):
            self._group()
            client = self._client
            if after is None:
                cursor: Any = "0-0"
                while True:
                    cursor, _claimed, *_ = client.xautoclaim(
                        self.key, _GROUP, owner, 0, start_id=cursor, count=1000
                    )
                    if _text(cursor) == "0-0":
                        break
            found: list[tuple[Any, Any]] = []
            for _stream, items in client.xreadgroup(
                _GROUP, owner, {self.key: after or "0"}, count=limit
            ):
                found.extend(item for item in items if item[1])  # deleted entries come back empty
            if len(found) < limit:
                for _stream, items in (
                    client.xreadgroup(_GROUP, owner, {self.key: ">"}, count=limit - len(found))
                    or []
                ):
                    found.extend(items)
            return [self._entry(entry_id, fields, "pending") for entry_id, fields in found]

    def mark_sent(self, entry_id: str, now: float) -> None:
        """Before the send: the mark outlives a crash."""
        with self._errors("mark a write as sent"):
            pipe = self._client.pipeline()
            pipe.hsetnx(f"{self.key}:sent", entry_id, repr(now))
            pipe.hincrby(f"{self.key}:attempts", entry_id, 1)
            pipe.execute()

    def _forget(self, pipe: Any, entry_id: str) -> None:
        pipe.xack(self.key, _GROUP, entry_id)
        pipe.xdel(self.key, entry_id)
        for suffix in ("sent", "attempts", "error"):
            pipe.hdel(f"{self.key}:{suffix}", entry_id)

    def done(self, entry_id: str) -> None:
        """Acknowledged and deleted, in one transaction."""
        with self._errors("remove a delivered write"):
            pipe = self._client.pipeline(transaction=True)
            self._forget(pipe, entry_id)
            pipe.execute()

    def dead(self, entry: OutboxEntry, error: str, status: int | None, rid: str | None) -> None:
        """Into ``<key>:dead`` with the error and request id; out of the queue."""
        with self._errors("dead-letter a write"):
            pipe = self._client.pipeline(transaction=True)
            pipe.xadd(
                f"{self.key}:dead",
                {
                    "method": entry.method,
                    "path": entry.path,
                    "body": entry.body,
                    "content_type": entry.content_type or "",
                    "resource": entry.resource,
                    "created_at": repr(entry.created_at),
                    "error": error,
                    "status": "" if status is None else str(status),
                    "request_id": rid or "",
                    "entry_id": entry.id,
                },
            )
            self._forget(pipe, entry.id)
            pipe.execute()

    def defer(self, entry_id: str, error: str) -> None:
        """Stays in this group's pending list; the error says why."""
        with self._errors("defer a write"):
            self._client.hset(f"{self.key}:error", entry_id, error)

    def stats(self) -> tuple[int, float | None, int]:
        """``(depth, oldest created_at, dead)``."""
        with self._errors("count the queue"):
            depth = int(self._client.xlen(self.key))
            first = self._client.xrange(self.key, count=1)
            dead = int(self._client.xlen(f"{self.key}:dead"))
        oldest = None
        if first:
            raw = {_text(k): v for k, v in first[0][1].items()}.get("created_at")
            oldest = float(str(_text(raw))) if raw is not None else None
        return depth, oldest, dead

    def entries(self, state: State, limit: int) -> list[OutboxEntry]:
        """Entries in *state*, oldest first."""
        key = self.key if state == "pending" else f"{self.key}:dead"
        with self._errors("list the queue"):
            items = self._client.xrange(key, count=limit)
            return [self._entry(entry_id, fields, state) for entry_id, fields in items]

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()
