"""Faults after the commit: the fake processes a write, then the answer is lost on the way back.

The fake's own ``lose_response`` ends in a read timeout; Intercom also commits and then answers
500 (a crash after the commit), or the connection drops once the request was sent. This wrapper
transport does either to the requests it is told to, after the fake has committed them.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import httpx

from intercom_resilience._core.requests import path_template
from intercom_resilience.testing import FakeIntercom

#: A plan: given a request, ``"500"``, ``"drop"`` or ``None`` (deliver the answer).
Plan = Callable[[httpx.Request], str | None]

_ERROR = {
    "type": "error.list",
    "request_id": None,
    "errors": [{"code": "server_error", "message": "Server Error"}],
}


def seeded(rate_500: float, rate_drop: float, seed: int, *, writes_only: bool = True) -> Plan:
    """Lose the answer of a seeded random share of requests: *rate_500* as 500, *rate_drop* dropped."""
    rng = random.Random(seed)

    def plan(request: httpx.Request) -> str | None:
        if writes_only and request.method == "GET":
            return None
        draw = rng.random()
        if draw < rate_500:
            return "500"
        if draw < rate_500 + rate_drop:
            return "drop"
        return None

    return plan


class Once:
    """A plan that loses the answer of the next *times* requests matching method and template."""

    def __init__(self, method: str, template: str, how: str = "500", times: int = 1) -> None:
        self.method, self.template, self.how, self.left = method, template, how, times

    def __call__(self, request: httpx.Request) -> str | None:
        if self.left <= 0 or request.method != self.method:
            return None
        if path_template(request.url.path) != self.template:
            return None
        self.left -= 1
        return self.how


def _lost(how: str, response: httpx.Response, request: httpx.Request) -> httpx.Response:
    if how == "drop":
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
    body = dict(_ERROR, request_id=f"lost-{response.headers.get('x-request-id', '')}")
    return httpx.Response(
        500,
        headers={"content-type": "application/json"},
        content=json.dumps(body).encode(),
        request=request,
    )


class AfterCommit(httpx.BaseTransport):
    """Sends to the fake, then applies *plan* to the committed answer."""

    def __init__(self, fake: FakeIntercom, plan: Plan) -> None:
        self.inner = fake.transport()
        self.plan = plan
        self.lost: list[tuple[str, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        how = self.plan(request)
        if how is None:
            return response
        response.read()
        self.lost.append((request.method, how))
        return _lost(how, response, request)


class AsyncAfterCommit(httpx.AsyncBaseTransport):
    """The async twin of :class:`AfterCommit`."""

    def __init__(self, fake: FakeIntercom, plan: Plan) -> None:
        self.inner = fake.async_transport()
        self.plan = plan
        self.lost: list[tuple[str, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        how = self.plan(request)
        if how is None:
            return response
        await response.aread()
        self.lost.append((request.method, how))
        return _lost(how, response, request)


def transport(mode: str, fake: FakeIntercom, plan: Plan) -> Any:
    """The after-commit transport of *mode* (``sync`` or ``async``)."""
    return AfterCommit(fake, plan) if mode == "sync" else AsyncAfterCommit(fake, plan)
