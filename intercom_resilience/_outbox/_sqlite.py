"""The embedded outbox: a SQLite file in WAL mode (stdlib ``sqlite3``).

Every enqueue is one committed transaction, so a crash or a restart loses nothing. A drain takes
a lease (a row of ``outbox_lease``, in a ``BEGIN IMMEDIATE`` transaction) so that one process
replays at a time, and marks each entry *sent* (committed) before sending it: a drain killed
after that mark leaves the entry pending and marked, and the next drain reconciles it instead of
sending it blindly. A corrupt or locked file raises :class:`OutboxError` naming the file.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ._model import NewEntry, OutboxEntry, OutboxError, State

__all__ = ["SQLiteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    body BLOB NOT NULL,
    content_type TEXT,
    resource TEXT NOT NULL,
    created_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    first_sent_at REAL,
    error TEXT,
    status INTEGER,
    request_id TEXT
);
CREATE INDEX IF NOT EXISTS outbox_by_state ON outbox (state, id);
CREATE TABLE IF NOT EXISTS outbox_lease (name TEXT PRIMARY KEY, owner TEXT, until REAL);
"""

_COLUMNS = (
    "id, method, path, body, content_type, resource, created_at, state, attempts, "
    "first_sent_at, error, status, request_id"
)


def _entry(row: Any) -> OutboxEntry:
    return OutboxEntry(
        id=str(row[0]),
        method=row[1],
        path=row[2],
        body=bytes(row[3]),
        content_type=row[4],
        resource=row[5],
        created_at=row[6],
        state=row[7],
        attempts=row[8],
        first_sent_at=row[9],
        error=row[10],
        status=row[11],
        request_id=row[12],
    )


class SQLiteStore:
    """An outbox in the SQLite file *path* (created on first use).

    Args:
        path: the file.
        busy_timeout: seconds to wait for another process's write lock before failing.
    """

    backend = "sqlite"

    def __init__(self, path: str, *, busy_timeout: float = 5.0) -> None:
        self.path = str(Path(path))
        self.location = self.path
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            with self._errors("open"):
                self._db.execute("PRAGMA journal_mode=WAL")
                # NORMAL in WAL mode survives a killed process (not a power cut) without a
                # sync per commit: what lets enqueue keep up with thousands of writes a second.
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.executescript(_SCHEMA)
        except sqlite3.Error as error:
            raise self._error("open", error) from error

    def _error(self, doing: str, error: sqlite3.Error) -> OutboxError:
        text = str(error)
        if "locked" in text or "busy" in text:
            why = f"it is locked by another process ({text})"
        elif isinstance(error, sqlite3.DatabaseError) and not isinstance(
            error, sqlite3.OperationalError
        ):
            why = f"it is not a usable outbox database ({text}): move it aside to start afresh"
        else:
            why = text
        return OutboxError(f"outbox file {self.path!r}: cannot {doing}: {why}")

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as error:
            raise self._error(doing, error) from error

    @contextmanager
    def _transaction(self, doing: str) -> Iterator[sqlite3.Connection]:
        with self._lock, self._errors(doing):
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def add(self, entry: NewEntry) -> str:
        """Queue *entry*; committed when this returns."""
        with self._transaction("queue a write") as db:
            cursor = db.execute(
                "INSERT INTO outbox (method, path, body, content_type, resource, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    entry.method,
                    entry.path,
                    entry.body,
                    entry.content_type,
                    entry.resource,
                    entry.created_at,
                ),
            )
            return str(cursor.lastrowid)

    def acquire(self, owner: str, now: float, lease: float) -> bool:
        """Take or renew the drain lease."""
        with self._transaction("take the drain lease") as db:
            row = db.execute(
                "SELECT owner, until FROM outbox_lease WHERE name = 'drain'"
            ).fetchone()
            if row is not None and row[0] != owner and row[1] > now:
                return False
            db.execute(
                "INSERT OR REPLACE INTO outbox_lease (name, owner, until) VALUES ('drain', ?, ?)",
                (owner, now + lease),
            )
            return True

    def release_lease(self, owner: str) -> None:
        """Give the lease back (only if *owner* holds it)."""
        with self._transaction("give the drain lease back") as db:
            db.execute("DELETE FROM outbox_lease WHERE name = 'drain' AND owner = ?", (owner,))

    def head(self, owner: str, after: str | None, limit: int) -> list[OutboxEntry]:
        """Pending entries with an id above *after*, oldest first."""
        del owner  # the lease, not the read, says who drains
        start = int(after) if after is not None else 0
        with self._lock, self._errors("read the queue"):
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE state = 'pending' AND id > ? "  # noqa: S608
                "ORDER BY id LIMIT ?",
                (start, limit),
            ).fetchall()
        return [_entry(row) for row in rows]

    def mark_sent(self, entry_id: str, now: float) -> None:
        """Committed before the send: a crash after it leaves the entry marked."""
        with self._transaction("mark a write as sent") as db:
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, "
                "first_sent_at = COALESCE(first_sent_at, ?) WHERE id = ?",
                (now, int(entry_id)),
            )

    def done(self, entry_id: str) -> None:
        """Delivered: gone from the queue."""
        with self._transaction("remove a delivered write") as db:
            db.execute("DELETE FROM outbox WHERE id = ?", (int(entry_id),))

    def dead(self, entry: OutboxEntry, error: str, status: int | None, rid: str | None) -> None:
        """Into the dead letters, with Intercom's error and request id."""
        with self._transaction("dead-letter a write") as db:
            db.execute(
                "UPDATE outbox SET state = 'dead', error = ?, status = ?, request_id = ? "
                "WHERE id = ?",
                (error, status, rid, int(entry.id)),
            )

    def defer(self, entry_id: str, error: str) -> None:
        """Stays pending; the error says why."""
        with self._transaction("defer a write") as db:
            db.execute("UPDATE outbox SET error = ? WHERE id = ?", (error, int(entry_id)))

    def stats(self) -> tuple[int, float | None, int]:
        """``(depth, oldest created_at, dead)``."""
        with self._lock, self._errors("count the queue"):
            depth, oldest = self._db.execute(
                "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE state = 'pending'"
            ).fetchone()
            (dead,) = self._db.execute(
                "SELECT COUNT(*) FROM outbox WHERE state = 'dead'"
            ).fetchone()
        return int(depth), oldest, int(dead)

    def entries(self, state: State, limit: int) -> list[OutboxEntry]:
        """Entries in *state*, oldest first."""
        with self._lock, self._errors("list the queue"):
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE state = ? ORDER BY id LIMIT ?",  # noqa: S608
                (state, limit),
            ).fetchall()
        return [_entry(row) for row in rows]

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()
