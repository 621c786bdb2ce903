"""Clients on the Redis backends, against a real Redis: shared cache, isolated credentials."""

from __future__ import annotations

from typing import Any

import pytest
from intercom.core.api_error import ApiError

from intercom_resilience import (
    CachePolicy,
    RateLimitedError,
    RateLimitPolicy,
    ResilienceConfig,
    VirtualClock,
    capture_calls,
)
from intercom_resilience.testing import FakeIntercom

from ._drive import MODES, close, done, make_client

pytestmark = [pytest.mark.redis, pytest.mark.parametrize("mode", MODES)]


def _redis_config(url: str) -> ResilienceConfig:
    return ResilienceConfig(
        cache=CachePolicy(backend="redis"),
        rate_limit=RateLimitPolicy(backend="redis"),
        redis_url=url,
    )


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
