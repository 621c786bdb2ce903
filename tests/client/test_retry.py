"""Retry against the fake, sync and async: write safety, server waits, rotation, the budget."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from intercom.core.api_error import ApiError

from intercom_resilience import (
    BreakerPolicy,
    CircuitOpenError,
    DeadlinePolicy,
    OutcomeUnknownError,
    RateLimitedError,
    RateLimitPolicy,
    ResilienceConfig,
    ResilientIntercom,
    RetryPolicy,
    VirtualClock,
)
from intercom_resilience.testing import FakeIntercom

from ._drive import MODES, done, make_client

pytestmark = pytest.mark.parametrize("mode", MODES)


async def test_get_with_two_503s_then_200_takes_three_attempts(
    mode: str, fake: FakeIntercom, clock: VirtualClock
) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    client = make_client(
        mode, fake, clock, event_hooks=[lambda e: events.append((e.name, e.fields()))]
    )
    contact = await done(client.contacts.create(request={"email": "r@example.com"}))
    fake.faults.fail_next(2, status=503, path="/contacts/*", method="GET")
    found = await done(client.contacts.find(contact_id=contact.id))
    assert found.id == contact.id
    gets = [f for n, f in events if n == "call.attempt" and f["method"] == "GET"]
    assert [g["status"] for g in gets] == [503, 503, 200]
    assert [g["attempt"] for g in gets] == [1, 2, 3]
    issued = [e.request_id for e in fake.journal.filter(method="GET", path="/contacts/*")]
    assert [g["request_id"] for g in gets] == issued  # every attempt logged with its request id
    assert clock.total_slept > 0


async def test_lost_create_is_not_resent(
    mode: str, fake: FakeIntercom, clock: VirtualClock
) -> None:
    client = make_client(mode, fake, clock)
    contact = await done(client.contacts.create(request={"email": "l@example.com"}))
    fake.faults.lose_response(path="/conversations", method="POST")
    with pytest.raises(OutcomeUnknownError) as raised:
        await done(client.conversations.create(from_={"type": "user", "id": contact.id}, body="hi"))
    assert raised.value.method == "POST"
    assert raised.value.path == "/conversations"
    assert "not re-sent" in str(raised.value)
    assert isinstance(raised.value.__cause__, httpx.ReadTimeout) or raised.value.request_id is None
    created = fake.journal.filter(method="POST", path="/conversations", changed_state=True)
    assert len(created) == 1  # exactly one conversation exists
    assert fake.journal.count(method="POST", path="/conversations") == 1


async def test_lost_reply_is_not_resent(mode: str, fake: FakeIntercom, clock: VirtualClock) -> None:
    client = make_client(mode, fake, clock)
    contact = await done(client.contacts.create(request={"email": "p@example.com"}))
    conversation = await done(
        client.conversations.create(from_={"type": "user", "id": contact.id}, body="hello")
    )
    fake.faults.lose_response(path="/conversations/*/reply", method="POST")
    reply = {"message_type": "comment", "type": "user", "intercom_user_id": contact.id, "body": "x"}
    with pytest.raises(OutcomeUnknownError):
        await done(
            client.conversations.reply(conversation_id=conversation.conversation_id, request=reply)
        )
    assert fake.journal.count(method="POST", path="/conversations/*/reply") == 1


async def test_5xx_on_a_write_is_outcome_unknown_with_the_request_id(
    mode: str, fake: FakeIntercom, clock: VirtualClock
) -> None:
    client = make_client(mode, fake, clock)
    # A create with no natural key: unresolvable (tests/writes covers the reconciled rows).
    fake.faults.fail_next(1, status=500, path="/conversations", method="POST")
    with pytest.raises(OutcomeUnknownError) as raised:
        await done(client.conversations.create(from_={"type": "user", "id": "c1"}, body="hi"))
    issued = fake.journal.last(method="POST", path="/conversations")
    assert issued is not None
    assert raised.value.status_code == 500
    assert raised.value.request_id == issued.request_id
    assert issued.request_id in str(raised.value)


async def test_thousand_writes_under_lost_responses_make_no_duplicates(
    mode: str, fake: FakeIntercom, clock: VirtualClock
) -> None:
    client = make_client(mode, fake, clock)
    await done(client.contacts.create(request={"external_id": "user-1", "email": "e@example.com"}))
    fake.faults.chaos(0.2, seed=11, kinds=["lose"], path="/events", method="POST")
    confirmed = unknown = 0
    for i in range(1000):
        try:
            await done(
                client.events.create(
                    request={
                        "event_name": f"step-{i}",
                        "created_at": 1_700_000_000 + i,
                        "user_id": "user-1",
                    }
                )
            )
            confirmed += 1
        except OutcomeUnknownError:
            unknown += 1
    sent = fake.journal.filter(method="POST", path="/events")
    assert len(sent) == 1000  # each write sent exactly once: zero duplicates
    assert confirmed + unknown == 1000
    lost = [e for e in sent if e.outcome == "read_timeout"]
    assert len(lost) == unknown
    assert 150 <= unknown <= 250  # about 20%


async def test_429_waits_for_the_window_reset(mode: str, clock: VirtualClock) -> None:
    fake = FakeIntercom(clock=clock, app_quota=60, window_seconds=10)  # 10 per window
    # A deadline that leaves room for a whole window (the interactive default does not).
    config = ResilienceConfig(deadlines=DeadlinePolicy(interactive=30.0))
    client = make_client(mode, fake, clock, config=config)
    for _ in range(10):  # the fake's window is spent by someone else's traffic
        fake.handle("GET", "/me", {"authorization": "Bearer fake-token"}, b"")
    start = clock.time()
    me = await done(client.admins.identify())
    assert me.email
    assert clock.time() - start <= 10.0 + 1e-6  # waited for the reset, not longer
    statuses = [e.status for e in fake.journal.filter(method="GET", path="/me")][10:]
    assert statuses[-1] == 200


async def test_hostile_retry_after_never_sleeps_past_the_cap(
    mode: str, clock: VirtualClock
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"retry-after": "99999999"}, json={"type": "error.list"})

    # A deadline far away, so that only the cap bounds the waits.
    policy = RetryPolicy(max_attempts=3, max_server_wait=30.0)
    kwargs: dict[str, Any] = {
        "config": ResilienceConfig(retry=policy, deadlines=DeadlinePolicy(interactive=10_000.0)),
        "clock": clock,
        "token": "t",
    }
    if mode == "sync":
        client: Any = ResilientIntercom(transport=httpx.MockTransport(handler), **kwargs)
    else:
        from intercom_resilience import AsyncResilientIntercom

        async def ahandler(request: httpx.Request) -> httpx.Response:
            return handler(request)

        client = AsyncResilientIntercom(transport=httpx.MockTransport(ahandler), **kwargs)
    with pytest.raises(ApiError) as raised:
        await done(client.admins.identify())
    assert raised.value.status_code == 429
    assert clock.total_slept <= 2 * 30.0 + 1e-6  # two waits, each clamped to the cap


async def test_rotated_token_recovers_with_one_extra_request(
    mode: str, fake: FakeIntercom, clock: VirtualClock
) -> None:
    # a secret store that still hands out the old token once after revocation
    tokens = iter(["fake-token", "fake-token", "fake-token", "rotated-token"])
    current = {"token": "fake-token"}

    def token() -> str:
        current["token"] = next(tokens, current["token"])
        return current["token"]

    client = make_client(mode, fake, clock, token=token)
    await done(client.admins.identify())
    before = fake.journal.count(path="/me")
    fake.revoke_token("fake-token")
    fake.add_token("rotated-token")
    me = await done(client.admins.identify())
    assert me.email
    after = fake.journal.filter(path="/me")[before:]
    assert [e.status for e in after] == [401, 200]  # one extra request


async def test_a_plain_token_401_raises_at_once(
    mode: str, fake: FakeIntercom, clock: VirtualClock
) -> None:
    client = make_client(mode, fake, clock)
    fake.revoke_token("fake-token")
    with pytest.raises(ApiError) as raised:
        await done(client.admins.identify())
    assert raised.value.status_code == 401
    assert fake.journal.count(path="/me") == 1


async def test_full_outage_amplification_and_fail_fast(
    mode: str, fake: FakeIntercom, clock: VirtualClock
) -> None:
    config = ResilienceConfig()
    client = make_client(mode, fake, clock, config=config)
    contact = await done(client.contacts.create(request={"email": "o@example.com"}))
    fake.faults.outage(seconds=3600)
    base = len(fake.journal.filter(method="GET"))
    failed_fast = 0
    for _ in range(500):
        with pytest.raises(ApiError) as raised:
            await done(client.contacts.find(contact_id=contact.id))
        if isinstance(raised.value, CircuitOpenError):
            failed_fast += 1
        else:
            assert raised.value.status_code == 503
        clock.advance(0.05)
    upstream = len(fake.journal.filter(method="GET")) - base
    assert upstream <= 1.1 * 500 + config.retry.budget_floor
    assert failed_fast > 400  # once open, calls fail fast without reaching Intercom


async def test_breaker_never_opens_on_4xx(
    mode: str, fake: FakeIntercom, clock: VirtualClock
) -> None:
    client = make_client(
        mode, fake, clock, config=ResilienceConfig(breaker=BreakerPolicy(min_calls=3))
    )
    for _ in range(20):
        with pytest.raises(ApiError):
            await done(client.contacts.find(contact_id="missing"))
    assert client.breaker_state.value == "closed"


async def test_a_limiter_refusal_gives_back_a_half_open_trial_slot(
    mode: str, fake: FakeIntercom, clock: VirtualClock
) -> None:
    config = ResilienceConfig(
        breaker=BreakerPolicy(min_calls=2, cooldown=5, half_open_calls=1),
        rate_limit=RateLimitPolicy(app_per_minute=12, burst=1.0, max_wait=0.0),  # 2 per 10 s
        retry=RetryPolicy(max_attempts=1),
    )
    client = make_client(mode, fake, clock, config=config)
    fake.faults.fail_next(2, status=503, path="/me")
    for _ in range(2):
        with pytest.raises(ApiError):
            await done(client.admins.identify())
    assert client.breaker_state.value == "open"
    clock.advance(5)  # cooled down: the next call is the half-open trial...
    with pytest.raises(RateLimitedError):  # ...but the window's quota is spent: never sent
        await done(client.admins.identify())
    clock.advance(10)
    await done(client.admins.identify())  # the trial slot was given back: this one is the trial
    assert client.breaker_state.value == "closed"


async def test_a_call_whose_failure_opens_the_circuit_is_not_retried(
    mode: str, fake: FakeIntercom, clock: VirtualClock
) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    config = ResilienceConfig(breaker=BreakerPolicy(min_calls=100, consecutive_failures=3))
    client = make_client(
        mode,
        fake,
        clock,
        config=config,
        event_hooks=[lambda e: events.append((e.name, e.fields()))],
    )
    fake.faults.fail_next(100, status=503, path="/me")
    with pytest.raises(ApiError):  # attempts 1, 2, 3 fail: the third opens the circuit
        await done(client.admins.identify())
    assert client.breaker_state.value == "open"
    assert len(fake.journal.filter(path="/me")) == 3  # not a fourth, after the circuit opened
    refused = [fields for name, fields in events if name == "call.refused"]
    assert [fields["reason"] for fields in refused] == ["circuit_open"]
    with pytest.raises(CircuitOpenError):
        await done(client.admins.identify())
    assert len(fake.journal.filter(path="/me")) == 3


async def test_a_retry_is_not_sent_once_the_circuit_opened_during_its_backoff(
    mode: str, fake: FakeIntercom, clock: VirtualClock
) -> None:
    # Regression: the breaker was asked once per call, so a retry whose backoff outlasted the
    # circuit's opening (other calls' failures here, or the fleet's) was still sent.
    events: list[tuple[str, dict[str, Any]]] = []
    config = ResilienceConfig(breaker=BreakerPolicy(min_calls=100, consecutive_failures=3))
    client: Any = None

    def hook(event: Any) -> None:
        events.append((event.name, event.fields()))
        if event.name == "call.retry":
            # Other calls fail while this one backs off: three failures open the circuit.
            for _ in range(3):
                client._pipeline.breaker.record(True)

    client = make_client(mode, fake, clock, config=config, event_hooks=[hook])
    fake.faults.fail_next(100, status=503, path="/me")
    with pytest.raises(ApiError) as raised:  # the first attempt's own 503, not a refusal
        await done(client.admins.identify())
    assert raised.value.status_code == 503
    assert len(fake.journal.filter(path="/me")) == 1  # the retry was not sent
    assert client.breaker_state.value == "open"
    refused = [fields["reason"] for name, fields in events if name == "call.refused"]
    assert refused == ["circuit_open"]
