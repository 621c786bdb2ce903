"""How many Redis round trips one facade call costs, counted on the wire of a real Redis.

Every command redis-py sends goes through ``send_packed_command`` (a pipeline sends once): a
counting wrapper around the real method, for the sync and the async connection classes, counts
round trips without changing what is sent. Not timed.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis
import redis.asyncio.connection

from intercom_resilience import CachePolicy, RateLimitPolicy, ResilienceConfig, VirtualClock
from intercom_resilience._backends.redis_limiter import RedisLimiter
from intercom_resilience.testing import FakeIntercom

from ._drive import MODES, close, done, make_client

pytestmark = [pytest.mark.redis]
CALLS = 25


class Wire:
    """Round trips sent to Redis by every redis-py connection of this process."""

    def __init__(self) -> None:
        self.sent = 0


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Wire:
    counter = Wire()
    sync_send = redis.connection.AbstractConnection.send_packed_command
    async_send = redis.asyncio.connection.AbstractConnection.send_packed_command

    def counted(self: Any, command: Any, check_health: bool = True) -> None:
        counter.sent += 1
        sync_send(self, command, check_health)

    async def acounted(self: Any, command: Any, check_health: bool = True) -> None:
        counter.sent += 1
        await async_send(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)
    monkeypatch.setattr(
        redis.asyncio.connection.AbstractConnection, "send_packed_command", acounted
    )
    return counter


def _limiter(client: Any) -> RedisLimiter:
    limiter = client._pipeline.limiter
    assert isinstance(limiter, RedisLimiter)
    return limiter


async def _round_trips_per_find(mode: str, url: str, wire: Wire, cache: bool) -> tuple[int, int]:
    """(round trips, of which observations sent alone) for CALLS reads after a warm-up."""
    clock = VirtualClock()
    fake = FakeIntercom(clock=clock)  # every answer carries X-RateLimit-* headers
    config = ResilienceConfig(
        rate_limit=RateLimitPolicy(backend="redis"),
        cache=CachePolicy(backend="redis" if cache else "memory"),
        redis_url=url,
    )
    client = make_client(mode, fake, clock, config=config)
    try:
        contact = await done(client.contacts.create(request={"email": "rt@example.com"}))
        for _ in range(3):  # connections opened, scripts loaded, fleet health published
            await done(client.contacts.find(contact_id=contact.id))
        limiter = _limiter(client)
        before, alone = wire.sent, limiter.sent_alone
        for _ in range(CALLS):
            await done(client.contacts.find(contact_id=contact.id))
        return wire.sent - before, limiter.sent_alone - alone
    finally:
        await close(client)


@pytest.mark.parametrize("mode", MODES)
async def test_one_round_trip_per_call_with_the_redis_limiter(
    mode: str, fresh_redis_url: str, wire: Wire
) -> None:
    """Each call's acquire carries the previous response's headers: one EVALSHA per call (it
    was two: acquire, then observe)."""
    trips, alone = await _round_trips_per_find(mode, fresh_redis_url, wire, cache=False)
    # Routine headers are sent alone only when no acquire came for 0.1 s (a stalled machine).
    assert trips == CALLS + alone
    assert alone <= 2


@pytest.mark.parametrize("mode", MODES)
async def test_three_round_trips_per_read_with_the_redis_limiter_and_cache(
    mode: str, fresh_redis_url: str, wire: Wire
) -> None:
    """With the Redis cache too: the lookup of an answer to hold in reserve (stale-if-slow), the
    acquire (carrying the headers) and the store of the fresh answer (it was four: lookup,
    acquire, observe, store). Not folded: the lookup and the store belong to the cache."""
    trips, alone = await _round_trips_per_find(mode, fresh_redis_url, wire, cache=True)
    assert trips == 3 * CALLS + alone
    assert alone <= 2
