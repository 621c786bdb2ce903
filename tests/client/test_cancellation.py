"""Cancellation (an asyncio matter): a call that never reports back must not wedge the breaker."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from intercom.core.api_error import ApiError

from intercom_resilience import (
    AsyncResilientIntercom,
    BreakerPolicy,
    ResilienceConfig,
    RetryPolicy,
    VirtualClock,
)


async def test_a_cancelled_trial_call_gives_back_its_slot(clock: VirtualClock) -> None:
    hang = asyncio.Event()
    script = ["503", "503", "hang", "200"]

    async def handler(request: httpx.Request) -> httpx.Response:
        step = script.pop(0)
        if step == "hang":
            await hang.wait()  # never set: the caller gives up first
        if step == "503":
            return httpx.Response(503, json={"type": "error.list", "request_id": "r"})
        return httpx.Response(200, json={"type": "admin", "id": "1", "email": "a@example.com"})

    config = ResilienceConfig(
        breaker=BreakerPolicy(min_calls=2, cooldown=5, half_open_calls=1),
        retry=RetryPolicy(max_attempts=1),
    )
    client = AsyncResilientIntercom(
        token="t", transport=httpx.MockTransport(handler), clock=clock, config=config
    )
    for _ in range(2):
        with pytest.raises(ApiError):
            await client.admins.identify()
    clock.advance(5)
    trial = asyncio.create_task(client.admins.identify())
    await asyncio.sleep(0.01)
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial
    await client.admins.identify()  # not CircuitOpenError: the cancelled trial gave its slot back
    assert client.breaker_state.value == "closed"
