"""The fleet breaker on a real Redis (issue #17, 1): one breaker for every process of a fleet.

Each "process" is its own :class:`RedisBreaker` (its own connections, its own local fallback) on
one Redis. Tests that need deterministic times give the script a shared test time
(``time_source``); the others decide on Redis server time, as in production.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intercom_resilience import BreakerPolicy, VirtualClock
from intercom_resilience._backends._redis import DEFAULT_SOCKET_TIMEOUT
from intercom_resilience._backends.redis_breaker import RedisBreaker
from intercom_resilience._core.breaker import BreakerState, CircuitBreaker
from tests.redis_support import RedisServer

pytestmark = pytest.mark.redis

POLICY = BreakerPolicy(window=10.0, min_calls=4, failure_ratio=0.5, cooldown=5.0, half_open_calls=1)


class SharedTime:
    """A time every breaker of a test decides at (the script's optional time argument)."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fleet(redis_url: str, redis_prefix: str) -> Iterator[Callable[..., RedisBreaker]]:
    """Build breakers ("processes") of one app on one Redis; all are closed afterwards."""
    made: list[RedisBreaker] = []

    def build(
        policy: BreakerPolicy = POLICY,
        *,
        url: str = redis_url,
        clock: VirtualClock | None = None,
        time_source: Callable[[], float] | None = None,
        socket_timeout: float | None = None,
    ) -> RedisBreaker:
        # A generous timeout: on a loaded machine, 16 new connections at once can take longer
        # than the default quarter second, and a breaker that falls back to its local state
        # would be right, but not what these tests check (the fault tests, on a server of their
        # own, keep the default).
        if socket_timeout is None:
            socket_timeout = 2.0 if url == redis_url else DEFAULT_SOCKET_TIMEOUT
        breaker = RedisBreaker(
            policy,
            url,
            "app-fingerprint",
            clock or VirtualClock(),
            key_prefix=redis_prefix,
            time_source=time_source,
            socket_timeout=socket_timeout,
        )
        made.append(breaker)
        return breaker

    yield build
    for breaker in made:
        breaker.close()


def _fail(breaker: RedisBreaker, times: int) -> None:
    for _ in range(times):
        assert breaker.allow(5.0).allowed
        breaker.record(True)


# ---------------------------------------------------------------------------- one fleet, one state


def test_one_process_failures_open_the_breaker_for_another(
    fleet: Callable[..., RedisBreaker],
) -> None:
    a, b = fleet(), fleet()
    assert b.allow(5.0).allowed
    _fail(a, POLICY.min_calls)
    assert a.state is BreakerState.OPEN
    verdict = b.allow(5.0)
    assert not verdict.allowed
    assert verdict.retry_in is not None and 0 < verdict.retry_in <= POLICY.cooldown
    # B saw the fleet's transition and reports it (health and the incident timeline get it).
    assert verdict.transition is not None
    assert (verdict.transition.previous, verdict.transition.state) == (
        BreakerState.CLOSED,
        BreakerState.OPEN,
    )
    assert "4 of 4 recent calls failed" in verdict.transition.reason
    assert b.state is BreakerState.OPEN


async def test_async_one_process_failures_open_the_breaker_for_another(
    fleet: Callable[..., RedisBreaker],
) -> None:
    a, b = fleet(), fleet()
    for _ in range(POLICY.min_calls):
        assert (await a.aallow(5.0)).allowed
        await a.arecord(True)
    assert a.state is BreakerState.OPEN
    assert not (await b.aallow(5.0)).allowed
    await a.aclose()
    await b.aclose()


def test_failures_spread_over_processes_add_up(fleet: Callable[..., RedisBreaker]) -> None:
    processes = [fleet() for _ in range(POLICY.min_calls)]
    for breaker in processes:  # one failure each: no single process saw enough to open
        _fail(breaker, 1)
    assert all(breaker.fallback.state is not BreakerState.OPEN for breaker in processes)
    assert not fleet().allow(5.0).allowed  # a newcomer is refused at once


def test_a_run_of_failures_across_processes_opens_a_busy_fleet_breaker(
    fleet: Callable[..., RedisBreaker],
) -> None:
    policy = BreakerPolicy(min_calls=4, consecutive_failures=3, cooldown=5.0)
    time = SharedTime()
    processes = [fleet(policy, time_source=time) for _ in range(3)]
    for _ in range(50):  # a busy, healthy fleet: the share would need 150 failures
        for breaker in processes:
            assert breaker.allow(5.0).allowed
            breaker.record(False)
        time.now += 0.01
    # One failure each, three in a row fleet-wide. Each process's last success is told with its
    # first question of the outage: from before the run began, it does not end it.
    for breaker in processes:
        assert breaker.allow(5.0).allowed
        transition = breaker.record(True)
    assert transition is not None and transition.reason == "3 calls failed in a row"
    assert not processes[0].allow(5.0).allowed


def test_a_success_told_late_ends_the_run(fleet: Callable[..., RedisBreaker]) -> None:
    policy = BreakerPolicy(min_calls=100, consecutive_failures=2, cooldown=5.0)
    time = SharedTime()
    a, b = fleet(policy, time_source=time), fleet(policy, time_source=time)
    _fail(a, 1)
    time.now += 0.01
    assert b.allow(5.0).allowed
    b.record(False)  # held back: no round trip of its own
    assert b.allow(5.0).allowed  # told here: the run of one failure is over
    _fail(a, 1)
    assert a.state is BreakerState.CLOSED
    _fail(a, 1)
    assert a.state is BreakerState.OPEN


def test_skewed_process_clocks_change_no_decision(fleet: Callable[..., RedisBreaker]) -> None:
    # Local clocks a day apart; decisions are made on Redis server time.
    ahead, behind = fleet(clock=VirtualClock(start=86_400.0 * 2)), fleet(clock=VirtualClock())
    _fail(behind, POLICY.min_calls)
    a, b = ahead.allow(5.0), behind.allow(5.0)
    assert not a.allowed and not b.allowed
    assert a.retry_in is not None and b.retry_in is not None
    assert 0 < a.retry_in <= POLICY.cooldown and 0 < b.retry_in <= POLICY.cooldown


# ---------------------------------------------------------------------------- half-open trials


def _open_then_cool(
    fleet: Callable[..., RedisBreaker], time: SharedTime, n: int
) -> list[RedisBreaker]:
    processes = [fleet(time_source=time) for _ in range(n)]
    _fail(processes[0], POLICY.min_calls)
    time.now += POLICY.cooldown
    return processes


def test_exactly_one_trial_fleet_wide_from_concurrent_threads(
    fleet: Callable[..., RedisBreaker],
) -> None:
    time = SharedTime()
    processes = _open_then_cool(fleet, time, 16)
    barrier = threading.Barrier(len(processes))
    granted: list[bool] = []

    def ask(breaker: RedisBreaker) -> None:
        barrier.wait()
        granted.append(breaker.allow(5.0).allowed)

    threads = [threading.Thread(target=ask, args=(breaker,)) for breaker in processes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(granted) == [False] * 15 + [True]


async def test_exactly_one_trial_fleet_wide_from_concurrent_tasks(
    fleet: Callable[..., RedisBreaker],
) -> None:
    time = SharedTime()
    processes = _open_then_cool(fleet, time, 16)
    verdicts = await asyncio.gather(*(breaker.aallow(5.0) for breaker in processes))
    assert sum(verdict.allowed for verdict in verdicts) == 1
    assert [verdict.trial for verdict in verdicts] == [verdict.allowed for verdict in verdicts]
    for breaker in processes:
        await breaker.aclose()


def test_a_crashed_trial_holder_frees_its_slot_when_its_lease_ends(
    fleet: Callable[..., RedisBreaker],
) -> None:
    time = SharedTime()
    crashed, other = _open_then_cool(fleet, time, 2)
    assert crashed.allow(2.0).trial  # ... and the process dies: it never reports
    assert not other.allow(2.0).allowed
    time.now += 2.5
    verdict = other.allow(2.0)
    assert verdict.allowed and verdict.trial
    other.record(False)
    assert other.state is BreakerState.CLOSED
    assert fleet(time_source=time).allow(2.0).allowed  # closed for everyone


def test_an_abandoned_trial_gives_its_slot_back_at_once(
    fleet: Callable[..., RedisBreaker],
) -> None:
    time = SharedTime()
    cancelled, other = _open_then_cool(fleet, time, 2)
    assert cancelled.allow(30.0).trial
    cancelled.abandon(True)  # no running loop: released inline
    assert other.allow(30.0).trial


async def test_an_abandoned_trial_is_given_back_without_blocking_the_loop(
    fleet: Callable[..., RedisBreaker],
) -> None:
    time = SharedTime()
    cancelled, other = _open_then_cool(fleet, time, 2)
    assert (await cancelled.aallow(30.0)).trial
    cancelled.abandon(True)  # scheduled on this loop
    await asyncio.gather(*cancelled._tasks)
    assert (await other.aallow(30.0)).trial
    await cancelled.aclose()
    await other.aclose()


def test_a_failed_trial_opens_the_breaker_again_for_everyone(
    fleet: Callable[..., RedisBreaker],
) -> None:
    time = SharedTime()
    trial, other = _open_then_cool(fleet, time, 2)
    assert trial.allow(5.0).trial
    transition = trial.record(True)
    assert transition is not None and transition.reason == "trial call failed"
    assert not other.allow(5.0).allowed
    assert other.state is BreakerState.OPEN


# ---------------------------------------------------------------------------- Redis faults


def test_redis_stopped_mid_run_falls_back_to_local_and_rejoins(
    redis_server: RedisServer, fleet: Callable[..., RedisBreaker]
) -> None:
    clock = VirtualClock()
    a, b = fleet(url=redis_server.url, clock=clock), fleet(url=redis_server.url, clock=clock)
    _fail(a, 2)
    redis_server.stop()
    # Redis is gone: nothing raises; A decides with its own breaker, fed all along.
    for _ in range(2):
        assert a.allow(5.0).allowed
        a.record(True)
    assert not a.available
    assert a.state is BreakerState.OPEN  # its local window: 4 of 4 failed
    assert not a.allow(5.0).allowed
    assert b.allow(5.0).allowed  # B saw no failure of its own: its local breaker is closed
    b.record(False)
    redis_server.start()  # back, and empty (no persistence): the fleet's breaker is closed
    clock.advance(60)  # past the latch's pause: the next call probes Redis
    verdict = a.allow(5.0)
    assert a.available
    assert verdict.allowed and a.state is BreakerState.CLOSED
    assert verdict.transition is not None and verdict.transition.state is BreakerState.CLOSED
    _fail(b, POLICY.min_calls)  # and the fleet is one again
    assert not a.allow(5.0).allowed


def test_redis_paused_mid_run_costs_a_timeout_and_never_an_error(
    redis_server: RedisServer, fleet: Callable[..., RedisBreaker]
) -> None:
    clock = VirtualClock()
    a = fleet(url=redis_server.url, clock=clock)
    _fail(a, POLICY.min_calls)
    assert not a.allow(5.0).allowed
    redis_server.command("CLIENT", "PAUSE", "3000", "ALL")
    try:
        verdict = a.allow(5.0)  # times out (socket timeout) and answers locally
        assert not a.available
        assert not verdict.allowed  # the local breaker saw the same four failures
        a.record(True)
    finally:
        redis_server.command("CLIENT", "UNPAUSE")
    clock.advance(60)
    assert not a.allow(5.0).allowed
    assert a.available


async def test_async_redis_paused_and_stopped_never_raise(
    redis_server: RedisServer, fleet: Callable[..., RedisBreaker]
) -> None:
    clock = VirtualClock()
    a = fleet(url=redis_server.url, clock=clock)
    for _ in range(POLICY.min_calls):
        assert (await a.aallow(5.0)).allowed
        await a.arecord(True)
    redis_server.command("CLIENT", "PAUSE", "3000", "ALL")
    try:
        assert not (await a.aallow(5.0)).allowed
        assert not a.available
    finally:
        redis_server.command("CLIENT", "UNPAUSE")
    redis_server.stop()
    clock.advance(60)
    verdict = await a.aallow(5.0)  # the probe failed: the local breaker, past its cooldown
    assert not a.available
    assert verdict.trial and a.state is BreakerState.HALF_OPEN
    await a.arecord(True)
    redis_server.start()
    clock.advance(60)
    assert (await a.aallow(5.0)).allowed  # rejoined: an empty Redis is a closed breaker
    assert a.available
    await a.aclose()


def test_redis_flushed_mid_run_is_a_closed_breaker(
    redis_server: RedisServer, fleet: Callable[..., RedisBreaker]
) -> None:
    a, b = fleet(url=redis_server.url), fleet(url=redis_server.url)
    _fail(a, POLICY.min_calls)
    assert not b.allow(5.0).allowed
    redis_server.command("FLUSHALL")  # the test's own server; scripts are gone too
    verdict = b.allow(5.0)
    assert verdict.allowed and b.available
    assert b.state is BreakerState.CLOSED


def test_keys_are_namespaced_by_credentials_and_expire(
    redis_url: str, redis_prefix: str, fleet: Callable[..., RedisBreaker]
) -> None:
    import redis

    def keys() -> list[str]:
        return sorted(key.decode() for key in client.scan_iter(match=redis_prefix + ":*"))

    client = redis.Redis.from_url(redis_url)
    try:
        a = fleet()
        assert a.allow(5.0).allowed
        a.record(False)  # a success in a closed breaker is told with the next script call
        assert keys() == []
        _fail(a, 1)  # told with the failure: the window's buckets, and the run in the state hash
        assert keys() == [
            f"{redis_prefix}:breaker:{{app-fingerprint}}:api",
            f"{redis_prefix}:breaker:{{app-fingerprint}}:api:window",
        ]
        window = client.hgetall(f"{redis_prefix}:breaker:{{app-fingerprint}}:api:window")
        assert sorted(int(count) for count in window.values()) == [1, 2]  # 1 failure, 2 calls
        _fail(a, 2)  # 3 of 4 recent calls failed: opened
        assert a.state is BreakerState.OPEN
        ttl_limit = (2 * (POLICY.window + POLICY.cooldown) + 60) * 1000
        assert all(0 < client.pttl(key) <= ttl_limit for key in keys())
    finally:
        client.close()


# ---------------------------------------------------------------------------- Lua == memory

_POLICIES = st.builds(
    BreakerPolicy,
    window=st.sampled_from([0.5, 1.0, 2.5, 10.0]),
    min_calls=st.integers(1, 5),
    failure_ratio=st.sampled_from([0.1, 0.5, 0.75, 1.0]),
    consecutive_failures=st.sampled_from([None, 1, 2, 3, 10]),
    cooldown=st.sampled_from([0.1, 0.5, 2.0]),
    half_open_calls=st.integers(1, 3),
)
_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.sampled_from([0.0, 0.05, 0.3, 0.6, 1.0])),
        st.tuples(st.just("allow"), st.just(None)),
        st.tuples(st.just("allow"), st.just(None)),
        st.tuples(st.just("record"), st.sampled_from([True, False, None])),
        st.tuples(st.just("record"), st.sampled_from([True, False])),
    ),
    max_size=50,
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(policy=_POLICIES, steps=_STEPS, start=st.floats(1.0, 1e9))
def test_the_lua_breaker_and_the_memory_breaker_agree(
    redis_url: str, policy: BreakerPolicy, steps: list[tuple[str, Any]], start: float
) -> None:
    """Every answer and every transition, on a random sequence of observations and times."""
    _agree(redis_url, policy, steps, start)


def test_trial_successes_use_up_the_half_open_slots_as_in_memory(redis_url: str) -> None:
    policy = BreakerPolicy(min_calls=1, failure_ratio=1.0, cooldown=0.5, half_open_calls=2)
    steps: list[tuple[str, Any]] = [("allow", None), ("record", True), ("advance", 0.6)]
    # A trial succeeds (one slot is spent for good), a second is granted, a third is not.
    steps += [("allow", None), ("record", False), ("allow", None), ("allow", None)]
    steps += [("record", False), ("allow", None)]
    _agree(redis_url, policy, steps, 5_000.0)


def _agree(
    redis_url: str, policy: BreakerPolicy, steps: list[tuple[str, Any]], start: float
) -> None:
    time = SharedTime(start)
    redis_side = RedisBreaker(
        policy,
        redis_url,
        uuid.uuid4().hex,
        VirtualClock(),
        key_prefix="irtest:agree",
        time_source=time,
    )
    memory = CircuitBreaker(policy)
    try:
        for op, value in steps:
            if op == "advance":
                time.now += value  # 50 steps of at most 1 s: within every trial lease
            elif op == "allow":
                verdict = redis_side.allow(60.0)
                allowed, transition = memory.allow(time.now)
                retry_at = memory.retry_at
                assert verdict.allowed == allowed
                assert verdict.retry_in == (None if retry_at is None else retry_at - time.now)
                _same(verdict.transition, transition)
            else:
                _same(redis_side.record(value), memory.record(time.now, failed=value))
            assert redis_side.state is memory.state
    finally:
        redis_side._link.client.delete(*redis_side.keys)
        redis_side.close()


def _same(ours: Any, theirs: Any) -> None:
    if theirs is None:
        assert ours is None
    else:
        assert ours is not None
        assert (ours.previous, ours.state, ours.reason) == (
            theirs.previous,
            theirs.state,
            theirs.reason,
        )
