"""Per-call deadlines: the lane's default, or one the caller set for a block of calls.

A deadline runs from the facade call to its answer and covers every wait (limiter, backoff,
server-directed) and every attempt, body included. ``client.deadline(seconds)`` and the SDK's
``request_options={"timeout_in_seconds": ...}`` set one for the calls in their scope, in the
caller's own thread or task; an inner scope can shorten an outer one, never extend it, so a
deadline set around a pager iteration holds for all of its pages.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from .._backends.base import Priority
from .._clock import Clock
from .._config import DeadlinePolicy

__all__ = ["deadline_scope", "lane_deadline", "scoped_deadline"]

#: The caller's deadline, as the clock it was set on and a monotonic time of that clock.
_scoped: ContextVar[tuple[Clock, float] | None] = ContextVar(
    "intercom_resilience_deadline", default=None
)


def _on(clock: Clock, scoped: tuple[Clock, float]) -> float:
    """A scoped deadline as a monotonic time of *clock* (clients may run on different clocks)."""
    other, end = scoped
    if other is clock:
        return end
    return clock.monotonic() + (end - other.monotonic())


@contextmanager
def deadline_scope(clock: Clock, seconds: float) -> Iterator[float]:
    """Calls in the block end within *seconds* from now (or an enclosing scope's deadline).

    Yields the block's deadline as a monotonic time of *clock*.
    """
    end = clock.monotonic() + seconds
    outer = _scoped.get()
    if outer is not None:
        end = min(end, _on(clock, outer))
    token = _scoped.set((clock, end))
    try:
        yield end
    finally:
        _scoped.reset(token)


def scoped_deadline(clock: Clock) -> float | None:
    """The deadline the caller set for calls made now (a monotonic time of *clock*), if any."""
    scoped = _scoped.get()
    return None if scoped is None else _on(clock, scoped)


# Enum members read on every call, bound to module names (see _core/__init__.py).
_BACKGROUND = Priority.BACKGROUND


def lane_deadline(policy: DeadlinePolicy, priority: Priority) -> float:
    """The default deadline, in seconds, of a call at *priority*."""
    return policy.background if priority is _BACKGROUND else policy.interactive
