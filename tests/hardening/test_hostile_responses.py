"""Hostile responses through the whole pipeline: the caller gets a result or a library error.

A ``ResilientIntercom`` / ``AsyncResilientIntercom`` runs over an ``httpx.MockTransport`` that serves
hypothesis-generated responses (non-JSON and truncated bodies, HTML gateway pages, wrong content
types, huge bodies, garbage ``X-RateLimit-*`` and ``Retry-After`` values, unknown and odd status
codes, redirects, duplicate headers, bogus content encodings). Whatever arrives:

* the call returns the SDK's typed result or raises ``ApiError`` / ``IntercomResilienceError``
  (never a raw ``TypeError``, ``JSONDecodeError``, ``httpx.DecodingError``, ...), with a message
  that does not contain the token;
* the virtual clock never sleeps longer than the policy's caps allow per request sent;
* the client's state stays consistent: ``health().to_dict()`` serialises, and once the server
  behaves again (after the cool-downs) the same client answers a normal call.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from intercom.core.api_error import ApiError

from intercom_resilience import (
    AsyncResilientIntercom,
    IntercomResilienceError,
    RateLimitPolicy,
    ResilienceConfig,
    ResilientIntercom,
    RetryPolicy,
    VirtualClock,
    capture_calls,
)

from ._hostile import TOKEN, HostileResponse, Script, hostile_response

RETRY = RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=4.0, max_server_wait=10.0)
LIMIT = RateLimitPolicy(max_wait=5.0)
CONFIG = ResilienceConfig(retry=RETRY, rate_limit=LIMIT)
#: The most one request may cost in sleeping: a limiter wait before it and a retry wait after it.
PER_REQUEST_CAP = LIMIT.max_wait + max(RETRY.max_server_wait, RETRY.max_delay)
#: Enough virtual time for every block, cool-down and window to pass.
RECOVERY = 3600.0

ALLOWED = (ApiError, IntercomResilienceError)

GOOD_CONTACT = HostileResponse(
    200,
    (("Content-Type", "application/json"), ("X-Request-Id", "good")),
    json.dumps({"type": "contact", "id": "c1", "email": "a@example.com", "role": "user"}).encode(),
)

SyncOp = Callable[[ResilientIntercom], Any]
AsyncOp = Callable[[AsyncResilientIntercom], Any]

SYNC_OPS: dict[str, SyncOp] = {
    "find": lambda c: c.contacts.find(contact_id="c1"),
    "create": lambda c: c.contacts.create(request={"email": "new@example.com"}),
    "list": lambda c: list(itertools.islice(c.contacts.list(), 20)),
    "search": lambda c: list(
        itertools.islice(
            c.contacts.search(query={"field": "email", "operator": "=", "value": "a"}), 20
        )
    ),
    "me": lambda c: c.admins.identify(),
    "tags": lambda c: c.tags.list(),
}


async def _alist(pager: Any, limit: int = 20) -> list[Any]:
    items: list[Any] = []
    async for item in await pager:
        items.append(item)
        if len(items) >= limit:
            break
    return items


ASYNC_OPS: dict[str, AsyncOp] = {
    "find": lambda c: c.contacts.find(contact_id="c1"),
    "create": lambda c: c.contacts.create(request={"email": "new@example.com"}),
    "list": lambda c: _alist(c.contacts.list()),
    "search": lambda c: _alist(
        c.contacts.search(query={"field": "email", "operator": "=", "value": "a"})
    ),
    "me": lambda c: c.admins.identify(),
    "tags": lambda c: c.tags.list(),
}

SCRIPTS = st.lists(hostile_response(), min_size=1, max_size=6)
HYPOTHESIS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _check_outcome(outcome: BaseException | None) -> None:
    if outcome is None:
        return
    if not isinstance(outcome, ALLOWED):
        raise AssertionError(
            f"{type(outcome).__module__}.{type(outcome).__qualname__} escaped: {outcome!r}"
        ) from outcome
    message = str(outcome)
    assert message.strip(), f"{type(outcome).__name__} has an empty message"
    assert TOKEN not in message and TOKEN not in repr(outcome)
    getattr(outcome, "request_id", None)  # readable on every library/SDK error


def _check_state(client: ResilientIntercom | AsyncResilientIntercom) -> None:
    health = client.health()
    text = json.dumps(health.to_dict())
    assert TOKEN not in text
    assert health.status in ("healthy", "degraded", "unhealthy")
    assert client.stale_served >= 0
    for failure in client.recent_failures:
        assert failure.attempt >= 1
        json.dumps(failure.to_dict())
    incident = client.current_incident
    if incident is not None:
        assert TOKEN not in incident.to_json()
    assert TOKEN not in repr(client)


def _check_sleep(clock: VirtualClock, script: Script) -> None:
    # Every wait precedes or follows a request that was sent; a call refused by the limiter
    # (RateLimitedError) waited at most max_wait before giving up.
    allowed = (script.served + 1) * PER_REQUEST_CAP
    assert clock.total_slept <= allowed + 1e-6, (clock.total_slept, script.served)


def _sync_run(op: SyncOp, script: Script, clock: VirtualClock) -> None:
    with ResilientIntercom(
        token=TOKEN, transport=httpx.MockTransport(script), clock=clock, config=CONFIG, seed=3
    ) as client:
        outcome: BaseException | None = None
        try:
            op(client)
        except Exception as error:  # the invariant under test: what may escape
            outcome = error
        _check_outcome(outcome)
        _check_sleep(clock, script)
        _check_state(client)
        # Not corrupted: once the server behaves, the same client answers normally.
        clock.advance(RECOVERY)
        script.responses = [GOOD_CONTACT]
        script.served = 0
        with capture_calls() as calls:
            contact = client.contacts.find(contact_id="c1")
        assert contact.id == "c1"
        assert calls.last is not None and not calls.last.stale
        _check_state(client)


async def _async_run(op: AsyncOp, script: Script, clock: VirtualClock) -> None:
    async with AsyncResilientIntercom(
        token=TOKEN, transport=httpx.MockTransport(script), clock=clock, config=CONFIG, seed=3
    ) as client:
        outcome: BaseException | None = None
        try:
            await op(client)
        except Exception as error:
            outcome = error
        _check_outcome(outcome)
        _check_sleep(clock, script)
        _check_state(client)
        clock.advance(RECOVERY)
        script.responses = [GOOD_CONTACT]
        script.served = 0
        with capture_calls() as calls:
            contact = await client.contacts.find(contact_id="c1")
        assert contact.id == "c1"
        assert calls.last is not None and not calls.last.stale
        _check_state(client)


@pytest.mark.parametrize("op_name", sorted(SYNC_OPS))
@HYPOTHESIS
@given(responses=SCRIPTS)
def test_sync_client_survives_hostile_responses(
    op_name: str, responses: list[HostileResponse]
) -> None:
    script = Script(responses)
    _sync_run(SYNC_OPS[op_name], script, VirtualClock())


@pytest.mark.parametrize("op_name", sorted(ASYNC_OPS))
@HYPOTHESIS
@given(responses=SCRIPTS)
def test_async_client_survives_hostile_responses(
    op_name: str, responses: list[HostileResponse]
) -> None:
    script = Script(responses)
    asyncio.run(_async_run(ASYNC_OPS[op_name], script, VirtualClock()))
