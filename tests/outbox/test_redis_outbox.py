"""The Redis outbox (a stream and a consumer group) against a real Redis, sync and async."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from intercom_resilience import (
    AsyncResilientIntercom,
    OutboxError,
    OutboxPolicy,
    OutboxUnavailableError,
    ResilienceConfig,
    ResilientIntercom,
    VirtualClock,
    WriteQueuedError,
)
from intercom_resilience.testing import FakeIntercom
from tests.redis_support import RedisServer

from ..client._drive import MODES, close, done

pytestmark = pytest.mark.parametrize("mode", MODES)


@pytest.fixture
def key(redis_url: str) -> Iterator[str]:
    import redis

    name = f"ir-test-outbox-{uuid.uuid4().hex[:8]}"
    yield name
    raw = redis.Redis.from_url(redis_url)
    keys = list(raw.scan_iter(match=f"{name}*"))
    if keys:
        raw.delete(*keys)
    raw.close()


def _client(mode: str, fake: FakeIntercom, clock: VirtualClock, url: str, **outbox: Any) -> Any:
    config = ResilienceConfig(outbox=OutboxPolicy(backend="redis", **outbox), redis_url=url)
    if mode == "sync":
        return ResilientIntercom(
            token="fake-token", transport=fake.transport(), clock=clock, config=config
        )
    return AsyncResilientIntercom(
        token="fake-token", transport=fake.async_transport(), clock=clock, config=config
    )


async def test_enqueue_drain_dead_letter(
    mode: str, fake: FakeIntercom, clock: VirtualClock, redis_url: str, key: str
) -> None:
    client = _client(mode, fake, clock, redis_url, redis_key=key, queue_when_unavailable=True)
    await done(client.outbox.enqueue("POST", "/companies", json={"company_id": "r1"}))
    client.disable()
    with pytest.raises(WriteQueuedError):
        await done(client.tags.create(request={"name": "vip"}))
    client.enable()
    await done(client.outbox.enqueue("POST", "/contacts", json={"email": "bad"}))
    status = await done(client.outbox.status())
    assert (status.backend, status.depth) == ("redis", 3)
    assert key in status.location
    report = await done(client.outbox.drain())
    assert (report.delivered, report.dead, report.remaining) == (2, 1, 0)
    [dead] = await done(client.outbox.list("dead"))
    assert dead.status == 400
    assert dead.request_id is not None
    assert [c.company_id for c in fake.workspace().companies.values()] == ["r1"]
    assert [t.name for t in fake.workspace().tags.values()] == ["vip"]
    await close(client)


async def test_one_drainer_at_a_time(
    mode: str, fake: FakeIntercom, clock: VirtualClock, redis_url: str, key: str
) -> None:
    first = _client(mode, fake, clock, redis_url, redis_key=key)
    second = _client(mode, fake, clock, redis_url, redis_key=key)
    await done(first.outbox.enqueue("POST", "/tags", json={"name": "a"}))
    core = first.outbox._core
    assert core.store.acquire(core.owner, 0.0, 30.0)  # a live drainer holds the lease
    report = await done(second.outbox.drain())
    assert report.busy
    assert report.delivered == 0
    core.store.release_lease(core.owner)
    report = await done(second.outbox.drain())
    assert report.delivered == 1
    await close(first, second)


async def test_redis_down_while_enqueueing_fails_clearly(
    mode: str, fake: FakeIntercom, clock: VirtualClock, redis_server: RedisServer
) -> None:
    url = redis_server.url.replace("redis://", "redis://:s3cret@")
    client = _client(mode, fake, clock, url, redis_key="k", queue_when_unavailable=True)
    redis_server.stop()
    with pytest.raises(OutboxUnavailableError) as raised:
        await done(client.outbox.enqueue("POST", "/tags", json={"name": "x"}))
    assert f"127.0.0.1:{redis_server.port}" in str(raised.value)
    assert "s3cret" not in str(raised.value)  # the password never shows
    client.disable()
    with pytest.raises(OutboxUnavailableError):  # never a silent drop
        await done(client.tags.create(request={"name": "y"}))
    await close(client)


async def test_redis_down_falls_back_to_the_local_file_then_drains(
    mode: str,
    fake: FakeIntercom,
    clock: VirtualClock,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    fallback = str(tmp_path / "fallback.db")
    client = _client(mode, fake, clock, redis_server.url, redis_key="k", fallback_path=fallback)
    redis_server.stop()
    entry = await done(client.outbox.enqueue("POST", "/tags", json={"name": "offline"}))
    assert entry.startswith("local-")
    redis_server.start()
    status = await done(client.outbox.status())
    assert (status.depth, status.fallback_depth) == (0, 1)
    report = await done(client.outbox.drain())
    assert (report.delivered, report.remaining) == (1, 0)
    assert [t.name for t in fake.workspace().tags.values()] == ["offline"]
    await close(client)


async def test_a_key_of_another_type_is_a_clear_outbox_error(
    mode: str, fake: FakeIntercom, clock: VirtualClock, redis_url: str, key: str
) -> None:
    # It used to escape as redis-py's own ResponseError (WRONGTYPE).
    import redis

    raw = redis.Redis.from_url(redis_url)
    raw.set(key, "not a stream")
    raw.close()
    client = _client(mode, fake, clock, redis_url, redis_key=key)
    with pytest.raises(OutboxError, match=rf"{key}.*redis_key"):
        await done(client.outbox.enqueue("POST", "/companies", json={"company_id": "w"}))
    await close(client)
