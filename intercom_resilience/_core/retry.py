"""Retry decisions: may this attempt be repeated, and after how long?

Pure functions of the request's kind, the attempt's outcome and the policy, asked by the call
driver between attempts; nothing here sleeps. What a status *means* (retryable at all? only for
idempotent requests?) is the status table's (:mod:`.status`); this module applies it to a request.

The rule that matters most: an attempt that may have reached Intercom (5xx, read timeout, dropped
connection) is repeated only when repeating cannot change the outcome (GET, HEAD, PUT, DELETE and
the read-only ``POST`` search/list endpoints). A create, reply or event whose fate is unknown is
never re-sent: that is how duplicate conversations are born.
"""

from __future__ import annotations

import enum
import math

from .._config import RetryPolicy
from .outcome import Outcome
from .requests import RequestKind
from .responses import parse_retry_after
from .status import RetryRule
from .window import SlidingCounter

__all__ = ["RetryBudget", "Verdict", "backoff", "judge", "server_wait"]


class Verdict(enum.Enum):
    """What to do after an attempt."""

    #: 2xx: done.
    SUCCESS = "success"
    #: Not processed, or safe to repeat: try again (if attempts, deadline and budget allow).
    RETRY = "retry"
    #: 401 with a token callable: fetch a fresh token and try once more.
    ROTATE_TOKEN = "rotate_token"  # noqa: S105 - a verdict, not a credential
    #: A non-idempotent write that may have been processed: do not repeat, tell the caller.
    OUTCOME_UNKNOWN = "outcome_unknown"
    #: An answer (4xx) or an unretryable failure: hand it to the caller as it is.
    FAIL = "fail"


# Enum members read on every call, bound to module names (see _core/__init__.py).
_SUCCESS = Verdict.SUCCESS


def judge(kind: RequestKind, outcome: Outcome, *, can_rotate_token: bool, rotated: bool) -> Verdict:
    """Classify an attempt's *outcome* for a request of *kind*.

    Args:
        can_rotate_token: the client's token is a callable that may return a new token.
        rotated: this call already rotated its token once (a second 401 is final).
    """
    meaning = outcome.means
    if meaning.ok:
        return _SUCCESS
    rule = meaning.retry
    if rule is RetryRule.ROTATE_TOKEN:
        return Verdict.ROTATE_TOKEN if can_rotate_token and not rotated else Verdict.FAIL
    if rule is RetryRule.ALWAYS:
        return Verdict.RETRY  # nothing was processed: safe for every method
    if rule is RetryRule.IF_IDEMPOTENT:
        return Verdict.RETRY if kind.is_idempotent else Verdict.OUTCOME_UNKNOWN
    return Verdict.FAIL  # an answer (400/403/404/409/410/422, …): repeating cannot help


def backoff(policy: RetryPolicy, retry_number: int, uniform: float) -> float:
    """Full-jitter exponential backoff before retry number *retry_number* (1 for the first).

    Args:
        uniform: a random number in ``[0, 1)`` (injected so the function stays pure).

    Returns:
        ``uniform * min(max_delay, base_delay * 2 ** (retry_number - 1))``.
    """
    exponent = min(max(retry_number - 1, 0), 62)  # 2**62 already dwarfs any max_delay
    ceiling = min(policy.max_delay, policy.base_delay * math.ldexp(1.0, exponent))
    return min(max(uniform, 0.0), 1.0) * ceiling


def server_wait(policy: RetryPolicy, outcome: Outcome, now: float) -> float | None:
    """The wait the server asked for: ``Retry-After``, else (on 429) ``X-RateLimit-Reset``.

    Clamped to ``[0, policy.max_server_wait]``; ``None`` when the server said nothing usable.
    """
    wait = parse_retry_after(outcome.headers.get("retry-after"), now)
    if wait is None and outcome.means.rate_limited:
        info = outcome.rate_limit
        if info is not None and info.reset_at is not None:
            wait = max(0.0, info.reset_at - now)
    if wait is None:
        return None
    return min(wait, policy.max_server_wait)


class RetryBudget:
    """Retries may add at most ``ratio`` of the request rate (plus ``floor``) over a window.

    During a full outage every first attempt fails; without a budget each would be retried
    ``max_attempts - 1`` times and the client would multiply the load on a service that is already
    down. With it, total upstream requests stay within ``(1 + ratio) × calls + floor``.
    """

    __slots__ = ("_counter", "floor", "ratio")

    def __init__(self, ratio: float, floor: int, window: float) -> None:
        self.ratio = ratio
        self.floor = floor
        self._counter = SlidingCounter(window, ("calls", "retries"))

    def record_call(self, now: float) -> None:
        """Count a call (its first attempt)."""
        self._counter.add(now, "calls")

    def try_spend(self, now: float) -> bool:
        """Spend one retry if the budget allows it; ``False`` (and nothing spent) otherwise."""
        totals = self._counter.totals(now)
        if totals["retries"] + 1 > self.floor + self.ratio * totals["calls"]:
            return False
        self._counter.add(now, "retries")
        return True
