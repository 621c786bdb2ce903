"""Shared fixtures: a fake Intercom on a virtual clock, and clients wired to it."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

import httpx
import intercom
import pytest

from intercom_resilience import AsyncResilientIntercom, ResilientIntercom, VirtualClock
from intercom_resilience.testing import FakeIntercom
from tests.redis_support import RedisServer, redis_unavailable, start_private_redis

DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/13"


def worker_redis_url(url: str, worker: str | None) -> str:
    """*url* moved to a database of the pytest-xdist *worker*'s own (``gw0`` keeps *url*'s).

    ``fresh_redis_url`` deletes every library key in its database, so two workers sharing one
    would wipe each other's state mid-test. Worker ``gwN`` counts *down* from the configured
    database (13, 12, 11, ...): db 15 stays the benchmarks' and db 0 the examples'.
    """
    if not worker or not worker.startswith("gw"):
        return url
    index = int(worker.removeprefix("gw"))
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    if index > base:
        raise pytest.UsageError(
            f"xdist worker {worker} needs Redis db {base - index}: run fewer workers "
            f"(--maxprocesses) or set INTERCOM_RESILIENCE_TEST_REDIS_URL to a higher db"
        )
    return urlunsplit(parts._replace(path=f"/{base - index}"))


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A reachable Redis: skip outside CI when there is none, fail in CI (``CI=true``)."""
    url = worker_redis_url(
        os.environ.get("INTERCOM_RESILIENCE_TEST_REDIS_URL", DEFAULT_TEST_REDIS_URL),
        os.environ.get("PYTEST_XDIST_WORKER"),
    )
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # no redis-py, nothing listening, auth, timeouts: all "unavailable"
        redis_unavailable(f"no Redis reachable at {url} ({type(exc).__name__}: {exc})")
    return url


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A ``redis-server`` of the test's own on a free port, to stop, pause or restart."""
    server = start_private_redis()
    yield server
    server.stop()


@pytest.fixture
def fresh_redis_url(redis_url: str) -> Iterator[str]:
    """*redis_url* with none of the library's keys, before and after the test.

    Only the library's own key families are deleted (never ``FLUSHDB``): the URL may point at a
    developer's Redis that holds other data.
    """
    import redis

    from intercom_resilience._backends._redis import KeyScheme

    client = redis.Redis.from_url(redis_url)

    def clean() -> None:
        keys = list(client.scan_iter(match=KeyScheme().pattern, count=1000))
        if keys:
            client.delete(*keys)

    clean()
    yield redis_url
    clean()
    client.close()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def fake(clock: VirtualClock) -> FakeIntercom:
    return FakeIntercom(clock=clock)


@pytest.fixture
def client(fake: FakeIntercom, clock: VirtualClock) -> Iterator[ResilientIntercom]:
    with ResilientIntercom(
        token="fake-token", transport=fake.transport(), clock=clock, seed=1
    ) as c:
        yield c


@pytest.fixture
async def async_client(
    fake: FakeIntercom, clock: VirtualClock
) -> AsyncIterator[AsyncResilientIntercom]:
    async with AsyncResilientIntercom(
        token="fake-token", transport=fake.async_transport(), clock=clock, seed=1
    ) as c:
        yield c


@pytest.fixture
def raw(fake: FakeIntercom) -> intercom.Intercom:
    """The official SDK, untouched, against the same fake."""
    return intercom.Intercom(
        token="fake-token", httpx_client=httpx.Client(transport=fake.transport())
    )


@pytest.fixture
def raw_async(fake: FakeIntercom) -> intercom.AsyncIntercom:
    return intercom.AsyncIntercom(
        token="fake-token", httpx_client=httpx.AsyncClient(transport=fake.async_transport())
    )


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix no other test uses; every key under it is deleted afterwards."""
    import redis

    prefix = f"irtest:{uuid.uuid4().hex}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=prefix + ":*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
