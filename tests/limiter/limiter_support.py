"""Helpers of the limiter tests (a module, not the conftest, so test modules can import them)."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest
import redis


def redis_unavailable(reason: str) -> None:
    """Skip the calling test with *reason*, or fail it in CI (``CI=true``): CI must run them."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the Redis tests must run in CI)")
    pytest.skip(f"{reason}; set INTERCOM_RESILIENCE_TEST_REDIS_URL or start redis-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A private ``redis-server`` (no persistence) that a test may stop and start again."""

    def __init__(self, binary: str, port: int) -> None:
        self.binary = binary
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no"]  # nothing survives a restart
        self.process = subprocess.Popen(  # noqa: S603 - a fixed binary and our own arguments
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)
        try:
            for _ in range(200):  # readiness, not timing: poll until it answers
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
