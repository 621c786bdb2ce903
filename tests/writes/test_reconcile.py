"""Reconciliation against the fake, sync and async: every row of the table that the fake serves.

Each test loses a write's answer *after* the fake committed it (a 500, a dropped connection or a
read timeout) or before it did (a 500 fault in front of the API), and checks that the caller gets
the real object, that nothing was written twice, and what ``capture_calls()`` says.
"""

from __future__ import annotations

from typing import Any

import pytest
from intercom.core.api_error import ApiError

from intercom_resilience import (
    DeadlinePolicy,
    OutcomeUnknownError,
    ResilienceConfig,
    RetryPolicy,
    VirtualClock,
    capture_calls,
)
from intercom_resilience.events import CallReconciled, Event
from intercom_resilience.testing import FakeIntercom

from ..client._drive import MODES, done, make_client
from ._support import Once, transport

pytestmark = pytest.mark.parametrize("mode", MODES)


def _client(mode: str, fake: FakeIntercom, clock: VirtualClock, plan: Any = None, **kw: Any) -> Any:
    if plan is not None:
        kw["transport"] = transport(mode, fake, plan)
    if "transport" in kw:
        from intercom_resilience import AsyncResilientIntercom, ResilientIntercom

        cls = ResilientIntercom if mode == "sync" else AsyncResilientIntercom
        kw.setdefault("token", "fake-token")
        kw.setdefault("seed", 7)
        return cls(clock=clock, **kw)
    return make_client(mode, fake, clock, **kw)


def _contacts(fake: FakeIntercom) -> list[Any]:
    return list(fake.workspace().contacts.values())


@pytest.mark.parametrize("how", ["500", "drop"])
async def test_contact_conflict_returns_existing(
    mode: str, fake: FakeIntercom, clock: VirtualClock, how: str
) -> None:
    client = _client(mode, fake, clock, Once("POST", "/contacts", how))
    with capture_calls() as calls:
        contact = await done(
            client.contacts.create(request={"external_id": "u-1", "email": "a@x.io"})
        )
    assert [c.id for c in _contacts(fake)] == [contact.id]  # exactly one contact
    posts = fake.journal.filter(method="POST", path="/contacts")
    assert [p.status for p in posts] == [200, 409]  # the re-send met the natural key
    assert fake.journal.count(method="GET", path=f"/contacts/{contact.id}") == 1
    assert calls.last is not None
    assert calls.last.reconciled
    assert calls.last.reconciled_by == "conflict"
    assert calls.last.attempts == 2


async def test_contact_lost_by_read_timeout_is_fetched(
    mode: str, fake: FakeIntercom, clock: VirtualClock
) -> None:
    # A read timeout spends the read timeout: the call needs time left after it to reconcile.
    config = ResilienceConfig(deadlines=DeadlinePolicy(interactive=60))
    client = _client(mode, fake, clock, config=config)
    fake.faults.lose_response(path="/contacts", method="POST")
    with capture_calls() as calls:
        contact = await done(client.contacts.create(request={"email": "t@x.io"}))
    assert [c.id for c in _contacts(fake)] == [contact.id]
    assert calls.last is not None and calls.last.reconciled_by == "conflict"


async def test_no_time_left_after_a_read_timeout_means_unknown(
    mode: str, fake: FakeIntercom, clock: VirtualClock
) -> None:
    config = ResilienceConfig(deadlines=DeadlinePolicy(interactive=8))
    client = _client(mode, fake, clock, config=config)
    fake.faults.lose_response(path="/contacts", method="POST")
    with pytest.raises(OutcomeUnknownError) as raised:
        await done(client.contacts.create(request={"email": "t@x.io"}))
    assert raised.value.resolution == "conflict"
    assert "deadline" in raised.value.hint


async def test_contact_not_processed_is_created_by_the_resend(
    mode: str, fake: FakeIntercom, clock: VirtualClock
) -> None:
    client = _client(mode, fake, clock)
    fake.faults.fail_next(1, status=500, path="/contacts", method="POST")  # before processing
    with capture_calls() as calls:
        contact = await done(client.contacts.create(request={"email": "n@x.io"}))
    assert [c.id for c in _contacts(fake)] == [contact.id]
    assert calls.last is not None and calls.last.reconciled_by == "resent"


async def test_a_contact_older_than_the_call_keeps_its_409(
    mode: str, fake: FakeIntercom, clock: VirtualClock
) -> None:
    client = _client(mode, fake, clock)
    await done(client.contacts.create(request={"email": "old@x.io"}))
    clock.advance(30)
    fake.faults.fail_next(1, status=500, path="/contacts", method="POST")
    with pytest.raises(ApiError) as raised:
        await done(client.contacts.create(request={"email": "old@x.io"}))
    assert raised.value.status_code == 409  # the honest answer: it existed before this call
    assert len(_contacts(fake)) == 1


async def test_a_lead_without_natural_key_stays_unknown(
    mode: str, fake: FakeIntercom, clock: VirtualClock
) -> None:
    client = _client(mode, fake, clock, Once("POST", "/contacts"))
    with pytest.raises(OutcomeUnknownError) as raised:
        await done(client.contacts.create(request={"role": "lead", "email": "l@x.io"}))
    assert raised.value.resolution == "unresolvable"
    assert "search contacts" in raised.value.hint
    assert fake.journal.count(method="POST", path="/contacts") == 1  # never re-sent


async def test_company_upsert_resent(mode: str, fake: FakeIntercom, clock: VirtualClock) -> None:
    client = _client(mode, fake, clock, Once("POST", "/companies", "drop"))
    with capture_calls() as calls:
        company = await done(
            client.companies.create_or_update(request={"company_id": "acme", "name": "Acme"})
        )
    assert company.company_id == "acme"
    assert len(fake.workspace().companies) == 1
    assert fake.journal.count(method="POST", path="/companies") == 2
    assert calls.last is not None and calls.last.reconciled_by == "resent"


async def test_tag_upsert_resent(mode: str, fake: FakeIntercom, clock: VirtualClock) -> None:
    client = _client(mode, fake, clock, Once("POST", "/tags"))
    with capture_calls() as calls:
        tag = await done(client.tags.create(request={"name": "vip"}))
    assert [t.name for t in fake.workspace().tags.values()] == ["vip"]
    assert tag.name == "vip"
    assert calls.last is not None and calls.last.reconciled_by == "resent"


async def test_tag_attach_resent(mode: str, fake: FakeIntercom, clock: VirtualClock) -> None:
    client = _client(mode, fake, clock, Once("POST", "/contacts/{id}/tags"))
    contact = await done(client.contacts.create(request={"email": "g@x.io"}))
    tag = await done(client.tags.create(request={"name": "gold"}))
    with capture_calls() as calls:
        attached = await done(client.tags.tag_contact(contact_id=contact.id, tag_id=tag.id))
    assert attached.id == tag.id
    assert fake.workspace().contacts[contact.id].tag_ids == [tag.id]  # attached once
    assert calls.last is not None and calls.last.reconciled_by == "resent"


async def _conversation(client: Any) -> tuple[Any, Any]:
    contact = await done(client.contacts.create(request={"email": "c@x.io"}))
    created = await done(
        client.conversations.create(from_={"type": "user", "id": contact.id}, body="help")
    )
    return contact, created.conversation_id


@pytest.mark.parametrize("kind", ["comment", "note"])
async def test_reply_found_by_lookup(
    mode: str, fake: FakeIntercom, clock: VirtualClock, kind: str
) -> None:
    client = _client(mode, fake, clock, Once("POST", "/conversations/{id}/reply"))
    _, conversation_id = await _conversation(client)
    admin = next(iter(fake.workspace().admins))
    reply = {"message_type": kind, "type": "admin", "admin_id": admin, "body": "on it"}
    with capture_calls() as calls:
        answer = await done(
            client.conversations.reply(conversation_id=conversation_id, request=reply)
        )
    parts = fake.workspace().conversations[conversation_id].parts
    assert [p["body"] for p in parts] == ["<p>on it</p>"]  # one reply, not two
    assert answer.id == conversation_id
    assert fake.journal.count(method="POST", path="/conversations/*/reply") == 1
    assert calls.last is not None and calls.last.reconciled_by == "lookup"


async def test_reply_absent_is_resent(mode: str, fake: FakeIntercom, clock: VirtualClock) -> None:
    client = _client(mode, fake, clock)
    contact, conversation_id = await _conversation(client)
    # An identical older reply is someone else's: the lookup only counts parts since the call.
    reply = {"message_type": "comment", "type": "user", "intercom_user_id": contact.id, "body": "x"}
    await done(client.conversations.reply(conversation_id=conversation_id, request=reply))
    clock.advance(10)
    fake.faults.fail_next(1, status=502, path="/conversations/*/reply", method="POST")
    with capture_calls() as calls:
        await done(client.conversations.reply(conversation_id=conversation_id, request=reply))
    parts = fake.workspace().conversations[conversation_id].parts
    assert len(parts) == 2
    assert calls.last is not None and calls.last.reconciled_by == "resent"


async def test_contact_note_found_by_lookup(
    mode: str, fake: FakeIntercom, clock: VirtualClock
) -> None:
    client = _client(mode, fake, clock, Once("POST", "/contacts/{id}/notes", "drop"))
    contact = await done(client.contacts.create(request={"email": "n@x.io"}))
    admin = next(iter(fake.workspace().admins))
    with capture_calls() as calls:
        note = await done(client.notes.create(contact_id=contact.id, body="called", admin_id=admin))
    assert [n.id for n in fake.workspace().notes] == [note.id]
    assert calls.last is not None and calls.last.reconciled_by == "lookup"


async def test_event_lookup(mode: str, fake: FakeIntercom, clock: VirtualClock) -> None:
    client = _client(mode, fake, clock, Once("POST", "/events"))
    await done(client.contacts.create(request={"external_id": "u-9", "email": "e@x.io"}))
    event = {"event_name": "paid", "created_at": 1_700_000_000, "user_id": "u-9"}
    with capture_calls() as calls:
        await done(client.events.create(request={**event, "metadata": {"plan": "pro"}}))
    assert len(fake.workspace().events) == 1
    assert calls.last is not None and calls.last.reconciled_by == "lookup"


async def test_delete_404_is_done(mode: str, fake: FakeIntercom, clock: VirtualClock) -> None:
    client = _client(mode, fake, clock, Once("DELETE", "/contacts/{id}"))
    contact = await done(client.contacts.create(request={"email": "d@x.io"}))
    with capture_calls() as calls:
        deleted = await done(client.contacts.delete(contact_id=contact.id))
    assert deleted.id == contact.id
    assert deleted.deleted is True
    assert [e.status for e in fake.journal.filter(method="DELETE")] == [200, 404]
    assert calls.last is not None and calls.last.reconciled_by == "resent"


async def test_a_plain_404_on_delete_is_still_an_error(
    mode: str, fake: FakeIntercom, clock: VirtualClock
) -> None:
    client = _client(mode, fake, clock)
    with pytest.raises(ApiError) as raised:
        await done(client.contacts.delete(contact_id="nope"))
    assert raised.value.status_code == 404


async def test_unresolvable_still_raises(
    mode: str, fake: FakeIntercom, clock: VirtualClock
) -> None:
    events: list[Event] = []
    client = _client(mode, fake, clock, event_hooks=[events.append])
    contact = await done(client.contacts.create(request={"email": "u@x.io"}))
    fake.faults.lose_response(path="/conversations", method="POST")
    with pytest.raises(OutcomeUnknownError) as raised:
        await done(client.conversations.create(from_={"type": "user", "id": contact.id}, body="hi"))
    assert raised.value.resolution == "unresolvable"
    assert "/conversations" in raised.value.hint
    assert fake.journal.count(method="POST", path="/conversations") == 1
    reconciled = [e for e in events if isinstance(e, CallReconciled)]
    assert [(e.how, e.resolution) for e in reconciled] == [(None, "unresolvable")]


async def test_a_spent_budget_still_lets_a_reconciliation_use_every_attempt(
    mode: str, fake: FakeIntercom, clock: VirtualClock
) -> None:
    # The writes benchmark's last unknowns: the budget stopped reconciliation at its 3rd request.
    config = ResilienceConfig(retry=RetryPolicy(budget_ratio=0.0, budget_floor=0))
    client = _client(mode, fake, clock, Once("POST", "/companies", times=3), config=config)
    with capture_calls() as calls:
        company = await done(client.companies.create_or_update(request={"company_id": "b"}))
    assert company.company_id == "b"
    assert calls.last is not None and calls.last.reconciled_by == "resent"
    assert fake.journal.count(method="POST", path="/companies") == 4  # max_attempts
    assert len(fake.workspace().companies) == 1


async def test_past_its_attempts_a_failing_lookup_needs_the_budget(
    mode: str, fake: FakeIntercom, clock: VirtualClock
) -> None:
    config = ResilienceConfig(
        retry=RetryPolicy(budget_ratio=0.0, budget_floor=0),
        deadlines=DeadlinePolicy(interactive=600.0),
    )
    client = _client(mode, fake, clock, [], config=config)
    _, conversation_id = await _conversation(client)  # made and read before the faults
    lost_reply = Once("POST", "/conversations/{id}/reply")
    failing_lookups = Once("GET", "/conversations/{id}", times=100)
    transport(mode, fake, [lost_reply, failing_lookups])
    admin = next(iter(fake.workspace().admins))
    reply = {"message_type": "comment", "type": "admin", "admin_id": admin, "body": "hi"}
    with pytest.raises(OutcomeUnknownError) as raised:
        await done(client.conversations.reply(conversation_id=conversation_id, request=reply))
    assert "retry budget" in raised.value.hint
    lookups = fake.journal.count(method="GET", path=f"/conversations/{conversation_id}")
    assert lookups == RetryPolicy().max_attempts
    assert fake.journal.count(method="POST", path="/conversations/*/reply") == 1


@pytest.mark.parametrize("write", ["delete", "update"])
async def test_an_idempotent_write_whose_every_answer_was_lost_is_unknown(
    mode: str, fake: FakeIntercom, clock: VirtualClock, write: str
) -> None:
    # It used to end as Intercom's ApiError(500), which says nothing of what happened to it.
    method, template = (
        ("DELETE", "/contacts/{id}") if write == "delete" else ("PUT", "/contacts/{id}")
    )
    client = _client(mode, fake, clock, Once(method, template, times=10))
    contact = await done(client.contacts.create(request={"email": "gone@x.io"}))

    def send() -> Any:  # sync clients raise on the call itself: call it inside pytest.raises
        if write == "delete":
            return client.contacts.delete(contact_id=contact.id)
        return client.contacts.update(contact_id=contact.id, name="Ada")

    with pytest.raises(OutcomeUnknownError) as raised:
        await done(send())
    assert raised.value.resolution == "idempotent"
    assert "sending it again is safe" in raised.value.hint
    assert "not re-sent" not in str(raised.value)
    assert raised.value.status_code == 500
    assert fake.journal.count(method=method, path=f"/contacts/{contact.id}") == 4
    stored = fake.workspace().contacts.get(contact.id)
    assert (stored is None) if write == "delete" else (stored is not None and stored.name == "Ada")


async def test_attempts_bound_the_resends(
    mode: str, fake: FakeIntercom, clock: VirtualClock
) -> None:
    config = ResilienceConfig(retry=RetryPolicy(max_attempts=3))
    client = _client(mode, fake, clock, Once("POST", "/companies", times=10), config=config)
    with pytest.raises(OutcomeUnknownError) as raised:
        await done(client.companies.create_or_update(request={"company_id": "c"}))
    assert raised.value.resolution == "idempotent"
    assert "attempts" in raised.value.hint
    assert fake.journal.count(method="POST", path="/companies") == 3
    assert len(fake.workspace().companies) == 1  # upserts: still one


async def test_the_kill_switch_stops_reconciliation(
    mode: str, fake: FakeIntercom, clock: VirtualClock
) -> None:
    config = ResilienceConfig(deadlines=DeadlinePolicy(interactive=60))
    client = _client(mode, fake, clock, config=config)
    fake.faults.lose_response(path="/companies", method="POST")
    original = fake.faults.decide

    def decide(method: str, path: str, now: float) -> Any:
        if method == "POST" and path == "/companies":
            client.disable()  # turned on while the write is in flight
        return original(method, path, now)

    fake.faults.decide = decide  # type: ignore[method-assign]
    with pytest.raises(OutcomeUnknownError) as raised:
        await done(client.companies.create_or_update(request={"company_id": "k"}))
    assert "kill switch" in raised.value.hint
