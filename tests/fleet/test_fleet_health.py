"""Fleet health against a real Redis: clients sharing one Redis are the fleet's processes.

Each client has its own fake Intercom and virtual clock (its own "pod"); they meet only in Redis.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import redis

from intercom_resilience import (
    AsyncResilientIntercom,
    FleetPolicy,
    ResilienceConfig,
    ResilientIntercom,
    VirtualClock,
)
from intercom_resilience._backends._redis import KeyScheme
from intercom_resilience._fleet_publisher import read_fleet
from intercom_resilience.testing import FakeIntercom
from tests.redis_support import RedisServer

TOKEN = "fleet-secret-token-0123456789"  # intercom-resilience: allow-token


def _client(url: str, fleet: FleetPolicy | None = None) -> tuple[ResilientIntercom, FakeIntercom]:
    clock = VirtualClock()
    fake = FakeIntercom(clock=clock, token=TOKEN)
    config = ResilienceConfig(redis_url=url, fleet=fleet or FleetPolicy())
    client = ResilientIntercom(token=TOKEN, transport=fake.transport(), clock=clock, config=config)
    return client, fake


@pytest.fixture
def pods(fresh_redis_url: str) -> Iterator[list[tuple[ResilientIntercom, FakeIntercom]]]:
    made = [_client(fresh_redis_url) for _ in range(3)]
    yield made
    for client, _ in made:
        client.close()


def _break(client: ResilientIntercom, fake: FakeIntercom) -> None:
    """A full outage until the breaker opens (min_calls attempts, all failing)."""
    fake.faults.outage(seconds=600)
    for _ in range(12):
        try:
            client.admins.identify()
        except Exception:  # noqa: S112 - the outage is the point
            continue


def test_three_processes_one_broken_aggregate_to_the_worst(
    pods: list[tuple[ResilientIntercom, FakeIntercom]],
) -> None:
    (a, _), (b, _), (c, fake_c) = pods
    a.admins.identify()
    b.admins.identify()
    b.disable()  # kill switch: degraded
    b.health()  # a change: published at once, within the interval
    _break(c, fake_c)
    assert c.health().status == "unhealthy"

    fleet = a.fleet_health()

    assert fleet.reachable is True
    assert fleet.status == "unhealthy"
    assert dict(fleet.counts) == {"healthy": 1, "degraded": 1, "unhealthy": 1}
    rows = {row.process_id: row for row in fleet.processes}
    assert set(rows) == {a._pipeline.fleet.process_id for a, _ in pods}  # type: ignore[union-attr]
    broken = rows[c._pipeline.fleet.process_id]  # type: ignore[union-attr]
    assert broken.breaker == "open"
    assert broken.incident_id is not None and broken.incident_id == c.health().incident_id
    assert [(alert.rule, alert.severity.value) for alert in broken.alerts] == [
        ("api_unreachable", "P1")
    ]
    # Published when the breaker opened: every call up to then had failed.
    assert broken.counters["failed"] == broken.counters["calls"] >= 1
    assert broken.p95_ms is not None
    healthy = rows[a._pipeline.fleet.process_id]  # type: ignore[union-attr]
    assert healthy.status == "healthy" and healthy.counters["calls"] == 1
    assert healthy.counters["failed"] == 0 and healthy.breaker == "closed"
    assert rows[b._pipeline.fleet.process_id].disabled is True  # type: ignore[union-attr]
    # Every reader sees the same fleet.
    assert {r.process_id for r in b.fleet_health().processes} == set(rows)
    document = json.dumps(fleet.to_dict())
    assert TOKEN not in document


def test_snapshots_in_redis_hold_no_token(
    pods: list[tuple[ResilientIntercom, FakeIntercom]], fresh_redis_url: str
) -> None:
    for client, _ in pods:
        client.admins.identify()
        client.health()
    raw = redis.Redis.from_url(fresh_redis_url)
    try:
        _, snapshots = KeyScheme().fleet()
        stored = raw.hgetall(snapshots)
    finally:
        raw.close()
    assert len(stored) == 3
    assert all(TOKEN.encode() not in value for value in stored.values())


def test_a_process_whose_ttl_lapses_leaves_the_fleet(fresh_redis_url: str) -> None:
    reader, _ = _client(fresh_redis_url)
    silent, _ = _client(fresh_redis_url, FleetPolicy(interval=0.05, ttl=0.2))
    try:
        silent.health()  # publishes (first publication is always due)
        ids = {row.process_id for row in reader.fleet_health().processes}
        assert silent._pipeline.fleet.process_id in ids  # type: ignore[union-attr]
        time.sleep(0.35)  # Redis server time passes the silent process's expiry
        after = reader.fleet_health()
        assert [row.process_id for row in after.processes] == [
            reader._pipeline.fleet.process_id  # type: ignore[union-attr]
        ]
    finally:
        reader.close()
        silent.close()


def test_a_closed_client_leaves_at_once(pods: list[tuple[ResilientIntercom, FakeIntercom]]) -> None:
    (a, _), (b, _), _ = pods
    assert len(a.fleet_health().processes) == 1
    b.health()
    assert len(a.fleet_health().processes) == 2
    b.close()
    assert [r.process_id for r in a.fleet_health().processes] == [
        a._pipeline.fleet.process_id  # type: ignore[union-attr]
    ]


def test_publications_are_paced_by_the_interval(fresh_redis_url: str) -> None:
    client, _ = _client(fresh_redis_url, FleetPolicy(interval=10, ttl=60))
    clock = client._pipeline.clock
    assert isinstance(clock, VirtualClock)
    try:
        client.admins.identify()  # first call: published (calls=1)
        client.admins.identify()  # within the interval: not published
        rows = read_fleet(fresh_redis_url).processes
        assert [r.counters["calls"] for r in rows] == [1]
        clock.advance(10)
        client.admins.identify()  # due again: calls=3
        assert [r.counters["calls"] for r in read_fleet(fresh_redis_url).processes] == [3]
    finally:
        client.close()


def test_unreadable_snapshots_are_counted_and_skipped(
    pods: list[tuple[ResilientIntercom, FakeIntercom]], fresh_redis_url: str
) -> None:
    (a, _), _, _ = pods
    a.health()
    members, snapshots = KeyScheme().fleet()
    raw = redis.Redis.from_url(fresh_redis_url)
    try:
        far = int(time.time() * 1000) + 600_000  # Redis time and ours agree on this host
        for process_id, payload in (
            ("junk", "not json"),
            ("future", json.dumps({"v": 99})),
            ("liar", json.dumps({"v": 1, "status": "splendid"})),
        ):
            raw.zadd(members, {process_id: far})
            raw.hset(snapshots, process_id, payload)
    finally:
        raw.close()
    fleet = a.fleet_health()
    assert fleet.unreadable == 3
    assert [r.process_id for r in fleet.processes] == [a._pipeline.fleet.process_id]  # type: ignore[union-attr]
    assert fleet.status == "healthy"


def test_redis_down_costs_calls_nothing_and_the_fleet_is_unseen(
    redis_server: RedisServer,
) -> None:
    client, _ = _client(redis_server.url)
    fleet = client._pipeline.fleet
    assert fleet is not None
    clock = client._pipeline.clock
    assert isinstance(clock, VirtualClock)
    try:
        client.admins.identify()
        assert client.fleet_health().reachable
        redis_server.stop()
        seen = client.fleet_health()  # the first failure opens the latch
        assert (seen.status, seen.reachable, seen.processes) == ("unknown", False, ())
        assert seen.error is not None and "unreachable" in seen.error
        retry_at = fleet.link.latch._retry_at
        for _ in range(20):
            clock.advance(fleet.policy.interval)  # every call is due to publish...
            client.admins.identify()  # ...and succeeds
        # ...but not one of them probed the down Redis (a probe moves the latch's next try).
        assert fleet.link.latch._retry_at == retry_at
        assert client.health().status == "healthy"  # the probe, from health(): fails quietly
        redis_server.start()
        clock.advance(60)  # past the latch's pause
        back = client.fleet_health()
        assert back.reachable and [r.process_id for r in back.processes] == [fleet.process_id]
        assert back.processes[0].counters["calls"] == 21
    finally:
        client.close()


def test_read_fleet_on_an_unreachable_redis_names_it_without_its_password() -> None:
    fleet = read_fleet("redis://user:hunter2@127.0.0.1:1/0", socket_timeout=0.2)
    assert (fleet.status, fleet.reachable) == ("unknown", False)
    assert fleet.error is not None and "127.0.0.1:1" in fleet.error
    assert "hunter2" not in fleet.error


async def test_async_clients_publish_and_read(fresh_redis_url: str) -> None:
    sync_client, _ = _client(fresh_redis_url)
    clock = VirtualClock()
    fake = FakeIntercom(clock=clock, token=TOKEN)
    config = ResilienceConfig(redis_url=fresh_redis_url)
    async with AsyncResilientIntercom(
        token=TOKEN, transport=fake.async_transport(), clock=clock, config=config
    ) as client:
        await client.admins.identify()
        sync_ids = {r.process_id for r in sync_client.fleet_health().processes}
        assert client._pipeline.fleet.process_id in sync_ids  # type: ignore[union-attr]
        fleet = await client.fleet_health()
        assert len(fleet.processes) == 2 and fleet.status == "healthy"
        mine = next(
            r
            for r in fleet.processes
            if r.process_id
            in sync_ids
            - {
                sync_client._pipeline.fleet.process_id  # type: ignore[union-attr]
            }
        )
        assert mine.counters["calls"] == 1
    # aclose left the fleet
    assert len(sync_client.fleet_health().processes) == 1
    sync_client.close()
