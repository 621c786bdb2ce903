"""``intercom-resilience fake serve`` in a real process, checked with ``triage`` over HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from intercom_resilience.cli import cli  # noqa: F401 - the module must import cleanly

ENV = {k: v for k, v in os.environ.items() if not k.startswith("INTERCOM")}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def fake_server(*options: str) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-m",
            "intercom_resilience.cli",
            "fake",
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
            *options,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:  # wait until it accepts connections (not a timed assertion: a start-up wait)
            try:
                httpx.get(f"{url}/me", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.communicate()[1]
                assert time.monotonic() < deadline, "fake serve did not start"
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.communicate(timeout=10)  # reaps it and closes the stderr pipe


def run_triage(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-m",
            "intercom_resilience.cli",
            "triage",
            "--base-url",
            url,
            "--status-url",
            url,
            "--timeout",
            "2",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
        check=False,
    )


def test_fake_serve_answers_the_sdk_token_with_its_quota() -> None:
    with fake_server("--token", "custom-token", "--app-quota", "600") as url:
        ok = httpx.get(f"{url}/me", headers={"Authorization": "Bearer custom-token"})
        assert ok.status_code == 200
        assert ok.headers["x-ratelimit-limit"] == "100"  # 600 a minute in 10-second windows
        denied = httpx.get(f"{url}/me", headers={"Authorization": "Bearer fake-token"})
        assert denied.status_code == 401
        completed = run_triage(url, "--token", "custom-token", "--json")
        checks = {c["check"]: c for c in json.loads(completed.stdout)["checks"]}
        assert checks["api"]["status_code"] == 200
        assert checks["rate_limit"]["limit"] == 100
        # The fake has no status page: that check is a warning, never a traceback.
        assert (
            checks["status_page"]["result"] == "unreachable"
            or checks["status_page"]["result"] == "warn"
        )
        assert completed.returncode == 1
        assert "Traceback" not in completed.stderr


def test_fake_serve_in_outage_makes_triage_fail() -> None:
    with fake_server("--outage-seconds", "300") as url:
        completed = run_triage(url, "--token", "fake-token")
        assert completed.returncode == 3, completed.stdout + completed.stderr
        assert "FAILING: api" in completed.stdout
        assert "503" in completed.stdout
