"""Bounded latency (issue #15): every call answers within its deadline, and never sleeps to fail.

Each scenario was measured on the old code with an ``httpx.MockTransport`` (1-h reset 429: the
first call slept 60 s; 503 + ``Retry-After: 12``: 36 s; a dripping body: 19.8 s against a 5-s
deadline; ``timeout_in_seconds=2`` ignored: 30 s). Here on a virtual clock, sync and async alike.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from intercom.core.api_error import ApiError

from intercom_resilience import (
    AsyncResilientIntercom,
    CachePolicy,
    DeadlineExceededError,
    DeadlinePolicy,
    OutcomeUnknownError,
    RateLimitedError,
    RateLimitPolicy,
    ResilienceConfig,
    ResilientIntercom,
    TimeoutPolicy,
    VirtualClock,
    capture_calls,
)
from intercom_resilience.testing import FakeIntercom
from tests.client._drive import MODES, done, iterate, make_client

pytestmark = pytest.mark.parametrize("mode", MODES)

ME = {"type": "admin", "id": "1", "name": "Ada", "email": "ada@example.com"}
Handler = Callable[[httpx.Request], httpx.Response]


def _read_timeout(request: httpx.Request) -> float:
    timeout = request.extensions.get("timeout") or {}
    value = timeout.get("read")
    return math.inf if value is None else float(value)


def slow(clock: VirtualClock, latency: float, answer: Handler) -> Handler:
    """An upstream that answers after *latency* seconds, as a socket with a read timeout sees
    it: past the request's read timeout the client gets ``ReadTimeout`` at the timeout."""

    def handler(request: httpx.Request) -> httpx.Response:
        timeout = _read_timeout(request)
        if latency > timeout:
            clock.advance(timeout)
            raise httpx.ReadTimeout("timed out", request=request)
        clock.advance(latency)
        return answer(request)

    return handler


def client_for(mode: str, clock: VirtualClock, handler: Handler, **config: Any) -> Any:
    kwargs: dict[str, Any] = {
        "config": ResilienceConfig(**config),
        "clock": clock,
        "token": "t",
        "seed": 3,
    }
    if mode == "sync":
        return ResilientIntercom(transport=httpx.MockTransport(handler), **kwargs)

    async def ahandler(request: httpx.Request) -> httpx.Response:
        return handler(request)

    return AsyncResilientIntercom(transport=httpx.MockTransport(ahandler), **kwargs)


def error_body(code: str, request_id: str) -> dict[str, Any]:
    return {"type": "error.list", "request_id": request_id, "errors": [{"code": code}]}


class Script:
    """A handler that answers from a list of scripted responses, then repeats the last one."""

    def __init__(self, *answers: Handler) -> None:
        self.answers = list(answers)
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        answer = self.answers[min(self.calls, len(self.answers)) - 1]
        return answer(request)


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=ME)


def rate_limited_for_an_hour(clock: VirtualClock) -> Handler:
    def answer(request: httpx.Request) -> httpx.Response:
        headers = {"x-ratelimit-limit": "1666", "x-ratelimit-remaining": "0"}
        headers["x-ratelimit-reset"] = str(int(clock.time() + 3600))
        return httpx.Response(429, headers=headers, json=error_body("rate_limit_exceeded", "r-429"))

    return answer


def unavailable(retry_after: str = "12") -> Handler:
    def answer(request: httpx.Request) -> httpx.Response:
        body = error_body("service_unavailable", "r-503")
        return httpx.Response(503, headers={"retry-after": retry_after}, json=body)

    return answer


async def test_a_one_hour_reset_429_fails_at_once_with_how_long_to_wait(mode: str) -> None:
    clock = VirtualClock()
    client = client_for(mode, clock, rate_limited_for_an_hour(clock))
    start = clock.monotonic()
    with pytest.raises(RateLimitedError) as raised:
        await done(client.admins.identify())
    assert clock.monotonic() - start == 0.0  # nothing slept: decided at the first answer
    assert raised.value.status_code == 429
    assert raised.value.request_id == "r-429"
    assert raised.value.retry_after == pytest.approx(60.0)  # clamped to max_server_wait


async def test_a_503_with_retry_after_past_the_deadline_fails_at_once(mode: str) -> None:
    clock = VirtualClock()
    script = Script(unavailable("12"))
    client = client_for(mode, clock, script)
    start = clock.monotonic()
    with pytest.raises(DeadlineExceededError) as raised:
        await done(client.admins.identify())
    assert clock.monotonic() - start == 0.0
    assert script.calls == 1
    error = raised.value
    assert isinstance(error, ApiError)  # existing `except ApiError` handlers keep working
    assert (error.status_code, error.request_id, error.retry_after) == (503, "r-503", 12.0)


async def test_a_slow_upstream_with_a_cached_answer_serves_it_within_the_budget(
    mode: str,
) -> None:
    clock = VirtualClock()
    script = Script(ok, slow(clock, 25.0, ok))
    client = client_for(mode, clock, script)
    await done(client.admins.identify())  # warms the cache
    start = clock.monotonic()
    with capture_calls() as calls:
        me = await done(client.admins.identify())
    assert me.email == ME["email"]
    assert clock.monotonic() - start <= DeadlinePolicy().stale_if_slow + 1e-9
    info = calls.last
    assert info is not None
    assert (info.stale, info.reason) == (True, "slow")


async def test_a_slow_upstream_without_a_cached_answer_ends_at_the_deadline(mode: str) -> None:
    clock = VirtualClock()
    client = client_for(mode, clock, slow(clock, 25.0, ok))
    start = clock.monotonic()
    with pytest.raises(httpx.TimeoutException):
        await done(client.admins.identify())
    assert clock.monotonic() - start <= DeadlinePolicy().interactive + 1e-9


class _Drip(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that arrives one byte every 0.2 s of the virtual clock."""

    def __init__(self, clock: VirtualClock, body: bytes) -> None:
        self.clock = clock
        self.body = body

    def __iter__(self) -> Iterator[bytes]:
        for byte in self.body:
            self.clock.advance(0.2)
            yield bytes([byte])

    async def __aiter__(self) -> Any:
        for chunk in self:
            yield chunk


async def test_a_dripping_body_cannot_outlive_the_deadline(mode: str) -> None:
    clock = VirtualClock()
    body = json.dumps(ME).encode()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=_Drip(clock, body))

    client = client_for(
        mode,
        clock,
        handler,
        deadlines=DeadlinePolicy(interactive=5.0, stale_if_slow=None),
        timeouts=TimeoutPolicy(read=2.0),
        cache=CachePolicy(enabled=False),
    )
    start = clock.monotonic()
    with pytest.raises(httpx.TimeoutException):
        await done(client.admins.identify())
    assert clock.monotonic() - start <= 5.0 + 0.2 + 1e-9  # the deadline, and one more byte


async def test_the_sdks_own_per_call_timeout_is_the_calls_deadline(mode: str) -> None:
    clock = VirtualClock()
    script = Script(unavailable("10"))
    client = client_for(mode, clock, script)
    start = clock.monotonic()
    with pytest.raises(DeadlineExceededError):
        await done(client.admins.identify(request_options={"timeout_in_seconds": 2}))
    assert clock.monotonic() - start <= 2.0


async def test_a_deadline_block_bounds_every_call_in_it(mode: str) -> None:
    clock = VirtualClock()
    script = Script(unavailable("1.5"))
    client = client_for(mode, clock, script)
    with client.deadline(2.0):
        start = clock.monotonic()
        with pytest.raises(DeadlineExceededError):
            await done(client.admins.identify())
        # one wait of 1.5 s fitted; the second would not have
        assert 1.5 <= clock.monotonic() - start <= 2.0
        assert script.calls == 2


async def test_a_longer_deadline_lets_a_call_wait_out_the_window(mode: str) -> None:
    clock = VirtualClock()
    script = Script(unavailable("12"), ok)
    client = client_for(mode, clock, script)
    with client.deadline(30.0):
        me = await done(client.admins.identify())
    assert me.email == ME["email"]
    assert script.calls == 2


@pytest.mark.parametrize("bad", [0, -1.0, math.nan, math.inf, 0.01, "2", True])
async def test_a_bad_per_call_deadline_fails_before_anything_is_sent(mode: str, bad: Any) -> None:
    clock = VirtualClock()
    script = Script(ok)
    client = client_for(mode, clock, script)
    with pytest.raises(ValueError, match=r"deadline\(seconds\)"), client.deadline(bad):
        pass
    with pytest.raises(ValueError, match="timeout_in_seconds"):
        await done(client.admins.identify(request_options={"timeout_in_seconds": bad}))
    assert script.calls == 0


async def test_the_background_lane_rides_through_a_429_storm(mode: str) -> None:
    clock = VirtualClock()
    storm_until = clock.time() + 60.0

    def handler(request: httpx.Request) -> httpx.Response:
        if clock.time() < storm_until:
            headers = {"x-ratelimit-remaining": "0", "retry-after": "10"}
            return httpx.Response(429, headers=headers, json=error_body("rate_limit_exceeded", "r"))
        return ok(request)

    client = client_for(mode, clock, handler)
    with pytest.raises(RateLimitedError):  # interactive: fails fast
        await done(client.admins.identify())
    with client.background():
        me = await done(client.admins.identify())  # background: waits it out
    assert me.email == ME["email"]
    assert clock.time() >= storm_until


# ------------------------------------------------------------------ hostile responses, 10,000 calls

_STATUSES = [200, 200, 200, 400, 401, 404, 408, 409, 429, 500, 502, 503, 504]
_WAITS = ["-5", "nan", "inf", "1e12", "Wed, 21 Oct 2099 07:28:00 GMT", "soon", "0", "3", "7.5"]


def hostile(clock: VirtualClock, rng: random.Random) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        latency = rng.choice([0.01, 0.05, 0.2, 1.0, 4.0, 12.0, 40.0])
        timeout = _read_timeout(request)
        if rng.random() < 0.1:
            clock.advance(min(latency, timeout))
            raise rng.choice([httpx.ReadError, httpx.ConnectError, httpx.RemoteProtocolError])(
                "boom", request=request
            )
        if latency > timeout:
            clock.advance(timeout)
            raise httpx.ReadTimeout("slow", request=request)
        clock.advance(latency)
        status = rng.choice(_STATUSES)
        headers = {}
        if rng.random() < 0.5:
            headers["retry-after"] = rng.choice(_WAITS)
        if rng.random() < 0.5:
            headers["x-ratelimit-reset"] = rng.choice(["-1", "99999999999", "x", "0"])
        if status == 200:
            return httpx.Response(200, headers=headers, json=ME)
        return httpx.Response(status, headers=headers, json=error_body("x", "r"))

    return handler


async def test_no_interactive_call_ever_outlives_its_deadline_under_hostile_responses(
    mode: str,
) -> None:
    clock = VirtualClock()
    rng = random.Random(15)
    # Small quota and a small breaker window, so that limiter waits and the breaker join in.
    client = client_for(mode, clock, hostile(clock, rng))
    deadline = DeadlinePolicy().interactive
    worst = 0.0
    calls = 10_000 if mode == "sync" else 2_000
    for n in range(calls):
        start = clock.monotonic()
        try:
            if n % 7 == 0:
                await done(client.contacts.delete(contact_id=str(n % 13)))
            else:
                await done(client.admins.identify())
        except (ApiError, httpx.HTTPError, OutcomeUnknownError):
            pass  # a DELETE whose every answer was lost (5xx) is of unknown outcome
        took = clock.monotonic() - start
        worst = max(worst, took)
        assert took <= deadline + 1e-9, f"call {n} took {took:.3f}s"
        clock.advance(rng.choice([0.0, 0.1, 1.0]))
    assert worst > 1.0  # the run did exercise slow paths


async def test_a_quota_exhausted_limiter_answers_warm_reads_at_once_and_refuses_in_time(
    mode: str,
) -> None:
    clock = VirtualClock()
    script = Script(ok)
    one_a_minute = RateLimitPolicy(app_per_minute=1, workspace_per_minute=1)
    client = client_for(mode, clock, script, rate_limit=one_a_minute)
    await done(client.admins.identify())  # spends the minute's only token, warms the cache
    start = clock.monotonic()
    with capture_calls() as calls:
        me = await done(client.admins.identify())
    assert me.email == ME["email"]
    assert clock.monotonic() - start == 0.0  # stale-while-rate-limited: no wait at all
    assert calls.last is not None
    assert (calls.last.stale, calls.last.reason) == (True, "limiter_wait")
    with pytest.raises(RateLimitedError) as raised:  # nothing cached for this one
        await done(client.contacts.find(contact_id="1"))
    assert raised.value.retry_after is not None
    assert raised.value.retry_after > DeadlinePolicy().interactive
    assert clock.monotonic() - start == 0.0
    assert script.calls == 1


async def test_a_deadline_block_holds_for_a_whole_pager_iteration(mode: str) -> None:
    clock = VirtualClock()
    fake = FakeIntercom(clock=clock)
    # A cached page would answer the third call stale: this is about time, not the cache.
    client = make_client(
        mode, fake, clock, config=ResilienceConfig(cache=CachePolicy(enabled=False))
    )
    for n in range(30):
        await done(client.contacts.create(request={"email": f"p{n}@example.com"}))
    fake.faults.latency(1.0, path="/contacts", method="GET")  # every page takes a second
    start = clock.monotonic()
    # Three pages: the third's read timeout is cut to the half second left, and times out.
    with client.deadline(2.5), pytest.raises(httpx.TimeoutException):
        await iterate(client.contacts.list(per_page=10))
    assert clock.monotonic() - start <= 2.5
    assert fake.journal.count(method="GET", path="/contacts") == 3
    # Without the block each page has the lane's own deadline: all three pages come back.
    assert len(await iterate(client.contacts.list(per_page=10))) == 30
