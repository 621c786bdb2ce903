"""Call information: how each call was served, readable by the caller after the call.

The SDK hands back typed models, so there is nowhere on the result to say "this answer is 52
minutes old". Instead, a context manager collects a :class:`CallInfo` for every call made inside
it, in the caller's own context (thread or asyncio task), so concurrent callers never see each
other's calls::

    with intercom_resilience.capture_calls() as calls:
        contact = client.contacts.find(contact_id="42")
    if calls.last.stale:
        log.warning("served from cache", age=calls.last.age)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["CallInfo", "CapturedCalls", "capture_calls"]


@dataclasses.dataclass(frozen=True, slots=True)
class CallInfo:
    """How one call through a resilient client was served.

    Attributes:
        method: the HTTP method.
        path: the path template (``/contacts/{id}``).
        status: the status the caller saw (of the stale entry, when stale), or ``None`` for errors.
        attempts: upstream attempts made (0 when served without sending anything).
        stale: the answer came from the stale cache instead of Intercom.
        age: for stale answers, seconds since the stored answer was fresh.
        request_id: Intercom's request id of the answer, when it had one.
        failure_request_id: for stale answers, the request id of the failure that caused the
            fallback, when Intercom sent one.
        reason: why stale was served (``server_error``, ``rate_limited``, ``circuit_open``, …).
        reconciled: the write's answer was lost and reconciliation found out what happened
            (see ``docs/writes.md``); the answer is the real object.
        reconciled_by: how: ``resent`` (re-sent: the write is naturally idempotent),
            ``conflict`` (Intercom's 409 named the object the lost attempt created) or
            ``lookup`` (the write's trace was found); ``None`` when not reconciled.
        coalesced: the read sent nothing: an identical read in flight answered it (in this
            process, ``CachePolicy.coalesce``, or in another, ``fleet_coalesce``); ``attempts``
            is 0 and ``request_id`` is that read's.
    """

    method: str
    path: str
    status: int | None
    attempts: int
    stale: bool = False
    age: float | None = None
    request_id: str | None = None
    failure_request_id: str | None = None
    reason: str | None = None
    reconciled: bool = False
    reconciled_by: str | None = None
    coalesced: bool = False


class CapturedCalls:
    """The calls made inside one :func:`capture_calls` block, oldest first."""

    __slots__ = ("calls",)

    def __init__(self) -> None:
        self.calls: list[CallInfo] = []

    @property
    def last(self) -> CallInfo | None:
        """The most recent call, or ``None`` if none was made."""
        return self.calls[-1] if self.calls else None

    @property
    def stale(self) -> bool:
        """Any call in the block was answered from the stale cache."""
        return any(call.stale for call in self.calls)

    def __len__(self) -> int:
        return len(self.calls)

    def __iter__(self) -> Iterator[CallInfo]:
        return iter(self.calls)

    def __repr__(self) -> str:
        return f"CapturedCalls({self.calls!r})"


_active: ContextVar[tuple[CapturedCalls, ...]] = ContextVar(
    "intercom_resilience_captured_calls", default=()
)


@contextmanager
def capture_calls() -> Iterator[CapturedCalls]:
    """Collect a :class:`CallInfo` for every call made in this block (nesting allowed)."""
    captured = CapturedCalls()
    token = _active.set((*_active.get(), captured))
    try:
        yield captured
    finally:
        _active.reset(token)


def capturing() -> bool:
    """Is a :func:`capture_calls` block active in the current context?"""
    return bool(_active.get())


def record(info: CallInfo) -> None:
    """Append *info* to every active capture of the current context (cheap when none is)."""
    for captured in _active.get():
        captured.calls.append(info)
