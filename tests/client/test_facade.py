"""The facades are the SDK: same types, same results, same exceptions, plus request ids."""

from __future__ import annotations

import inspect
import json
from typing import Any

import httpx
import intercom
import pytest
from intercom.core.api_error import ApiError
from intercom.errors import NotFoundError

from intercom_resilience import (
    AsyncResilientIntercom,
    IntercomConnectError,
    IntercomNetworkError,
    OutcomeUnknownError,
    ResilienceConfig,
    ResilientIntercom,
    RetryPolicy,
    VirtualClock,
)
from intercom_resilience.testing import FakeIntercom


def test_facades_are_the_sdk_clients() -> None:
    assert isinstance(ResilientIntercom(token="t"), intercom.Intercom)
    assert isinstance(AsyncResilientIntercom(token="t"), intercom.AsyncIntercom)


def test_missing_token_fails_like_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INTERCOM_API_KEY", raising=False)
    with pytest.raises(ApiError, match="token"):
        ResilientIntercom()
    monkeypatch.setenv("INTERCOM_API_KEY", "from-env")
    assert isinstance(ResilientIntercom(), ResilientIntercom)


def test_same_calls_return_equal_typed_objects(
    client: ResilientIntercom, raw: intercom.Intercom
) -> None:
    assert client.admins.identify() == raw.admins.identify()
    assert client.admins.list() == raw.admins.list()
    created = raw.contacts.create(request={"email": "ada@example.com", "name": "Ada"})
    for i in range(7):
        raw.contacts.create(request={"email": f"user{i}@example.com"})
    ours = client.contacts.find(contact_id=created.id)
    theirs = raw.contacts.find(contact_id=created.id)
    assert type(ours) is type(theirs)
    assert ours == theirs
    # a paged list: every page, same objects
    assert list(client.contacts.list(per_page=3)) == list(raw.contacts.list(per_page=3))
    conversation = raw.conversations.create(
        from_={"type": "user", "id": created.id}, body="Hello there"
    )
    assert client.conversations.find(conversation_id=conversation.conversation_id) == (
        raw.conversations.find(conversation_id=conversation.conversation_id)
    )
    assert list(client.conversations.list(per_page=2)) == list(raw.conversations.list(per_page=2))


async def test_same_calls_return_equal_typed_objects_async(
    async_client: AsyncResilientIntercom, raw_async: intercom.AsyncIntercom
) -> None:
    assert await async_client.admins.identify() == await raw_async.admins.identify()
    created = await raw_async.contacts.create(request={"email": "grace@example.com"})
    for i in range(4):
        await raw_async.contacts.create(request={"email": f"a{i}@example.com"})
    assert await async_client.contacts.find(contact_id=created.id) == (
        await raw_async.contacts.find(contact_id=created.id)
    )
    ours = [c async for c in await async_client.contacts.list(per_page=2)]
    theirs = [c async for c in await raw_async.contacts.list(per_page=2)]
    assert ours == theirs
    assert len(ours) == 5
    conversation = await raw_async.conversations.create(
        from_={"type": "user", "id": created.id}, body="Hi"
    )
    assert await async_client.conversations.find(
        conversation_id=conversation.conversation_id
    ) == await raw_async.conversations.find(conversation_id=conversation.conversation_id)


def test_sdk_typed_errors_are_kept_and_carry_request_ids(client: ResilientIntercom) -> None:
    with pytest.raises(NotFoundError) as raised:
        client.conversations.find(conversation_id="999999")
    assert raised.value.status_code == 404
    # contacts.find has no typed 404 in the SDK: a plain ApiError, with a request id all the same
    with pytest.raises(ApiError) as plain:
        client.contacts.find(contact_id="does-not-exist")
    assert plain.value.status_code == 404
    assert plain.value.request_id
    assert isinstance(raised.value.request_id, str)
    assert raised.value.request_id


def _error_transport(
    status: int, body: bytes, headers: dict[str, str] | None = None
) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers=headers or {})

    return httpx.MockTransport(handler)


def _no_retry() -> ResilienceConfig:
    return ResilienceConfig(retry=RetryPolicy(max_attempts=1))


def test_503_request_id_from_the_body() -> None:
    body = json.dumps(
        {"type": "error.list", "request_id": "req_x", "errors": [{"code": "service_unavailable"}]}
    ).encode()
    client = ResilientIntercom(
        token="t", transport=_error_transport(503, body), config=_no_retry(), clock=VirtualClock()
    )
    with pytest.raises(ApiError) as raised:
        client.admins.identify()
    assert type(raised.value).__module__.startswith("intercom")
    assert raised.value.status_code == 503
    assert raised.value.request_id == "req_x"


@pytest.mark.parametrize(
    ("body", "headers", "expected"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", {"content-type": "text/html"}, None),
        (b"", {}, None),
        (b"<html>gateway</html>", {"x-request-id": "req_hdr"}, "req_hdr"),
        (b'{"type": "error.list", "request_id": "req_b"}', {"x-request-id": "req_hdr"}, "req_b"),
    ],
)
def test_gateway_bodies_never_break_request_ids(
    body: bytes, headers: dict[str, str], expected: str | None
) -> None:
    client = ResilientIntercom(
        token="t",
        transport=_error_transport(502, body, headers),
        config=_no_retry(),
        clock=VirtualClock(),
    )
    with pytest.raises(ApiError) as raised:
        client.admins.identify()
    assert raised.value.status_code == 502
    assert raised.value.request_id == expected


def test_network_failures_are_library_and_httpx_errors() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = ResilientIntercom(
        token="t", transport=httpx.MockTransport(refuse), config=_no_retry(), clock=VirtualClock()
    )
    with pytest.raises(httpx.ConnectError) as raised:
        client.admins.identify()
    assert isinstance(raised.value, IntercomConnectError)
    assert isinstance(raised.value, IntercomNetworkError)
    assert raised.value.request_id is None


def test_sdk_retry_loop_stays_off(fake: FakeIntercom, client: ResilientIntercom) -> None:
    fake.faults.fail_next(10, status=500, path="/conversations", method="POST")
    with pytest.raises(OutcomeUnknownError) as raised:
        client.conversations.create(
            from_={"type": "user", "id": "c1"}, body="hi", request_options={"max_retries": 5}
        )
    assert raised.value.request_id is not None
    posts = fake.journal.filter(method="POST", path="/conversations")
    assert len(posts) == 1  # neither the SDK nor the pipeline re-sent the write


async def test_sdk_retry_loop_stays_off_async(
    fake: FakeIntercom, async_client: AsyncResilientIntercom
) -> None:
    # A write with no natural key: the pipeline may not re-send it either (a create by email
    # would be reconciled by re-sending, which would hide what the SDK does).
    fake.faults.fail_next(10, status=500, path="/conversations", method="POST")
    with pytest.raises(OutcomeUnknownError):
        await async_client.conversations.create(
            from_={"type": "user", "id": "c1"}, body="hi", request_options={"max_retries": 5}
        )
    assert len(fake.journal.filter(method="POST", path="/conversations")) == 1


@pytest.mark.parametrize(
    ("facade", "sdk"),
    [(ResilientIntercom, intercom.Intercom), (AsyncResilientIntercom, intercom.AsyncIntercom)],
)
def test_constructor_signatures_mirror_the_sdk(facade: type[Any], sdk: type[Any]) -> None:
    """Every SDK argument, same kind and default (token: read from the environment per call)."""
    ours = inspect.signature(facade.__init__).parameters
    theirs = inspect.signature(sdk.__init__).parameters
    assert list(ours)[: len(theirs)] == list(theirs), "the SDK's arguments come first, in order"
    for name, parameter in theirs.items():
        assert ours[name].kind is parameter.kind, name
        if name != "token":  # the SDK's default is os.getenv(...) frozen at its import
            assert ours[name].default == parameter.default, name
    assert ours["token"].default is None


async def test_both_facades_wrap_every_mounted_transport(fake: FakeIntercom) -> None:
    events: list[str] = []
    hooks = [lambda event: events.append(event.name)]
    sync_http = httpx.Client(mounts={"https://api.intercom.io": fake.transport()})
    async_http = httpx.AsyncClient(mounts={"https://api.intercom.io": fake.async_transport()})
    ResilientIntercom(
        token="fake-token", httpx_client=sync_http, event_hooks=hooks
    ).admins.identify()
    await AsyncResilientIntercom(
        token="fake-token", httpx_client=async_http, event_hooks=hooks
    ).admins.identify()
    assert events.count("call.attempt") == 2


def test_a_user_supplied_httpx_client_keeps_its_settings(
    fake: FakeIntercom, clock: VirtualClock
) -> None:
    seen: list[str] = []

    def hook(request: httpx.Request) -> None:
        seen.append(request.headers.get("x-team", ""))

    events: list[str] = []
    http = httpx.Client(
        transport=fake.transport(), headers={"x-team": "growth"}, event_hooks={"request": [hook]}
    )
    client = ResilientIntercom(
        token="fake-token",
        httpx_client=http,
        clock=clock,
        event_hooks=[lambda event: events.append(event.name)],
    )
    client.admins.identify()
    assert seen == ["growth"]
    assert "call.attempt" in events  # our pipeline ran under the caller's client


def test_every_attempt_emits_one_event_without_the_token(
    fake: FakeIntercom, clock: VirtualClock
) -> None:
    captured: list[tuple[str, dict[str, Any]]] = []
    client = ResilientIntercom(
        token="fake-token",
        transport=fake.transport(),
        clock=clock,
        event_hooks=[lambda event: captured.append((event.name, event.fields()))],
    )
    created = client.contacts.create(request={"email": "e@example.com"})
    client.contacts.find(contact_id=created.id)
    attempts = [fields for name, fields in captured if name == "call.attempt"]
    assert [(a["method"], a["path"], a["status"]) for a in attempts] == [
        ("POST", "/contacts", 200),
        ("GET", "/contacts/{id}", 200),
    ]
    assert all(a["duration_ms"] >= 0 for a in attempts)
    assert "fake-token" not in repr(captured)
    assert "fake-token" not in repr(client)
