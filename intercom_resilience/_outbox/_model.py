"""What the outbox holds and tells: entries, status, drain reports, errors."""

from __future__ import annotations

import dataclasses
from typing import Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

from .._errors import IntercomResilienceError

__all__ = [
    "DrainReport",
    "NewEntry",
    "OutboxEntry",
    "OutboxError",
    "OutboxStatus",
    "OutboxStore",
    "OutboxUnavailableError",
    "State",
    "WriteQueuedError",
    "safe_url",
]

#: Where an entry is: waiting (``pending``) or rejected by Intercom (``dead``).
State = Literal["pending", "dead"]


class OutboxError(IntercomResilienceError):
    """The outbox cannot be used: its SQLite file is corrupt or locked (the message names it).

    Calls that do not use the outbox (every read, and writes without ``queue_when_unavailable``)
    keep working.
    """


class OutboxUnavailableError(OutboxError):
    """The Redis outbox is unreachable: the write was **not** queued (never a silent drop).

    Set ``OutboxPolicy.fallback_path`` to queue in a local SQLite file meanwhile.
    """


class WriteQueuedError(IntercomResilienceError):
    """The write could not go out now and was queued in the outbox; it will be replayed.

    Raised instead of the unavailability error when ``OutboxPolicy.queue_when_unavailable`` is
    on; the original error is the ``__cause__``.

    Attributes:
        entry_id: the outbox entry (see ``client.outbox.list()``).
        method: the write's method.
        path: the write's path template.
    """

    def __init__(self, entry_id: str, method: str, path: str, reason: str) -> None:
        self.entry_id = entry_id
        self.method = method
        self.path = path
        super().__init__(
            f"{method} {path} could not be sent now ({reason}); queued in the outbox as "
            f"entry {entry_id}, to be replayed exactly once by client.outbox.drain()"
        )


@dataclasses.dataclass(frozen=True, slots=True)
class NewEntry:
    """A write to queue: the request as it would be sent, never its credentials."""

    method: str
    path: str  # with its query string
    body: bytes
    content_type: str | None
    resource: str  # replayed in order per resource
    created_at: float


@dataclasses.dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One queued write.

    Attributes:
        id: the entry's id (an integer for SQLite, a stream id for Redis), as text.
        method: the HTTP method.
        path: the path, with its query string.
        body: the request body (JSON).
        content_type: the body's content type.
        resource: the resource it writes (entries of one resource replay in order).
        created_at: Unix time it was queued.
        state: ``pending`` or ``dead``.
        attempts: replays started.
        first_sent_at: Unix time a replay first sent it (``None``: never sent); a write
            that may have been sent is reconciled, never blindly re-sent.
        error: the last replay's error (why it waits, or why it is dead).
        status: the last answer's status, when there was one.
        request_id: Intercom's request id of the last answer.
    """

    id: str
    method: str
    path: str
    body: bytes
    content_type: str | None
    resource: str
    created_at: float
    state: State = "pending"
    attempts: int = 0
    first_sent_at: float | None = None
    error: str | None = None
    status: int | None = None
    request_id: str | None = None

    @property
    def maybe_sent(self) -> bool:
        """A replay sent it before (and may have been killed before it heard back)."""
        return self.first_sent_at is not None


@dataclasses.dataclass(frozen=True, slots=True)
class OutboxStatus:
    """The outbox at a glance (``intercom-resilience outbox status``).

    Attributes:
        backend: ``sqlite`` or ``redis``.
        location: the file, or the stream key and Redis URL (password hidden).
        depth: writes waiting.
        oldest_age: seconds the oldest waiting write has waited (``None`` when empty).
        dead: writes Intercom rejected (dead letters).
        fallback_depth: writes waiting in the local fallback file (Redis backend).
    """

    backend: str
    location: str
    depth: int
    oldest_age: float | None
    dead: int
    fallback_depth: int = 0


@dataclasses.dataclass(slots=True)
class DrainReport:
    """What one drain did.

    Attributes:
        delivered: writes Intercom now has (each exactly once).
        reconciled: of those, how many were resolved by reconciliation, by how
            (``resent``, ``conflict``, ``lookup``).
        dead: writes moved to the dead letters (Intercom rejected them, or an interrupted
            unresolvable write whose outcome is unknown).
        deferred: writes left for a later drain (Intercom still unavailable).
        remaining: writes still waiting after the drain.
        busy: another worker holds the outbox: this drain did nothing.
    """

    delivered: int = 0
    reconciled: dict[str, int] = dataclasses.field(default_factory=dict)
    dead: int = 0
    deferred: int = 0
    remaining: int = 0
    busy: bool = False


class OutboxStore(Protocol):
    """Where queued writes live (SQLite or Redis). Every method may raise :class:`OutboxError`."""

    backend: str
    location: str

    def add(self, entry: NewEntry) -> str:
        """Queue *entry* durably; its id."""
        ...

    def acquire(self, owner: str, now: float, lease: float) -> bool:
        """Take (or renew) the drain lease; ``False`` when another owner holds it."""
        ...

    def release_lease(self, owner: str) -> None:
        """Give the drain lease back."""
        ...

    def head(self, owner: str, after: str | None, limit: int) -> list[OutboxEntry]:
        """Pending entries after the cursor *after* (``None``: from the start), oldest first."""
        ...

    def mark_sent(self, entry_id: str, now: float) -> None:
        """Record, durably and before sending, that a replay is about to send the entry."""
        ...

    def done(self, entry_id: str) -> None:
        """The entry is delivered: remove it."""
        ...

    def dead(self, entry: OutboxEntry, error: str, status: int | None, rid: str | None) -> None:
        """Move the entry to the dead letters with Intercom's error and request id."""
        ...

    def defer(self, entry_id: str, error: str) -> None:
        """Leave the entry for a later drain, noting why."""
        ...

    def stats(self) -> tuple[int, float | None, int]:
        """``(depth, oldest created_at, dead)``."""
        ...

    def entries(self, state: State, limit: int) -> list[OutboxEntry]:
        """Entries in *state*, oldest first."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def safe_url(url: str) -> str:
    """*url* with any password replaced by ``***`` (for messages and status)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))
