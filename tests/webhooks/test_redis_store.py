"""The Redis replay store, against a real Redis: one fleet, each notification handled once."""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from intercom_resilience import ResilienceConfig, VirtualClock
from intercom_resilience._webhooks import webhook_signature
from intercom_resilience.events import Event, RedisRecovered, RedisUnavailable
from intercom_resilience.testing import FakeIntercom
from intercom_resilience.webhooks import Notification, RedisReplayStore, WebhookReceiver
from tests.redis_support import RedisServer

pytestmark = pytest.mark.redis

SECRET = "fleet-secret"  # intercom-resilience: allow-token


def body(notification_id: str, clock: VirtualClock) -> bytes:
    return json.dumps(
        {
            "type": "notification_event",
            "id": notification_id,
            "topic": "conversation.user.created",
            "data": {"item": {"type": "conversation", "id": "1"}},
            "created_at": int(clock.time()),
        }
    ).encode()


def test_claims_are_shared_and_expire(fresh_redis_url: str) -> None:
    one, two = RedisReplayStore(fresh_redis_url), RedisReplayStore(fresh_redis_url)
    try:
        assert one.claim("notif_a", 60) is True
        assert two.claim("notif_a", 60) is False  # another pod saw it
        one.release("notif_a")
        assert two.claim("notif_a", 60) is True
        assert one.claim("notif_short", 0.05) is True
        import redis

        raw = redis.Redis.from_url(fresh_redis_url)
        assert raw.exists("intercom-resilience:webhook-seen:notif_a") == 1
        assert 0 < raw.pttl("intercom-resilience:webhook-seen:notif_short") <= 50
        raw.close()
    finally:
        one.close()
        two.close()


def test_two_pods_racing_handle_each_notification_once(fresh_redis_url: str) -> None:
    clock = VirtualClock()
    handled: list[str] = []
    lock = threading.Lock()

    def handler(notification: Notification) -> None:
        with lock:
            handled.append(notification.id)

    config = ResilienceConfig(redis_url=fresh_redis_url)
    pods = []
    for _ in range(2):
        client = FakeIntercom(clock=clock).client(config=config)
        pods.append(
            (client, client.webhook_receiver(secret=SECRET, handler=handler, store="redis"))
        )
    bodies = [body(f"notif_{i}", clock) for i in range(100)]

    def deliver(index: int) -> int:
        # Every notification goes to both pods at once (a redelivery racing the first).
        payload = bodies[index // 2]
        receiver = pods[index % 2][1]
        return receiver.receive(payload, webhook_signature(payload, SECRET)).status

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(deliver, range(200)))
    for client, receiver in pods:
        receiver.join()
        receiver.close()
        client.close()
    assert statuses == [200] * 200
    assert sorted(handled) == sorted(f"notif_{i}" for i in range(100))


async def test_the_async_path_shares_the_same_claims(fresh_redis_url: str) -> None:
    clock = VirtualClock()
    seen: list[str] = []

    async def handler(notification: Notification) -> None:
        seen.append(notification.id)

    receivers = [
        WebhookReceiver(SECRET, handler, store=RedisReplayStore(fresh_redis_url), clock=clock)
        for _ in range(2)
    ]
    payload = body("notif_async", clock)
    answers = await asyncio.gather(
        *(r.areceive(payload, webhook_signature(payload, SECRET)) for r in receivers)
    )
    assert sorted(a.outcome for a in answers) == ["duplicate", "received"]
    for receiver in receivers:
        await receiver.ajoin()
        await receiver.aclose()
    assert seen == ["notif_async"]


def test_redis_down_falls_back_to_this_process_and_reports_it(redis_server: RedisServer) -> None:
    clock = VirtualClock()
    events: list[Event] = []
    handled: list[str] = []
    receiver = WebhookReceiver(
        SECRET,
        lambda n: handled.append(n.id),
        store=RedisReplayStore(redis_server.url, clock=clock),
        clock=clock,
        event_hooks=[events.append],
    )
    payload = body("notif_1", clock)
    signature = webhook_signature(payload, SECRET)
    assert receiver.receive(payload, signature).outcome == "received"
    redis_server.stop()
    # Deliveries keep being answered, and duplicates are still caught in this process.
    other = body("notif_2", clock)
    assert receiver.receive(other, webhook_signature(other, SECRET)).outcome == "received"
    assert receiver.receive(other, webhook_signature(other, SECRET)).outcome == "duplicate"
    (down,) = [e for e in events if isinstance(e, RedisUnavailable)]
    assert down.name.value == "webhook.redis_unavailable"
    redis_server.start()
    clock.advance(10)
    third = body("notif_3", clock)
    assert receiver.receive(third, webhook_signature(third, SECRET)).outcome == "received"
    assert [e.name.value for e in events if isinstance(e, RedisRecovered)] == [
        "webhook.redis_recovered"
    ]
    receiver.join()
    receiver.close()
    assert handled == ["notif_1", "notif_2", "notif_3"]
