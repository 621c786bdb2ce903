"""The in-process shells: ``httpx`` transports that hand requests to :meth:`FakeIntercom.handle`.

Both transports share :func:`settle`, which decides how long to wait and what to raise, so the
sync and async paths differ only in ``sleep`` versus ``await asleep``. Waiting happens on the
fake's clock: on a ``VirtualClock`` a 30-second latency costs nothing.

How transport-level outcomes look to an ``httpx`` client:

=====================  ======================================================================
outcome                client sees
=====================  ======================================================================
connection refused     ``httpx.ConnectError`` at once
connection reset       ``httpx.RemoteProtocolError`` at once (nothing was processed)
lost response          ``httpx.ReadTimeout`` after the request's read timeout (the write *was*
                       committed)
latency > read timeout ``httpx.ReadTimeout`` after the read timeout (a write was committed)
=====================  ======================================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from ._responses import Disruption, Outcome

if TYPE_CHECKING:
    from ._fake import FakeIntercom

__all__ = ["AsyncFakeTransport", "FakeTransport", "settle"]


def _read_timeout(request: httpx.Request) -> float | None:
    timeout = request.extensions.get("timeout")
    if isinstance(timeout, dict):
        value = timeout.get("read")
        return float(value) if isinstance(value, int | float) else None
    return None


def settle(outcome: Outcome, request: httpx.Request) -> tuple[float, Exception | None]:
    """How long to wait on the fake's clock, then which exception to raise (``None``: respond)."""
    read_timeout = _read_timeout(request)
    if outcome.disruption is Disruption.CONNECT_ERROR:
        return outcome.delay, httpx.ConnectError("[Errno 111] Connection refused", request=request)
    if outcome.disruption is Disruption.CONNECTION_RESET:
        return outcome.delay, httpx.RemoteProtocolError(
            "Server disconnected without sending a response.", request=request
        )
    if outcome.disruption is Disruption.READ_TIMEOUT:
        return read_timeout or outcome.delay, httpx.ReadTimeout(
            "The read operation timed out", request=request
        )
    if read_timeout is not None and outcome.delay > read_timeout:
        return read_timeout, httpx.ReadTimeout("The read operation timed out", request=request)
    return outcome.delay, None


def _response(outcome: Outcome, request: httpx.Request) -> httpx.Response:
    response = outcome.response
    assert response is not None  # settle() raised for every outcome without a response
    return httpx.Response(
        response.status, headers=list(response.headers), content=response.body, request=request
    )


def _target(request: httpx.Request) -> str:
    return request.url.raw_path.decode("ascii")


class FakeTransport(httpx.BaseTransport):
    """Sends each request to a :class:`FakeIntercom` in the same process."""

    def __init__(self, fake: FakeIntercom) -> None:
        self._fake = fake

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """See :meth:`httpx.BaseTransport.handle_request`."""
        outcome = self._fake.handle(
            request.method, _target(request), request.headers, request.read()
        )
        wait, error = settle(outcome, request)
        if wait > 0:
            self._fake.clock.sleep(wait)
        if error is not None:
            raise error
        return _response(outcome, request)

    def __repr__(self) -> str:
        return f"FakeTransport({self._fake!r})"


class AsyncFakeTransport(httpx.AsyncBaseTransport):
    """Sends each request to a :class:`FakeIntercom` in the same process, for async clients."""

    def __init__(self, fake: FakeIntercom) -> None:
        self._fake = fake

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """See :meth:`httpx.AsyncBaseTransport.handle_async_request`."""
        outcome = self._fake.handle(
            request.method, _target(request), request.headers, await request.aread()
        )
        wait, error = settle(outcome, request)
        if wait > 0:
            await self._fake.clock.asleep(wait)
        if error is not None:
            raise error
        return _response(outcome, request)

    def __repr__(self) -> str:
        return f"AsyncFakeTransport({self._fake!r})"
