"""Rate limits as Intercom enforces them: fixed 10-second windows, per app and per workspace."""

from __future__ import annotations

import httpx
import intercom
import pytest
from intercom.core.api_error import ApiError

from intercom_resilience import capture_calls
from intercom_resilience.testing import FakeIntercom, VirtualClock
from intercom_resilience.testing._quotas import UNLIMITED


def _client(fake: FakeIntercom, token: str = "fake-token") -> httpx.Client:  # noqa: S107
    return httpx.Client(
        transport=fake.transport(),
        base_url="https://api.intercom.io",
        headers={"Authorization": f"Bearer {token}"},
    )


def test_window_quota_headers_and_429(clock: VirtualClock) -> None:
    clock.advance(3.0)  # mid-window: the reset is the window's end, not now + 10 s
    fake = FakeIntercom(clock=clock, app_quota=60, workspace_quota=600)  # 10 per window
    window_end = (int(clock.time()) // 10 + 1) * 10
    with _client(fake) as client:
        responses = [client.get("/me") for _ in range(12)]
    assert [r.status_code for r in responses] == [200] * 10 + [429] * 2
    assert [int(r.headers["x-ratelimit-remaining"]) for r in responses] == [
        9,
        8,
        7,
        6,
        5,
        4,
        3,
        2,
        1,
        0,
        0,
        0,
    ]
    assert {r.headers["x-ratelimit-limit"] for r in responses} == {"10"}
    assert {int(r.headers["x-ratelimit-reset"]) for r in responses} == {window_end}
    refused = responses[-1].json()
    assert refused["type"] == "error.list"
    assert refused["errors"][0]["code"] == "rate_limit_exceeded"
    assert refused["request_id"] == responses[-1].headers["x-request-id"]


def test_next_window_serves_again_and_429s_do_not_count(clock: VirtualClock) -> None:
    fake = FakeIntercom(clock=clock, app_quota=30)  # 5 per window
    with _client(fake) as client:
        for _ in range(20):  # 5 served, 15 refused: the refused ones must not eat the next window
            client.get("/me")
        clock.advance(10.0)
        again = [client.get("/me").status_code for _ in range(6)]
    assert again == [200] * 5 + [429]


def test_default_quotas_are_intercoms(fake: FakeIntercom) -> None:
    with _client(fake) as client:
        response = client.get("/me")
    assert response.headers["x-ratelimit-limit"] == "1666"  # 10,000 per minute over 6 windows
    assert fake.rate_limit().remaining == 1665


def test_two_apps_exhaust_the_shared_workspace_quota(clock: VirtualClock) -> None:
    fake = FakeIntercom(
        clock=clock, token="a-token", app="app-a", app_quota=60, workspace_quota=90
    )  # 10 per app, 15 per workspace per window
    fake.add_token("b-token", app="app-b")
    with _client(fake, "a-token") as a, _client(fake, "b-token") as b:
        first = [a.get("/me") for _ in range(10)]
        assert all(r.status_code == 200 for r in first)
        # The workspace has 5 left, fewer than app B's own 10: the headers report the tighter.
        seen = [b.get("/me") for _ in range(6)]
    assert [r.status_code for r in seen] == [200] * 5 + [429]
    assert seen[0].headers["x-ratelimit-limit"] == "15"
    assert seen[0].headers["x-ratelimit-remaining"] == "4"
    assert fake.journal.count(app="app-b", status=429) == 1


def test_apps_of_other_workspaces_have_their_own_quota(clock: VirtualClock) -> None:
    fake = FakeIntercom(clock=clock, app_quota=60, workspace_quota=60)
    fake.add_token("other", app="other-app", workspace="other-workspace")
    with _client(fake) as mine, _client(fake, "other") as theirs:
        assert [mine.get("/me").status_code for _ in range(11)][-1] == 429
        assert theirs.get("/me").status_code == 200
        # Workspaces also keep their data apart.
        mine.post("/contacts", json={"email": "mine@example.com"})
        assert theirs.get("/contacts").json()["total_count"] == 0


def test_configurable_window_and_per_app_quota(clock: VirtualClock) -> None:
    fake = FakeIntercom(clock=clock, app_quota=600, window_seconds=1.0)  # 10 per 1-second window
    fake.set_app_quota("fake-app", 120)  # 2 per window
    with _client(fake) as client:
        statuses = [client.get("/me").status_code for _ in range(3)]
        assert client.get("/me").headers["x-ratelimit-reset"] == str(int(clock.time()) + 1)
        clock.advance(1.0)
        assert client.get("/me").status_code == 200
    assert statuses == [200, 200, 429]


def test_rate_limits_can_be_turned_off(clock: VirtualClock) -> None:
    fake = FakeIntercom(clock=clock, app_quota=6, rate_limits=False)
    with _client(fake) as client:
        assert {client.get("/me").status_code for _ in range(5)} == {200}


def test_unlimited_mode_never_tells_a_client_to_wait(clock: VirtualClock) -> None:
    """With rate limits off the headers state a window no client can spend, however many
    requests went before: they used to count down to ``Remaining: 0`` (after 1,666 requests at
    the default quota) and a client pacing itself by them waited for a limit that was never
    enforced."""
    fake = FakeIntercom(clock=clock, app_quota=60, rate_limits=False)  # 10 per window
    with _client(fake) as client:
        responses = [client.get("/me") for _ in range(25)]
    assert {r.status_code for r in responses} == {200}
    assert {int(r.headers["x-ratelimit-remaining"]) for r in responses} == {UNLIMITED}
    assert {int(r.headers["x-ratelimit-limit"]) for r in responses} == {UNLIMITED}


def test_a_resilient_client_never_waits_on_an_unlimited_fake(clock: VirtualClock) -> None:
    fake = FakeIntercom(clock=clock, app_quota=60, workspace_quota=60, rate_limits=False)
    with fake.client() as client, capture_calls() as calls:
        start = clock.time()
        for _ in range(40):  # four windows' worth of the quota the headers state
            client.admins.identify()
    assert clock.time() == start  # the limiter never slept: nothing told it to
    # ... nor answered from the cache for want of a token (stale-while-rate-limited).
    assert [(call.stale, call.attempts) for call in calls] == [(False, 1)] * 40


def test_sdk_sees_a_plain_api_error_429(clock: VirtualClock) -> None:
    fake = FakeIntercom(clock=clock, app_quota=6)  # 1 per window
    with httpx.Client(transport=fake.transport()) as http:
        sdk = intercom.Intercom(token="fake-token", httpx_client=http)
        sdk.admins.identify()
        with pytest.raises(ApiError) as error:
            sdk.admins.identify()
    assert error.value.status_code == 429
    assert error.value.headers is not None
    assert error.value.headers["x-ratelimit-remaining"] == "0"


@pytest.mark.parametrize(("quota", "name"), [(0, "app_quota"), (-5, "app_quota")])
def test_invalid_quota_is_refused(quota: int, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        FakeIntercom(app_quota=quota)
