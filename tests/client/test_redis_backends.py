"""Clients on the Redis backends, against a real Redis: shared cache, isolated credentials."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from intercom.core.api_error import ApiError

from intercom_resilience import (
    AsyncResilientIntercom,
    CachePolicy,
    RateLimitedError,
    RateLimitPolicy,
    ResilienceConfig,
    VirtualClock,
    capture_calls,
)
from intercom_resilience.testing import FakeIntercom

from ._drive import MODES, close, done, make_client

pytestmark = [pytest.mark.redis]
both_modes = pytest.mark.parametrize("mode", MODES)


def _redis_config(url: str) -> ResilienceConfig:
    return ResilienceConfig(
        cache=CachePolicy(backend="redis"),
        rate_limit=RateLimitPolicy(backend="redis"),
        redis_url=url,
    )


@both_modes
async def test_a_shared_cache_never_crosses_credentials(
    mode: str, fresh_redis_url: str, clock: VirtualClock
) -> None:
    fake = FakeIntercom(clock=clock)
    fake.add_token("other-token", app="other-app", workspace="other-workspace")
    config = _redis_config(fresh_redis_url)
    first = make_client(mode, fake, clock, config=config)
    second = make_client(mode, fake, clock, config=config, token="other-token")
    try:
        await _never_crosses(fake, first, second)
    finally:
        await close(first, second)


async def _never_crosses(fake: FakeIntercom, first: Any, second: Any) -> None:
    mine = await done(first.contacts.create(request={"email": "mine@example.com"}))
    await done(first.contacts.find(contact_id=mine.id))  # cached in Redis under first's scope
    await done(first.admins.identify())
    fake.faults.outage(seconds=3600)
    # the same reads by other credentials: nothing of the first client's may come back
    with capture_calls() as calls, pytest.raises(ApiError):
        await done(second.contacts.find(contact_id=mine.id))
    with pytest.raises(ApiError):
        await done(second.admins.identify())
    assert not calls.stale
    # while the first client is served from the shared cache
    with capture_calls() as calls:
        assert (await done(first.contacts.find(contact_id=mine.id))).id == mine.id
    assert calls.stale


@both_modes
async def test_a_second_process_reads_the_first_ones_cache(
    mode: str, fresh_redis_url: str, clock: VirtualClock
) -> None:
    fake = FakeIntercom(clock=clock)
    config = _redis_config(fresh_redis_url)
    writer = make_client(mode, fake, clock, config=config)
    reader = make_client(mode, fake, clock, config=config)  # same token: same scope
    try:
        contact = await done(writer.contacts.create(request={"email": "s@example.com"}))
        await done(writer.contacts.find(contact_id=contact.id))
        fake.faults.outage(seconds=3600)
        with capture_calls() as calls:
            assert (await done(reader.contacts.find(contact_id=contact.id))).id == contact.id
        assert calls.stale
    finally:
        await close(writer, reader)


@both_modes
async def test_apps_of_one_workspace_share_its_bucket(
    mode: str, fresh_redis_url: str, clock: VirtualClock
) -> None:
    fake = FakeIntercom(clock=clock, rate_limits=False)
    fake.add_token("second-app-token", app="second-app")
    policy = RateLimitPolicy(
        backend="redis",
        app_per_minute=6_000,
        workspace_per_minute=60,  # 10 per 10-second window, for both apps together
        burst=1.0,
        max_wait=0.0,
        workspace="acme",
    )
    config = ResilienceConfig(rate_limit=policy, redis_url=fresh_redis_url)
    first = make_client(mode, fake, clock, config=config)
    second = make_client(mode, fake, clock, config=config, token="second-app-token")
    try:
        for _ in range(10):
            await done(first.admins.identify())
        with pytest.raises(RateLimitedError) as refused:
            await done(second.admins.identify())  # the other app finds the workspace spent
        assert refused.value.retry_at is not None
        assert fake.journal.count(path="/me") == 10
    finally:
        await close(first, second)


def test_one_async_client_serves_several_event_loops_and_threads(
    fresh_redis_url: str, clock: VirtualClock
) -> None:
    """``asyncio.run`` again and again with one client, also from threads: every loop gets its
    own Redis connections (the first loop's are closed with it, never reused on another)."""
    fake = FakeIntercom(clock=clock)
    events: list[str] = []
    client = AsyncResilientIntercom(
        token="fake-token",
        transport=fake.async_transport(),
        clock=clock,
        seed=7,
        config=_redis_config(fresh_redis_url),
        event_hooks=[lambda name, fields: events.append(name)],
    )
    contact = asyncio.run(client.contacts.create(request={"email": "loops@example.com"}))

    async def find() -> str:
        found = await client.contacts.find(contact_id=contact.id)
        return str(found.id)

    for _ in range(3):
        assert asyncio.run(find()) == contact.id
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(2):
                results.append(asyncio.run(find()))
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert results == [contact.id] * 6
    # The cache and the limiter used Redis all along: no fallback, no "no cache".
    assert not [name for name in events if name.endswith(("redis_unavailable", "redis_recovered"))]
    fake.faults.outage(seconds=3600)
    with capture_calls() as calls:
        assert asyncio.run(find()) == contact.id  # from the Redis cache, on yet another loop
    assert calls.stale
    asyncio.run(client.aclose())
