"""The httpx client a facade builds for itself: httpx's, without the empty cookie pass."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from intercom_resilience import AsyncResilientIntercom, ResilientIntercom
from intercom_resilience.testing import FakeIntercom

SETS_A_COOKIE = {"set-cookie": "lb=node-7; Path=/"}


@pytest.fixture
def cookie_passes(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Response]:
    """Every response httpx's own cookie pass reads (it wraps it for `http.cookiejar`)."""
    seen: list[httpx.Response] = []
    original = httpx.Cookies.extract_cookies

    def counting(self: httpx.Cookies, response: httpx.Response) -> None:
        seen.append(response)
        original(self, response)

    monkeypatch.setattr(httpx.Cookies, "extract_cookies", counting)
    return seen


def test_a_response_setting_no_cookie_skips_the_cookie_pass(
    intercom_fake: FakeIntercom, cookie_passes: list[httpx.Response]
) -> None:
    client = ResilientIntercom(token="fake-token", transport=intercom_fake.transport())
    contact = client.contacts.create(request={"email": "a@example.com"})
    assert client.contacts.find(contact.id).id == contact.id
    assert cookie_passes == []  # httpx's own client reads both responses


def test_async_a_response_setting_no_cookie_skips_the_cookie_pass(
    intercom_fake: FakeIntercom, cookie_passes: list[httpx.Response]
) -> None:
    async def scenario() -> None:
        client = AsyncResilientIntercom(
            token="fake-token", transport=intercom_fake.async_transport()
        )
        contact = await client.contacts.create(request={"email": "a@example.com"})
        assert (await client.contacts.find(contact.id)).id == contact.id
        await client.aclose()

    asyncio.run(scenario())
    assert cookie_passes == []


class _CookieSetter(httpx.MockTransport):
    """Sets a cookie on its first answer; records the Cookie header of every request."""

    def __init__(self) -> None:
        self.sent: list[str | None] = []
        super().__init__(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request.headers.get("cookie"))
        headers = SETS_A_COOKIE if len(self.sent) == 1 else {}
        return httpx.Response(200, headers=headers, json={"type": "admin", "id": "1"})


def test_a_cookie_set_by_a_response_is_kept_and_sent_back(
    cookie_passes: list[httpx.Response],
) -> None:
    transport = _CookieSetter()
    client = ResilientIntercom(token="t", transport=transport)
    for _ in range(3):
        client.admins.identify()
    assert transport.sent == [None, "lb=node-7", "lb=node-7"]
    assert len(cookie_passes) == 1  # only the answer that set it was read
    assert dict(client._httpx_client.cookies) == {"lb": "node-7"}


def test_async_a_cookie_set_by_a_response_is_kept_and_sent_back() -> None:
    class AsyncCookieSetter(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.sync = _CookieSetter()

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return self.sync.handle_request(request)

    transport = AsyncCookieSetter()

    async def scenario() -> None:
        client = AsyncResilientIntercom(token="t", transport=transport)
        for _ in range(3):
            await client.admins.identify()
        await client.aclose()

    asyncio.run(scenario())
    assert transport.sync.sent == [None, "lb=node-7", "lb=node-7"]


def test_cookies_set_on_the_client_are_sent() -> None:
    transport = _CookieSetter()
    client = ResilientIntercom(token="t", transport=transport)
    client._httpx_client.cookies = {"pinned": "yes"}
    client.admins.identify()
    assert transport.sent == ["pinned=yes"]


def test_a_client_the_caller_built_is_left_as_httpx_made_it(
    intercom_fake: FakeIntercom, cookie_passes: list[httpx.Response]
) -> None:
    http = httpx.Client(transport=intercom_fake.transport())
    client = ResilientIntercom(token="fake-token", httpx_client=http)
    client.contacts.create(request={"email": "a@example.com"})
    assert type(client._httpx_client) is httpx.Client
    assert len(cookie_passes) == 1
