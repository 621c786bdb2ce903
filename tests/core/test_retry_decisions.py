"""Retry decisions (pure): write safety, backoff bounds, server waits, the retry budget."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intercom_resilience import RetryPolicy
from intercom_resilience._core.outcome import Outcome
from intercom_resilience._core.requests import classify
from intercom_resilience._core.retry import RetryBudget, Verdict, backoff, judge, server_wait
from intercom_resilience._core.status import Network

METHODS_AND_PATHS = [
    ("GET", "/contacts/1"),
    ("HEAD", "/contacts/1"),
    ("PUT", "/contacts/1"),
    ("DELETE", "/contacts/1"),
    ("POST", "/contacts/search"),
    ("POST", "/contacts"),
    ("POST", "/conversations"),
    ("POST", "/conversations/9/reply"),
    ("POST", "/events"),
]
NON_IDEMPOTENT = {
    ("POST", "/contacts"),
    ("POST", "/conversations"),
    ("POST", "/conversations/9/reply"),
    ("POST", "/events"),
}


def response(status: int, headers: dict[str, str] | None = None) -> Outcome:
    return Outcome.from_response(status, headers or {}, b"", 0.01)


def network(*, connect: bool) -> Outcome:
    return Outcome.from_error(OSError("boom"), connect=connect, duration=0.01)


outcomes = st.one_of(
    st.integers(min_value=100, max_value=599).map(response),
    st.booleans().map(lambda connect: network(connect=connect)),
)


@given(st.sampled_from(METHODS_AND_PATHS), outcomes, st.booleans(), st.booleans())
def test_a_write_that_may_have_happened_is_never_retried(
    request: tuple[str, str], outcome: Outcome, can_rotate: bool, rotated: bool
) -> None:
    kind = classify(*request)
    verdict = judge(kind, outcome, can_rotate_token=can_rotate, rotated=rotated)
    ambiguous = outcome.network is Network.AMBIGUOUS or (
        outcome.status is not None and (outcome.status >= 500 or outcome.status == 408)
    )
    if request in NON_IDEMPOTENT and ambiguous:
        assert verdict is Verdict.OUTCOME_UNKNOWN
    if verdict is Verdict.RETRY and request in NON_IDEMPOTENT:
        # only "certainly not processed" failures may be repeated for writes
        assert outcome.network is Network.CONNECT or outcome.status == 429


@pytest.mark.parametrize("status", [400, 403, 404, 409, 410, 422])
@pytest.mark.parametrize("request_", METHODS_AND_PATHS)
def test_answers_are_never_retried(status: int, request_: tuple[str, str]) -> None:
    verdict = judge(classify(*request_), response(status), can_rotate_token=True, rotated=False)
    assert verdict is Verdict.FAIL


@pytest.mark.parametrize("request_", METHODS_AND_PATHS)
def test_connect_errors_and_429_are_retried_for_every_method(request_: tuple[str, str]) -> None:
    kind = classify(*request_)
    assert (
        judge(kind, network(connect=True), can_rotate_token=False, rotated=False) is Verdict.RETRY
    )
    assert judge(kind, response(429), can_rotate_token=False, rotated=False) is Verdict.RETRY


def test_401_rotates_once_only_with_a_callable_token() -> None:
    kind = classify("GET", "/me")
    assert judge(kind, response(401), can_rotate_token=True, rotated=False) is Verdict.ROTATE_TOKEN
    assert judge(kind, response(401), can_rotate_token=True, rotated=True) is Verdict.FAIL
    assert judge(kind, response(401), can_rotate_token=False, rotated=False) is Verdict.FAIL


policies = st.builds(
    lambda base, extra: RetryPolicy(base_delay=base, max_delay=base + extra),
    st.floats(min_value=0, max_value=30),
    st.floats(min_value=0, max_value=300),
)


@given(policies, st.integers(min_value=0, max_value=10_000), st.floats(min_value=0, max_value=1))
def test_backoff_stays_within_bounds(policy: RetryPolicy, retry: int, uniform: float) -> None:
    delay = backoff(policy, retry, uniform)
    assert 0.0 <= delay <= policy.max_delay
    assert delay <= policy.base_delay * 2.0 ** min(max(retry - 1, 0), 1000) + 1e-9


@given(
    st.floats(min_value=0, max_value=600),
    st.one_of(st.none(), st.text(max_size=20), st.integers(-(10**12), 10**12).map(str)),
    st.one_of(st.none(), st.text(max_size=20), st.integers(-(10**12), 10**12).map(str)),
    st.sampled_from([429, 503]),
)
def test_server_waits_are_clamped(
    cap: float, retry_after: str | None, reset: str | None, status: int
) -> None:
    policy = RetryPolicy(max_server_wait=cap)
    headers = {
        k: v
        for k, v in (("retry-after", retry_after), ("x-ratelimit-reset", reset))
        if v is not None
    }
    wait = server_wait(policy, response(status, headers), now=1_700_000_000.0)
    assert wait is None or 0.0 <= wait <= cap


def test_server_wait_prefers_retry_after_then_reset() -> None:
    policy = RetryPolicy(max_server_wait=60)
    now = 1_700_000_000.0
    both = response(429, {"retry-after": "3", "x-ratelimit-reset": str(int(now) + 9)})
    assert server_wait(policy, both, now) == 3.0
    reset_only = response(429, {"x-ratelimit-reset": str(int(now) + 9)})
    assert server_wait(policy, reset_only, now) == 9.0
    hostile = response(429, {"retry-after": "99999999"})
    assert server_wait(policy, hostile, now) == 60.0
    assert server_wait(policy, response(503, {"x-ratelimit-reset": str(int(now) + 9)}), now) is None


@given(
    st.floats(min_value=0, max_value=1),
    st.integers(min_value=0, max_value=20),
    st.lists(st.tuples(st.booleans(), st.floats(min_value=0, max_value=5)), max_size=300),
)
def test_retry_budget_is_never_exceeded(
    ratio: float, floor: int, events: list[tuple[bool, float]]
) -> None:
    window = 60.0
    budget = RetryBudget(ratio, floor, window)
    slack = budget._counter.resolution  # counts are exact to within one bucket
    now = 0.0
    calls: list[float] = []
    retries: list[float] = []
    for is_retry, gap in events:
        now += gap
        if not is_retry:
            budget.record_call(now)
            calls.append(now)
        elif budget.try_spend(now):
            retries.append(now)
            recent_retries = sum(1 for t in retries if t > now - window + slack)
            recent_calls = sum(1 for t in calls if t > now - window - slack)
            assert recent_retries <= floor + ratio * recent_calls + 1e-9
