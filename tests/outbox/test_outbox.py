"""The outbox against the fake, sync and async: queueing, draining exactly once, order, dead
letters, a corrupt or locked file, and what is stored."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from intercom.core.api_error import ApiError

from intercom_resilience import (
    AsyncResilientIntercom,
    BreakerPolicy,
    OutboxError,
    OutboxPolicy,
    ResilienceConfig,
    ResilientIntercom,
    RetryPolicy,
    VirtualClock,
    WriteQueuedError,
)
from intercom_resilience._outbox._sqlite import SQLiteStore
from intercom_resilience.testing import FakeIntercom

from ..client._drive import MODES, close, done

pytestmark = pytest.mark.parametrize("mode", MODES)

TOKEN = "fake-token"


def _client(mode: str, fake: FakeIntercom, clock: VirtualClock, **outbox: Any) -> Any:
    config: ResilienceConfig = outbox.pop("config", None) or ResilienceConfig()
    config = config.replace(outbox=OutboxPolicy(**outbox))
    if mode == "sync":
        return ResilientIntercom(
            token=TOKEN, transport=fake.transport(), clock=clock, config=config, seed=3
        )
    return AsyncResilientIntercom(
        token=TOKEN, transport=fake.async_transport(), clock=clock, config=config, seed=3
    )


async def test_enqueue_then_drain_delivers_each_write_once(
    mode: str, fake: FakeIntercom, clock: VirtualClock, tmp_path: Path
) -> None:
    client = _client(mode, fake, clock, path=str(tmp_path / "o.db"))
    outbox = client.outbox
    await done(outbox.enqueue("POST", "/contacts", json={"external_id": "u1", "email": "a@x.io"}))
    await done(outbox.enqueue("POST", "/companies", json={"company_id": "acme"}))
    await done(outbox.enqueue("POST", "/tags", json={"name": "vip"}))
    status = await done(outbox.status())
    assert (status.depth, status.dead) == (3, 0)
    assert fake.journal.count(method="POST") == 0  # nothing sent yet
    report = await done(outbox.drain())
    assert (report.delivered, report.dead, report.deferred, report.remaining) == (3, 0, 0, 0)
    workspace = fake.workspace()
    assert [c.external_id for c in workspace.contacts.values()] == ["u1"]
    assert [c.company_id for c in workspace.companies.values()] == ["acme"]
    assert fake.journal.count(method="POST") == 3
    again = await done(outbox.drain())
    assert again.delivered == 0
    await close(client)


async def test_reads_are_refused(
    mode: str, fake: FakeIntercom, clock: VirtualClock, tmp_path: Path
) -> None:
    client = _client(mode, fake, clock, path=str(tmp_path / "o.db"))
    with pytest.raises(ValueError, match="read"):
        await done(client.outbox.enqueue("GET", "/contacts"))
    with pytest.raises(ValueError, match="start with"):
        await done(client.outbox.enqueue("POST", "contacts", json={}))
    await close(client)


async def test_queue_when_unavailable_then_replay(
    mode: str, fake: FakeIntercom, clock: VirtualClock, tmp_path: Path
) -> None:
    client = _client(mode, fake, clock, path=str(tmp_path / "o.db"), queue_when_unavailable=True)
    client.disable()
    with pytest.raises(WriteQueuedError) as queued:
        await done(client.contacts.create(request={"email": "q@x.io"}))
    assert queued.value.path == "/contacts"
    assert fake.journal.count() == 0
    pending = await done(client.outbox.list())
    assert [e.id for e in pending] == [queued.value.entry_id]
    client.enable()
    report = await done(client.outbox.drain())
    assert report.delivered == 1
    assert [c.email for c in fake.workspace().contacts.values()] == ["q@x.io"]
    await close(client)


async def test_an_open_breaker_queues_and_the_drain_waits_for_it(
    mode: str, fake: FakeIntercom, clock: VirtualClock, tmp_path: Path
) -> None:
    config = ResilienceConfig(
        breaker=BreakerPolicy(min_calls=2, failure_ratio=0.5, cooldown=30.0),
        retry=RetryPolicy(max_attempts=1),
    )
    client = _client(
        mode, fake, clock, config=config, path=str(tmp_path / "o.db"), queue_when_unavailable=True
    )
    fake.faults.outage(20, status=503)
    for _ in range(2):
        with pytest.raises(ApiError):  # the SDK's 503 error
            await done(client.contacts.find(contact_id="x"))
    with pytest.raises(WriteQueuedError):
        await done(client.companies.create_or_update(request={"company_id": "b"}))
    report = await done(client.outbox.drain())  # breaker still open: deferred, kept
    assert (report.delivered, report.deferred, report.remaining) == (0, 1, 1)
    clock.advance(40)
    report = await done(client.outbox.drain())
    assert (report.delivered, report.remaining) == (1, 0)
    assert len(fake.workspace().companies) == 1
    await close(client)


async def test_order_is_kept_per_resource(
    mode: str, fake: FakeIntercom, clock: VirtualClock, tmp_path: Path
) -> None:
    client = _client(mode, fake, clock, path=str(tmp_path / "o.db"))
    contact = await done(client.contacts.create(request={"email": "o@x.io"}))
    outbox = client.outbox
    await done(outbox.enqueue("PUT", f"/contacts/{contact.id}", json={"name": "first"}))
    await done(outbox.enqueue("POST", "/companies", json={"company_id": "other"}))
    await done(outbox.enqueue("PUT", f"/contacts/{contact.id}", json={"name": "second"}))
    fake.faults.fail_next(10, status=503, path=f"/contacts/{contact.id}", method="PUT")
    report = await done(outbox.drain())
    # The first PUT could not go: the second waits behind it; the other resource went ahead.
    assert (report.delivered, report.deferred, report.remaining) == (1, 1, 2)
    assert fake.workspace().contacts[contact.id].name is None
    fake.faults.clear()
    report = await done(outbox.drain())
    assert report.delivered == 2
    puts = [e.seq for e in fake.journal.filter(method="PUT") if e.status == 200]
    assert len(puts) == 2
    assert fake.workspace().contacts[contact.id].name == "second"  # applied in order
    await close(client)


async def test_a_rejected_write_is_dead_lettered_with_error_and_request_id(
    mode: str, fake: FakeIntercom, clock: VirtualClock, tmp_path: Path
) -> None:
    client = _client(mode, fake, clock, path=str(tmp_path / "o.db"))
    await done(client.outbox.enqueue("POST", "/contacts", json={"email": "not-an-email"}))
    report = await done(client.outbox.drain())
    assert (report.delivered, report.dead, report.remaining) == (0, 1, 0)
    [dead] = await done(client.outbox.list("dead"))
    issued = fake.journal.last(method="POST", path="/contacts")
    assert issued is not None
    assert dead.status == 400
    assert dead.request_id == issued.request_id
    assert dead.error is not None and "email" in dead.error
    assert (await done(client.outbox.status())).dead == 1
    await close(client)


async def test_the_token_is_never_stored(
    mode: str, fake: FakeIntercom, clock: VirtualClock, tmp_path: Path
) -> None:
    path = tmp_path / "o.db"
    client = _client(mode, fake, clock, path=str(path), queue_when_unavailable=True)
    client.disable()
    with pytest.raises(WriteQueuedError):
        await done(client.contacts.create(request={"email": "s@x.io"}))
    await done(client.outbox.enqueue("POST", "/tags", json={"name": "t"}))
    await close(client)
    stored = _read_all(tmp_path)
    assert b"s@x.io" in stored  # the body is there ...
    assert TOKEN.encode() not in stored  # ... the credentials are not
    assert b"Bearer" not in stored


async def test_a_corrupt_file_names_itself_and_reads_keep_working(
    mode: str, fake: FakeIntercom, clock: VirtualClock, tmp_path: Path
) -> None:
    path = tmp_path / "broken.db"
    path.write_bytes(b"this is not a database at all, not even close" * 100)
    client = _client(mode, fake, clock, path=str(path), queue_when_unavailable=True)
    contact = await done(client.contacts.create(request={"email": "r@x.io"}))
    with pytest.raises(OutboxError, match=r"broken\.db") as raised:
        await done(client.outbox.enqueue("POST", "/tags", json={"name": "x"}))
    assert "not a usable outbox" in str(raised.value)
    found = await done(client.contacts.find(contact_id=contact.id))  # reads: unaffected
    assert found.id == contact.id
    client.disable()
    with pytest.raises(OutboxError, match=r"broken\.db"):  # a queued write fails clearly
        await done(client.tags.create(request={"name": "y"}))
    await close(client)


async def test_health_reports_the_outbox_and_alerts_past_the_threshold(
    mode: str, fake: FakeIntercom, clock: VirtualClock, tmp_path: Path
) -> None:
    client = _client(mode, fake, clock, path=str(tmp_path / "o.db"), alert_depth=2)
    assert client.health().outbox_depth is None
    for i in range(3):
        await done(client.outbox.enqueue("POST", "/tags", json={"name": f"t{i}"}))
    health = client.health()
    assert health.outbox_depth == 3
    assert "outbox_backlog" in [a.rule for a in health.alerts]
    clock.advance(5)
    await done(client.outbox.status())
    assert client.health().outbox_oldest_age == pytest.approx(5.0)
    await done(client.outbox.drain())
    health = client.health()
    assert health.outbox_depth == 0
    assert "outbox_backlog" not in [a.rule for a in health.alerts]
    await close(client)


def test_a_locked_file_names_itself(mode: str, tmp_path: Path) -> None:
    del mode
    path = tmp_path / "locked.db"
    SQLiteStore(str(path)).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        store = SQLiteStore(str(path), busy_timeout=0.05)
        with pytest.raises(OutboxError, match=r"locked\.db.*locked by another process"):
            store.add(_new())
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def _new() -> Any:
    from intercom_resilience._outbox._model import NewEntry

    return NewEntry("POST", "/tags", b"{}", "application/json", "/tags", 0.0)


def _read_all(directory: Path) -> bytes:
    """Every byte the outbox left on disk (the file, its WAL and shared memory)."""
    return b"".join(p.read_bytes() for p in directory.iterdir())


async def test_one_replay_ends_well_inside_the_drains_lease(
    mode: str, fake: FakeIntercom, clock: VirtualClock, tmp_path: Path
) -> None:
    # A replay used to have the background lane's deadline (5 min) against a 60-s lease: another
    # worker could take the outbox over while a write was still in flight, and send it again.
    client = _client(mode, fake, clock, path=str(tmp_path / "o.db"), lease=8.0)
    await done(client.outbox.enqueue("POST", "/companies", json={"company_id": "slow"}))
    fake.faults.latency(60.0, path="/companies", method="POST")  # past any read timeout
    start = clock.monotonic()
    report = await done(client.outbox.drain())
    assert clock.monotonic() - start <= 8.0 / 2 + 1e-6
    assert (report.delivered, report.remaining) == (0, 1)  # kept for the next drain
    fake.faults.clear()
    report = await done(client.outbox.drain())
    assert (report.delivered, report.remaining) == (1, 0)
    assert len(fake.workspace().companies) == 1  # an upsert: re-sending it was safe
    await close(client)


async def test_health_counts_what_the_store_already_held(
    mode: str, fake: FakeIntercom, clock: VirtualClock, tmp_path: Path
) -> None:
    # A process whose first use of the outbox was an enqueue reported a depth of 1 over a store
    # that already held the writes an earlier process had queued.
    path = str(tmp_path / "o.db")
    earlier = _client(mode, fake, clock, path=path)
    for i in range(3):
        await done(earlier.outbox.enqueue("POST", "/tags", json={"name": f"t{i}"}))
    await close(earlier)
    client = _client(mode, fake, clock, path=path)
    await done(client.outbox.enqueue("POST", "/tags", json={"name": "t3"}))
    assert client.health().outbox_depth == 4
    await done(client.outbox.enqueue("POST", "/tags", json={"name": "t4"}))
    assert client.health().outbox_depth == 5
    await close(client)


async def test_a_store_failure_mid_drain_still_releases_the_lease(
    mode: str, fake: FakeIntercom, clock: VirtualClock, tmp_path: Path, monkeypatch: Any
) -> None:
    path = str(tmp_path / "o.db")
    client = _client(mode, fake, clock, path=path)
    await done(client.outbox.enqueue("POST", "/tags", json={"name": "vip"}))
    store = client.outbox._core.store

    def broken(entry_id: str, now: float) -> None:
        raise OutboxError(f"{path}: disk I/O error (injected)")

    monkeypatch.setattr(store, "mark_sent", broken)
    with pytest.raises(OutboxError, match="injected"):
        await done(client.outbox.drain())
    monkeypatch.undo()
    other = _client(mode, fake, clock, path=path)  # another worker: the lease must be free
    report = await done(other.outbox.drain())
    assert (report.busy, report.delivered, report.remaining) == (False, 1, 0)
    await close(client, other)
