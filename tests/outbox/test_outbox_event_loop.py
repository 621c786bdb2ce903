"""The async outbox keeps its store's waits off the event loop (they used to run inline)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from intercom_resilience import (
    AsyncResilientIntercom,
    OutboxPolicy,
    ResilienceConfig,
    VirtualClock,
)
from intercom_resilience.testing import FakeIntercom


async def test_a_locked_file_does_not_block_the_event_loop(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    fake = FakeIntercom(clock=VirtualClock())
    config = ResilienceConfig(outbox=OutboxPolicy(path=str(path)))
    client = AsyncResilientIntercom(
        token="fake-token", transport=fake.async_transport(), config=config
    )
    await client.outbox.status()  # creates the file
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    enqueue = asyncio.create_task(client.outbox.enqueue("POST", "/tags", json={"name": "vip"}))
    # Only a free event loop gets here while the enqueue waits for the lock (SQLite waits up to
    # its busy timeout, seconds): an enqueue that blocked the loop would time out on the lock
    # first, and the task would end with OutboxError instead.
    for _ in range(5):
        await asyncio.sleep(0.01)
    assert not enqueue.done()
    holder.execute("ROLLBACK")
    holder.close()
    entry_id = await enqueue
    assert entry_id
    assert (await client.outbox.status()).depth == 1
    await client.aclose()
