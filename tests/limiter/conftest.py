"""Redis for the limiter tests: the shared server, and private ones the tests may kill.

``redis_url`` connects to ``INTERCOM_RESILIENCE_TEST_REDIS_URL`` (default
``redis://127.0.0.1:6379/15``). When nothing answers there the Redis tests are skipped with the
reason, except in CI (``CI=true``) where a missing Redis is a failure, not a silent skip.
``key_prefix`` gives each test its own key prefix and deletes only those keys afterwards.
``redis_server`` starts a private ``redis-server`` on a free port, for tests that kill and restart
it (the same skip/fail rule applies when the binary is missing).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator

import pytest
import redis
from limiter_support import RedisServer, free_port, redis_unavailable

DEFAULT_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("INTERCOM_RESILIENCE_TEST_REDIS_URL", DEFAULT_URL)
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except (redis.RedisError, OSError) as error:
        redis_unavailable(f"no Redis reachable at {url}: {error}")
    finally:
        client.close()
    return url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, socket_timeout=2)
    yield client
    client.close()


@pytest.fixture
def key_prefix(redis_client: redis.Redis) -> Iterator[str]:
    prefix = f"intercom-resilience-test:{uuid.uuid4().hex[:12]}"
    yield prefix
    keys = list(redis_client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        redis_client.delete(*keys)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        redis_unavailable("no redis-server binary on PATH")
        raise AssertionError("unreachable")  # pragma: no cover - _unavailable raises
    server = RedisServer(binary, free_port())
    server.start()
    yield server
    server.stop()
