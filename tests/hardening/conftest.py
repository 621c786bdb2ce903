"""Hardening fixtures: a private Redis server per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._redis import RedisServer, start_private_redis


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A ``redis-server`` of this test's own, on a free port (skip/fail rule of the suite)."""
    server = start_private_redis()
    yield server
    server.stop()
