"""A committed write whose 2xx answer is broken is of unknown outcome, never a plain failure.

Regression (issue #14, scenario 8): a create answered 200 with a truncated or empty JSON body
raised ``ApiError(status_code=200)``, which invites the caller to send it again: a duplicate.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from intercom_resilience import (
    AsyncResilientIntercom,
    OutcomeUnknownError,
    ResilientIntercom,
    VirtualClock,
)
from tests.client._drive import MODES, done

BROKEN = [
    b"",
    b'{"type": "contact", "id": "1", "email": "a@b.c"',
    b'{"type": "contact", "id": "1"} and then some',
    b"<html>proxy says ok</html>",
]


def _client(mode: str, handler: Any) -> Any:
    kwargs: dict[str, Any] = {"token": "t", "clock": VirtualClock(), "seed": 1}
    if mode == "sync":
        return ResilientIntercom(transport=httpx.MockTransport(handler), **kwargs)

    async def ahandler(request: httpx.Request) -> httpx.Response:
        return handler(request)

    return AsyncResilientIntercom(transport=httpx.MockTransport(ahandler), **kwargs)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("body", BROKEN)
async def test_a_create_with_a_broken_200_body_is_of_unknown_outcome(
    mode: str, body: bytes
) -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    client = _client(mode, handler)
    with pytest.raises(OutcomeUnknownError):
        # No natural key (email, external_id): nothing to reconcile it by.
        await done(client.contacts.create(request={"role": "lead"}))
    assert len(sent) == 1  # never re-sent


@pytest.mark.parametrize("mode", MODES)
async def test_a_documented_empty_success_is_still_a_success(mode: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(202 if request.url.path == "/events" else 200, content=b"")

    client = _client(mode, handler)
    await done(client.events.create(request={"event_name": "x", "created_at": 1, "user_id": "u"}))
