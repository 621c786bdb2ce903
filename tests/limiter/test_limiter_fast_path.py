"""The memory limiter's in-line fast path answers exactly like the core it short-cuts.

:class:`MemoryLimiter` decides the common acquire (interactive, no block, rings at the current
slot, allowance left in the server's window if one is known) itself, under its lock, on the core's state; everything else goes to
:meth:`DualLimiter.decide`. A twin core fed the same operations through :meth:`DualLimiter.acquire`
(which never takes that path) must give the same answers and end in the same state.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intercom_resilience._backends.base import Priority
from intercom_resilience._backends.memory_limiter import MemoryLimiter
from intercom_resilience._config import RateLimitPolicy
from intercom_resilience._core.limiter import DualLimiter
from intercom_resilience._core.responses import RateLimitInfo

# Steps in whole microseconds, often tiny (the fast path needs the rings at the current slot) or
# right at a slot edge (slots are 0.1 s with these policies, and the start time is on one).
STEPS = st.one_of(
    st.sampled_from([0, 1, 99_999, 100_000, 100_001]),
    st.integers(0, 20_000),
    st.integers(0, 300_000),
)
POLICIES = st.builds(
    RateLimitPolicy,
    app_per_minute=st.one_of(st.integers(6, 600), st.integers(600, 60_000)),
    workspace_per_minute=st.one_of(st.integers(6, 900), st.integers(900, 90_000)),
    burst=st.sampled_from([0.1, 0.5, 1.0]),
)
PRIORITIES = st.sampled_from([Priority.INTERACTIVE] * 3 + [Priority.BACKGROUND])
HEADERS = st.tuples(st.sampled_from([200, 429]), st.integers(0, 50), st.floats(-1, 20))
# Mostly acquires, so that runs of them reach the buckets' limits between the other operations.
KINDS = st.sampled_from(["acquire"] * 8 + ["observe", "consume", "back", "edge"])
SLOT_US = 100_000  # a 10-s window in 100 slots


class SteppingClock:
    """A wall clock a test sets by hand in whole µs, allowed to step back (as NTP does)."""

    def __init__(self) -> None:
        self.us = 1_767_225_600_000_000

    def monotonic(self) -> float:
        return self.us / 1_000_000

    def time(self) -> float:
        return self.us / 1_000_000

    def sleep(self, seconds: float) -> None:
        self.us += round(seconds * 1_000_000)

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


@settings(max_examples=150, deadline=None)
@given(POLICIES, st.data())
def test_the_fast_path_answers_like_the_core(policy: RateLimitPolicy, data: st.DataObject) -> None:
    clock = SteppingClock()
    memory = MemoryLimiter(policy, clock)
    twin = DualLimiter.from_policy(policy)
    for _ in range(data.draw(st.integers(20, 300), label="steps")):
        kind = data.draw(KINDS)
        if kind == "back":
            clock.us -= data.draw(STEPS)  # the core must stand still, on both paths
            continue
        if kind == "edge":  # exactly at the start of the next slot, then ask
            clock.us += -clock.us % SLOT_US or SLOT_US
            kind = "acquire"
        else:
            clock.us += data.draw(STEPS)
        if kind == "acquire":
            priority = data.draw(PRIORITIES)
            assert memory.acquire(priority) == twin.acquire(clock.time(), priority)
            assert_same_state(memory.core, twin)
        elif kind == "consume":  # admissions elsewhere (Redis) fill the cap, not the pacing
            count = data.draw(st.integers(1, 40))
            memory.consume(count)
            twin.consume(clock.time(), count)
        else:
            status, remaining, reset_in = data.draw(HEADERS)
            info = RateLimitInfo(limit=None, remaining=remaining, reset_at=clock.time() + reset_in)
            memory.observe(status, info)
            twin.observe(clock.time(), status, info)
    assert_same_state(memory.core, twin)


def assert_same_state(core: DualLimiter, twin: DualLimiter) -> None:
    for mine, theirs in ((core.app, twin.app), (core.workspace, twin.workspace)):
        assert (mine.tat, mine.total, mine.counts, mine.slot_end) == (
            theirs.tat,
            theirs.total,
            theirs.counts,
            theirs.slot_end,
        )
    assert core.last == twin.last
    server, theirs_server = core.server, twin.server
    assert (server.reset_us, server.allow, server.blocked_until, server.limit) == (
        theirs_server.reset_us,
        theirs_server.allow,
        theirs_server.blocked_until,
        theirs_server.limit,
    )


def test_inside_a_server_window_the_fast_path_spends_its_allowance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Against Intercom every answer states its window: the common acquire happens inside one,
    and must be decided in-line too (it went to the core's decide, a call under the lock, on
    every acquire), spending the window's allowance exactly as the core does."""
    policy = RateLimitPolicy(app_per_minute=60_000, workspace_per_minute=60_000)
    clock = SteppingClock()
    memory = MemoryLimiter(policy, clock)
    twin = DualLimiter.from_policy(policy)
    info = RateLimitInfo(limit=100, remaining=3, reset_at=clock.time() + 5)
    memory.observe(200, info)
    twin.observe(clock.time(), 200, info)
    decided_by_core: list[DualLimiter] = []
    decide = DualLimiter.decide

    def spy(self: DualLimiter, t: int, background: bool) -> tuple[int, int]:
        decided_by_core.append(self)
        return decide(self, t, background)

    monkeypatch.setattr(DualLimiter, "decide", spy)
    answers = []
    for _ in range(5):
        clock.us += 1_000
        answers.append(memory.acquire())
        assert answers[-1] == twin.acquire(clock.time())
        assert_same_state(memory.core, twin)
    assert [grant.granted for grant in answers] == [True, True, True, False, False]
    assert [grant.remaining for grant in answers[:3]] == [2.0, 1.0, 0.0]
    # The first acquire brings the rings to the current slot (the core's work), the other two
    # granted ones never left the in-line path, and the two refusals went to the core.
    assert [core is memory.core for core in decided_by_core].count(True) == 3


def test_an_acquire_on_a_slot_edge_counts_in_the_new_slot() -> None:
    policy = RateLimitPolicy(app_per_minute=60_000, workspace_per_minute=60_000)
    clock = SteppingClock()
    memory = MemoryLimiter(policy, clock)
    twin = DualLimiter.from_policy(policy)
    for step in (0, SLOT_US - 1, 1):  # the last one lands on the first µs of the next slot
        clock.us += step
        assert memory.acquire() == twin.acquire(clock.time())
        assert_same_state(memory.core, twin)
    app = memory.core.app
    assert app.counts[app.index] == 1  # not 3 in the old slot
