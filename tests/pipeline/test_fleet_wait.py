"""The fleet waiter's decisions (``Coalescing.fleet_join``), sans I/O: any sequence of lock
states, any budget. Properties: it never waits past its patience, it takes an answer only when
the leader named it, and it never gives up on an answer it was handed.
"""

from __future__ import annotations

from typing import Any

import httpx
from hypothesis import given
from hypothesis import strategies as st

from intercom_resilience import VirtualClock
from intercom_resilience._backends.base import CachedResponse, Priority
from intercom_resilience._core.requests import classify
from intercom_resilience._pipeline.call import Call
from intercom_resilience._pipeline.coalesce import Coalescing, FleetLand, FleetLock, FleetPeek
from intercom_resilience._pipeline.coherence import Coherence
from intercom_resilience._pipeline.effects import CacheGet, Sleep

ENTRY = CachedResponse(200, (), b"{}", stored_at=1_700_000_000.25, request_id="req-1")
LEADERS = "done:" + repr(ENTRY.stored_at)

_state = st.sampled_from(["held:x", "held:x", "held:x", LEADERS, "done:1.0", "", None])


def _call(clock: VirtualClock, path: str, method: str = "POST", budget: float = 2.0) -> Call:
    request = httpx.Request(method, f"https://api.intercom.io{path}")
    now = clock.monotonic()
    return Call(
        request=request,
        path=path,
        kind=classify(method, path),
        scope="s",
        priority=Priority.INTERACTIVE,
        started=now,
        deadline=now + 30,
        cache_key="ir:cache:s:abc",
        slow_at=now + budget,
        generation=0,
    )


def _drive(
    coalescing: Coalescing, call: Call, clock: VirtualClock, lock: bool | None, states: list[Any]
) -> tuple[CachedResponse | None, float, list[str]]:
    """Run fleet_join, answering its effects from *lock* and *states*; (result, waited, kinds)."""
    started = clock.monotonic()
    steps = coalescing.fleet_join(call)
    kinds: list[str] = []
    reply: Any = None
    remaining = list(states)
    try:
        while True:
            effect = steps.send(reply)
            kinds.append(type(effect).__name__)
            if isinstance(effect, FleetLock):
                reply = lock
            elif isinstance(effect, Sleep):
                assert effect.seconds > 0
                clock.sleep(effect.seconds)
                reply = None
            elif isinstance(effect, FleetPeek):
                reply = remaining.pop(0) if remaining else "held:x"
            elif isinstance(effect, CacheGet):
                reply = ENTRY
            else:  # pragma: no cover - fleet_join yields nothing else
                raise AssertionError(effect)
    except StopIteration as done:
        return done.value, clock.monotonic() - started, kinds


@given(
    lock=st.sampled_from([True, False, None]),
    states=st.lists(_state, max_size=40),
    wait=st.floats(0.01, 5.0),
    budget=st.floats(0.01, 5.0),
)
def test_the_waiter_keeps_to_its_patience_and_takes_only_the_leaders_answer(
    lock: bool | None, states: list[Any], wait: float, budget: float
) -> None:
    clock = VirtualClock()
    coalescing = Coalescing(
        Coherence(clock, enabled=True), enabled=True, clock=clock, fleet=True, fleet_wait=wait
    )
    call = _call(clock, "/contacts/search", budget=budget)

    result, waited, kinds = _drive(coalescing, call, clock, lock, states)

    assert waited <= min(wait, budget) + 1e-6  # never past its patience (float sums aside)
    if lock is not False:  # it leads (True) or Redis is gone (None): no waiting at all
        assert result is None and kinds == ["FleetLock"]
        assert (call.fleet_token is not None) == (lock is True)
        return
    assert call.fleet_token is None
    if result is not None:
        assert result is ENTRY and kinds[-2:] == ["FleetPeek", "CacheGet"]
    # The first state that is not "held" decides; it is the leader's answer only if it names it.
    seen = states[: kinds.count("FleetPeek")]
    deciding = next((s for s in seen if s != "held:x"), None)
    assert (result is not None) == (deciding == LEADERS)


def test_writes_and_reads_of_one_record_never_take_the_lock() -> None:
    clock = VirtualClock()
    coalescing = Coalescing(Coherence(clock, enabled=True), enabled=True, clock=clock, fleet=True)
    for method, path in [("POST", "/contacts"), ("GET", "/contacts/abc"), ("GET", "/me")]:
        call = _call(clock, path, method)
        assert _drive(coalescing, call, clock, True, [])[2] == []
    assert _drive(coalescing, _call(clock, "/contacts", "GET"), clock, True, [])[2] == ["FleetLock"]


def test_a_leader_lands_its_answer_or_releases() -> None:
    clock = VirtualClock()
    coalescing = Coalescing(Coherence(clock, enabled=True), enabled=True, clock=clock, fleet=True)
    call = _call(clock, "/contacts/search")
    _drive(coalescing, call, clock, True, [])
    token = call.fleet_token
    landing = coalescing.fleet_land(call, ENTRY)
    assert landing == FleetLand("ir:cache:s:abc", str(token), repr(ENTRY.stored_at), 2000)
    assert coalescing.fleet_land(call, ENTRY) is None  # once
    other = _call(clock, "/contacts/search")
    _drive(coalescing, other, clock, True, [])
    released = coalescing.fleet_land(other, None)
    assert released is not None and released.marker is None
