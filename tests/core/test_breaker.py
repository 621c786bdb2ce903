"""The circuit breaker state machine, checked against a model with hypothesis."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from intercom_resilience import BreakerPolicy, BreakerState
from intercom_resilience._backends.memory_breaker import MemoryBreaker
from intercom_resilience._clock import VirtualClock
from intercom_resilience._core.breaker import CircuitBreaker

POLICY = BreakerPolicy(
    window=30.0, min_calls=5, failure_ratio=0.5, cooldown=10.0, half_open_calls=2
)

# Steps: ("allow", gap) asks permission; ("record", gap, result) records an attempt's result,
# where result is True (outage), False (success) or None (neutral: 4xx handled as success by the
# pipeline is False; 429 is None).
steps = st.lists(
    st.one_of(
        st.tuples(st.just("allow"), st.floats(min_value=0, max_value=12)),
        st.tuples(
            st.just("record"),
            st.floats(min_value=0, max_value=3),
            st.sampled_from([True, False, None]),
        ),
    ),
    max_size=200,
)


@settings(max_examples=300)
@given(steps)
def test_breaker_invariants(script: list[tuple]) -> None:
    breaker = CircuitBreaker(POLICY)
    now = 0.0
    for step in script:
        now += step[1]
        before = breaker.state
        if step[0] == "allow":
            allowed, transition = breaker.allow(now)
            if before is BreakerState.CLOSED:
                assert allowed and transition is None
            if before is BreakerState.OPEN and allowed:
                # only after the cool-down, and only through half-open
                assert transition is not None and transition.state is BreakerState.HALF_OPEN
            if breaker.state is BreakerState.OPEN:
                assert not allowed
        else:
            result = step[2]
            transition = breaker.record(now, failed=result)
            if transition is not None and transition.state is BreakerState.OPEN:
                # never opens on successes or neutral results
                assert result is True
            if result is None and before is not BreakerState.HALF_OPEN:
                assert transition is None
        if breaker.state is BreakerState.OPEN:
            assert breaker.retry_at is not None and breaker.retry_at > now - POLICY.cooldown - 1e-9


@given(st.lists(st.sampled_from([False, None]), max_size=300))
def test_never_opens_without_outages(results: list[bool | None]) -> None:
    breaker = CircuitBreaker(POLICY)
    for i, result in enumerate(results):
        breaker.record(float(i), failed=result)
        assert breaker.allow(float(i))[0]
    assert breaker.state is BreakerState.CLOSED


def test_full_cycle() -> None:
    breaker = CircuitBreaker(POLICY)
    for i in range(4):
        assert breaker.record(float(i) * 0.1, failed=True) is None  # below min_calls
    opened = breaker.record(0.5, failed=True)
    assert opened is not None and opened.state is BreakerState.OPEN
    assert breaker.allow(5.0) == (False, None)
    allowed, moved = breaker.allow(10.6)
    assert allowed and moved is not None and moved.state is BreakerState.HALF_OPEN
    assert breaker.allow(10.7)[0]  # second trial slot
    assert not breaker.allow(10.8)[0]  # no third
    assert breaker.record(11.0, failed=False) is None
    closed = breaker.record(11.1, failed=False)
    assert closed is not None and closed.state is BreakerState.CLOSED
    # and a failed trial re-opens
    for i in range(5):
        breaker.record(12.0 + i * 0.1, failed=True)
    assert breaker.state is BreakerState.OPEN
    breaker.allow(30.0)
    reopened = breaker.record(30.1, failed=True)
    assert reopened is not None and reopened.state is BreakerState.OPEN


def test_disabled_breaker_always_allows() -> None:
    breaker = CircuitBreaker(POLICY.replace(enabled=False))
    for i in range(50):
        breaker.record(float(i), failed=True)
    assert breaker.allow(50.0) == (True, None)


@settings(max_examples=300)
@given(
    run=st.integers(1, 6),
    results=st.lists(st.booleans(), max_size=120),
    gap=st.floats(min_value=0, max_value=0.5),
)
def test_a_run_of_failures_opens_whatever_the_window_held(
    run: int, results: list[bool], gap: float
) -> None:
    # A share no run of failures can reach, so only the run decides.
    policy = BreakerPolicy(min_calls=10_000, consecutive_failures=run, cooldown=1_000.0)
    breaker = CircuitBreaker(policy)
    now, streak = 0.0, 0
    for failed in results:
        now += gap
        transition = breaker.record(now, failed=failed)
        streak = streak + 1 if failed else 0
        if streak == run:
            assert transition is not None and transition.state is BreakerState.OPEN
            assert transition.reason == f"{run} calls failed in a row"
            return
        assert transition is None and breaker.state is BreakerState.CLOSED


def test_without_a_run_rule_a_busy_window_needs_its_share() -> None:
    policy = BreakerPolicy(min_calls=5, consecutive_failures=None, window=30.0)
    breaker = CircuitBreaker(policy)
    for _ in range(100):
        breaker.record(1.0, failed=False)
    for _ in range(99):
        breaker.record(1.0, failed=True)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.record(1.0, failed=True) is not None  # 100 of 200
    assert breaker.state is BreakerState.OPEN


def test_the_run_starts_again_after_the_circuit_closes() -> None:
    policy = BreakerPolicy(
        min_calls=10_000, consecutive_failures=3, cooldown=1.0, half_open_calls=1
    )
    breaker = CircuitBreaker(policy)
    for _ in range(3):
        breaker.record(0.0, failed=True)
    assert breaker.state is BreakerState.OPEN
    breaker.record(0.1, failed=True)  # an attempt in flight when it opened
    assert breaker.allow(2.0)[0]
    breaker.record(2.0, failed=False)
    assert breaker.state is BreakerState.CLOSED
    breaker.record(2.1, failed=True)
    breaker.record(2.1, failed=True)
    assert breaker.state is BreakerState.CLOSED  # two, not four, in a row since it closed


@settings(max_examples=300)
@given(steps)
def test_the_memory_breaker_answers_as_the_state_machine_does(script: list[tuple]) -> None:
    """Its closed-state answer skips the lock and the clock (issue #19): same verdicts."""
    clock = VirtualClock()
    backend = MemoryBreaker(POLICY, clock)
    model = CircuitBreaker(POLICY)
    for step in script:
        clock.advance(step[1])
        now = clock.monotonic()
        if step[0] == "allow":
            before = model.state
            allowed, transition = model.allow(now)
            verdict = backend.allow(lease=5.0)
            assert verdict.allowed == allowed
            assert verdict.transition == transition
            assert verdict.trial == (allowed and model.state is BreakerState.HALF_OPEN)
            retry_at = model.retry_at
            assert verdict.retry_in == (None if retry_at is None else retry_at - now)
            if before is BreakerState.CLOSED:
                assert verdict.trial is False and verdict.retry_in is None
        else:
            assert backend.record(step[2]) == model.record(now, failed=step[2])
        assert backend.state is model.state
