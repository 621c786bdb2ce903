"""A private ``redis-server`` for the tests that kill it (the limiter tests' helper, reused)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.limiter.limiter_support import RedisServer, free_port, redis_unavailable


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """``redis-server --save "" --appendonly no`` on a free port; skipped (failed in CI) without
    the binary."""
    binary = shutil.which("redis-server")
    if binary is None:
        redis_unavailable("no redis-server binary on PATH")
        raise AssertionError("unreachable")  # redis_unavailable raises
    server = RedisServer(binary, free_port())
    server.start()
    yield server
    server.stop()
