"""The stale cache never serves what the client already knows is wrong (issue #14, 1, 3 and 4).

Each scenario ends with an outage and a read of the record: before the fix, the stale cache
answered with the record as it was before the client's own update (1, 4) or after it was deleted
or the token revoked (3). Sync and async, memory and Redis cache alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from intercom.core.api_error import ApiError

from intercom_resilience import (
    AsyncResilientIntercom,
    CachePolicy,
    OutcomeUnknownError,
    ResilienceConfig,
    ResilientIntercom,
    VirtualClock,
    capture_calls,
)
from intercom_resilience.testing import FakeIntercom
from tests.client._drive import MODES, done

OLD, NEW = "old@example.com", "new@example.com"


class Interleaved(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """The fake's transport, with a hook run once a matching request has been answered but
    before its answer reaches the client (a slow answer, overtaken by another call), and an
    optional rewrite of answers (a commit whose answer is lost to a 500)."""

    def __init__(self, fake: FakeIntercom) -> None:
        self.sync = fake.transport()
        self.async_ = fake.async_transport()
        self.when: tuple[str, str] | None = None
        self.hook: Callable[[], Any] | None = None
        self.rewrite: Callable[[httpx.Request, httpx.Response], httpx.Response] | None = None

    def _due(self, request: httpx.Request) -> Callable[[], Any] | None:
        if self.when == (request.method, request.url.path) and self.hook is not None:
            hook, self.hook = self.hook, None
            return hook
        return None

    def _rewritten(self, request: httpx.Request, response: httpx.Response) -> httpx.Response:
        return response if self.rewrite is None else self.rewrite(request, response)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.sync.handle_request(request)
        response.read()
        hook = self._due(request)
        if hook is not None:
            hook()
        return self._rewritten(request, response)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.async_.handle_async_request(request)
        await response.aread()
        hook = self._due(request)
        if hook is not None:
            await hook()
        return self._rewritten(request, response)


@pytest.fixture(params=["memory", "redis"])
def cache_config(request: pytest.FixtureRequest) -> Iterator[ResilienceConfig]:
    if request.param == "memory":
        yield ResilienceConfig()
        return
    url = request.getfixturevalue("fresh_redis_url")
    yield ResilienceConfig(cache=CachePolicy(backend="redis"), redis_url=url)


@pytest.fixture
async def opened() -> Any:
    """Clients a test opened, closed at its end (their Redis connections too)."""
    clients: list[Any] = []
    yield clients
    for client in clients:
        if isinstance(client, AsyncResilientIntercom):
            await client.aclose()
        else:
            client.close()


def _setup(
    mode: str, config: ResilienceConfig, opened: list[Any]
) -> tuple[FakeIntercom, Interleaved, Any, str]:
    clock = VirtualClock()
    fake = FakeIntercom(clock=clock)
    contact = fake.workspace().create_contact({"email": OLD}, int(clock.time()))
    transport = Interleaved(fake)
    kwargs: dict[str, Any] = {"token": "fake-token", "clock": clock, "config": config, "seed": 2}
    client: Any = (
        ResilientIntercom(transport=transport, **kwargs)
        if mode == "sync"
        else AsyncResilientIntercom(transport=transport, **kwargs)
    )
    opened.append(client)
    return fake, transport, client, contact.id


async def _in_the_next_outage(fake: FakeIntercom, client: Any, contact_id: str) -> str | None:
    """The email a read of the contact answers during an outage (``None``: it raised)."""
    fake.faults.outage(600)
    try:
        with capture_calls() as calls:
            found = await done(client.contacts.find(contact_id=contact_id))
    except ApiError:
        return None
    finally:
        fake.faults.clear()
    assert calls.last is not None
    assert calls.last.stale
    email: str = found.email
    return email


def _update(client: Any, contact_id: str) -> Any:
    return client.contacts.update(contact_id=contact_id, email=NEW)


@pytest.mark.redis
@pytest.mark.parametrize("mode", MODES)
async def test_a_slow_read_overtaken_by_our_write_is_not_cached(
    mode: str, cache_config: ResilienceConfig, opened: list[Any]
) -> None:
    fake, transport, client, contact_id = _setup(mode, cache_config, opened)
    # The read is answered with the old email, but the answer is slow: our update lands first.
    transport.when = ("GET", f"/contacts/{contact_id}")
    transport.hook = lambda: _update(client, contact_id)
    old = await done(client.contacts.find(contact_id=contact_id))
    assert old.email == OLD  # the slow answer itself is what Intercom said then
    assert await _in_the_next_outage(fake, client, contact_id) != OLD


@pytest.mark.redis
@pytest.mark.parametrize("mode", MODES)
async def test_a_write_of_unknown_outcome_drops_what_it_may_have_changed(
    mode: str, cache_config: ResilienceConfig, opened: list[Any]
) -> None:
    fake, transport, client, contact_id = _setup(mode, cache_config, opened)
    assert (await done(client.contacts.find(contact_id=contact_id))).email == OLD  # cached

    def committed_but_500(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.method == "PUT":
            body = {"type": "error.list", "request_id": "r", "errors": [{"code": "server_error"}]}
            return httpx.Response(500, json=body)
        return response

    transport.rewrite = committed_but_500
    with pytest.raises(OutcomeUnknownError):  # every attempt's answer was a 500
        await done(_update(client, contact_id))
    transport.rewrite = None
    assert fake.workspace().contacts[contact_id].email == NEW  # Intercom did apply it
    assert await _in_the_next_outage(fake, client, contact_id) != OLD


@pytest.mark.redis
@pytest.mark.parametrize("mode", MODES)
async def test_a_404_drops_the_cached_record(
    mode: str, cache_config: ResilienceConfig, opened: list[Any]
) -> None:
    fake, _, client, contact_id = _setup(mode, cache_config, opened)
    await done(client.contacts.find(contact_id=contact_id))  # cached
    fake.workspace().delete_contact(contact_id)  # deleted by someone else
    with pytest.raises(ApiError) as raised:
        await done(client.contacts.find(contact_id=contact_id))
    assert raised.value.status_code == 404
    assert await _in_the_next_outage(fake, client, contact_id) is None


@pytest.mark.redis
@pytest.mark.parametrize("mode", MODES)
async def test_a_401_drops_what_the_credentials_cached(
    mode: str, cache_config: ResilienceConfig, opened: list[Any]
) -> None:
    fake, _, client, contact_id = _setup(mode, cache_config, opened)
    await done(client.contacts.find(contact_id=contact_id))  # cached
    fake.revoke_token("fake-token")
    with pytest.raises(ApiError) as raised:
        await done(client.admins.identify())
    assert raised.value.status_code == 401
    fake.add_token("fake-token")  # back (say, the revocation was a mistake)
    assert await _in_the_next_outage(fake, client, contact_id) is None
