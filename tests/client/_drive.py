"""Run one scenario against the sync and the async facade alike.

Scenarios are ``async`` functions that wrap every client call in ``await done(...)``: for the
async client that awaits the coroutine, for the sync client the call has already happened and
``done`` hands its value back. One body of test code thus proves both shells.
"""

from __future__ import annotations

import inspect
from typing import Any, TypeVar

from intercom_resilience import AsyncResilientIntercom, ResilientIntercom, VirtualClock
from intercom_resilience.testing import FakeIntercom

T = TypeVar("T")

MODES = ("sync", "async")


async def done(value: Any) -> Any:
    """The result of a client call, awaited if the client is async."""
    return await value if inspect.isawaitable(value) else value


def make_client(
    mode: str, fake: FakeIntercom, clock: VirtualClock, **kwargs: Any
) -> ResilientIntercom | AsyncResilientIntercom:
    """A facade of the given *mode* wired to *fake* on *clock*."""
    kwargs.setdefault("token", "fake-token")
    kwargs.setdefault("seed", 7)
    if mode == "sync":
        return ResilientIntercom(transport=fake.transport(), clock=clock, **kwargs)
    return AsyncResilientIntercom(transport=fake.async_transport(), clock=clock, **kwargs)


async def iterate(pager: Any) -> list[Any]:
    """All items of a sync or async pager."""
    pager = await done(pager)
    if hasattr(pager, "__aiter__"):
        return [item async for item in pager]
    return list(pager)


async def close(*clients: ResilientIntercom | AsyncResilientIntercom) -> None:
    """Close clients of either mode (their HTTP and Redis connections)."""
    for client in clients:
        if isinstance(client, AsyncResilientIntercom):
            await client.aclose()
        else:
            client.close()
