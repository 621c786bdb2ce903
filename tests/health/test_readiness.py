"""Health a load balancer can trust (issue #18): readiness follows the alert rules and the breaker.

Regression tests: before, one absorbed 429 made ``health()`` ``degraded`` for a minute and the
endpoint answered 503 for anything but ``healthy``, so a readiness probe pulled a pod that was
serving fine.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from intercom.core.api_error import ApiError

from intercom_resilience import (
    DeadlinePolicy,
    RateLimitPolicy,
    ResilienceConfig,
    ResilientIntercom,
    RetryPolicy,
    VirtualClock,
)
from intercom_resilience._events import EventLog
from intercom_resilience._health import HealthMonitor
from intercom_resilience.asgi import (
    DEFAULT_STATUS_CODES,
    STRICT_STATUS_CODES,
    ASGIApp,
    health_endpoint,
    liveness_endpoint,
)
from intercom_resilience.testing import FakeIntercom


@pytest.fixture
def fake() -> FakeIntercom:
    return FakeIntercom(clock=VirtualClock())


@pytest.fixture
def client(fake: FakeIntercom) -> Iterator[ResilientIntercom]:
    config = ResilienceConfig(
        deadlines=DeadlinePolicy(interactive=60, stale_if_slow=None),
        # The fake's 429 says "reset at the end of the 10 s window"; waiting 1 s without local
        # pacing keeps six absorbed 429s inside one minute (a burst, as from several workers).
        retry=RetryPolicy(max_server_wait=1.0),
        rate_limit=RateLimitPolicy(enabled=False),
    )
    with fake.client(config=config) as made:
        yield made


async def probe(app: ASGIApp, path: str = "/") -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://pod") as http:
        return await http.get(path)


def absorb_429s(fake: FakeIntercom, client: ResilientIntercom, n: int) -> None:
    for _ in range(n):
        fake.faults.fail_next(1, status=429, path="/me")
        client.admins.identify()  # the 429 is retried after the reset: the call succeeds


async def test_one_absorbed_429_stays_healthy_and_ready(
    fake: FakeIntercom, client: ResilientIntercom
) -> None:
    absorb_429s(fake, client, 1)
    assert [e.status for e in fake.journal.entries()][-2:] == [429, 200]
    health = client.health()
    assert health.status == "healthy"
    assert health.reasons == ()
    response = await probe(health_endpoint(client))
    assert response.status_code == 200
    assert response.json()["status"] == "healthy"


async def test_six_429s_in_a_minute_degrade_with_the_p2_alert_and_stay_ready(
    fake: FakeIntercom, client: ResilientIntercom
) -> None:
    absorb_429s(fake, client, 5)
    assert client.health().status == "healthy"  # 5 is not more than 5
    absorb_429s(fake, client, 1)
    health = client.health()
    assert health.status == "degraded"
    assert [(a.rule, a.severity.value) for a in health.alerts] == [("rate_limited", "P2")]
    response = await probe(health_endpoint(client))
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    strict = await probe(health_endpoint(client, status_codes=STRICT_STATUS_CODES))
    assert strict.status_code == 503


async def test_an_open_breaker_is_503(fake: FakeIntercom, client: ResilientIntercom) -> None:
    fake.faults.outage(seconds=600)
    for _ in range(4):
        with pytest.raises(ApiError):
            client.admins.identify()
    assert client.breaker_state.value == "open"
    response = await probe(health_endpoint(client))
    assert response.status_code == 503
    assert response.json()["status"] == "unhealthy"
    live = await probe(liveness_endpoint())
    assert live.status_code == 200
    assert live.json()["status"] == "alive"


def test_failed_attempts_below_the_thresholds_do_not_make_it_unhealthy() -> None:
    clock = VirtualClock()
    monitor = HealthMonitor(ResilienceConfig().alerts, clock, events=EventLog())
    for status in (503, 503, 200):  # one call, two retries: absorbed
        monitor.record_attempt(
            method="GET",
            template="/me",
            status=status,
            duration=0.05,
            request_id=None,
            error=None,
            attempt=1,
        )
    assert monitor.health().status == "healthy"
    monitor.record_stale_served("/contacts/{id}", 3.0, None)
    monitor.record_refused("rate_limited")
    assert monitor.health().status == "healthy"


async def test_liveness_never_reads_health() -> None:
    app = liveness_endpoint()
    head = await probe(app)
    assert head.status_code == 200
    assert "LivenessEndpoint" in repr(app)


@pytest.mark.parametrize(
    ("codes", "message"),
    [
        ({"sick": 503}, "unknown status 'sick'"),
        ({"degraded": 99}, r"status_codes\['degraded'\]"),
        ({"unhealthy": True}, r"status_codes\['unhealthy'\]"),
    ],
)
def test_a_wrong_status_code_policy_fails_at_construction(
    codes: dict[str, int], message: str
) -> None:
    clock = VirtualClock()
    monitor = HealthMonitor(ResilienceConfig().alerts, clock, events=EventLog())
    with pytest.raises(ValueError, match=message):
        health_endpoint(monitor, status_codes=codes)


def test_the_default_policy() -> None:
    clock = VirtualClock()
    monitor = HealthMonitor(ResilienceConfig().alerts, clock, events=EventLog())
    endpoint = health_endpoint(monitor, status_codes={"degraded": 429})
    assert dict(endpoint.status_codes) == {"healthy": 200, "degraded": 429, "unhealthy": 503}
    assert dict(DEFAULT_STATUS_CODES) == {"healthy": 200, "degraded": 200, "unhealthy": 503}
