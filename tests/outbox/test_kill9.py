"""A worker killed with SIGKILL in the middle of a drain loses no write and duplicates none.

A real subprocess drains a real outbox (a SQLite file; a Redis stream) against the fake served
over HTTP. The kill lands while a write is committed by the fake but not yet answered, which is
the case that matters: the entry is marked sent and still queued. A second drain (after the dead
worker's lease) then reconciles it instead of sending it again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from intercom_resilience import OutboxPolicy, ResilienceConfig, ResilientIntercom
from intercom_resilience.testing import FakeIntercom

ROOT = Path(__file__).resolve().parents[2]
WRITES = 40


@pytest.fixture
def served() -> Iterator[tuple[FakeIntercom, str]]:
    pytest.importorskip("uvicorn")
    fake = FakeIntercom()
    with fake.serve_in_thread() as url:
        yield fake, url


def _enqueue(client: ResilientIntercom, admin: str, contact: str) -> None:
    for i in range(WRITES):
        kind = i % 4
        if kind == 0:
            client.outbox.enqueue("POST", "/contacts", json={"email": f"k{i}@x.io"})
        elif kind == 1:
            client.outbox.enqueue("POST", "/companies", json={"company_id": f"co-{i}"})
        elif kind == 2:
            note = {"body": f"note {i}", "admin_id": admin}
            client.outbox.enqueue("POST", f"/contacts/{contact}/notes", json=note)
        else:
            event = {"event_name": f"e{i}", "created_at": 1_700_000_000 + i, "id": contact}
            client.outbox.enqueue("POST", "/events", json=event)


def _wait(condition: object, what: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _kill_mid_drain(fake: FakeIntercom, args: list[str], client: ResilientIntercom) -> None:
    posts = lambda: fake.journal.count(method="POST")  # noqa: E731
    worker = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "tests.outbox._drain_worker", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        before = posts()
        _wait(lambda: posts() >= before + WRITES // 3, "the worker to deliver some writes")
        # From now on the fake commits each write, then holds the answer: kill inside that gap.
        fake.faults.latency(30.0, method="POST")
        committed = posts()
        _wait(lambda: posts() > committed, "a committed, unanswered write")
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        if worker.stdout is not None:
            worker.stdout.close()
    fake.faults.clear()
    interrupted = [e for e in client.outbox.list(limit=1000) if e.maybe_sent]
    assert interrupted, "the kill did not land between a send and its acknowledgement"


def _check_exactly_once(fake: FakeIntercom, client: ResilientIntercom, contact: str) -> None:
    time.sleep(1.2)  # the dead worker's lease (1 s) runs out
    report = client.outbox.drain()
    assert (report.remaining, report.dead) == (0, 0)
    workspace = fake.workspace()
    emails = sorted(c.email or "" for c in workspace.contacts.values() if c.id != contact)
    assert emails == sorted(f"k{i}@x.io" for i in range(0, WRITES, 4))  # each exactly once
    assert len(workspace.companies) == WRITES // 4
    assert len(workspace.notes) == WRITES // 4
    assert len(workspace.events) == WRITES // 4
    assert client.outbox.status().depth == 0


def _setup(fake: FakeIntercom, url: str, config: ResilienceConfig) -> tuple[ResilientIntercom, str]:
    client = ResilientIntercom(token="fake-token", base_url=url, config=config)
    contact = client.contacts.create(request={"email": "owner@x.io"}).id
    admin = next(iter(fake.workspace().admins))
    _enqueue(client, admin, contact)
    return client, contact


def test_kill9_mid_drain_sqlite(served: tuple[FakeIntercom, str], tmp_path: Path) -> None:
    fake, url = served
    path = str(tmp_path / "outbox.db")
    client, contact = _setup(fake, url, ResilienceConfig(outbox=OutboxPolicy(path=path, lease=1.0)))
    _kill_mid_drain(fake, ["sqlite", url, path], client)
    _check_exactly_once(fake, client, contact)
    client.close()


def test_kill9_mid_drain_redis(served: tuple[FakeIntercom, str], redis_url: str) -> None:
    fake, url = served
    key = f"ir-test-outbox-{uuid.uuid4().hex[:8]}"
    policy = OutboxPolicy(backend="redis", redis_key=key, lease=1.0)
    client, contact = _setup(fake, url, ResilienceConfig(outbox=policy, redis_url=redis_url))
    try:
        _kill_mid_drain(fake, ["redis", url, redis_url, key], client)
        _check_exactly_once(fake, client, contact)
    finally:
        import redis

        raw = redis.Redis.from_url(redis_url)
        raw.delete(*list(raw.scan_iter(match=f"{key}*")) or [key])
        raw.close()
        client.close()
