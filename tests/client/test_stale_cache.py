"""The stale-cache fallback and the kill switch against the fake, sync and async."""

from __future__ import annotations

import pytest
from intercom.core.api_error import ApiError

from intercom_resilience import (
    CachePolicy,
    CircuitOpenError,
    IntercomDisabledError,
    ResilienceConfig,
    VirtualClock,
    capture_calls,
)
from intercom_resilience.testing import FakeIntercom

from ._drive import MODES, done, iterate, make_client

pytestmark = pytest.mark.parametrize("mode", MODES)


async def _contacts(client: object, n: int) -> list[str]:
    return [
        (await done(client.contacts.create(request={"email": f"w{i}@example.com"}))).id  # type: ignore[attr-defined]
        for i in range(n)
    ]


async def test_warm_reads_survive_a_full_outage(
    mode: str, fake: FakeIntercom, clock: VirtualClock
) -> None:
    client = make_client(mode, fake, clock)
    ids = await _contacts(client, 101)
    warm, cold = ids[:100], ids[100]
    fresh = {cid: await done(client.contacts.find(contact_id=cid)) for cid in warm}
    clock.advance(120)
    fake.faults.outage(seconds=3600)
    with capture_calls() as calls:
        for cid in warm:
            assert await done(client.contacts.find(contact_id=cid)) == fresh[cid]
    assert len(calls) == 100
    assert all(call.stale for call in calls)
    assert all(call.age is not None and call.age >= 120 for call in calls)
    assert {call.reason for call in calls} <= {"server_error", "circuit_open"}
    assert client.stale_served == 100
    with pytest.raises(ApiError) as raised:  # never read before: nothing to serve
        await done(client.contacts.find(contact_id=cold))
    error = raised.value
    assert isinstance(error, CircuitOpenError) or error.request_id is not None


async def test_stale_answer_says_which_failure_caused_it(
    mode: str, fake: FakeIntercom, clock: VirtualClock
) -> None:
    client = make_client(mode, fake, clock)
    (cid,) = await _contacts(client, 1)
    await done(client.contacts.find(contact_id=cid))
    clock.advance(30)
    fake.faults.fail_next(10, status=503, path="/contacts/*", method="GET")
    with capture_calls() as calls:
        await done(client.contacts.find(contact_id=cid))
    info = calls.last
    assert info is not None and info.stale and info.reason == "server_error"
    issued = fake.journal.last(method="GET", path="/contacts/*")
    assert issued is not None and info.failure_request_id == issued.request_id
    assert info.age is not None and info.age >= 30


async def test_searches_and_lists_are_served_stale_too(
    mode: str, fake: FakeIntercom, clock: VirtualClock
) -> None:
    client = make_client(mode, fake, clock)
    await _contacts(client, 5)
    query = {"field": "email", "operator": "$", "value": "@example.com"}
    fresh = await iterate(client.contacts.search(query=query, pagination={"per_page": 2}))
    listed = await iterate(client.contacts.list(per_page=2))
    fake.faults.outage(seconds=3600)
    assert await iterate(client.contacts.search(query=query, pagination={"per_page": 2})) == fresh
    assert await iterate(client.contacts.list(per_page=2)) == listed


async def test_a_write_drops_what_it_made_obsolete(
    mode: str, fake: FakeIntercom, clock: VirtualClock
) -> None:
    client = make_client(mode, fake, clock)
    first, second = await _contacts(client, 2)
    await done(client.contacts.find(contact_id=first))
    await done(client.contacts.find(contact_id=second))
    await done(client.contacts.update(contact_id=first, name="Updated"))
    fake.faults.outage(seconds=3600)
    with pytest.raises(ApiError):  # the pre-update answer must not come back
        await done(client.contacts.find(contact_id=first))
    other = await done(client.contacts.find(contact_id=second))  # untouched: still served
    assert other.id == second


async def test_answers_are_never_masked(mode: str, fake: FakeIntercom, clock: VirtualClock) -> None:
    client = make_client(mode, fake, clock)
    (cid,) = await _contacts(client, 1)
    await done(client.contacts.find(contact_id=cid))
    fake.faults.fail_next(1, status=404, path="/contacts/*", method="GET")
    with pytest.raises(ApiError) as not_found:
        await done(client.contacts.find(contact_id=cid))
    assert not_found.value.status_code == 404
    fake.revoke_token("fake-token")
    with pytest.raises(ApiError) as unauthorized:
        await done(client.contacts.find(contact_id=cid))
    assert unauthorized.value.status_code == 401
    assert client.stale_served == 0


async def test_stale_window_is_respected(
    mode: str, fake: FakeIntercom, clock: VirtualClock
) -> None:
    config = ResilienceConfig(cache=CachePolicy(stale_window=60))
    client = make_client(mode, fake, clock, config=config)
    (cid,) = await _contacts(client, 1)
    await done(client.contacts.find(contact_id=cid))
    clock.advance(61)
    fake.faults.outage(seconds=3600)
    with pytest.raises(ApiError):
        await done(client.contacts.find(contact_id=cid))


async def test_kill_switch_sends_nothing(
    mode: str, fake: FakeIntercom, clock: VirtualClock
) -> None:
    client = make_client(mode, fake, clock)
    (cid,) = await _contacts(client, 1)
    cached = await done(client.contacts.find(contact_id=cid))
    before = len(fake.journal.filter())
    client.disable()
    assert client.disabled
    with capture_calls() as calls:
        assert await done(client.contacts.find(contact_id=cid)) == cached
    assert calls.last is not None and calls.last.stale and calls.last.reason == "disabled"
    with pytest.raises(IntercomDisabledError):
        await done(client.contacts.create(request={"email": "new@example.com"}))
    with pytest.raises(IntercomDisabledError):
        await done(client.admins.identify())  # a read never cached
    assert len(fake.journal.filter()) == before  # zero requests reached Intercom
    client.enable()
    await done(client.admins.identify())
    assert len(fake.journal.filter()) == before + 1


async def test_kill_switch_from_the_environment(
    mode: str, fake: FakeIntercom, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTERCOM_RESILIENCE_DISABLED", "1")
    client = make_client(mode, fake, clock)
    with pytest.raises(IntercomDisabledError):
        await done(client.admins.identify())
    assert fake.journal.filter() == []


async def test_every_call_leaves_call_info(
    mode: str, fake: FakeIntercom, clock: VirtualClock
) -> None:
    client = make_client(mode, fake, clock)
    with capture_calls() as calls:
        await done(client.admins.identify())
        with pytest.raises(ApiError):
            await done(client.contacts.find(contact_id="missing"))  # a 404: an answer
        client.disable()
        with pytest.raises(IntercomDisabledError):
            await done(client.admins.list())
    assert [(c.path, c.status, c.stale) for c in calls] == [
        ("/me", 200, False),
        ("/contacts/{id}", 404, False),
        ("/admins", None, False),
    ]
