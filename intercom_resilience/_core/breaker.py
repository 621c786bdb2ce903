"""The circuit breaker: stop calling Intercom while it is known to be down.

A small state machine over a sliding window of attempt outcomes::

    CLOSED ──(≥ min_calls and failure share ≥ failure_ratio)──► OPEN
    CLOSED ──(consecutive_failures failures with no success between them)──► OPEN
    OPEN ──(cooldown elapsed; next allow())──► HALF_OPEN
    HALF_OPEN ──(half_open_calls successes)──► CLOSED
    HALF_OPEN ──(any failure)──► OPEN

Only outages count as failures (network failures and 5xx): a 4xx is our mistake, not Intercom's
outage, and a 429 is the rate limiter's business.

The run of consecutive failures is what lets a busy client open fast: the share needs the
window's earlier successes outweighed (half a window at a steady rate), while a run of failures
with no success among them is an outage whatever the window held before.

Not thread-safe by itself: the pipeline serialises access.
"""

from __future__ import annotations

import dataclasses
import enum

from .._config import BreakerPolicy
from .window import SlidingCounter

__all__ = ["BreakerState", "CircuitBreaker", "Transition"]


class BreakerState(enum.Enum):
    """The breaker's state."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclasses.dataclass(frozen=True, slots=True)
class Transition:
    """One change of state, for logs and the incident timeline."""

    at: float
    previous: BreakerState
    state: BreakerState
    reason: str


# Enum members read on every call, bound to module names (see _core/__init__.py).
_HALF_OPEN = BreakerState.HALF_OPEN


class CircuitBreaker:
    """See the module docstring.

    Args:
        policy: thresholds and timings.
    """

    __slots__ = (
        "_counter",
        "_in_trial",
        "_opened_at",
        "_run",
        "_trial_successes",
        "policy",
        "state",
    )

    def __init__(self, policy: BreakerPolicy) -> None:
        self.policy = policy
        self.state = BreakerState.CLOSED
        self._counter = SlidingCounter(policy.window, ("calls", "failures"))
        self._opened_at = 0.0
        self._in_trial = 0
        self._trial_successes = 0
        self._run = 0  # failures since the last success (closed state)

    @property
    def retry_at(self) -> float | None:
        """When an open breaker will let a trial call through (``None`` unless open)."""
        if self.state is BreakerState.OPEN:
            return self._opened_at + self.policy.cooldown
        return None

    def allow(self, now: float) -> tuple[bool, Transition | None]:
        """May a call go out now? Returns the answer and the transition it caused, if any."""
        if not self.policy.enabled or self.state is BreakerState.CLOSED:
            return True, None
        transition = None
        if self.state is BreakerState.OPEN:
            if now < self._opened_at + self.policy.cooldown:
                return False, None
            transition = self._move(now, BreakerState.HALF_OPEN, "cooldown elapsed")
            self._in_trial = 0
            self._trial_successes = 0
        if self._in_trial + self._trial_successes >= self.policy.half_open_calls:
            return False, transition
        self._in_trial += 1
        return True, transition

    def record(self, now: float, *, failed: bool | None) -> Transition | None:
        """Record an attempt's result: ``True`` an outage, ``False`` a success, ``None`` neutral.

        Neutral results (429, and calls refused before sending) release a half-open trial slot
        without deciding anything.
        """
        if not self.policy.enabled:
            return None
        if self.state is _HALF_OPEN:
            self._in_trial = max(0, self._in_trial - 1)
            if failed:
                return self._open(now, "trial call failed")
            if failed is False:
                self._trial_successes += 1
                if self._trial_successes >= self.policy.half_open_calls:
                    self._counter.clear()
                    self._run = 0
                    return self._move(now, BreakerState.CLOSED, "trial calls succeeded")
            return None
        if failed is None:
            return None
        self._counter.add(now, "calls")
        if not failed:
            self._run = 0
            return None  # a success never makes things look worse
        self._counter.add(now, "failures")
        if self.state is BreakerState.CLOSED:
            self._run += 1
            policy = self.policy
            totals = self._counter.totals(now)
            calls, failures = totals["calls"], totals["failures"]
            if calls >= policy.min_calls and failures >= policy.failure_ratio * calls:
                return self._open(now, f"{failures:.0f} of {calls:.0f} recent calls failed")
            run = policy.consecutive_failures
            if run is not None and self._run >= run:
                return self._open(now, f"{self._run} calls failed in a row")
        return None

    def _open(self, now: float, reason: str) -> Transition:
        self._opened_at = now
        self._in_trial = 0
        self._trial_successes = 0
        self._run = 0
        return self._move(now, BreakerState.OPEN, reason)

    def _move(self, now: float, state: BreakerState, reason: str) -> Transition:
        transition = Transition(at=now, previous=self.state, state=state, reason=reason)
        self.state = state
        return transition
