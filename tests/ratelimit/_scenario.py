"""Helpers of the rate-limit scenarios: a fake and a client on one :class:`SimClock`, and counts.

Quotas are scaled down (Intercom's 10,000 a minute would make 1,667 requests per window) so a
scenario of ten simulated minutes runs in seconds, but the window stays Intercom's 10 s and the
arithmetic is the production one.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

from intercom_resilience import (
    AsyncResilientIntercom,
    DeadlinePolicy,
    RateLimitPolicy,
    ResilienceConfig,
)
from intercom_resilience.testing import FakeIntercom, JournalEntry

from ._sim import SimClock

WINDOW = 10.0


def config(app_per_minute: int, workspace_per_minute: int, **policy: float) -> ResilienceConfig:
    """The client's configuration matching the fake's quotas (as a real deployment would).

    The scenarios measure pacing, so calls wait for their tokens: a deadline as long as the
    limiter's own ``max_wait`` bound, and no stale-while-rate-limited shortcut.
    """
    return ResilienceConfig(
        rate_limit=RateLimitPolicy(
            app_per_minute=app_per_minute,
            workspace_per_minute=workspace_per_minute,
            window=WINDOW,
            **policy,  # type: ignore[arg-type]
        ),
        deadlines=DeadlinePolicy(interactive=60.0, stale_if_slow=None),
    )


def fake_and_client(
    clock: SimClock,
    *,
    app_per_minute: int,
    workspace_per_minute: int,
    latency: float = 0.0,
    **policy: float,
) -> tuple[FakeIntercom, AsyncResilientIntercom]:
    """A fake with these quotas and an async client configured to match, on *clock*."""
    fake = FakeIntercom(
        clock=clock,
        app_quota=app_per_minute,
        workspace_quota=workspace_per_minute,
        window_seconds=WINDOW,
    )
    if latency:
        fake.faults.latency(latency)
    client = AsyncResilientIntercom(
        token="fake-token",
        transport=fake.async_transport(),
        clock=clock,
        config=config(app_per_minute, workspace_per_minute, **policy),
        seed=5,
    )
    return fake, client


def fake_window(time: float) -> int:
    """The index of the fake's clock-aligned window holding *time*."""
    return math.floor(time / WINDOW)


def per_window(entries: Iterable[JournalEntry]) -> Counter[int]:
    """How many of *entries* fell in each fake window."""
    return Counter(fake_window(entry.time) for entry in entries)


def in_span(entries: Iterable[JournalEntry], start: float, end: float) -> list[JournalEntry]:
    """The entries received in ``[start, end)``."""
    return [entry for entry in entries if start <= entry.time < end]


def real_429s(fake: FakeIntercom, app: str = "fake-app") -> list[JournalEntry]:
    """429s the fake's quota produced for *app* (an injected 429 fault would not count)."""
    return [
        entry
        for entry in fake.journal.filter(status=429, app=app)
        if entry.fault is None or entry.fault.startswith("latency")
    ]
