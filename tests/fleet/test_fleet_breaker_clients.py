"""The fleet breaker through the facades (sync and async): what one client's failures do to another.

Two clients of one app ("two pods") on one fake Intercom and one real Redis, with
``BreakerPolicy(backend="redis")``; every decision is made on Redis server time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from intercom_resilience import (
    AsyncResilientIntercom,
    BreakerPolicy,
    BreakerState,
    CircuitOpenError,
    ResilienceConfig,
    ResilientIntercom,
    RetryPolicy,
    VirtualClock,
)
from intercom_resilience.events import BreakerTransition, CallRefused, CallRetry, Event
from intercom_resilience.testing import FakeIntercom
from tests.client._drive import MODES, done
from tests.redis_support import RedisServer

pytestmark = pytest.mark.redis

BREAKER = BreakerPolicy(backend="redis", min_calls=4, failure_ratio=0.5, cooldown=30.0)


def _pod(
    mode: str,
    fake: FakeIntercom,
    url: str,
    events: list[Event],
    hook: Callable[[Event], None] | None = None,
) -> Any:
    config = ResilienceConfig(breaker=BREAKER, retry=RetryPolicy(max_attempts=2), redis_url=url)
    kwargs: dict[str, Any] = {
        "token": "fake-token",
        "clock": fake.clock,
        "config": config,
        "event_hooks": [hook or events.append],
    }
    if mode == "sync":
        return ResilientIntercom(transport=fake.transport(), **kwargs)
    return AsyncResilientIntercom(transport=fake.async_transport(), **kwargs)


async def _close(*clients: Any) -> None:
    for client in clients:
        await done(
            client.aclose() if isinstance(client, AsyncResilientIntercom) else client.close()
        )


def _transitions(events: list[Event]) -> list[tuple[str, str]]:
    return [(e.previous, e.state) for e in events if isinstance(e, BreakerTransition)]


@pytest.mark.parametrize("mode", MODES)
async def test_one_pods_failures_open_the_other_pods_breaker(
    mode: str, fresh_redis_url: str
) -> None:
    fake = FakeIntercom(clock=VirtualClock())
    contact = fake.workspace().create_contact({"email": "a@example.com"}, int(fake.clock.time()))
    other = fake.workspace().create_contact({"email": "b@example.com"}, int(fake.clock.time()))
    seen_a: list[Event] = []
    seen_b: list[Event] = []
    a, b = _pod(mode, fake, fresh_redis_url, seen_a), _pod(mode, fake, fresh_redis_url, seen_b)
    try:
        await done(b.contacts.find(contact_id=contact.id))  # healthy: B's breaker is closed
        fake.faults.outage(600)
        for _ in range(2):  # two calls of two attempts: the failures are all A's
            with pytest.raises(Exception):
                await done(a.contacts.find(contact_id=contact.id))
        assert a.breaker_state is BreakerState.OPEN
        sent_before = len(fake.journal)
        with pytest.raises(CircuitOpenError) as refused:  # (a read with nothing cached to serve)
            await done(b.contacts.find(contact_id=other.id))
        assert len(fake.journal) == sent_before  # B sent nothing: it never saw a failure itself
        assert refused.value.retry_at is not None
        assert b.breaker_state is BreakerState.OPEN
        assert _transitions(seen_b) == [("closed", "open")]
        assert b.health().status != "healthy"  # B's health shows the fleet's open breaker
    finally:
        await _close(a, b)


@pytest.mark.parametrize("mode", MODES)
async def test_no_call_fails_because_redis_is_gone(mode: str, redis_server: RedisServer) -> None:
    fake = FakeIntercom(clock=VirtualClock())
    contact = fake.workspace().create_contact({"email": "a@example.com"}, int(fake.clock.time()))
    events: list[Event] = []
    pod = _pod(mode, fake, redis_server.url, events)
    try:
        await done(pod.contacts.find(contact_id=contact.id))
        redis_server.stop()
        for _ in range(3):  # Redis is gone: answers as usual, the local breaker decides
            found = await done(pod.contacts.find(contact_id=contact.id))
            assert found.id == contact.id
        redis_server.start()
        fake.clock.advance(60)  # past the latch's pause
        assert (await done(pod.contacts.find(contact_id=contact.id))).id == contact.id
        assert pod._pipeline.breaker.available
        assert not any("redis" in type(e).__name__.lower() and e.LEVEL == "error" for e in events)
    finally:
        await _close(pod)


@pytest.mark.parametrize("mode", MODES)
async def test_a_retry_is_not_sent_once_another_pod_opened_the_breaker(
    mode: str, fresh_redis_url: str
) -> None:
    # Regression: a retry went out on the pod's own view of the breaker (closed when its call
    # began), so every pod in its backoff sent one more request after the fleet's had opened.
    fake = FakeIntercom(clock=VirtualClock())
    contact = fake.workspace().create_contact({"email": "a@example.com"}, int(fake.clock.time()))
    seen_a: list[Event] = []
    b = _pod(mode, fake, fresh_redis_url, [])

    def hook(event: Event) -> None:
        seen_a.append(event)
        if isinstance(event, CallRetry):  # while A backs off, B's failures open the breaker
            for _ in range(BREAKER.min_calls):
                b._pipeline.breaker.record(True)

    a = _pod(mode, fake, fresh_redis_url, seen_a, hook)
    try:
        fake.faults.outage(600)
        with pytest.raises(Exception) as raised:  # A's first attempt's own error
            await done(a.contacts.find(contact_id=contact.id))
        assert not isinstance(raised.value, CircuitOpenError)
        assert len(fake.journal) == 1  # the retry was not sent
        assert a.breaker_state is BreakerState.OPEN
        assert [e.reason for e in seen_a if isinstance(e, CallRefused)] == ["circuit_open"]
    finally:
        await _close(a, b)
