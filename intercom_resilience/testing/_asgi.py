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
                       the same way (the client cannot tell whether the write happened)
latency                a real ``await asleep`` on the fake's clock: with the real clock, a client
                       whose read timeout is shorter gets ``httpx.ReadTimeout``
gateway pages, errors  sent as they are
=====================  ======================================================================
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

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
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])
        }
        raw_path = scope.get("raw_path") or scope["path"].encode()
        target = raw_path.decode("latin-1")
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        outcome = self.fake.handle(scope["method"], target, headers, b"".join(chunks))
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
