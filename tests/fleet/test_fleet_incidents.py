"""Fleet incidents against a real Redis (#17, 2): several processes' incidents for one cause are
one fleet incident, whose postmortem lists every process's request ids.

Each client has its own fake Intercom and virtual clock (its own "pod"); they meet only in Redis.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import redis
from click.testing import CliRunner

from intercom_resilience import (
    AsyncResilientIntercom,
    FleetPolicy,
    ResilienceConfig,
    ResilientIntercom,
    VirtualClock,
)
from intercom_resilience._backends._redis import KeyScheme
from intercom_resilience._cli_checks import ExitCode
from intercom_resilience._fleet_reports import read_fleet_incidents
from intercom_resilience.cli import cli
from intercom_resilience.testing import FakeIntercom
from tests.redis_support import RedisServer

TOKEN = "fleet-incident-token-0123456789"  # intercom-resilience: allow-token
OTHER = "fleet-incident-other-9876543210"  # intercom-resilience: allow-token


def _client(
    url: str, token: str = TOKEN, fleet: FleetPolicy | None = None, events: list[str] | None = None
) -> tuple[ResilientIntercom, FakeIntercom]:
    clock = VirtualClock()
    fake = FakeIntercom(clock=clock, token=token)
    config = ResilienceConfig(redis_url=url, fleet=fleet or FleetPolicy())
    hooks = [] if events is None else [lambda event: events.append(str(event.name))]
    client = ResilientIntercom(
        token=token, transport=fake.transport(), clock=clock, config=config, event_hooks=hooks
    )
    return client, fake


def _break(client: ResilientIntercom, fake: FakeIntercom) -> None:
    """A full outage until the breaker opens (the api_unreachable alert opens an incident)."""
    fake.faults.outage(seconds=600)
    for _ in range(12):
        try:
            client.admins.identify()
        except Exception:  # noqa: S112 - the outage is the point
            continue


def _heal(client: ResilientIntercom, fake: FakeIntercom) -> None:
    """The outage ends; the breaker's cooldown and the alert window pass; calls succeed."""
    fake.faults.clear()
    clock = client._pipeline.clock
    assert isinstance(clock, VirtualClock)
    for _ in range(8):
        clock.advance(30)
        client.admins.identify()
        client.health()
    assert client.current_incident is None, "the incident should have closed"


@pytest.fixture
def pods(fresh_redis_url: str) -> Iterator[list[tuple[ResilientIntercom, FakeIntercom]]]:
    made = [_client(fresh_redis_url) for _ in range(3)]
    yield made
    for client, _ in made:
        client.close()


def test_three_processes_one_cause_are_one_fleet_incident(
    pods: list[tuple[ResilientIntercom, FakeIntercom]], fresh_redis_url: str
) -> None:
    for client, fake in pods:
        _break(client, fake)
    local = [client.current_incident for client, _ in pods]
    assert all(incident is not None and incident.request_ids for incident in local)

    found = pods[0][0].fleet_incidents()

    assert len(found) == 1
    fleet = found[0]
    assert fleet.cause == "api_unreachable" and fleet.is_open
    assert fleet.id.startswith("finc-") and fleet.id.endswith(
        f"-api_unreachable-{fleet.credentials[:8]}"
    )
    assert {r.process_id for r in fleet.reports} == {
        c._pipeline.fleet.process_id  # type: ignore[union-attr]
        for c, _ in pods
    }
    text = fleet.postmortem()
    for incident in local:
        assert incident is not None
        assert f"incident `{incident.id}`" in text
        for request_id in incident.request_ids:
            assert f"`{request_id}`" in text
    merged = fleet.merged()
    assert merged.failed_attempts == sum(i.failed_attempts for i in local if i is not None)
    assert "Fleet incident of 3 process(es)" in text and "status **ongoing**" in text
    # The fleet's health names it too (published with the next snapshot).
    rows = pods[1][0].fleet_health().processes
    assert {row.fleet_incident_id for row in rows} == {fleet.id}
    # Every process sees the same fleet incident; each remembers the one it joined.
    assert [fi.id for fi in pods[2][0].fleet_incidents()] == [fleet.id]
    for client, _ in pods:
        publisher = client._pipeline.fleet
        assert publisher is not None and client.current_incident is not None
        assert publisher.incidents.joined(client.current_incident.id) == fleet.id
    # Nothing stored holds the token.
    raw = redis.Redis.from_url(fresh_redis_url)
    try:
        stored = b"".join(
            raw.dump(key) or b"" for key in KeyScheme().fleet_incidents() if raw.exists(key)
        )
    finally:
        raw.close()
    assert stored and TOKEN.encode() not in stored
    assert TOKEN not in json.dumps(fleet.to_dict()) and TOKEN not in text


def test_other_credentials_are_another_fleet_incident(fresh_redis_url: str) -> None:
    a, fake_a = _client(fresh_redis_url)
    b, fake_b = _client(fresh_redis_url, OTHER)
    try:
        _break(a, fake_a)
        _break(b, fake_b)
        found = a.fleet_incidents()
        assert len(found) == 2
        assert len({fi.credentials for fi in found}) == 2
        assert all(len(fi.reports) == 1 for fi in found)
    finally:
        a.close()
        b.close()


def test_closing_is_reported_and_a_later_outage_is_a_new_fleet_incident(
    pods: list[tuple[ResilientIntercom, FakeIntercom]],
) -> None:
    (a, fake_a), (b, fake_b), _ = pods
    _break(a, fake_a)
    _break(b, fake_b)
    first = a.fleet_incidents()[0]
    _heal(a, fake_a)
    _heal(b, fake_b)
    closed = a.fleet_incidents()
    assert [fi.id for fi in closed] == [first.id]
    assert closed[0].is_open is False and closed[0].closed_at is not None
    assert all(not r.incident.is_open for r in closed[0].reports)
    assert "status **resolved**" in closed[0].postmortem()
    # The episode was open until its last open report; a new outage later (the episode's ttl
    # past, in Redis time: shortened here by deleting the open pointer) is a new incident.
    raw = a._pipeline.fleet.link.client  # type: ignore[union-attr]
    raw.delete(*KeyScheme().fleet_incidents()[:2])
    _break(a, fake_a)
    again = a.fleet_incidents()
    assert len(again) == 2 and again[1].id == first.id and again[0].id != first.id


def test_a_closed_episode_joined_within_its_ttl_stays_one_incident(
    pods: list[tuple[ResilientIntercom, FakeIntercom]],
) -> None:
    (a, fake_a), (b, fake_b), _ = pods
    _break(a, fake_a)
    _heal(a, fake_a)  # a's incident closed; the episode is still joinable (FleetPolicy.ttl)
    _break(b, fake_b)
    found = b.fleet_incidents()
    assert len(found) == 1 and len(found[0].reports) == 2


def test_key_prefixes_separate_fleets(fresh_redis_url: str) -> None:
    a, fake_a = _client(fresh_redis_url)
    b, fake_b = _client(fresh_redis_url, fleet=FleetPolicy(key_prefix="intercom-resilience-eu"))
    try:
        _break(a, fake_a)
        _break(b, fake_b)
        assert [len(fi.reports) for fi in a.fleet_incidents()] == [1]
        assert [len(fi.reports) for fi in b.fleet_incidents()] == [1]
        assert len(b.fleet_health().processes) == 1
        eu = read_fleet_incidents(fresh_redis_url, key_prefix="intercom-resilience-eu")
        assert [fi.id for fi in eu] == [fi.id for fi in b.fleet_incidents()]
    finally:
        a.close()
        b.close()
        raw = redis.Redis.from_url(fresh_redis_url)
        keys = list(raw.scan_iter(match="intercom-resilience-eu:*"))
        if keys:
            raw.delete(*keys)
        raw.close()


def test_redis_stopped_mid_run_local_incidents_go_on_and_reports_follow(
    redis_server: RedisServer,
) -> None:
    events: list[str] = []
    a, fake_a = _client(redis_server.url, events=events)
    b, fake_b = _client(redis_server.url)
    clock = a._pipeline.clock
    assert isinstance(clock, VirtualClock)
    try:
        a.admins.identify()
        redis_server.stop()
        _break(a, fake_a)  # no call fails because Redis is gone
        incident = a.current_incident
        assert incident is not None and incident.request_ids
        assert a.health().status == "unhealthy"
        with pytest.raises(ConnectionError, match="unreachable"):
            a.fleet_incidents()
        assert events.count("fleet.redis_unavailable") == 1
        redis_server.start()  # empty: a restart loses everything, like a flush
        clock.advance(60)  # past the latch's pause
        _break(b, fake_b)
        found = a.fleet_incidents()
        assert events.count("fleet.redis_recovered") == 1
        assert len(found) == 1 and len(found[0].reports) == 2
        mine = next(r for r in found[0].reports if r.incident.id == incident.id)
        assert set(incident.request_ids) <= set(mine.incident.request_ids)
        # Flushed mid-incident (nothing changed since): the next publication sees its health
        # snapshot gone, and files the reports again, under the fleet incident they had joined.
        redis_server.command("FLUSHALL")
        refiled = a.fleet_incidents()
        assert [fi.id for fi in refiled] == [found[0].id]
        assert [r.incident.id for r in refiled[0].reports] == [incident.id]
    finally:
        a.close()
        b.close()


def test_cli_lists_and_renders_fleet_incidents(
    pods: list[tuple[ResilientIntercom, FakeIntercom]], fresh_redis_url: str
) -> None:
    for client, fake in pods[:2]:
        _break(client, fake)
    fleet_id = pods[0][0].fleet_incidents()[0].id
    runner = CliRunner()
    listed = runner.invoke(cli, ["fleet", "incidents", "--redis-url", fresh_redis_url])
    assert listed.exit_code == ExitCode.FAILING, listed.output  # one is open
    assert fleet_id in listed.output and "api_unreachable" in listed.output
    text = runner.invoke(cli, ["fleet", "postmortem", "--redis-url", fresh_redis_url])
    assert text.exit_code == ExitCode.OK, text.output
    assert text.output.startswith("# Postmortem: Intercom API unreachable")
    for client, _ in pods[:2]:
        incident = client.current_incident
        assert incident is not None
        assert all(f"`{rid}`" in text.output for rid in incident.request_ids)
    as_json = runner.invoke(
        cli, ["fleet", "postmortem", fleet_id, "--json", "--redis-url", fresh_redis_url]
    )
    assert json.loads(as_json.output)["id"] == fleet_id
    missing = runner.invoke(
        cli, ["fleet", "postmortem", "finc-nope", "--redis-url", fresh_redis_url]
    )
    assert (
        missing.exit_code == ExitCode.FINDING and "no fleet incident 'finc-nope'" in missing.output
    )
    bad = runner.invoke(
        cli, ["fleet", "incidents", "--redis-url", fresh_redis_url, "--key-prefix", "a*"]
    )
    assert bad.exit_code == ExitCode.USAGE and "--key-prefix" in bad.output
    down = runner.invoke(
        cli,
        [
            "fleet",
            "incidents",
            "--redis-url",
            "redis://u:hunter2@127.0.0.1:1/0",
            "--timeout",
            "0.2",
        ],
    )
    assert down.exit_code == ExitCode.FAILING and "hunter2" not in down.output
    assert "unreachable" in down.output


async def test_async_clients_report_and_read(fresh_redis_url: str) -> None:
    sync_client, sync_fake = _client(fresh_redis_url)
    clock = VirtualClock()
    fake = FakeIntercom(clock=clock, token=TOKEN)
    config = ResilienceConfig(redis_url=fresh_redis_url)
    try:
        _break(sync_client, sync_fake)
        async with AsyncResilientIntercom(
            token=TOKEN, transport=fake.async_transport(), clock=clock, config=config
        ) as client:
            fake.faults.outage(seconds=600)
            for _ in range(12):
                try:
                    await client.admins.identify()
                except Exception:  # noqa: S112
                    continue
            found = await client.fleet_incidents()
            assert len(found) == 1 and len(found[0].reports) == 2
            incident = client.current_incident
            assert incident is not None
            assert all(f"`{rid}`" in found[0].postmortem() for rid in incident.request_ids)
    finally:
        sync_client.close()


def test_redis_paused_costs_the_calls_nothing(redis_server: RedisServer) -> None:
    a, fake_a = _client(redis_server.url)
    try:
        a.admins.identify()
        redis_server.command("CLIENT", "PAUSE", "2000", "ALL")  # every command now times out
        _break(a, fake_a)  # no call fails because Redis is slow
        assert a.current_incident is not None
        assert a.health().status == "unhealthy"
    finally:
        a.close()


async def test_async_redis_stopped_mid_run_reports_follow(redis_server: RedisServer) -> None:
    clock = VirtualClock()
    fake = FakeIntercom(clock=clock, token=TOKEN)
    events: list[str] = []
    config = ResilienceConfig(redis_url=redis_server.url)
    async with AsyncResilientIntercom(
        token=TOKEN,
        transport=fake.async_transport(),
        clock=clock,
        config=config,
        event_hooks=[lambda event: events.append(str(event.name))],
    ) as client:
        await client.admins.identify()
        redis_server.stop()
        fake.faults.outage(seconds=600)
        for _ in range(12):
            try:
                await client.admins.identify()
            except Exception:  # noqa: S112 - the outage, not Redis
                continue
        incident = client.current_incident
        assert incident is not None and incident.request_ids
        with pytest.raises(ConnectionError):
            await client.fleet_incidents()
        assert events.count("fleet.redis_unavailable") == 1
        redis_server.start()
        clock.advance(60)
        found = await client.fleet_incidents()
        assert events.count("fleet.redis_recovered") == 1
        assert [r.incident.id for r in found[0].reports] == [incident.id]


def test_a_quiet_open_incident_keeps_its_episode_and_stays_reporting(
    fresh_redis_url: str,
) -> None:
    # An incident that stays open without changing (no traffic) must not let its episode lapse:
    # another process opening later joins it, and the quiet one is not "lost".
    policy = FleetPolicy(interval=0.05, ttl=0.4, incident_ttl=60)
    a, fake_a = _client(fresh_redis_url, fleet=policy)
    b, fake_b = _client(fresh_redis_url, fleet=policy)
    clock = a._pipeline.clock
    assert isinstance(clock, VirtualClock)
    try:
        _break(a, fake_a)
        first = a.fleet_incidents()[0]
        state = a.current_incident
        for _ in range(12):  # 0.6 s of Redis time, longer than the ttl, nothing changing
            time.sleep(0.05)
            clock.advance(policy.interval)
            a.health()  # a readiness probe: publishes, the incident unchanged
        assert a.current_incident == state
        _break(b, fake_b)
        found = b.fleet_incidents()
        assert [fi.id for fi in found] == [first.id]
        assert all(report.reporting for report in found[0].reports)
        assert found[0].is_open
    finally:
        a.close()
        b.close()
