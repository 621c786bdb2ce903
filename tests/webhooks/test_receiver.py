"""The webhook receiver: every bad input answers the right 4xx and never reaches the handler; valid
notifications reach it exactly once, off the request path; everything is counted and drives the
client's P3 alerts."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intercom_resilience import AlertPolicy, ResilienceConfig, ResilientIntercom, VirtualClock
from intercom_resilience._webhooks import webhook_signature
from intercom_resilience.events import (
    Event,
    WebhookDeferred,
    WebhookDuplicate,
    WebhookHandled,
    WebhookHandlerFailed,
    WebhookReceived,
    WebhookRejected,
)
from intercom_resilience.testing import FakeIntercom
from intercom_resilience.webhooks import MemoryReplayStore, Notification, WebhookReceiver

SECRET = "client-secret-for-tests"  # intercom-resilience: allow-token


def notification(
    notification_id: str = "notif_1", topic: str = "contact.user.created", **extra: Any
) -> bytes:
    payload = {
        "type": "notification_event",
        "app_id": "abc123",
        "id": notification_id,
        "topic": topic,
        "data": {"type": "notification_event_data", "item": {"type": "contact", "id": "c1"}},
        "delivery_attempts": 1,
        "created_at": int(VirtualClock().time()),
        **extra,
    }
    return json.dumps(payload).encode()


class Handled:
    """A handler that records what it got (thread-safe)."""

    def __init__(self) -> None:
        self.seen: list[Notification] = []
        self.lock = threading.Lock()

    def __call__(self, notification: Notification) -> None:
        with self.lock:
            self.seen.append(notification)

    @property
    def ids(self) -> list[str]:
        return [n.id for n in self.seen]


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def events() -> list[Event]:
    return []


@pytest.fixture
def client(clock: VirtualClock, events: list[Event]) -> Iterator[ResilientIntercom]:
    fake = FakeIntercom(clock=clock)
    with fake.client(event_hooks=[events.append]) as c:
        yield c


@pytest.fixture
def handled() -> Handled:
    return Handled()


@pytest.fixture
def receiver(client: ResilientIntercom, handled: Handled) -> Iterator[WebhookReceiver]:
    r = client.webhook_receiver(secret=SECRET, handler=handled)
    yield r
    r.close()


def post(
    receiver: WebhookReceiver, body: bytes, signature: str | None = "sign"
) -> tuple[int, dict[str, Any]]:
    header = webhook_signature(body, SECRET) if signature == "sign" else signature
    answer = receiver.receive(body, header)
    return answer.status, json.loads(answer.body)


def of_type(events: list[Event], kind: type[Event]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


# --------------------------------------------------------------------------- bad input


BAD_INPUT = [
    # (name, body, signature header or "sign" for a valid one, status, reason)
    ("empty", b"", "sign", 400, "empty"),
    ("huge", b"{" + b" " * 2048 + b"}", "sign", 413, "too_large"),
    ("not json", b"not json at all", "sign", 400, "not_json"),
    ("invalid utf-8", b"\xff\xfe{}", "sign", 400, "not_json"),
    ("json list", b"[1, 2]", "sign", 400, "not_json"),
    ("no id", json.dumps({"topic": "ping"}).encode(), "sign", 400, "invalid"),
    ("no topic", json.dumps({"id": "n"}).encode(), "sign", 400, "invalid"),
    ("id not a string", json.dumps({"id": 7, "topic": "t"}).encode(), "sign", 400, "invalid"),
    (
        "data not an object",
        json.dumps({"id": "n", "topic": "t", "data": 3}).encode(),
        "sign",
        400,
        "invalid",
    ),
    (
        "created_at a string",
        json.dumps({"id": "n", "topic": "t", "created_at": "x"}).encode(),
        "sign",
        400,
        "invalid",
    ),
    (
        "created_at a bool",
        json.dumps({"id": "n", "topic": "t", "created_at": True}).encode(),
        "sign",
        400,
        "invalid",
    ),
    ("missing header", notification(), None, 401, "signature_missing"),
    ("blank header", notification(), "  ", 401, "signature_missing"),
    ("sha256 header", notification(), "sha256=" + "0" * 64, 400, "signature_malformed"),
    ("no algorithm", notification(), "0" * 40, 400, "signature_malformed"),
    ("short digest", notification(), "sha1=" + "0" * 39, 400, "signature_malformed"),
    ("non-hex digest", notification(), "sha1=" + "z" * 40, 400, "signature_malformed"),
    (
        "another body's signature",
        notification(),
        webhook_signature(notification("other"), SECRET),
        401,
        "signature_mismatch",
    ),
    (
        "another secret's signature",
        notification(),
        webhook_signature(notification(), "not-the-secret"),
        401,
        "signature_mismatch",
    ),
]


@pytest.mark.parametrize(
    ("body", "signature", "status", "reason"),
    [case[1:] for case in BAD_INPUT],
    ids=[case[0] for case in BAD_INPUT],
)
def test_bad_input_answers_the_right_4xx_never_calls_the_handler_and_is_counted(
    client: ResilientIntercom,
    handled: Handled,
    events: list[Event],
    body: bytes,
    signature: str | None,
    status: int,
    reason: str,
) -> None:
    receiver = client.webhook_receiver(secret=SECRET, handler=handled, max_body_bytes=1024)
    got_status, got_body = post(receiver, body, signature)
    receiver.join()
    receiver.close()
    assert (got_status, got_body) == (status, {"status": "rejected", "reason": reason})
    assert handled.seen == []
    (rejected,) = of_type(events, WebhookRejected)
    assert (rejected.reason, rejected.status) == (reason, status)


def test_signature_failures_fire_the_p3_alert_and_it_resolves(
    client: ResilientIntercom, receiver: WebhookReceiver, clock: VirtualClock
) -> None:
    assert client.health().status == "healthy"
    post(receiver, notification(), "sha1=" + "0" * 40)
    health = client.health()
    assert [a.rule for a in health.alerts] == ["webhook_signature"]
    assert health.alerts[0].severity.value == "P3"
    assert health.status == "degraded"
    clock.advance(61)
    assert client.health().status == "healthy"
    assert client.incidents[-1].alerts[0].rule == "webhook_signature"


def test_the_secret_never_appears_in_reprs_answers_or_events(
    receiver: WebhookReceiver, events: list[Event]
) -> None:
    post(receiver, notification(), "sha1=" + "0" * 40)
    answer = receiver.receive(notification("n2"), webhook_signature(notification("n2"), SECRET))
    receiver.join()
    text = repr(receiver) + repr(answer) + repr(events) + json.dumps([e.fields() for e in events])
    assert SECRET not in text


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=300), header=st.one_of(st.none(), st.text(max_size=60)))
def test_no_input_raises_or_reaches_the_handler_unsigned(
    receiver: WebhookReceiver, handled: Handled, body: bytes, header: str | None
) -> None:
    answer = receiver.receive(body, header)
    assert 200 <= answer.status < 500
    if answer.status == 200:  # only a correct signature gets this far
        assert header == webhook_signature(body, SECRET)


# --------------------------------------------------------------------------- the good path


def test_a_notification_is_handled_exactly_once_however_often_it_is_delivered(
    receiver: WebhookReceiver, handled: Handled, events: list[Event]
) -> None:
    body = notification("notif_42")
    answers = [post(receiver, body) for _ in range(3)]
    receiver.join()
    assert answers[0] == (200, {"status": "received", "reason": "accepted"})
    assert answers[1:] == [(200, {"status": "duplicate", "reason": "seen"})] * 2
    assert handled.ids == ["notif_42"]
    (seen,) = handled.seen
    assert seen.topic == "contact.user.created"
    assert seen.item == {"type": "contact", "id": "c1"}
    assert seen.app_id == "abc123"
    assert seen.delivery_attempts == 1
    assert seen.delay == 0.0
    assert len(of_type(events, WebhookDuplicate)) == 2
    assert len(of_type(events, WebhookHandled)) == 1


def test_ping_is_answered_and_never_handled(
    receiver: WebhookReceiver, handled: Handled, events: list[Event]
) -> None:
    assert post(receiver, notification("ping_1", "ping")) == (
        200,
        {"status": "received", "reason": "ping"},
    )
    receiver.join()
    assert handled.seen == []
    assert of_type(events, WebhookReceived)[0].topic == "ping"


def test_a_stale_notification_is_acknowledged_and_never_handled(
    client: ResilientIntercom, handled: Handled, clock: VirtualClock
) -> None:
    receiver = client.webhook_receiver(secret=SECRET, handler=handled, max_age=3600)
    body = notification("old", created_at=int(clock.time()) - 3601)
    assert post(receiver, body) == (200, {"status": "rejected", "reason": "stale"})
    fresh = notification("fresh", created_at=int(clock.time()) - 3500)
    assert post(receiver, fresh)[0] == 200
    receiver.join()
    receiver.close()
    assert handled.ids == ["fresh"]


def test_the_answer_does_not_wait_for_the_handler(client: ResilientIntercom) -> None:
    release = threading.Event()
    started = threading.Event()

    def slow(notification: Notification) -> None:
        started.set()
        release.wait(10)

    receiver = client.webhook_receiver(secret=SECRET, handler=slow)
    answer = receiver.receive(notification(), webhook_signature(notification(), SECRET))
    # Answered while the handler is still blocked: it runs off the request path.
    assert answer.status == 200
    assert started.wait(10)
    assert not release.is_set()
    release.set()
    receiver.join()
    receiver.close()


def test_an_async_handler_runs_from_the_sync_api(client: ResilientIntercom) -> None:
    seen: list[str] = []

    async def handler(notification: Notification) -> None:
        await asyncio.sleep(0)
        seen.append(notification.id)

    receiver = client.webhook_receiver(secret=SECRET, handler=handler)
    post(receiver, notification("a1"))
    receiver.join()
    receiver.close()
    assert seen == ["a1"]


# --------------------------------------------------------------------------- handler errors, delays


def test_handler_errors_are_counted_and_fire_the_p3_alert(
    client: ResilientIntercom, events: list[Event]
) -> None:
    def broken(notification: Notification) -> None:
        raise RuntimeError("customer data in here")

    receiver = client.webhook_receiver(secret=SECRET, handler=broken)
    assert post(receiver, notification())[0] == 200  # Intercom is never told
    receiver.join()
    receiver.close()
    (failed,) = of_type(events, WebhookHandlerFailed)
    assert failed.error == "RuntimeError"
    assert "customer data" not in repr(failed.fields())
    assert [a.rule for a in client.health().alerts] == ["webhook_handler"]


def test_a_late_notification_fires_the_delay_alert(clock: VirtualClock, handled: Handled) -> None:
    config = ResilienceConfig(alerts=AlertPolicy(webhook_delay_s=120))
    with FakeIntercom(clock=clock).client(config=config) as client:
        receiver = client.webhook_receiver(secret=SECRET, handler=handled)
        post(receiver, notification("n1", created_at=int(clock.time()) - 100))
        assert client.health().alerts == ()
        post(receiver, notification("n2", created_at=int(clock.time()) - 130))
        assert [a.rule for a in client.health().alerts] == ["webhook_delayed"]
        assert "arrived more than 120s" in client.health().alerts[0].detail
        receiver.join()
        receiver.close()
        assert handled.ids == ["n1", "n2"]  # late is still handled


# --------------------------------------------------------------------------- while disabled, when full


def test_while_disabled_deliveries_are_deferred_with_503_then_handled_on_redelivery(
    client: ResilientIntercom, receiver: WebhookReceiver, handled: Handled, events: list[Event]
) -> None:
    client.disable()
    status, body = post(receiver, notification("n1"))
    assert (status, body) == (503, {"status": "deferred", "reason": "disabled"})
    answer = receiver.receive(notification("n1"), webhook_signature(notification("n1"), SECRET))
    assert ("retry-after", "60") in answer.headers
    client.enable()
    assert post(receiver, notification("n1"))[0] == 200  # Intercom's redelivery
    receiver.join()
    assert handled.ids == ["n1"]
    assert [e.reason for e in of_type(events, WebhookDeferred)] == ["disabled", "disabled"]


def test_a_full_queue_answers_429_and_the_redelivery_is_handled(
    client: ResilientIntercom, events: list[Event]
) -> None:
    release = threading.Event()
    busy = threading.Event()
    seen: list[str] = []

    def blocked(notification: Notification) -> None:
        busy.set()
        release.wait(10)
        seen.append(notification.id)

    receiver = client.webhook_receiver(secret=SECRET, handler=blocked, queue_size=2)
    statuses = [post(receiver, notification("n0"))[0]]
    assert busy.wait(10)  # n0 is with the handler: the queue is empty again
    statuses += [post(receiver, notification(f"n{i}"))[0] for i in range(1, 6)]
    # Two wait for the handler; the rest are refused for now, not dropped.
    assert statuses == [200, 200, 200, 429, 429, 429]
    assert "webhook_backlog" in [a.rule for a in client.health().alerts]
    release.set()
    receiver.join()
    refused = [f"n{i}" for i, status in enumerate(statuses) if status == 429]
    for notification_id in refused:  # Intercom redelivers after the 429
        assert post(receiver, notification(notification_id))[0] == 200
        receiver.join()
    receiver.close()
    assert sorted(seen) == [f"n{i}" for i in range(6)]
    assert "webhook_backlog" not in [a.rule for a in client.health().alerts]


def test_the_refusal_alert_fires_before_intercom_would_pause_the_subscription(
    clock: VirtualClock, handled: Handled
) -> None:
    config = ResilienceConfig(alerts=AlertPolicy(webhook_error_streak=10))
    with FakeIntercom(clock=clock).client(config=config) as client:
        receiver = client.webhook_receiver(secret=SECRET, handler=handled)
        client.disable()
        for i in range(9):
            assert post(receiver, notification(f"n{i}"))[0] == 503
        assert "webhook_refused" not in [a.rule for a in client.health().alerts]
        post(receiver, notification("n9"))
        (alert,) = [a for a in client.health().alerts if a.rule == "webhook_refused"]
        assert alert.severity.value == "P3"
        assert "pauses the subscription after 1,000" in alert.detail
        client.enable()
        post(receiver, notification("n10"))  # one success ends the streak
        assert "webhook_refused" not in [a.rule for a in client.health().alerts]
        receiver.join()
        receiver.close()


async def test_requests_intercom_never_makes_leave_the_refusal_run_alone(
    clock: VirtualClock, handled: Handled
) -> None:
    config = ResilienceConfig(alerts=AlertPolicy(webhook_error_streak=3))
    with FakeIntercom(clock=clock).client(config=config) as client:
        receiver = client.webhook_receiver(secret=SECRET, handler=handled)
        transport = httpx.ASGITransport(app=receiver)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
            for _ in range(5):  # a load balancer's GET probes: 405, not deliveries
                assert (await http.get("/")).status_code == 405
        assert "webhook_refused" not in [a.rule for a in client.health().alerts]
        for i in range(3):  # Intercom's deliveries with a rotated secret: 401s
            post(receiver, notification(f"n{i}"), "sha1=" + "0" * 40)
        assert "webhook_refused" in [a.rule for a in client.health().alerts]
        stale = notification("old", created_at=int(clock.time()) - 90_000)
        assert post(receiver, stale)[0] == 200  # acknowledged: the run ends
        assert "webhook_refused" not in [a.rule for a in client.health().alerts]
        receiver.close()


def test_errors_for_too_long_fire_the_refusal_alert_even_at_low_volume(
    client: ResilientIntercom, receiver: WebhookReceiver, clock: VirtualClock
) -> None:
    client.disable()
    post(receiver, notification("n1"))
    clock.advance(3599)
    post(receiver, notification("n2"))
    assert "webhook_refused" not in [a.rule for a in client.health().alerts]
    clock.advance(2)
    assert "webhook_refused" in [a.rule for a in client.health().alerts]


# --------------------------------------------------------------------------- the ASGI app


async def test_the_asgi_app_answers_every_case_and_hands_over_to_an_async_handler(
    client: ResilientIntercom, events: list[Event]
) -> None:
    seen: list[str] = []

    async def handler(notification: Notification) -> None:
        seen.append(notification.id)

    receiver = client.webhook_receiver(secret=SECRET, handler=handler, max_body_bytes=4096)
    transport = httpx.ASGITransport(app=receiver)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
        body = notification("n1")
        signed = {"X-Hub-Signature": webhook_signature(body, SECRET)}
        assert (await http.post("/", content=body, headers=signed)).status_code == 200
        assert (await http.post("/", content=body, headers=signed)).json()["status"] == "duplicate"
        assert (await http.get("/")).status_code == 405
        assert (await http.post("/", content=body)).status_code == 401
        huge = b"x" * 5000
        assert (await http.post("/", content=huge, headers=signed)).status_code == 413

        async def chunks() -> Any:  # no content-length: the cap holds while streaming
            for _ in range(10):
                yield b"x" * 1000

        assert (await http.post("/", content=chunks(), headers=signed)).status_code == 413
        await receiver.ajoin()
    await receiver.aclose()
    assert seen == ["n1"]
    reasons = [e.reason for e in of_type(events, WebhookRejected)]
    assert reasons == ["method", "signature_missing", "too_large", "too_large"]


async def test_a_sync_handler_under_asgi_runs_off_the_event_loop(
    client: ResilientIntercom,
) -> None:
    loop_thread = threading.get_ident()
    threads: list[int] = []

    def handler(notification: Notification) -> None:
        threads.append(threading.get_ident())

    receiver = client.webhook_receiver(secret=SECRET, handler=handler)
    answer = await receiver.areceive(notification(), webhook_signature(notification(), SECRET))
    assert answer.status == 200
    await receiver.ajoin()
    await receiver.aclose()
    assert threads and threads[0] != loop_thread


async def test_lifespan_when_the_receiver_is_the_top_level_app(
    client: ResilientIntercom, handled: Handled
) -> None:
    receiver = client.webhook_receiver(secret=SECRET, handler=handled)
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: Any) -> None:
        sent.append(message)

    await receiver({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


# --------------------------------------------------------------------------- construction, stores


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"secret": ""}, "secret"),
        ({"handler": "not callable"}, "handler"),
        ({"max_body_bytes": 0}, "max_body_bytes"),
        ({"queue_size": 0}, "queue_size"),
        ({"workers": True}, "workers"),
        ({"max_age": 0}, "max_age"),
        ({"max_age": float("inf")}, "max_age"),
        ({"store": object()}, "store"),
    ],
)
def test_invalid_configuration_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    arguments: dict[str, Any] = {"secret": SECRET, "handler": print, **kwargs}
    secret, handler = arguments.pop("secret"), arguments.pop("handler")
    with pytest.raises(ValueError, match=rf"WebhookReceiver\.{field}\b"):
        WebhookReceiver(secret, handler, **arguments)


def test_redis_store_without_a_redis_url_fails_at_construction(client: ResilientIntercom) -> None:
    with pytest.raises(ValueError, match="redis_url"):
        client.webhook_receiver(secret=SECRET, handler=print, store="redis")
    with pytest.raises(ValueError, match="store"):
        client.webhook_receiver(secret=SECRET, handler=print, store="disk")  # type: ignore[arg-type]


def test_a_standalone_receiver_sends_its_events_to_its_hooks(handled: Handled) -> None:
    seen: list[Event] = []
    receiver = WebhookReceiver(SECRET, handled, event_hooks=[seen.append], clock=VirtualClock())
    post(receiver, notification())
    receiver.join()
    receiver.close()
    assert [type(e).__name__ for e in seen] == ["WebhookReceived", "WebhookHandled"]
    assert handled.ids == ["notif_1"]


def test_memory_store_is_bounded_and_forgets_after_the_ttl() -> None:
    clock = VirtualClock()
    store = MemoryReplayStore(3, clock=clock)
    assert [store.claim(f"n{i}", 60) for i in range(5)] == [True] * 5
    assert len(store) == 3
    assert store.claim("n4", 60) is False
    assert store.claim("n0", 60) is True  # evicted by the bound: claimable again
    clock.advance(61)
    assert store.claim("n4", 60) is True  # expired
    store.release("n4")
    assert store.claim("n4", 60) is True


@given(st.lists(st.sampled_from([f"n{i}" for i in range(8)]), max_size=60))
def test_memory_store_claims_each_id_once_while_it_is_remembered(ids: list[str]) -> None:
    store = MemoryReplayStore(100, clock=VirtualClock())
    claimed = [store.claim(i, 60) for i in ids]
    # Within the bound and the ttl, exactly the first occurrence of each id wins.
    assert claimed == [i not in ids[:n] for n, i in enumerate(ids)]


async def test_an_async_handler_that_raises_is_counted_and_the_next_one_still_runs(
    client: ResilientIntercom, events: list[Event]
) -> None:
    seen: list[str] = []

    async def handler(notification: Notification) -> None:
        if notification.id == "bad":
            raise ValueError("handler bug")
        seen.append(notification.id)

    receiver = client.webhook_receiver(secret=SECRET, handler=handler)
    for notification_id in ("bad", "good"):
        body = notification(notification_id)
        assert (await receiver.areceive(body, webhook_signature(body, SECRET))).status == 200
    await receiver.ajoin()
    await receiver.aclose()
    assert seen == ["good"]
    assert [e.error for e in of_type(events, WebhookHandlerFailed)] == ["ValueError"]
    assert "webhook_handler" in [a.rule for a in client.health().alerts]
