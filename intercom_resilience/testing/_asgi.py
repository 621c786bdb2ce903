"""The fake as a plain ASGI application (no framework needed), for real HTTP servers.

Transport-level faults cannot be expressed in HTTP, so over a real connection they map to the
closest thing a server can do:

=====================  ======================================================================
fault                  over real HTTP
=====================  ======================================================================
connection refused     the connection is dropped after the status line and headers, before
                       any body: the client sees ``httpx.RemoteProtocolError``
connection reset       the same
lost response          the request is processed and committed, then the connection is dropped
                       the same way (the client cannot tell whether the write happened):
                       ``how="timeout"`` and ``how="drop"`` alike (a server cannot make the
                       client time out early); ``how="500"`` sends its JSON 500
latency                a real ``await asleep`` on the fake's clock: with the real clock, a client
                       whose read timeout is shorter gets ``httpx.ReadTimeout``
gateway pages, errors  sent as they are
=====================  ======================================================================
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import httpx

from ._fake import MAX_BODY_BYTES

if TYPE_CHECKING:
    from ._fake import FakeIntercom

__all__ = ["FakeASGIApp"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class FakeASGIApp:
    """An ASGI 3 application answering like Intercom from a :class:`FakeIntercom`."""

    def __init__(self, fake: FakeIntercom) -> None:
        self.fake = fake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI entry point."""
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        # Every header line counts (a flood of one name too), and look-ups ignore case.
        headers = httpx.Headers(list(scope.get("headers", [])))
        body = await _read_body(receive, headers.get("content-length"))
        if body is None:
            return
        raw_path = scope.get("raw_path") or scope["path"].encode()
        target = raw_path.decode("latin-1")
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        if isinstance(body, _TooLarge):
            outcome = self.fake.handle(scope["method"], target, headers, truncated=True)
        else:
            outcome = self.fake.handle(scope["method"], target, headers, body)
        if outcome.delay > 0:
            await self.fake.clock.asleep(outcome.delay)
        response = outcome.response
        if response is None:
            # Start a response we will never finish: the server has to drop the connection,
            # which is the closest a server gets to a reset (see the table above).
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"1")],
                }
            )
            return
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [
                    (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers
                ],
            }
        )
        await send({"type": "http.response.body", "body": response.body})

    def __repr__(self) -> str:
        return f"FakeASGIApp({self.fake!r})"


class _TooLarge:
    """The body was larger than the fake reads; what was read of it is discarded."""


# Past the cap, a body is still drained (and thrown away) up to this many bytes, so the client
# that sent it reads the 413 instead of a connection reset; beyond, the answer goes out at once.
_DRAIN_BYTES = 8 * MAX_BODY_BYTES


async def _read_body(receive: Receive, declared: str | None) -> bytes | _TooLarge | None:
    """The request body, :class:`_TooLarge` past :data:`MAX_BODY_BYTES`, ``None`` on disconnect.

    Memory stays bounded whatever the client sends or declares.
    """
    if declared is not None and declared.isdigit() and int(declared) > _DRAIN_BYTES:
        return _TooLarge()
    body = bytearray()
    seen = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        seen += len(chunk)
        if seen <= MAX_BODY_BYTES:
            body += chunk
        elif seen > _DRAIN_BYTES:
            return _TooLarge()
        if not message.get("more_body", False):
            return bytes(body) if seen <= MAX_BODY_BYTES else _TooLarge()
