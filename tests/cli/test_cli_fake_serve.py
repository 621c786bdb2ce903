"""``intercom-resilience fake serve`` in a real process, checked with ``triage`` over HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from intercom_resilience.cli import cli

ROOT = Path(__file__).resolve().parents[2]
ENV = {k: v for k, v in os.environ.items() if not k.startswith("INTERCOM")}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_serving(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 20
    while True:  # wait until it accepts connections (not a timed assertion: a start-up wait)
        try:
            httpx.get(f"{url}/me", timeout=1)
            return
        except httpx.TransportError:
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "fake serve did not start"
            time.sleep(0.05)


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
        wait_until_serving(url, process)
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
        # The served fake stands in for Intercom's status page too, so triage is fully offline.
        assert checks["status_page"]["result"] == "ok"
        assert checks["status_page"]["indicator"] == "none"
        assert completed.returncode == 0, completed.stdout + completed.stderr
        assert "Traceback" not in completed.stderr


def documented_offline_triage() -> list[str]:
    """The triage command line docs/cli.md gives for the fake on port 8000, as arguments."""
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    (line,) = [
        line
        for line in text.splitlines()
        if line.startswith("intercom-resilience triage") and "--status-url http://127.0.0.1" in line
    ]
    return line.split()[1:]


def test_the_documented_offline_triage_against_fake_serve_exits_0() -> None:
    args = documented_offline_triage()
    with fake_server() as url:
        port = url.rsplit(":", 1)[1]
        args = [arg.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for arg in args]
        completed = subprocess.run(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "intercom_resilience.cli", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=ENV,
            check=False,
        )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "Result: all fine (exit 0)" in completed.stdout


def test_the_status_page_routes_do_not_shadow_the_fake() -> None:
    with fake_server("--outage-seconds", "300") as url:
        status = httpx.get(f"{url}/api/v2/status.json")
        assert status.status_code == 200
        assert status.json()["status"]["indicator"] == "none"
        unresolved = httpx.get(f"{url}/api/v2/incidents/unresolved.json")
        assert unresolved.json()["incidents"] == []
        assert httpx.get(f"{url}/me").status_code == 503  # the outage still applies to the API


@pytest.mark.parametrize("port", ["99999", "0", "-1", "http"])
def test_a_port_out_of_range_is_one_line_and_exit_2(port: str) -> None:
    result = CliRunner().invoke(cli, ["fake", "serve", "--port", port])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("intercom-resilience: Invalid value for '--port'")
    assert "Fake Intercom on" not in result.output


def test_a_busy_port_is_one_line_and_exit_4_before_anything_is_printed() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        completed = subprocess.run(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "intercom_resilience.cli", "fake", "serve", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            env=ENV,
            check=False,
        )
    assert completed.returncode == 4, completed.stderr
    assert completed.stderr.strip().splitlines() == [
        f"intercom-resilience: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]
    assert completed.stdout == ""


def test_an_unknown_host_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["fake", "serve", "--host", "no-such-host.invalid"])
    assert result.exit_code == 2
    assert "cannot resolve --host 'no-such-host.invalid'" in result.stderr
    assert "Fake Intercom on" not in result.output


def test_without_the_server_extra_it_says_so_before_announcing_anything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn now raises ImportError
    result = CliRunner().invoke(cli, ["fake", "serve", "--port", str(free_port())])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "intercom-resilience: fake serve needs uvicorn: pip install 'intercom-resilience[server]'"
    ]
    assert "Fake Intercom on" not in result.output


def test_a_shutdown_that_returns_without_the_ctrl_c_still_says_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """uvicorn's re-raised Ctrl-C reaches asyncio's handler, which raises it only if the main
    task is still running: run() may just return (the race that made the test below flaky)."""
    import uvicorn

    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: None)
    result = CliRunner().invoke(cli, ["fake", "serve", "--port", str(free_port())])
    assert result.exit_code == 0, result.output
    assert "Fake Intercom stopped" in result.stderr


def test_ctrl_c_stops_the_fake_with_exit_0() -> None:
    port = str(free_port())
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "intercom_resilience.cli", "fake", "serve", "--port", port],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        wait_until_serving(f"http://127.0.0.1:{port}", process)
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "Fake Intercom stopped" in err
    assert "Traceback" not in err


def test_fake_serve_in_outage_makes_triage_fail() -> None:
    with fake_server("--outage-seconds", "300") as url:
        completed = run_triage(url, "--token", "fake-token")
        assert completed.returncode == 3, completed.stdout + completed.stderr
        assert "FAILING: api" in completed.stdout
        assert "503" in completed.stdout
