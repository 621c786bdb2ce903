"""Each fault kind, as a client sees it: status, body, exception, time spent, state changed."""

from __future__ import annotations

import httpx
import intercom
import pytest
from intercom.core.api_error import ApiError

from intercom_resilience.testing import FakeIntercom, VirtualClock


@pytest.fixture
def client(fake: FakeIntercom) -> httpx.Client:
    return httpx.Client(
        transport=fake.transport(),
        base_url="https://api.intercom.io",
        headers={"Authorization": "Bearer fake-token"},
        timeout=5.0,
    )


def test_fail_next_matches_path_and_method(fake: FakeIntercom, client: httpx.Client) -> None:
    fake.faults.fail_next(2, status=503, path="/contacts/*", method="GET")
    contact = client.post("/contacts", json={"email": "f@example.com"}).json()
    assert client.get("/me").status_code == 200  # another path
    first = client.get(f"/contacts/{contact['id']}")
    second = client.get(f"/contacts/{contact['id']}")
    third = client.get(f"/contacts/{contact['id']}")
    assert [first.status_code, second.status_code, third.status_code] == [503, 503, 200]
    body = first.json()
    assert body["type"] == "error.list"
    assert body["errors"][0]["code"] == "service_unavailable"
    assert body["request_id"] == first.headers["x-request-id"]
    assert "x-ratelimit-remaining" not in first.headers  # the fault fired before the API
    assert fake.journal.count(fault="fail_next") == 2


def test_fail_next_429_carries_rate_limit_headers(fake: FakeIntercom, client: httpx.Client) -> None:
    fake.faults.fail_next(1, status=429)
    response = client.get("/me")
    assert response.status_code == 429
    assert response.json()["errors"][0]["code"] == "rate_limit_exceeded"
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert response.headers["x-ratelimit-limit"] == "1666"
    assert int(response.headers["x-ratelimit-reset"]) % 10 == 0


def test_custom_code_and_message(fake: FakeIntercom, client: httpx.Client) -> None:
    fake.faults.fail_next(status=500, code="server_error", message="kaboom")
    error = client.get("/me").json()["errors"][0]
    assert error == {"code": "server_error", "message": "kaboom"}


def test_latency_sleeps_on_the_fakes_clock(
    fake: FakeIntercom, clock: VirtualClock, client: httpx.Client
) -> None:
    fake.faults.latency(2.5, path="/me", times=2)
    before = clock.time()
    assert client.get("/me").status_code == 200
    assert clock.time() - before == pytest.approx(2.5)
    client.get("/me")
    client.get("/me")
    assert clock.time() - before == pytest.approx(5.0)  # the third request is not delayed
    assert fake.journal.count(fault="latency") == 2


def test_latency_beyond_the_read_timeout_is_a_read_timeout_after_the_write(
    fake: FakeIntercom, clock: VirtualClock, client: httpx.Client
) -> None:
    fake.faults.latency(30.0, path="/contacts", method="POST")
    before = clock.time()
    with pytest.raises(httpx.ReadTimeout):
        client.post("/contacts", json={"email": "slow@example.com"})
    assert clock.time() - before == pytest.approx(5.0)  # the client's read timeout, not 30 s
    assert len(fake.workspace().contacts) == 1  # the server did the work anyway


def test_outage_until_the_clock_passes(
    fake: FakeIntercom, clock: VirtualClock, client: httpx.Client
) -> None:
    fake.faults.outage(seconds=60)
    assert {client.get("/me").status_code for _ in range(3)} == {503}
    assert client.post("/contacts", json={"email": "o@example.com"}).status_code == 503
    assert fake.workspace().contacts == {}
    clock.advance(59.0)
    assert client.get("/me").status_code == 503
    clock.advance(1.0)
    assert client.get("/me").status_code == 200
    assert not fake.faults.active


def test_outage_with_refused_connections(
    fake: FakeIntercom, clock: VirtualClock, client: httpx.Client
) -> None:
    fake.faults.outage(seconds=10, refuse=True)
    with pytest.raises(httpx.ConnectError):
        client.get("/me")
    clock.advance(10)
    assert client.get("/me").status_code == 200
    entry = fake.journal.filter()[0]
    assert entry.status is None
    assert entry.outcome == "connect_error"


def test_refused_and_reset_connections(fake: FakeIntercom, client: httpx.Client) -> None:
    fake.faults.refuse_connections(1, path="/contacts").reset_connections(1, path="/contacts")
    with pytest.raises(httpx.ConnectError):
        client.post("/contacts", json={"email": "r@example.com"})
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/contacts", json={"email": "r@example.com"})
    assert fake.workspace().contacts == {}  # neither reached the API
    assert client.post("/contacts", json={"email": "r@example.com"}).status_code == 200
    assert [e.outcome for e in fake.journal] == ["connect_error", "connection_reset", "response"]


@pytest.mark.parametrize("status", [502, 504])
def test_gateway_html_page(fake: FakeIntercom, client: httpx.Client, status: int) -> None:
    fake.faults.gateway_error(1, status=status)
    response = client.get("/me")
    assert response.status_code == status
    assert response.headers["content-type"] == "text/html"
    assert response.text.startswith("<html>")
    assert "request_id" not in response.text
    with pytest.raises(ValueError):  # json.JSONDecodeError, whatever its message
        response.json()
    with httpx.Client(transport=fake.transport()) as http:
        fake.faults.gateway_error(1, status=status)
        sdk = intercom.Intercom(token="fake-token", httpx_client=http)
        with pytest.raises(ApiError) as error:
            sdk.admins.identify()
    assert error.value.status_code == status
    assert isinstance(error.value.body, str)


def test_lost_response_commits_the_write(
    fake: FakeIntercom, clock: VirtualClock, client: httpx.Client
) -> None:
    contact = client.post("/contacts", json={"email": "l@example.com"}).json()
    conversation = client.post(
        "/conversations", json={"from": {"type": "user", "id": contact["id"]}, "body": "hi"}
    ).json()
    admin_id = next(iter(fake.workspace().admins))
    fake.faults.lose_response(path="/conversations/*/reply", method="POST", times=1)
    reply = {"message_type": "comment", "type": "admin", "admin_id": admin_id, "body": "hello"}
    before = clock.time()
    with pytest.raises(httpx.ReadTimeout):
        client.post(f"/conversations/{conversation['conversation_id']}/reply", json=reply)
    assert clock.time() - before == pytest.approx(5.0)
    lost = fake.journal.last(path="/conversations/*/reply")
    assert lost is not None
    assert (lost.changed_state, lost.outcome, lost.status) == (True, "read_timeout", 200)
    stored = client.get(f"/conversations/{conversation['conversation_id']}").json()
    assert stored["conversation_parts"]["total_count"] == 1  # the reply exists
    # A blind retry would duplicate it: exactly what the journal lets a test catch.
    client.post(f"/conversations/{conversation['conversation_id']}/reply", json=reply)
    assert fake.journal.count(path="/conversations/*/reply", changed_state=True) == 2


@pytest.mark.parametrize("how", ["500", "drop"])
def test_lost_response_as_a_500_or_a_drop_commits_the_write(
    fake: FakeIntercom, clock: VirtualClock, client: httpx.Client, how: str
) -> None:
    fake.faults.lose_response(path="/contacts", method="POST", how=how)
    before = clock.time()
    if how == "500":
        answer = client.post("/contacts", json={"email": "l5@example.com"})
        assert answer.status_code == 500
        body = answer.json()
        assert body["errors"][0]["code"] == "server_error"
        assert body["request_id"] == answer.headers["x-request-id"]
    else:
        with pytest.raises(httpx.RemoteProtocolError):
            client.post("/contacts", json={"email": "l5@example.com"})
    assert clock.time() == before  # no read timeout waited out
    lost = fake.journal.last(path="/contacts", method="POST")
    assert lost is not None
    assert (lost.changed_state, lost.status, lost.fault) == (True, 200, f"lose_response:{how}")
    if how == "500":
        assert lost.request_id != body["request_id"]  # the 500 is not the committed request's
    assert client.get("/contacts").json()["total_count"] == 1  # the write happened
    client.post("/contacts", json={"email": "other@example.com"})  # the rule is spent
    assert fake.journal.count(path="/contacts", method="POST", changed_state=True) == 2


def test_lose_response_how_is_validated(fake: FakeIntercom) -> None:
    with pytest.raises(ValueError, match="how must be one of timeout, 500, drop"):
        fake.faults.lose_response(how="404")


def test_chaos_lost_response_kinds(fake: FakeIntercom, client: httpx.Client) -> None:
    fake.faults.chaos(1.0, seed=3, kinds=["lose-500", "lose-drop"], method="POST")
    seen = []
    for n in range(40):
        try:
            seen.append(str(client.post("/contacts", json={"email": f"c{n}@x.io"}).status_code))
        except httpx.RemoteProtocolError:
            seen.append("drop")
    assert set(seen) == {"500", "drop"}
    assert client.get("/contacts").json()["total_count"] == 40  # every one committed
    faults = {e.fault for e in fake.journal.filter(method="POST", path="/contacts")}
    assert faults == {"chaos:lose-500", "chaos:lose-drop"}
    assert fake.journal.count(method="POST", path="/contacts", changed_state=True) == 40


def test_chaos_is_seeded_and_mixed(clock: VirtualClock) -> None:
    def run(seed: int) -> list[str]:
        fake = FakeIntercom(clock=VirtualClock())
        fake.faults.chaos(rate=0.3, seed=seed)
        outcomes = []
        with httpx.Client(
            transport=fake.transport(),
            base_url="https://x",
            headers={"Authorization": "Bearer fake-token"},
        ) as client:
            for _ in range(200):
                try:
                    outcomes.append(str(client.get("/me").status_code))
                except httpx.TransportError as error:
                    outcomes.append(type(error).__name__)
        return outcomes

    first = run(7)
    assert first == run(7)
    assert first != run(8)
    failures = [o for o in first if o != "200"]
    assert 30 <= len(failures) <= 90  # about 30% of 200
    assert set(failures) == {"500", "503", "502", "504", "ConnectError", "RemoteProtocolError"}


def test_chaos_kinds_and_validation(fake: FakeIntercom, client: httpx.Client) -> None:
    fake.faults.chaos(rate=1.0, kinds=["429"], path="/contacts")
    assert client.get("/contacts").status_code == 429
    assert client.get("/me").status_code == 200
    with pytest.raises(ValueError, match="rate"):
        fake.faults.chaos(rate=1.5)
    with pytest.raises(ValueError, match="unknown chaos kind"):
        fake.faults.chaos(rate=0.5, kinds=["meteor"])


def test_clear_removes_every_fault(fake: FakeIntercom, client: httpx.Client) -> None:
    fake.faults.fail_next(5).outage(60).chaos(1.0).latency(3.0)
    assert fake.faults.active
    fake.faults.clear()
    assert not fake.faults.active
    assert client.get("/me").status_code == 200


def test_faults_over_real_http(fake: FakeIntercom) -> None:
    fake.faults.fail_next(1, status=500, path="/me").reset_connections(1, path="/me")
    fake.faults.gateway_error(1, status=502, path="/me").lose_response(path="/contacts")
    with (
        fake.serve_in_thread() as url,
        httpx.Client(
            base_url=url, headers={"Authorization": "Bearer fake-token"}, timeout=5.0
        ) as client,
    ):
        assert client.get("/me").status_code == 500
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/me")
        gateway = client.get("/me")
        assert (gateway.status_code, gateway.headers["content-type"]) == (502, "text/html")
        with pytest.raises(httpx.RemoteProtocolError):  # a lost response drops the connection
            client.post("/contacts", json={"email": "h@example.com"})
        assert client.get("/contacts").json()["total_count"] == 1  # but the write happened
        fake.faults.lose_response(path="/contacts", how="drop")
        with pytest.raises(httpx.RemoteProtocolError):
            client.post("/contacts", json={"email": "d@example.com"})
        fake.faults.lose_response(path="/contacts", how="500")
        answer = client.post("/contacts", json={"email": "e@example.com"})
        assert (answer.status_code, answer.json()["errors"][0]["code"]) == (500, "server_error")
        assert client.get("/contacts").json()["total_count"] == 3


def test_fault_arguments_are_validated(fake: FakeIntercom) -> None:
    with pytest.raises(ValueError, match="status"):
        fake.faults.fail_next(status=200)
    with pytest.raises(ValueError, match="latency"):
        fake.faults.latency(-1)
    with pytest.raises(ValueError, match="outage"):
        fake.faults.outage(0)
    with pytest.raises(ValueError, match="times"):
        fake.faults.fail_next(-1)
