"""Cache fixtures: a real Redis (own key prefix per test, cleaned after) and cache builders."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from cache_support import CacheFactory, Events

from intercom_resilience._backends.base import CacheBackend
from intercom_resilience._backends.memory_cache import MemoryCache
from intercom_resilience._clock import VirtualClock
from intercom_resilience._config import CachePolicy
from intercom_resilience._events import EventLog

# ``redis_url`` (skip outside CI, fail under CI=true) comes from the root conftest.


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def events() -> Events:
    return []


@pytest.fixture
def event_log(events: Events) -> EventLog:
    return EventLog(hooks=[lambda event: events.append((event.name, event.fields()))])


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def make_cache(
    request: pytest.FixtureRequest, clock: VirtualClock, event_log: EventLog
) -> AsyncIterator[CacheFactory]:
    """Builds caches of either backend (the same contract tests run against both)."""
    built: list[object] = []

    if request.param == "memory":

        def factory(policy: CachePolicy) -> CacheBackend:
            return MemoryCache(policy, clock, events=event_log)

        yield factory
        return

    from intercom_resilience._backends.redis_cache import RedisCache

    url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("redis_prefix")

    def redis_factory(policy: CachePolicy) -> CacheBackend:
        cache = RedisCache(policy, url, clock, events=event_log, key_prefix=prefix)
        built.append(cache)
        return cache

    yield redis_factory
    for cache in built:
        assert isinstance(cache, RedisCache)
        await cache.aclose()
