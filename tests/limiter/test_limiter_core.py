"""The sans-I/O rate limiter: arithmetic, bursts, pacing, server truth, priorities, on exact times."""

from __future__ import annotations

import math

import pytest

from intercom_resilience._backends.base import Grant, Priority
from intercom_resilience._config import RateLimitPolicy
from intercom_resilience._core.limiter import (
    MAX_RESET_WINDOWS,
    MICROS,
    Bucket,
    BucketSpec,
    DualLimiter,
)
from intercom_resilience._core.responses import RateLimitInfo

T0 = 1_767_225_600.0  # a multiple of 10 s, like Intercom's window boundaries
BG = Priority.BACKGROUND
FG = Priority.INTERACTIVE


def limiter(**changes: object) -> DualLimiter:
    return DualLimiter.from_policy(RateLimitPolicy(**changes))  # type: ignore[arg-type]


def burst_at(lim: DualLimiter, now: float, priority: Priority = FG, limit: int = 100_000) -> int:
    """How many acquires at one instant are granted before the first refusal."""
    for n in range(limit):
        if not lim.acquire(now, priority).granted:
            return n
    return limit


def greedy(lim: DualLimiter, start: float, seconds: float, priority: Priority = FG) -> list[int]:
    """Acquire as fast as the limiter allows, sleeping exactly the waits it asks for; returns the
    admission times in microseconds."""
    now_us = round(start * MICROS)
    end_us = now_us + round(seconds * MICROS)
    admitted: list[int] = []
    while now_us < end_us:
        grant = lim.acquire(now_us / MICROS, priority)
        if grant.granted:
            admitted.append(now_us)
        else:
            assert grant.wait > 0
            now_us += round(grant.wait * MICROS)
    return admitted


def max_in_any_window(times: list[int], window_us: int) -> int:
    """The largest number of *times* inside any closed interval of length *window_us*."""
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] < t - window_us:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


# --------------------------------------------------------------------------- arithmetic


def test_default_specs_follow_intercoms_quotas() -> None:
    lim = limiter()
    app, ws = lim.app.spec, lim.workspace.spec
    assert (app.quota, ws.quota) == (1666, 4166)
    assert app.window_us == 10 * MICROS
    assert app.interval_us == math.ceil(10 * MICROS / 1666)  # full rate: pacing costs no goodput
    assert app.burst == 166  # 10% of a window may leave at once
    assert app.tolerance_us == 165 * app.interval_us
    assert (app.slot_us, app.span) == (100_000, 100)
    assert app.background_cap == 1666 - 334  # 20% reserve, rounded in interactive's favour


def test_fallback_share_scales_both_quotas() -> None:
    lim = DualLimiter.from_policy(RateLimitPolicy(), share=0.25)
    assert (lim.app.spec.quota, lim.workspace.spec.quota) == (416, 1041)


@pytest.mark.parametrize(("reserve", "quota", "cap"), [(0.0, 5, 5), (0.2, 5, 4), (0.9, 1, 1)])
def test_background_cap_never_starves(reserve: float, quota: int, cap: int) -> None:
    assert BucketSpec(quota, 10.0, 0.1, reserve).background_cap == cap


def test_bad_specs_are_refused() -> None:
    with pytest.raises(ValueError, match="quota"):
        BucketSpec(0, 10.0, 0.1, 0.2)
    with pytest.raises(ValueError, match="window"):
        BucketSpec(10, 0.0, 0.1, 0.2)


# --------------------------------------------------------------------------- bursts and pacing


def test_an_idle_limiter_lets_one_burst_through_then_paces() -> None:
    lim = limiter()
    assert burst_at(lim, T0) == 166
    refused = lim.acquire(T0, FG)
    assert not refused.granted
    interval = lim.app.spec.interval_us / MICROS
    assert refused.wait == pytest.approx(interval)
    assert lim.acquire(T0 + refused.wait, FG).granted
    assert not lim.acquire(T0 + refused.wait, FG).granted


def test_the_token_bucket_counterexample_holds_the_invariant() -> None:
    # A token bucket of capacity B refilled at Q per window admits B + Q in the first window of a
    # burst followed by saturation; this limiter admits at most Q in any window, and uses it.
    lim = limiter()
    times = greedy(lim, T0, 30.0)
    window = lim.app.spec.window_us
    assert max_in_any_window(times, window) == 1666
    first_window = [t for t in times if t <= round(T0 * MICROS) + window]
    assert len(first_window) <= 1666


def test_goodput_under_saturation_is_near_the_full_quota() -> None:
    lim = limiter()
    seconds = 120.0
    times = greedy(lim, T0, seconds)
    per_window = len(times) / (seconds / 10.0)
    # Counting whole slots costs 1/(S+1) of the quota (S = 100 slots); nothing else is lost.
    assert per_window >= 0.985 * 1666
    assert max_in_any_window(times, lim.app.spec.window_us) <= 1666


def test_the_workspace_quota_binds_when_tighter() -> None:
    lim = limiter(app_per_minute=6000, workspace_per_minute=600)  # 1000 vs 100 per window
    times = greedy(lim, T0, 40.0)
    assert max_in_any_window(times, 10 * MICROS) == 100


def test_a_workspace_bucket_can_be_shared_by_two_apps() -> None:
    policy = RateLimitPolicy(app_per_minute=600, workspace_per_minute=900, burst=1.0)
    shared = Bucket(BucketSpec.from_policy(policy, 900))
    one = DualLimiter(BucketSpec.from_policy(policy, 600), shared, 0.2)
    two = DualLimiter(BucketSpec.from_policy(policy, 600), shared, 0.2)
    assert burst_at(one, T0) == 100  # app quota
    assert burst_at(two, T0) == 50  # what the workspace has left


def test_a_clock_stepping_back_never_uncounts() -> None:
    lim = limiter(app_per_minute=60, burst=1.0)  # 10 per window
    assert burst_at(lim, T0 + 100) == 10
    assert burst_at(lim, T0) == 0  # 100 s in the past: treated as "still T0 + 100"
    assert not lim.acquire(T0 + 110.0, FG).granted  # counted in whole slots of 0.1 s
    assert lim.acquire(T0 + 110.1, FG).granted


def test_remaining_reports_the_tighter_bucket() -> None:
    lim = limiter(app_per_minute=60, workspace_per_minute=120)  # 10 and 20 per window
    assert lim.acquire(T0, FG) == Grant(True, 0.0, 9.0)
    lim.observe(T0, 200, RateLimitInfo(limit=10, remaining=3, reset_at=T0 + 10))
    assert lim.acquire(T0 + 1, FG).remaining == 2.0


def test_consume_counts_calls_admitted_elsewhere() -> None:
    lim = limiter(app_per_minute=60, burst=1.0)
    lim.consume(T0, 7)
    lim.consume(T0, 0)
    assert lim.recent(T0) == 7
    assert burst_at(lim, T0) == 3
    assert lim.recent(T0 + 10.2) == 0  # the slots have left the window


# --------------------------------------------------------------------------- server truth


def test_a_429_blocks_until_the_reset() -> None:
    lim = limiter()
    lim.observe(T0 + 1, 429, RateLimitInfo(limit=1666, remaining=0, reset_at=T0 + 10))
    refused = lim.acquire(T0 + 1, FG)
    assert refused == Grant(False, 9.0, 0.0)
    assert not lim.acquire(T0 + 9.999, FG).granted
    assert lim.acquire(T0 + 10, FG).granted


@pytest.mark.parametrize("info", [None, RateLimitInfo(None, None, None)])
def test_a_429_without_reset_blocks_one_window(info: RateLimitInfo | None) -> None:
    lim = limiter()
    lim.observe(T0 + 3, 429, info)
    assert lim.acquire(T0 + 3, FG).wait == pytest.approx(10.0)
    assert lim.acquire(T0 + 13, FG).granted


def test_a_429_with_a_reset_already_past_blocks_one_slot() -> None:
    # our clock is ahead of Intercom's: its next window is about to start
    lim = limiter()
    lim.observe(T0 + 3, 429, RateLimitInfo(None, 0, T0))
    assert lim.acquire(T0 + 3, FG).wait == pytest.approx(0.1)


def test_a_429_without_a_reset_blocks_one_window() -> None:
    lim = limiter()
    lim.observe(T0 + 3, 429, RateLimitInfo(None, 0, None))
    assert lim.acquire(T0 + 3, FG).wait == pytest.approx(10.0)


def test_a_hostile_reset_is_clamped() -> None:
    lim = limiter()
    lim.observe(T0, 429, RateLimitInfo(None, 0, T0 + 10 * 365 * 86400))
    assert lim.acquire(T0, FG).wait == pytest.approx(MAX_RESET_WINDOWS * 10.0)


def test_a_later_429_never_shortens_a_block() -> None:
    lim = limiter()
    lim.observe(T0, 429, RateLimitInfo(None, 0, T0 + 8))
    lim.observe(T0, 429, RateLimitInfo(None, 0, T0 + 2))
    assert lim.acquire(T0 + 5, FG).wait == pytest.approx(3.0)


def test_remaining_caps_the_server_window() -> None:
    lim = limiter()
    lim.observe(T0, 200, RateLimitInfo(limit=1666, remaining=5, reset_at=T0 + 4))
    assert burst_at(lim, T0) == 5
    assert lim.acquire(T0, FG).wait == pytest.approx(4.0)
    assert lim.acquire(T0 + 4, FG).granted  # a new server window


def test_a_header_never_raises_tokens_within_a_window() -> None:
    lim = limiter()
    lim.observe(T0, 200, RateLimitInfo(limit=1666, remaining=3, reset_at=T0 + 10))
    lim.observe(T0, 200, RateLimitInfo(limit=1666, remaining=1000, reset_at=T0 + 10))
    assert burst_at(lim, T0) == 3


def test_a_header_never_raises_tokens_above_the_bucket() -> None:
    lim = limiter()
    lim.observe(T0, 200, RateLimitInfo(limit=1666, remaining=1666, reset_at=T0 + 10))
    assert burst_at(lim, T0) == 166  # the server says 1666, the burst allowance says 166


def test_a_late_response_from_an_older_window_is_ignored() -> None:
    lim = limiter()
    lim.observe(T0 + 11, 200, RateLimitInfo(limit=1666, remaining=50, reset_at=T0 + 20))
    lim.observe(T0 + 11, 200, RateLimitInfo(limit=1666, remaining=0, reset_at=T0 + 10))
    assert burst_at(lim, T0 + 11) == 50


def test_remaining_without_reset_applies_to_the_current_window() -> None:
    lim = limiter()
    lim.observe(T0, 200, RateLimitInfo(limit=None, remaining=2, reset_at=None))
    assert burst_at(lim, T0) == 2
    assert lim.acquire(T0, FG).wait == pytest.approx(10.0)
    lim.observe(T0 + 1, 200, RateLimitInfo(limit=None, remaining=0, reset_at=None))
    assert lim.acquire(T0 + 1, FG).wait == pytest.approx(9.0)


def test_responses_without_news_change_nothing() -> None:
    lim = limiter(app_per_minute=60, burst=1.0)
    lim.observe(T0, None, None)
    lim.observe(T0, 200, None)
    lim.observe(T0, 500, RateLimitInfo(limit=10, remaining=None, reset_at=T0 + 5))
    assert burst_at(lim, T0) == 10


def test_headers_keep_a_shared_workspace_free_of_429s() -> None:
    """Another app spends 60% of the workspace at the start of every fixed window: only the
    server's remaining count can tell us, and following it avoids every 429."""

    def run(follow_headers: bool) -> tuple[int, int]:
        lim = limiter(app_per_minute=6000, workspace_per_minute=6000)  # 1000 per window each
        window, limit = 10.0, 1000
        used: dict[int, int] = {}
        admitted = refused = 0
        now_us, end_us = round(T0 * MICROS), round((T0 + 60) * MICROS)
        while now_us < end_us:
            now = now_us / MICROS
            index = math.floor(now / window)
            used.setdefault(index, 600)  # the other app got there first
            grant = lim.acquire(now, FG)
            if not grant.granted:
                now_us += round(grant.wait * MICROS)
                continue
            reset = (index + 1) * window
            if used[index] >= limit:
                refused += 1
                status, remaining = 429, 0
            else:
                used[index] += 1
                admitted += 1
                status, remaining = 200, limit - used[index]
            if follow_headers:
                lim.observe(now, status, RateLimitInfo(limit, remaining, reset))
        return admitted, refused

    admitted, refused = run(follow_headers=True)
    assert refused == 0
    assert admitted == 6 * 400  # every request the other app left us
    assert run(follow_headers=False)[1] > 0  # without the headers the same traffic hits 429s


# --------------------------------------------------------------------------- priorities


def test_background_never_takes_the_interactive_burst() -> None:
    lim = limiter()
    assert lim.acquire(T0, BG).granted
    assert not lim.acquire(T0, BG).granted  # no burst for background calls
    assert burst_at(lim, T0) == 165  # the interactive burst is (nearly) whole


def test_background_leaves_the_reserve_of_every_window() -> None:
    lim = limiter(app_per_minute=600, burst=1.0)  # 100 per window, reserve 20
    times = greedy(lim, T0, 25.0, BG)
    assert max_in_any_window(times, 10 * MICROS) == 80
    now = times[-1] / MICROS
    assert burst_at(lim, now) == 20  # interactive still gets the reserve, at once


def test_background_pauses_while_the_server_reports_little_left() -> None:
    lim = limiter()
    lim.observe(T0, 200, RateLimitInfo(limit=1666, remaining=334, reset_at=T0 + 6))
    refused = lim.acquire(T0, BG)
    assert not refused.granted
    assert refused.wait == pytest.approx(6.0)
    assert lim.acquire(T0, FG).granted  # interactive calls go on
    assert lim.acquire(T0 + 6, BG).granted  # and background resumes with the next window


def test_background_uses_the_servers_limit_for_the_reserve() -> None:
    lim = limiter()
    lim.observe(T0, 200, RateLimitInfo(limit=100, remaining=21, reset_at=T0 + 6))
    assert lim.acquire(T0, BG).granted  # 21 > 20% of 100
    assert not lim.acquire(T0 + 1, BG).granted  # 20 left: the reserve
