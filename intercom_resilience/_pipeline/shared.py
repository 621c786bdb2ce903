"""What the stages of one client share: policies, clock, breaker, retry budget, telemetry."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Generator
from typing import Any

from .._backends.base import BreakerBackend
from .._clock import Clock
from .._config import ResilienceConfig
from .._core.breaker import Transition
from .._core.retry import RetryBudget
from .._core.status import BreakerCount, StaleReason
from ..events import BreakerTransition, CallRefused
from .call import Call
from .effects import TELL_BREAKER, Effect
from .telemetry import Telemetry

__all__ = ["Shared"]


class Shared:
    """One client's state that several stages read or change. Thread-safe where it must be.

    Args:
        config: the policies.
        clock: the source of time.
        telemetry: where every stage reports.
        token: the client's token or token callable (called again to rotate after a 401).
        rng: randomness for backoff jitter.
        breaker: the circuit breaker (this process's, or the fleet's on Redis).
    """

    __slots__ = ("breaker", "budget", "clock", "config", "lock", "rng", "telemetry", "token")

    def __init__(
        self,
        config: ResilienceConfig,
        clock: Clock,
        telemetry: Telemetry,
        token: str | Callable[[], str],
        rng: random.Random,
        breaker: BreakerBackend,
    ) -> None:
        self.config = config
        self.clock = clock
        self.telemetry = telemetry
        self.token = token
        self.rng = rng
        self.lock = threading.Lock()
        self.breaker = breaker
        retry = config.retry
        self.budget = RetryBudget(retry.budget_ratio, retry.budget_floor, retry.budget_window)

    def count_for_breaker(self, count: BreakerCount) -> Generator[Effect, Any, None]:
        """Record one attempt's result in the breaker (the status table says how it counts)."""
        self.note_transition((yield TELL_BREAKER[count]))

    def note_transition(self, transition: Transition | None) -> None:
        """Report a breaker transition (the incident timeline keeps it)."""
        if transition is not None:
            self.telemetry.emit(
                BreakerTransition(
                    transition.previous.value, transition.state.value, transition.reason
                )
            )

    def refuse(self, call: Call, reason: StaleReason) -> None:
        """Report a call stopped before (another) attempt was sent."""
        self.telemetry.emit(CallRefused(*where(call), reason=reason.value))

    def abandon(self, call: Call) -> None:
        """A call ends without its last attempt reporting back (refused, cancelled).

        A half-open breaker waits for its trial calls' verdicts: give back the slot this call may
        hold, or the breaker would wait forever for a verdict that never comes.
        """
        self.breaker.abandon(call.trial)


def where(call: Call) -> tuple[str, str, str]:
    """The fields every call event starts with: method, path template, priority."""
    return call.kind.method, call.kind.template, call.priority.value
