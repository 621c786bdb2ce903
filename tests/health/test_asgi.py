"""The ASGI health endpoint, driven through httpx's ASGI transport (no server, no network)."""

from __future__ import annotations

import importlib.util
import pathlib
from collections.abc import MutableMapping
from typing import Any

import httpx
import pytest

from intercom_resilience import AlertPolicy, VirtualClock
from intercom_resilience._events import EventLog
from intercom_resilience._health import HealthMonitor, HealthStatus, Latency
from intercom_resilience.asgi import ASGIApp, health_endpoint

EXAMPLE = pathlib.Path(__file__).parents[2] / "examples" / "fastapi_health.py"


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def monitor(clock: VirtualClock) -> HealthMonitor:
    return HealthMonitor(AlertPolicy(), clock, events=EventLog())


async def get(app: ASGIApp, method: str = "GET", path: str = "/") -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        return await http.request(method, path)


async def test_healthy_is_200_with_the_documented_body(monitor: HealthMonitor) -> None:
    response = await get(health_endpoint(monitor))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"status", "services", "timestamp"}
    assert body["status"] == "healthy"
    assert body["timestamp"] == "2026-01-01T00:00:00Z"
    intercom = body["services"]["intercom"]
    assert intercom == monitor.health().to_dict()
    assert intercom["breaker"] == "closed"


async def test_degraded_is_200_by_default_and_503_when_strict(monitor: HealthMonitor) -> None:
    monitor.record_kill_switch(True)
    response = await get(health_endpoint(monitor))
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    strict = await get(health_endpoint(monitor, status_codes={"degraded": 503}))
    assert strict.status_code == 503


async def test_unhealthy_is_503_with_alerts(monitor: HealthMonitor) -> None:
    monitor.record_attempt(
        method="GET",
        template="/me",
        status=401,
        duration=0.1,
        request_id="r1",
        error="unauthorized",
        attempt=1,
    )
    response = await get(health_endpoint(monitor))
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    (alert,) = body["services"]["intercom"]["alerts"]
    assert (alert["rule"], alert["severity"]) == ("auth_failure", "P1")
    assert body["services"]["intercom"]["authenticated"] is False


async def test_head_has_no_body_and_other_methods_are_refused(monitor: HealthMonitor) -> None:
    app = health_endpoint(monitor)
    head = await get(app, "HEAD")
    assert head.status_code == 200
    assert head.content == b""
    post = await get(app, "POST")
    assert post.status_code == 405
    assert post.headers["allow"] == "GET, HEAD"


def status(state: str) -> HealthStatus:
    return HealthStatus(
        status=state,  # type: ignore[arg-type]
        latency_ms=Latency(),
        authenticated=None,
        rate_limit_remaining=None,
        error=None,
        breaker="closed",
        stale_served=0,
        alerts=(),
        checked_at=1_767_225_600.0,
    )


async def test_callables_sync_and_async() -> None:
    async def later() -> HealthStatus:
        return status("degraded")

    assert (await get(health_endpoint(lambda: status("healthy")))).status_code == 200
    response = await get(health_endpoint(later))
    assert response.status_code == 200
    assert response.json()["services"]["intercom"]["status"] == "degraded"
    assert (await get(health_endpoint(lambda: status("unhealthy")))).status_code == 503


async def test_a_failing_health_check_is_503_without_its_message() -> None:
    def broken() -> HealthStatus:
        raise RuntimeError("Bearer secret-in-message")

    response = await get(health_endpoint(broken))
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["services"]["intercom"]["error"] == "health check failed: RuntimeError"
    assert "secret" not in response.text
    assert body["timestamp"].endswith("Z")


async def test_a_wrong_return_type_is_503() -> None:
    response = await get(health_endpoint(lambda: {"status": "healthy"}))  # type: ignore[arg-type,return-value]
    assert response.status_code == 503
    assert "TypeError" in response.json()["services"]["intercom"]["error"]


async def test_mounting_under_a_prefix(monitor: HealthMonitor) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    app = Starlette(routes=[Mount("/status/intercom", app=health_endpoint(monitor))])
    response = await get(app, path="/status/intercom/")
    assert response.status_code == 200
    assert response.json()["status"] == "healthy"
    assert "HealthEndpoint(" in repr(health_endpoint(monitor))


def test_a_source_without_health_is_refused() -> None:
    with pytest.raises(TypeError, match="health"):
        health_endpoint(42)  # type: ignore[arg-type]


async def test_lifespan_when_served_alone(monitor: HealthMonitor) -> None:
    app = health_endpoint(monitor)
    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return inbox.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    await app({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_websockets_are_not_answered(monitor: HealthMonitor) -> None:
    async def receive() -> MutableMapping[str, Any]:
        return {}

    async def send(message: MutableMapping[str, Any]) -> None:
        return None

    with pytest.raises(RuntimeError, match="websocket"):
        await health_endpoint(monitor)({"type": "websocket"}, receive, send)


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location("fastapi_health_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_example_mounts_the_endpoint_in_starlette(monitor: HealthMonitor) -> None:
    app = load_example().create_app(monitor)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        healthy = await http.get("/health")
        assert healthy.status_code == 200
        assert healthy.json()["services"]["intercom"]["status"] == "healthy"
        monitor.record_breaker("open", "test")
        down = await http.get("/health")
        assert down.status_code == 503
        assert down.json()["status"] == "unhealthy"
        assert (await http.get("/")).json() == {"service": "support-portal"}
        live = await http.get("/livez")  # liveness ignores Intercom's state
        assert (live.status_code, live.json()["status"]) == (200, "alive")
