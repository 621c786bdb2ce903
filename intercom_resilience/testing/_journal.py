"""The journal: every request the fake received, for assertions such as "replied exactly once"."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ._paths import PathPattern

__all__ = ["Journal", "JournalEntry"]


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One request as the fake saw it.

    ``status`` is ``None`` when the client got no response (``outcome`` says why);
    ``changed_state`` is true when the request created, updated or deleted something, including a
    write whose response was then lost. ``token_fingerprint`` identifies the token without
    revealing it.
    """

    seq: int
    method: str
    path: str
    query: str
    template: str | None
    status: int | None
    request_id: str
    time: float
    changed_state: bool
    token_fingerprint: str | None
    app: str | None
    workspace: str | None
    fault: str | None
    outcome: str  # "response", "connect_error", "connection_reset" or "read_timeout"


_Criterion = Callable[[JournalEntry], bool]


def _attribute_equals(attr: str, wanted: object) -> _Criterion:
    return lambda entry: bool(getattr(entry, attr) == wanted)


class Journal:
    """A bounded, thread-safe record of requests: ``fake.journal``.

    Args:
        maxlen: how many entries to keep (the oldest go first); ``None`` keeps all.
    """

    def __init__(self, maxlen: int | None = 100_000) -> None:
        self._entries: deque[JournalEntry] = deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self._seq = 0

    def next_seq(self) -> int:
        """Reserve the next sequence number."""
        with self._lock:
            self._seq += 1
            return self._seq

    def record(self, entry: JournalEntry) -> None:
        """Append *entry*."""
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[JournalEntry]:
        """A snapshot of every entry, oldest first."""
        with self._lock:
            return list(self._entries)

    def __iter__(self) -> Iterator[JournalEntry]:
        return iter(self.entries())

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()

    def filter(
        self,
        *,
        method: str | Iterable[str] | None = None,
        path: str | None = None,
        template: str | None = None,
        status: int | Iterable[int] | None = None,
        changed_state: bool | None = None,
        app: str | None = None,
        workspace: str | None = None,
        token_fingerprint: str | None = None,
        fault: str | bool | None = None,
        outcome: str | None = None,
        since: float | None = None,
    ) -> list[JournalEntry]:
        """Entries matching every given criterion, oldest first.

        Args:
            method: one method or several.
            path: a path pattern (``"/conversations/*/reply"``; see :class:`PathPattern`).
            template: the exact route template (``"/conversations/{conversation_id}/reply"``).
            status: one status or several.
            changed_state: whether the request changed the fake's state.
            fault: a fault label prefix (``"fail_next"``, ``"chaos"``), or ``True``/``False``
                for "any fault" / "no fault".
            since: only entries at or after this time on the fake's clock.
        """
        checks: list[_Criterion] = []
        if method is not None:
            methods = {method.upper()} if isinstance(method, str) else {m.upper() for m in method}
            checks.append(lambda e: e.method in methods)
        if path is not None:
            pattern = PathPattern(path)
            checks.append(lambda e: pattern.matches(e.path))
        if template is not None:
            checks.append(lambda e: e.template == template)
        if status is not None:
            statuses = {status} if isinstance(status, int) else set(status)
            checks.append(lambda e: e.status in statuses)
        if changed_state is not None:
            checks.append(lambda e: e.changed_state is changed_state)
        for attr, wanted in (
            ("app", app),
            ("workspace", workspace),
            ("token_fingerprint", token_fingerprint),
            ("outcome", outcome),
        ):
            if wanted is not None:
                checks.append(_attribute_equals(attr, wanted))
        if isinstance(fault, bool):
            checks.append(lambda e: (e.fault is not None) is fault)
        elif fault is not None:
            checks.append(lambda e: e.fault is not None and e.fault.startswith(fault))
        if since is not None:
            checks.append(lambda e: e.time >= since)
        return [e for e in self.entries() if all(check(e) for check in checks)]

    def count(self, **criteria: object) -> int:
        """How many entries match; takes the same criteria as :meth:`filter`."""
        return len(self.filter(**criteria))  # type: ignore[arg-type]

    def last(self, **criteria: object) -> JournalEntry | None:
        """The most recent matching entry, or ``None``."""
        found = self.filter(**criteria)  # type: ignore[arg-type]
        return found[-1] if found else None

    def __repr__(self) -> str:
        return f"Journal({len(self._entries)} entries)"
