"""The limiter's invariants, over any interleaving of acquires, header updates and 429s.

Hypothesis draws a policy (quotas, window, burst, reserve) and a script of operations on a virtual
clock counted in integer microseconds; the checks are made on the admission times afterwards:

* in any closed interval of one window, at most ``Q`` calls were admitted, for each quota;
* when a background call was admitted, the last window held at most the background cap;
* nothing was admitted while a 429 block was running;
* after a response reported ``remaining = r`` for a window, at most ``r`` calls left in it;
* a refusal's ``wait`` is exact: one microsecond earlier is still refused, at ``wait`` it is granted.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from intercom_resilience._backends.base import Priority
from intercom_resilience._config import RateLimitPolicy
from intercom_resilience._core.limiter import MAX_RESET_WINDOWS, MICROS, DualLimiter, to_micros
from intercom_resilience._core.responses import RateLimitInfo

START_US = 1_767_225_600 * MICROS


ALIGNED = "aligned"


@dataclass(frozen=True)
class Wait:
    micros: int


@dataclass(frozen=True)
class Acquire:
    background: bool
    times: int = 1


@dataclass(frozen=True)
class Retry:
    """Wait exactly as long as the last refusal asked (checking one microsecond before), retry."""


@dataclass(frozen=True)
class Observe:
    status: int | None
    remaining: int | None
    reset: int | str | None  # microseconds from now, ALIGNED (the next window boundary), or None
    limit: int | None


Op = Wait | Acquire | Retry | Observe


@dataclass(frozen=True)
class Scenario:
    policy: RateLimitPolicy
    ops: list[Op]


@st.composite
def scenarios(draw: st.DrawFn, max_ops: int = 120) -> Scenario:
    window = draw(st.sampled_from([1.0, 2.5, 10.0]))
    per_window = st.integers(1, 40)
    policy = RateLimitPolicy(
        app_per_minute=round(draw(per_window) * 60 / window),
        workspace_per_minute=round(draw(per_window) * 60 / window),
        window=window,
        burst=draw(st.floats(0.01, 1.0)),
        background_reserve=draw(st.floats(0.0, 0.9)),
    )
    w_us = round(window * MICROS)
    quota = policy.window_quota(policy.app_per_minute)
    waits = st.one_of(st.integers(0, 2_000), st.integers(0, w_us // 4), st.integers(0, 2 * w_us))
    ops: st.SearchStrategy[Op] = st.one_of(
        st.builds(Wait, waits),
        st.builds(Acquire, st.booleans()),
        st.builds(Acquire, st.booleans(), st.integers(1, 45)),
        st.builds(Retry),
        st.builds(
            Observe,
            st.sampled_from([200, 200, 429, 500, None]),
            st.none() | st.integers(0, quota + 5),
            # Intercom's resets are window boundaries: ALIGNED repeats one value within a window.
            st.none() | st.just(ALIGNED) | st.integers(-w_us, 3 * w_us),
            st.none() | st.integers(1, quota + 5),
        ),
    )
    return Scenario(policy, draw(st.lists(ops, max_size=max_ops)))


@dataclass
class Run:
    """What happened. Positions index into ``admitted`` (the admissions made before an event), so
    that calls admitted at the same instant but before a response are not held against it."""

    admitted: list[int] = field(default_factory=list)
    background: list[int] = field(default_factory=list)  # positions
    blocks: list[tuple[int, int]] = field(default_factory=list)  # position, until
    caps: list[tuple[int, int, int]] = field(default_factory=list)  # observation, until, remaining
    observations: list[int] = field(default_factory=list)  # positions, in order


def play(scenario: Scenario) -> tuple[DualLimiter, Run]:
    lim = DualLimiter.from_policy(scenario.policy)
    w_us = lim.app.spec.window_us
    horizon = MAX_RESET_WINDOWS * w_us
    run = Run()
    now = START_US
    server_reset = 0  # the newest server window the limiter can know of
    last_refusal: tuple[bool, int] | None = None  # priority, and when the refusal said to retry

    def acquire(background: bool) -> bool:
        nonlocal last_refusal
        assert to_micros(now / MICROS) == now  # the harness's own arithmetic is exact
        grant = lim.acquire(
            now / MICROS, Priority.BACKGROUND if background else Priority.INTERACTIVE
        )
        assert grant.remaining is not None
        assert grant.remaining >= 0
        if grant.granted:
            assert grant.wait == 0
            if background:
                run.background.append(len(run.admitted))
            run.admitted.append(now)
            last_refusal = None
        else:
            assert 0 < grant.wait <= horizon / MICROS
            last_refusal = (background, now + to_micros(grant.wait))
        return grant.granted

    for op in scenario.ops:
        if isinstance(op, Wait):
            now += op.micros  # time passing alone keeps the last refusal's promise valid
        elif isinstance(op, Acquire):
            for _ in range(op.times):
                acquire(op.background)
        elif isinstance(op, Retry):
            if last_refusal is None:
                continue
            background, at = last_refusal
            if now < at - 1:
                now = at - 1
                assert not acquire(background), "granted before the wait it announced"
            now = max(now, at)
            assert acquire(background), "refused after waiting as long as it asked"
        else:
            observe(lim, run, op, now)
            last_refusal = None
            if op.status != 429 and op.remaining is not None:
                reset = reset_of(op, now, w_us)
                if reset is None:
                    reset = server_reset if now < server_reset else now + w_us
                if reset > now and reset >= server_reset:
                    server_reset = reset
                    run.caps.append((len(run.observations) - 1, reset, op.remaining))
    return lim, run


def reset_of(op: Observe, now: int, w_us: int) -> int | None:
    if op.reset == ALIGNED:
        return (now // w_us + 1) * w_us
    return None if op.reset is None else now + int(op.reset)


def observe(lim: DualLimiter, run: Run, op: Observe, now: int) -> None:
    w_us = lim.app.spec.window_us
    reset = reset_of(op, now, w_us)
    info = None
    if op.remaining is not None or reset is not None or op.limit is not None:
        info = RateLimitInfo(
            limit=op.limit,
            remaining=op.remaining,
            reset_at=None if reset is None else reset / MICROS,
        )
    lim.observe(now / MICROS, op.status, info)
    position = len(run.admitted)
    run.observations.append(position)
    if op.status == 429:
        # No reset: one window. A reset already past (our clock ahead of Intercom's): one slot.
        if reset is None:
            until = now + w_us
        elif reset > now:
            until = reset
        else:
            until = now + lim.app.spec.slot_us
        run.blocks.append((position, min(until, now + MAX_RESET_WINDOWS * w_us)))


def count_between(times: list[int], lo: int, hi: int) -> int:
    """How many of the sorted *times* fall in ``[lo, hi]``."""
    return bisect.bisect_right(times, hi) - bisect.bisect_left(times, lo)


def count_before(times: list[int], start: int, end: int, until: int) -> int:
    """How many admissions at positions ``start … end - 1`` happened before *until*."""
    return bisect.bisect_left(times, until, start, max(start, end)) - start


def check(lim: DualLimiter, run: Run) -> None:
    times = run.admitted
    assert times == sorted(times)
    w_us = lim.app.spec.window_us
    quota = min(lim.app.spec.quota, lim.workspace.spec.quota)
    background_cap = min(lim.app.spec.background_cap, lim.workspace.spec.background_cap)
    for t in times:
        # THE invariant: any closed interval of one window, [t, t + W], holds at most Q.
        assert count_between(times, t, t + w_us) <= quota
    for position in run.background:
        t = times[position]
        earlier = position + 1 - bisect.bisect_left(times, t - w_us, 0, position + 1)
        assert earlier <= background_cap, "background took the interactive reserve"
    for position, until in run.blocks:
        assert count_before(times, position, len(times), until) == 0, "admitted while blocked"
    for observation, until, remaining in run.caps:
        # Until the window resets or the next response re-synchronises the limiter.
        position = run.observations[observation]
        following = run.observations[observation + 1 : observation + 2]
        end = following[0] if following else len(times)
        assert count_before(times, position, end, until) <= remaining, "a header was exceeded"


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_invariants_hold_for_any_interleaving(scenario: Scenario) -> None:
    check(*play(scenario))


@settings(max_examples=60, deadline=None)
@given(scenarios(max_ops=40), st.integers(100, 400))
def test_invariants_hold_under_saturation(scenario: Scenario, rounds: int) -> None:
    """Greedy traffic (every refusal waited out exactly), so that the caps decide, not the script."""
    hammered = Scenario(
        scenario.policy,
        [op for base in scenario.ops for op in (base, Acquire(False), Retry())]
        + [op for i in range(rounds) for op in (Acquire(i % 3 == 0), Retry())],
    )
    check(*play(hammered))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60), st.booleans()), max_size=30),
    st.floats(0.01, 1.0),
)
def test_headers_within_one_window_only_lower_the_budget(
    reports: list[tuple[int, int, bool]], burst: float
) -> None:
    lim = DualLimiter.from_policy(RateLimitPolicy(app_per_minute=360, burst=burst))  # Q = 60
    now, reset = START_US, START_US + 10 * MICROS
    lowest = 60
    for remaining, attempts, background in reports:
        lim.observe(now / MICROS, 200, RateLimitInfo(60, remaining, reset / MICROS))
        lowest = min(lowest, remaining)
        priority = Priority.BACKGROUND if background else Priority.INTERACTIVE
        granted = sum(lim.acquire(now / MICROS, priority).granted for _ in range(attempts))
        assert granted <= lowest, "a header raised the budget of its window"
        lowest -= granted
        now += 10_000  # 10 ms later, same server window
