"""The call driver, driven by hand: no transport, no client, no I/O — effects in, replies out.

These tests are what sans-I/O buys: the order of a call's steps is checked by reading the effects
the driver yields and sending it scripted replies, exactly as the sync and async shells do.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from intercom_resilience import BreakerPolicy, ResilienceConfig, RetryPolicy, VirtualClock
from intercom_resilience._backends.base import CachedResponse, Grant
from intercom_resilience._core.breaker import BreakerState
from intercom_resilience._errors import CircuitOpenError, OutcomeUnknownError
from intercom_resilience._pipeline import Pipeline
from intercom_resilience._pipeline.driver import CallDriver, drive
from intercom_resilience._pipeline.effects import (
    Acquire,
    AskBreaker,
    CacheGet,
    CachePut,
    Effect,
    Invalidate,
    ObserveRate,
    Send,
    Sent,
    Sleep,
    TellBreaker,
)

BASE = "https://api.intercom.io"
Reply = Callable[[Effect], Any]


def every_effect(pipe: Pipeline, req: httpx.Request) -> CallDriver:
    """A driver of *req* that yields every effect, those on in-process backends included (a
    pipeline's own drivers perform those themselves: these tests script their replies)."""
    return CallDriver(drive(pipe, req))


def pipeline(clock: VirtualClock, **config: Any) -> Pipeline:
    return Pipeline(
        config=ResilienceConfig(**config),
        clock=clock,
        token="tok",
        base_url=BASE,
        scope="s",
    )


def request(method: str = "GET", path: str = "/contacts/1", body: bytes = b"") -> httpx.Request:
    headers = {"Authorization": "Bearer tok"}
    return httpx.Request(method, BASE + path, headers=headers, content=body)


def answer(status: int, body: object | None = None) -> Reply:
    """Replies: every token granted, every send answered *status*, an empty cache."""
    content = json.dumps(body if body is not None else {"type": "contact", "id": "1"}).encode()

    def reply(effect: Effect) -> Any:
        if isinstance(effect, Acquire):
            return Grant(granted=True)
        if isinstance(effect, Send):
            return Sent(httpx.Response(status, content=content, request=effect.request), content)
        if isinstance(effect, Invalidate):
            return 0
        return None

    return reply


def run(
    pipe: Pipeline, req: httpx.Request, reply: Reply
) -> tuple[list[type[Effect]], httpx.Response | BaseException]:
    """Drive one call; the effect types in order, and the response (or the error raised).

    The breaker's effects are performed on the pipeline's own breaker and left out of the order
    (``with_breaker=True`` in :func:`run_all` keeps them).
    """
    seen: list[type[Effect]] = []
    try:
        with every_effect(pipe, req) as call:
            for effect in call:
                if isinstance(effect, (AskBreaker, TellBreaker)):
                    call.reply = effect.run(pipe)
                    continue
                seen.append(type(effect))
                call.reply = reply(effect)
    except BaseException as error:  # the call's error (or the shell's), as the shells let it
        return seen, error
    return seen, call.result


def test_a_fresh_read_looks_for_a_reserve_then_acquires_sends_observes_and_stores() -> None:
    seen, result = run(pipeline(VirtualClock()), request(), answer(200))
    assert seen == [CacheGet, Acquire, Send, ObserveRate, CachePut]
    assert isinstance(result, httpx.Response)
    assert result.status_code == 200


def test_the_breaker_is_asked_before_anything_and_told_after_every_send() -> None:
    pipe = pipeline(VirtualClock(), retry=RetryPolicy(max_attempts=2))
    seen: list[type[Effect]] = []
    reply = answer(503, {})
    with every_effect(pipe, request()) as call:
        for effect in call:
            seen.append(type(effect))
            is_breaker = isinstance(effect, (AskBreaker, TellBreaker))
            call.reply = effect.run(pipe) if is_breaker else reply(effect)  # type: ignore[attr-defined]
    assert seen[:2] == [AskBreaker, CacheGet]
    sends = [i for i, kind in enumerate(seen) if kind is Send]
    assert len(sends) == 2
    assert all(seen[i + 1] is TellBreaker for i in sends)


def test_a_write_invalidates_instead_of_storing() -> None:
    req = request("PUT", "/contacts/1", b'{"email": "a@b.c"}')
    seen, _ = run(pipeline(VirtualClock()), req, answer(200))
    assert seen == [Acquire, Send, ObserveRate, Invalidate]


def test_a_failed_read_is_retried_after_a_sleep_then_looks_for_a_stale_answer() -> None:
    clock = VirtualClock()
    seen, result = run(
        pipeline(clock, retry=RetryPolicy(max_attempts=2)), request(), answer(503, {})
    )
    # The reserve looked up first is the one consulted at the end: one lookup per call.
    naps = [kind for i, kind in enumerate(seen) if kind is not Sleep or seen[i - 1] is not Sleep]
    assert naps == [CacheGet, Acquire, Send, ObserveRate, Sleep, Acquire, Send, ObserveRate]
    assert isinstance(result, httpx.Response)  # the SDK raises on the 503 body
    assert result.status_code == 503


def test_a_stale_entry_answers_the_outage() -> None:
    clock = VirtualClock()
    entry = CachedResponse(200, (("content-type", "application/json"),), b"{}", clock.time())
    base = answer(503, {})

    def reply(effect: Effect) -> Any:
        return entry if isinstance(effect, CacheGet) else base(effect)

    seen, result = run(pipeline(clock, retry=RetryPolicy(max_attempts=1)), request(), reply)
    assert seen.count(CacheGet) == 1
    assert isinstance(result, httpx.Response)
    assert result.status_code == 200
    assert "x-intercom-resilience-stale-age" in result.headers


def test_no_token_yet_means_sleep_and_ask_again() -> None:
    grants = iter([Grant(False, wait=0.5), Grant(True)])
    base = answer(200)

    def reply(effect: Effect) -> Any:
        return next(grants) if isinstance(effect, Acquire) else base(effect)

    seen, _ = run(pipeline(VirtualClock()), request(), reply)
    # The 0.5 s wait is slept in slices, so that the kill switch can cut it short.
    assert seen[:5] == [CacheGet, Acquire, Sleep, Sleep, Acquire]


def test_a_lost_write_is_never_resent() -> None:
    def reply(effect: Effect) -> Any:
        if isinstance(effect, Send):
            return Sent(error=httpx.ReadError("lost", request=effect.request))
        return answer(200)(effect)

    req = request("POST", "/conversations", b'{"body": "hi"}')  # unresolvable: no key
    seen, result = run(pipeline(VirtualClock()), req, reply)
    assert seen.count(Send) == 1
    assert isinstance(result, OutcomeUnknownError)


def test_a_call_stopped_mid_way_gives_back_its_half_open_trial_slot() -> None:
    clock = VirtualClock()
    policy = BreakerPolicy(min_calls=1, failure_ratio=0.5, cooldown=1.0, half_open_calls=1)
    pipe = pipeline(clock, breaker=policy, retry=RetryPolicy(max_attempts=1))
    run(pipe, request(), answer(503, {}))
    assert pipe.breaker_state is BreakerState.OPEN
    clock.advance(2.0)

    # The trial call is cancelled while its request is out (the shell stops performing).
    def cancelled_while_sending(effect: Effect) -> Any:
        if isinstance(effect, Send):
            raise KeyboardInterrupt
        return answer(200)(effect)

    _, error = run(pipe, request(), cancelled_while_sending)
    assert isinstance(error, KeyboardInterrupt)
    # Its slot came back: the next call is the trial, not refused as "circuit open".
    seen, result = run(pipe, request(), answer(200))
    assert Send in seen
    assert not isinstance(result, CircuitOpenError)


def test_the_kill_switch_sends_nothing_and_asks_the_cache() -> None:
    pipe = pipeline(VirtualClock())
    pipe.set_disabled(True)
    seen, result = run(pipe, request(), answer(200))
    assert seen == [CacheGet]
    assert isinstance(result, Exception)
