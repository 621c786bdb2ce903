"""``?scope=fleet`` on the ASGI health endpoint, against a real Redis."""

from __future__ import annotations

import httpx

from intercom_resilience import (
    AsyncResilientIntercom,
    ResilienceConfig,
    ResilientIntercom,
    VirtualClock,
)
from intercom_resilience.asgi import ASGIApp, health_endpoint
from intercom_resilience.testing import FakeIntercom
from tests.redis_support import RedisServer

TOKEN = "fake-token"


async def get(app: ASGIApp, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        return await http.get(path)


def _client(url: str) -> tuple[ResilientIntercom, FakeIntercom]:
    clock = VirtualClock()
    fake = FakeIntercom(clock=clock)
    config = ResilienceConfig(redis_url=url)
    return ResilientIntercom(
        token=TOKEN, transport=fake.transport(), clock=clock, config=config
    ), fake


async def test_scope_fleet_answers_the_aggregate_with_the_worst_status(
    fresh_redis_url: str,
) -> None:
    ok, _ = _client(fresh_redis_url)
    broken, fake = _client(fresh_redis_url)
    try:
        fake.faults.outage(seconds=600)
        for _ in range(12):
            try:
                broken.admins.identify()
            except Exception:  # noqa: S112
                continue
        ok.admins.identify()
        endpoint = health_endpoint(ok)
        mine = await get(endpoint, "/health")
        assert mine.status_code == 200 and mine.json()["status"] == "healthy"
        fleet = await get(endpoint, "/health?scope=fleet")
        assert fleet.status_code == 503
        body = fleet.json()
        assert body["scope"] == "fleet" and body["status"] == "unhealthy"
        assert body["fleet"]["counts"] == {"healthy": 1, "degraded": 0, "unhealthy": 1}
        assert len(body["fleet"]["processes"]) == 2
        assert TOKEN not in fleet.text
        bad = await get(endpoint, "/health?scope=galaxy")
        assert bad.status_code == 400
    finally:
        ok.close()
        broken.close()


async def test_async_client_and_an_unreachable_redis_is_unknown_503(
    redis_server: RedisServer,
) -> None:
    clock = VirtualClock()
    fake = FakeIntercom(clock=clock)
    config = ResilienceConfig(redis_url=redis_server.url)
    async with AsyncResilientIntercom(
        token=TOKEN, transport=fake.async_transport(), clock=clock, config=config
    ) as client:
        await client.admins.identify()
        endpoint = health_endpoint(client)
        seen = await get(endpoint, "/?scope=fleet")
        assert seen.status_code == 200 and seen.json()["fleet"]["reachable"] is True
        redis_server.stop()
        unseen = await get(endpoint, "/?scope=fleet")
        assert unseen.status_code == 503
        assert unseen.json()["status"] == "unknown"
        assert unseen.json()["fleet"]["reachable"] is False
        # The process's own health is unaffected by Redis being gone.
        assert (await get(endpoint, "/")).status_code == 200


async def test_no_fleet_publishing_is_404() -> None:
    fake = FakeIntercom()
    with ResilientIntercom(
        token=TOKEN, transport=fake.transport(), config=ResilienceConfig()
    ) as client:
        response = await get(health_endpoint(client), "/?scope=fleet")
    assert response.status_code == 404
    assert "fleet" in response.json()["detail"]
