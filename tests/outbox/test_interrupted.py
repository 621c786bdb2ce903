"""A replay killed after it sent a write: the next drain reconciles, never re-sends blindly.

The crash is staged in process: the entry is marked sent (as a drain does, durably, before it
sends) and the write is delivered to the fake behind the outbox's back, as the dead worker did.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from intercom_resilience import OutboxPolicy, ResilienceConfig, ResilientIntercom, VirtualClock
from intercom_resilience.testing import FakeIntercom


def _client(fake: FakeIntercom, clock: VirtualClock, path: Path) -> ResilientIntercom:
    config = ResilienceConfig(outbox=OutboxPolicy(path=str(path)))
    return ResilientIntercom(
        token="fake-token", transport=fake.transport(), clock=clock, config=config
    )


def _crash_after_send(
    client: ResilientIntercom, method: str, path: str, body: dict[str, Any]
) -> str:
    """Queue, mark sent, deliver behind the outbox's back: a drain killed before ``done``."""
    entry_id = client.outbox.enqueue(method, path, json=body)
    store = client.outbox._core.store
    store.mark_sent(entry_id, client._pipeline.clock.time())
    raw = client._client_wrapper.httpx_client.httpx_client
    raw.request(
        method,
        "https://api.intercom.io" + path,
        json=body,
        headers=client._client_wrapper.get_headers(),
    )
    return entry_id


def _crash_before_send(
    client: ResilientIntercom, method: str, path: str, body: dict[str, Any]
) -> str:
    entry_id = client.outbox.enqueue(method, path, json=body)
    client.outbox._core.store.mark_sent(entry_id, client._pipeline.clock.time())
    return entry_id


@pytest.mark.parametrize("sent", [True, False])
def test_a_contact_create_is_resolved_by_its_409(
    fake: FakeIntercom, clock: VirtualClock, tmp_path: Path, sent: bool
) -> None:
    client = _client(fake, clock, tmp_path / "o.db")
    stage = _crash_after_send if sent else _crash_before_send
    stage(client, "POST", "/contacts", {"email": "c@x.io"})
    report = client.outbox.drain()
    assert (report.delivered, report.dead) == (1, 0)
    assert report.reconciled == ({"conflict": 1} if sent else {})
    assert len(fake.workspace().contacts) == 1


@pytest.mark.parametrize("sent", [True, False])
def test_a_note_is_found_by_lookup(
    fake: FakeIntercom, clock: VirtualClock, tmp_path: Path, sent: bool
) -> None:
    client = _client(fake, clock, tmp_path / "o.db")
    contact = client.contacts.create(request={"email": "n@x.io"})
    admin = next(iter(fake.workspace().admins))
    stage = _crash_after_send if sent else _crash_before_send
    stage(client, "POST", f"/contacts/{contact.id}/notes", {"body": "hello", "admin_id": admin})
    report = client.outbox.drain()
    assert report.delivered == 1
    assert report.reconciled == ({"lookup": 1} if sent else {})
    assert len(fake.workspace().notes) == 1


def test_a_delete_answered_404_is_done(
    fake: FakeIntercom, clock: VirtualClock, tmp_path: Path
) -> None:
    client = _client(fake, clock, tmp_path / "o.db")
    contact = client.contacts.create(request={"email": "d@x.io"})
    _crash_after_send(client, "DELETE", f"/contacts/{contact.id}", {})
    report = client.outbox.drain()
    assert (report.delivered, report.dead) == (1, 0)
    assert report.reconciled == {"resent": 1}


def test_an_unresolvable_write_goes_to_the_dead_letters_unsent(
    fake: FakeIntercom, clock: VirtualClock, tmp_path: Path
) -> None:
    client = _client(fake, clock, tmp_path / "o.db")
    contact = client.contacts.create(request={"email": "u@x.io"})
    body = {"from": {"type": "user", "id": contact.id}, "body": "hi"}
    _crash_after_send(client, "POST", "/conversations", body)
    report = client.outbox.drain()
    assert (report.delivered, report.dead) == (0, 1)
    [dead] = client.outbox.list("dead")
    assert dead.error is not None and "interrupted" in dead.error
    assert len(fake.workspace().conversations) == 1  # the one the dead worker sent; no second
