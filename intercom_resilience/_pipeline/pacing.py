"""Pacing: the limiter refused a token; wait for the next one, or give up in time."""

from __future__ import annotations

from .._backends.base import Grant
from .._core.status import StaleReason
from .._errors import RateLimitedError
from ..events import LimiterWait
from .call import Call, Conclusion
from .shared import Shared, where

__all__ = ["Pacing"]

#: A backend that says "wait 0" but refuses gets this pause, so a call never spins.
_MIN_WAIT = 0.001


class Pacing:
    """Decides what a call does when the limiter has no token for it now."""

    def __init__(self, shared: Shared) -> None:
        self._shared = shared

    def on_refused(self, call: Call, grant: Grant) -> float | Conclusion:
        """The seconds to wait for the next token, or how the call ends if it cannot wait.

        The wait is bounded by ``RateLimitPolicy.max_wait`` and by the call's deadline.
        """
        shared = self._shared
        now = shared.clock.monotonic()
        # The attempt after the wait needs time of its own before the deadline.
        left = call.deadline - now - shared.config.deadlines.minimum
        remaining = min(shared.config.rate_limit.max_wait, left)
        if grant.wait > remaining:
            error = RateLimitedError(
                f"no rate-limit token for {call.kind.method} {call.kind.template} within "
                f"{max(remaining, 0.0):.1f}s (next expected in {grant.wait:.1f}s)",
                retry_at=shared.clock.time() + grant.wait,
                retry_after=grant.wait,
            )
            shared.refuse(call, StaleReason.LIMITER_WAIT)
            if call.attempts == 0:
                shared.abandon(call)  # it may hold a half-open trial slot it will never use
            reason = StaleReason.LIMITER_WAIT if call.kind.is_read else None
            return Conclusion(error=error, stale_reason=reason)
        wait = max(grant.wait, _MIN_WAIT)
        # The 429s this library prevents are these waits: make them countable.
        if shared.telemetry.wants_debug():
            shared.telemetry.emit(LimiterWait(*where(call), wait_s=round(wait, 4)))
        return wait
