"""Every example in ``examples/`` runs as documented: against the fake, no token, no network.

Scripts run as subprocesses with this interpreter, exactly as a user would run them. The fleet
example needs a real Redis: skipped with a reason outside CI when none is reachable, a failure in
CI (``CI=true``), like every Redis test of the project.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from intercom.core.api_error import ApiError

from intercom_resilience import ResilientIntercom, VirtualClock
from intercom_resilience.testing import FakeIntercom

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def run_any(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run ``python <args>`` from the project root, without a token in the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCOM_")}
    env["PYTHONWARNINGS"] = "error"
    return subprocess.run(  # noqa: S603 - our own interpreter on our own files
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """:func:`run_any`, which must exit 0."""
    result = run_any(*args, timeout=timeout)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def load(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as a module (examples are not a package)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_example_is_tested() -> None:
    tested = {
        "quickstart.py",
        "graceful_degradation.py",
        "background_sync.py",
        "fleet.py",
        "fleet_status.py",
        "fastapi_health.py",
        "test_with_fake.py",
        "webhooks_fastapi.py",
    }
    assert {path.name for path in EXAMPLES.glob("*.py")} == tested


def test_quickstart() -> None:
    out = run("examples/quickstart.py").stdout
    assert "found ada@example.com: GET /contacts/{id} -> 200, 1 attempt(s), stale=False" in out
    assert "sync health: healthy" in out
    assert "async found ada@example.com, stale=False" in out
    assert "async health: healthy" in out


def test_graceful_degradation() -> None:
    out = run("examples/graceful_degradation.py").stdout
    assert "before: grace@example.com (fresh)" in out
    assert "outage: grace@example.com (cached" in out
    assert "because server_error; failed request id " in out
    assert "health: unhealthy; breaker open" in out
    assert "[alert fired] P1 API unreachable (respond within 15 minutes)" in out
    assert "uncached read failed: CircuitOpenError" in out
    assert "[P1] Intercom API unreachable — INVESTIGATING" in out
    assert "kill switch on: grace@example.com (cached" in out
    assert "[alert resolved] P1 API unreachable" in out
    assert "; health healthy" in out
    assert "# Postmortem: Intercom API unreachable" in out
    assert "## Intercom request ids" in out


def test_background_sync() -> None:
    out = run("examples/background_sync.py").stdout
    assert "imported 240 contacts" in out
    assert "interactive reads waited at most 0.000s" in out
    assert "429 responses from Intercom: 0" in out
    assert "health: healthy" in out


def test_background_sync_leaves_the_reserve_to_interactive_calls() -> None:
    example = load("background_sync")
    clock = VirtualClock()
    fake = FakeIntercom(clock=clock, app_quota=example.QUOTA_PER_MINUTE)
    config = example.ResilienceConfig(
        rate_limit=example.RateLimitPolicy(app_per_minute=example.QUOTA_PER_MINUTE)
    )
    with fake.client(config=config) as client:
        started = clock.monotonic()
        example.import_customers(client, [f"c{i}@example.com" for i in range(160)])
        elapsed = clock.monotonic() - started
    # 80% of 100 per 10 s window: 160 background calls need at least a second window.
    assert elapsed >= 10.0
    assert fake.journal.count(status=429) == 0


@pytest.mark.redis
def test_fleet_shares_one_budget_on_redis(fresh_redis_url: str) -> None:
    out = run("examples/fleet.py", "--redis-url", fresh_redis_url, timeout=120.0).stdout
    assert out.count(": 20 reads, health healthy") == 3
    # A read the limiter would make wait past its latency budget is answered from the shared
    # cache (reason `limiter_wait`), which depends on timing: every read is accounted for,
    # and none was refused.
    line = next(line for line in out.splitlines() if line.startswith("the fleet made 60 reads: "))
    sent, cached = (int(word) for word in re.findall(r"(\d+) (?:sent|answered from)", line))
    assert sent + cached == 60, line
    assert "which answered 429 to 0 of them" in line
    assert "from the shared cache (stale=True" in out


@pytest.mark.redis
def test_fleet_status_of_four_real_processes_one_broken(fresh_redis_url: str) -> None:
    # Four worker processes (one calling an Intercom in a full outage) publish to Redis; the
    # example then runs `intercom-resilience fleet status` itself (#17, done-when).
    out = run("examples/fleet_status.py", "--redis-url", fresh_redis_url, timeout=120.0).stdout
    assert "$ intercom-resilience fleet status  (exit code 3)" in out
    assert "Fleet: unhealthy (4 processes: 3 healthy, 0 degraded, 1 unhealthy)" in out
    rows = [line.split() for line in out.splitlines()[4:] if line.strip()]
    assert len(rows) == 4, out
    assert sorted(row[1] for row in rows) == ["healthy"] * 3 + ["unhealthy"]
    broken = next(row for row in rows if row[1] == "unhealthy")
    assert broken[2] == "open" and "api_unreachable" in broken and broken[4] == broken[5]
    assert len({row[0].split(":")[1] for row in rows}) == 4  # four pids: four processes


@pytest.mark.parametrize(
    ("redis_url", "why"),
    [
        ("redis://127.0.0.1:{port}/0", "ConnectionError"),
        ("redis://app:hunter2-secret@127.0.0.1:{port}/0", "ConnectionError"),
        ("http://127.0.0.1:{port}/0", "ValueError"),
    ],
)
def test_fleet_with_an_unreachable_redis_fails_fast_in_one_line(redis_url: str, why: str) -> None:
    pytest.importorskip("redis")
    with socket.socket() as sock:  # a port nobody listens on (bound, then released)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = redis_url.format(port=port)
    result = run_any("examples/fleet.py", "--redis-url", url)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""  # no worker started, nothing paced locally
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(
        f"fleet.py: cannot reach Redis at {url.replace('hunter2-secret', '***')} ("
    )
    assert why in line
    assert line.endswith("start Redis, pass --redis-url, or run with --backend memory")
    assert "hunter2" not in result.stderr


def test_the_pytest_example_suite_passes() -> None:
    result = run("-m", "pytest", "examples/test_with_fake.py", "-q", "-p", "no:cacheprovider")
    assert "5 passed" in result.stdout


async def test_fastapi_health_endpoint() -> None:
    pytest.importorskip("starlette")
    example = load("fastapi_health")
    clock = VirtualClock()
    fake = FakeIntercom(clock=clock)
    client: ResilientIntercom = fake.client()
    app = example.create_app(client)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://service"
    ) as http:
        assert (await http.get("/")).json() == {"service": "support-portal"}

        ok = await http.get("/health")
        assert ok.status_code == 200
        assert ok.json()["status"] == "healthy"
        assert ok.json()["services"]["intercom"]["breaker"] == "closed"

        fake.faults.outage(seconds=600)
        for _ in range(4):  # a few calls during the outage open the breaker
            with pytest.raises(ApiError):  # the SDK's 503, then CircuitOpenError
                client.admins.identify()
        down = await http.get("/health")
        assert down.status_code == 503
        body = down.json()
        assert body["status"] == "unhealthy"
        assert body["services"]["intercom"]["alerts"][0]["severity"] == "P1"
        assert body["timestamp"].endswith("Z")
    client.close()


def test_webhooks_example_receives_the_fakes_deliveries_over_http() -> None:
    pytest.importorskip("uvicorn")
    out = run("examples/webhooks_fastapi.py").stdout
    assert "delivered 200: answers {200: 196, 401: 4}" in out
    assert "handled 186 notifications, each once: True" in out  # 196 minus 10 redeliveries
    assert "ack p99 " in out
    assert "health: degraded; alerts: ['webhook_signature']" in out


async def test_webhooks_example_routes_the_receiver_at_the_exact_path() -> None:
    pytest.importorskip("starlette")
    from intercom_resilience.webhooks import webhook_signature

    example = load("webhooks_fastapi")
    clock = VirtualClock()
    fake = FakeIntercom(clock=clock)
    client: ResilientIntercom = fake.client()
    inbox = example.Inbox()
    receiver = client.webhook_receiver(secret="s", handler=inbox)
    app = example.create_app(client, receiver)
    sender = fake.webhooks("http://unused", "s")
    body = json.dumps(sender.notification("ticket.created")).encode()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://service"
    ) as http:
        signed = {"X-Hub-Signature": webhook_signature(body, "s")}
        answer = await http.post("/hooks/intercom", content=body, headers=signed)
        assert answer.status_code == 200  # no redirect to /hooks/intercom/
        await receiver.ajoin()
        assert inbox.topics == {"ticket.created": 1}
        assert (await http.post("/hooks/intercom", content=body)).status_code == 401
        assert (await http.get("/health")).json()["services"]["intercom"]["alerts"][0][
            "rule"
        ] == "webhook_signature"
    await receiver.aclose()
    sender.close()
    client.close()
