"""Redis stopped, slowed and restarted under a client whose limiter and cache live in it.

A private ``redis-server`` (no persistence) per test. Whatever Redis does, calls keep working:
the limiter falls back to its local share of the quota (``redis_fallback_share``) and the cache
to "no cache", nothing is raised to the caller, and both return to Redis once it answers again.
"""

from __future__ import annotations

import math
from collections import Counter

import pytest

from intercom_resilience import (
    CachePolicy,
    DeadlinePolicy,
    RateLimitPolicy,
    ResilienceConfig,
    ResilientIntercom,
    VirtualClock,
)
from intercom_resilience.events import Event
from intercom_resilience.testing import FakeIntercom
from tests.redis_support import RedisServer

pytestmark = pytest.mark.redis

APP_PER_MINUTE = 600  # 100 per 10-second window
SHARE = 0.25
FALLBACK_QUOTA = APP_PER_MINUTE / 6 * SHARE  # 25 per window while Redis is away
CALLS = 60


def _client(fake: FakeIntercom, server: RedisServer, events: list[str]) -> ResilientIntercom:
    config = ResilienceConfig(
        rate_limit=RateLimitPolicy(
            backend="redis",
            app_per_minute=APP_PER_MINUTE,
            workspace_per_minute=10 * APP_PER_MINUTE,
            redis_fallback_share=SHARE,
            max_wait=120.0,
        ),
        cache=CachePolicy(backend="redis"),
        redis_url=server.url,
        # Calls wait for quota here (up to max_wait), as the fallback share paces them.
        deadlines=DeadlinePolicy(interactive=120.0),
    )

    def hook(event: Event) -> None:
        events.append(event.name)

    client: ResilientIntercom = fake.client(config=config, seed=4, event_hooks=[hook])
    return client


def _calls(client: ResilientIntercom, ids: list[str], count: int) -> None:
    """Reads and writes; any exception fails the test (nothing may reach the caller)."""
    for n in range(count):
        if n % 5 == 4:
            client.contacts.update(contact_id=ids[n % len(ids)], name=f"n{n}")
        else:
            assert client.contacts.find(contact_id=ids[n % len(ids)]).id == ids[n % len(ids)]


def _per_window(fake: FakeIntercom, since: float) -> Counter[int]:
    return Counter(math.floor(e.time / 10) for e in fake.journal.filter(since=since))


def _wait_until_unresponsive(server: RedisServer) -> None:
    """Block until the server stops answering (a readiness poll, not a timing assumption)."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    probe = redis.Redis(
        port=server.port,
        socket_timeout=0.05,
        socket_connect_timeout=0.05,
        retry=Retry(NoBackoff(), 0),  # redis-py retries timeouts by default
    )
    try:
        for _ in range(400):
            try:
                probe.ping()
            except (redis.RedisError, OSError):
                return
        raise AssertionError("DEBUG SLEEP never took hold")
    finally:
        probe.close()


def _setup(server: RedisServer) -> tuple[VirtualClock, FakeIntercom, list[str]]:
    clock = VirtualClock()
    fake = FakeIntercom(clock=clock, app_quota=APP_PER_MINUTE, seed=3)
    state = fake.workspace()
    ids = [
        state.create_contact({"email": f"r{n}@example.com"}, int(clock.time())).id
        for n in range(10)
    ]
    return clock, fake, ids


def test_redis_stopped_then_restarted(redis_server: RedisServer) -> None:
    clock, fake, ids = _setup(redis_server)
    events: list[str] = []
    with _client(fake, redis_server, events) as client:
        _calls(client, ids, 20)
        assert redis_server.command("DBSIZE") != 0  # limiter buckets and cache entries

        redis_server.stop()
        clock.advance(20)  # a fresh window: what follows is the fallback's alone
        since = clock.time()
        _calls(client, ids, CALLS)  # more than one fallback window's worth
        assert "limiter.redis_unavailable" in events
        assert "cache.redis_unavailable" in events
        worst = max(_per_window(fake, since).values())
        assert worst <= FALLBACK_QUOTA, f"{worst} requests in a window on the fallback share"
        assert fake.journal.filter(status=429, fault=False) == []

        redis_server.start()  # same port, empty: nothing survives a restart
        clock.advance(30)  # past both backends' retry intervals
        _calls(client, ids, 20)
        assert "limiter.redis_recovered" in events
        assert "cache.redis_recovered" in events
        assert redis_server.command("DBSIZE") != 0  # back in Redis
    assert client.health().status in ("healthy", "degraded")


def test_redis_paused_mid_run(redis_server: RedisServer) -> None:
    clock, fake, ids = _setup(redis_server)
    events: list[str] = []
    with _client(fake, redis_server, events) as client:
        _calls(client, ids, 10)
        # Every client command now blocks (for longer than the backends' socket timeouts).
        redis_server.command("CLIENT", "PAUSE", "1500", "ALL")
        _calls(client, ids, 10)
        assert "limiter.redis_unavailable" in events
        redis_server.command("CLIENT", "UNPAUSE")
        clock.advance(30)
        _calls(client, ids, 10)
        assert "limiter.redis_recovered" in events
    assert fake.journal.filter(status=429, fault=False) == []


def test_redis_slowed_by_debug_sleep(redis_server: RedisServer) -> None:
    import threading

    clock, fake, ids = _setup(redis_server)
    events: list[str] = []
    with _client(fake, redis_server, events) as client:
        _calls(client, ids, 10)
        # DEBUG SLEEP blocks the whole server; run it from another connection.
        sleeper = threading.Thread(
            target=redis_server.command, args=("DEBUG", "SLEEP", "1"), daemon=True
        )
        sleeper.start()
        _wait_until_unresponsive(redis_server)
        _calls(client, ids, 10)
        assert "limiter.redis_unavailable" in events
        sleeper.join(30)
        assert not sleeper.is_alive()
        clock.advance(30)
        _calls(client, ids, 10)
        assert "limiter.redis_recovered" in events
    assert fake.journal.filter(status=429, fault=False) == []
