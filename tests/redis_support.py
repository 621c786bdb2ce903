"""Redis for the tests: the skip-or-fail rule, and private servers a test may stop, pause or restart.

Outside CI a test that needs Redis (or ``redis-server``) and finds none is skipped with the reason;
under ``CI=true`` it fails instead, because CI must run every Redis test.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest


def redis_unavailable(reason: str) -> None:
    """Skip with *reason*, or fail in CI (``CI=true``), where the Redis tests must run."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the Redis tests must run in CI)")
    pytest.skip(
        f"{reason}; start Redis (or set INTERCOM_RESILIENCE_TEST_REDIS_URL) and install "
        "redis-server to run the Redis tests"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """``redis-server`` on 127.0.0.1 with no persistence: a restart starts empty."""

    def __init__(self, binary: str, port: int) -> None:
        self.binary = binary
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import redis

        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--enable-debug-command", "local"]
        self.process = subprocess.Popen(  # noqa: S603 - a fixed binary and our own arguments
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)
        try:
            for _ in range(400):  # readiness, not timing: poll until it answers
                try:
                    client.ping()
                    return
                except (redis.RedisError, OSError):
                    time.sleep(0.025)
            raise RuntimeError(f"redis-server on port {self.port} did not start")
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def command(self, *args: str) -> object:
        """Run one command on the server (``DEBUG SLEEP``, ``CLIENT PAUSE``, ``DBSIZE``...)."""
        import redis

        client = redis.Redis(port=self.port, socket_timeout=5, socket_connect_timeout=1)
        try:
            return client.execute_command(*args)
        finally:
            client.close()


def start_private_redis() -> RedisServer:
    """A started private server, or skip/fail when there is no ``redis-server`` or ``redis``."""
    try:
        import redis  # noqa: F401
    except ImportError:
        redis_unavailable("redis-py is not installed (extra 'redis')")
    binary = shutil.which("redis-server")
    if binary is None:
        redis_unavailable("no redis-server binary on PATH")
        raise AssertionError("unreachable")  # pragma: no cover - redis_unavailable raises
    server = RedisServer(binary, free_port())
    try:
        server.start()
    except (RuntimeError, OSError) as error:
        server.stop()
        redis_unavailable(f"redis-server could not start: {error}")
    return server
