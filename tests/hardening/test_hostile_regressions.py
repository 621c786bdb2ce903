"""Regression tests for hostile responses the property tests found (one example each)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from intercom.core.api_error import ApiError

from intercom_resilience import (
    AsyncResilientIntercom,
    IntercomRemoteProtocolError,
    IntercomResilienceError,
    OutcomeUnknownError,
    ResilientIntercom,
    VirtualClock,
)

from ._hostile import TOKEN, HostileResponse, Script

_CONTACT = json.dumps({"type": "contact", "id": "c1", "role": "user"}).encode()
#: A body labelled gzip that is not gzip: ``response.read()`` raises ``httpx.DecodingError``.
MISLABELLED = HostileResponse(200, (("Content-Encoding", "gzip"),), _CONTACT)


def test_undecodable_body_on_a_read_is_a_protocol_error_and_is_retried() -> None:
    script = Script([MISLABELLED, MISLABELLED, MISLABELLED, MISLABELLED])
    with (
        ResilientIntercom(
            token=TOKEN, transport=httpx.MockTransport(script), clock=VirtualClock(), seed=1
        ) as client,
        pytest.raises(IntercomRemoteProtocolError, match="decod") as caught,
    ):
        client.contacts.find(contact_id="c1")
    assert isinstance(caught.value, httpx.RemoteProtocolError)  # still an httpx error too
    assert script.served == 4  # a read may be retried: nothing changes by asking again
    assert client.recent_failures[-1].status is None


def test_undecodable_body_on_a_write_is_an_unknown_outcome_never_resent() -> None:
    script = Script([MISLABELLED])
    with (
        ResilientIntercom(
            token=TOKEN, transport=httpx.MockTransport(script), clock=VirtualClock(), seed=1
        ) as client,
        pytest.raises(OutcomeUnknownError),
    ):
        client.contacts.create(request={"email": "a@example.com"})
    assert script.served == 1


def test_undecodable_body_async() -> None:
    script = Script([MISLABELLED])

    async def run() -> None:
        async with AsyncResilientIntercom(
            token=TOKEN, transport=httpx.MockTransport(script), clock=VirtualClock(), seed=1
        ) as client:
            with pytest.raises(OutcomeUnknownError):
                await client.contacts.create(request={"email": "a@example.com"})

    asyncio.run(run())
    assert script.served == 1


#: A gateway's error page in Latin-1: ``json.loads`` raises ``UnicodeDecodeError`` on it, which
#: python-intercom does not catch (it only catches ``JSONDecodeError``).
LATIN1_PAGE = "<html><body>Passerelle indisponible: réessayez</body></html>".encode("latin-1")


@pytest.mark.parametrize("status", [200, 404, 418, 503])
def test_body_that_is_not_utf8_becomes_the_sdk_error_not_unicode_decode_error(
    status: int,
) -> None:
    script = Script([HostileResponse(status, (("Content-Type", "text/html"),), LATIN1_PAGE)] * 4)
    with (
        ResilientIntercom(
            token=TOKEN, transport=httpx.MockTransport(script), clock=VirtualClock(), seed=1
        ) as client,
        pytest.raises(ApiError) as caught,
    ):
        client.contacts.find(contact_id="c1")
    assert caught.value.status_code == status
    assert "Passerelle indisponible" in str(caught.value.body)


def test_undecodable_success_is_not_cached_as_undecodable() -> None:
    # A 200 whose body is not UTF-8 must not later be served stale as a raw UnicodeDecodeError.
    ok = HostileResponse(
        200, (("Content-Type", "application/json"),), b'{"type": "contact", "id": "\xe9"}'
    )
    outage = HostileResponse(503, (), b"")
    script = Script([ok, outage, outage, outage, outage])
    with ResilientIntercom(
        token=TOKEN, transport=httpx.MockTransport(script), clock=VirtualClock(), seed=1
    ) as client:
        first = client.contacts.find(contact_id="c1")
        second = client.contacts.find(contact_id="c1")  # served stale from the cache
    assert first.id == second.id == "\ufffd"
    assert client.stale_served == 1


def test_non_utf8_async() -> None:
    script = Script([HostileResponse(404, (), LATIN1_PAGE)])

    async def run() -> None:
        async with AsyncResilientIntercom(
            token=TOKEN, transport=httpx.MockTransport(script), clock=VirtualClock(), seed=1
        ) as client:
            with pytest.raises(ApiError):
                await client.contacts.find(contact_id="c1")

    asyncio.run(run())


def test_declared_charset_that_cannot_decode_the_body_is_not_a_unicode_error() -> None:
    # response.text raises "UTF-16 stream does not start with BOM" in the SDK's error path.
    page = HostileResponse(
        100, (("Content-Type", "application/json; charset=utf-16"),), b"<html>502</html>"
    )
    script = Script([page])
    with (
        ResilientIntercom(
            token=TOKEN, transport=httpx.MockTransport(script), clock=VirtualClock(), seed=1
        ) as client,
        pytest.raises(ApiError) as caught,
    ):
        client.contacts.find(contact_id="c1")
    assert caught.value.body == "<html>502</html>"


# ---------------------------------------------------------------------------------- known gaps
# Hostile responses that still escape as a raw exception. Each is raised by python-intercom or
# httpx *after* the transport has answered, so the pipeline cannot see it: closing these needs a
# wrapper at the SDK boundary (namespaces and pagers), which is reported, not patched here.
# strict xfail: when the library closes a gap, the test XPASSes and fails until unmarked.

ALLOWED = (ApiError, IntercomResilienceError)


def _serve(*responses: HostileResponse) -> ResilientIntercom:
    return ResilientIntercom(
        token=TOKEN,
        transport=httpx.MockTransport(Script(list(responses))),
        clock=VirtualClock(),
        seed=1,
    )


@pytest.mark.parametrize("body", [b"[]", b"1", b'"contact"'])
def test_non_object_json_success_bodies(body: bytes) -> None:
    with _serve(HostileResponse(200, (), body)) as client, pytest.raises(ALLOWED):
        client.contacts.find(contact_id="c1")


def test_success_list_with_wrong_shape() -> None:
    page = HostileResponse(200, (), b'{"type": "list", "data": 5}')
    with _serve(page) as client, pytest.raises(ALLOWED):
        list(client.contacts.list())


@pytest.mark.parametrize("status", [200, 503])
def test_deeply_nested_json_body(status: int) -> None:
    nested = HostileResponse(status, (), b"[" * 100_000)
    with _serve(*[nested] * 5) as client, pytest.raises(ALLOWED):
        client.contacts.find(contact_id="c1")


@pytest.mark.xfail(
    strict=True, raises=httpx.TooManyRedirects, reason="httpx follows redirects above us"
)
def test_redirect_loop() -> None:
    loop = HostileResponse(302, (("Location", "/contacts/c1"),), b"")
    with _serve(*[loop] * 30) as client, pytest.raises(ALLOWED):
        client.contacts.find(contact_id="c1")
