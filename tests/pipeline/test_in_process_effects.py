"""Effects on in-process backends are performed by the call driver, not handed to the shells.

The memory limiter, cache and breaker do no I/O and never wait, so the sync and async shells
would only call them and hand the result back: the driver does it itself. A backend that does not
say it lives in the process (Redis, a user's own) is still performed by the shells, so an async
one is awaited.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from intercom_resilience import AsyncResilientIntercom, ResilientIntercom
from intercom_resilience._backends.base import Grant, LimiterBackend, Priority
from intercom_resilience._core.responses import RateLimitInfo
from intercom_resilience._pipeline.effects import (
    Acquire,
    AskBreaker,
    CacheGet,
    CachePut,
    Effect,
    ObserveRate,
    Send,
    TellBreaker,
    in_process_effects,
)
from intercom_resilience._transport import AsyncResilientTransport, ResilientTransport
from intercom_resilience.testing import FakeIntercom

TOKEN = "fake-token"  # the fake's own default token


class OutOfProcessLimiter:
    """A limiter that does not say it lives in the process (as the Redis one does not): it
    delegates to the memory limiter, and records which methods were called and awaited."""

    def __init__(self, inner: LimiterBackend) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def acquire(self, priority: Priority) -> Grant:
        self.calls.append("acquire")
        return self.inner.acquire(priority)

    async def aacquire(self, priority: Priority) -> Grant:
        await asyncio.sleep(0)  # a real suspension point: only a shell can await it
        self.calls.append("aacquire")
        return self.inner.acquire(priority)

    def observe(self, status: int | None, info: RateLimitInfo | None) -> None:
        self.calls.append("observe")
        self.inner.observe(status, info)

    async def aobserve(self, status: int | None, info: RateLimitInfo | None) -> None:
        await asyncio.sleep(0)
        self.calls.append("aobserve")
        self.inner.observe(status, info)


@pytest.fixture
def shell_effects(monkeypatch: pytest.MonkeyPatch) -> list[type[Effect]]:
    """The types of the effects the sync and async shells are handed, in order."""
    seen: list[type[Effect]] = []
    perform, aperform = ResilientTransport._perform, AsyncResilientTransport._perform

    def recording(self: ResilientTransport, effect: Effect) -> Any:
        seen.append(type(effect))
        return perform(self, effect)

    async def arecording(self: AsyncResilientTransport, effect: Effect) -> Any:
        seen.append(type(effect))
        return await aperform(self, effect)

    monkeypatch.setattr(ResilientTransport, "_perform", recording)
    monkeypatch.setattr(AsyncResilientTransport, "_perform", arecording)
    return seen


def _contact(fake: FakeIntercom) -> str:
    now = int(fake.clock.time())
    contact_id: str = fake.workspace().create_contact({"email": "a@example.com"}, now).id
    return contact_id


def test_with_the_memory_backends_a_shell_only_sends(shell_effects: list[type[Effect]]) -> None:
    fake = FakeIntercom()
    contact_id = _contact(fake)
    client = ResilientIntercom(token=TOKEN, transport=fake.transport())
    client.contacts.find(contact_id=contact_id)  # breaker, reserve lookup, limiter, store
    client.contacts.update(contact_id=contact_id, name="N")  # and an invalidation
    assert shell_effects == [Send, Send]


def test_the_async_shell_only_sends_with_the_memory_backends(
    shell_effects: list[type[Effect]],
) -> None:
    fake = FakeIntercom()
    contact_id = _contact(fake)

    async def main() -> None:
        client = AsyncResilientIntercom(token=TOKEN, transport=fake.async_transport())
        await client.contacts.find(contact_id=contact_id)
        await client.contacts.find(contact_id=contact_id)

    asyncio.run(main())
    assert shell_effects == [Send, Send]


def test_a_backend_swapped_in_that_is_not_in_process_is_performed_by_the_shell(
    shell_effects: list[type[Effect]],
) -> None:
    fake = FakeIntercom()
    contact_id = _contact(fake)
    client = ResilientIntercom(token=TOKEN, transport=fake.transport())
    limiter = OutOfProcessLimiter(client._pipeline.limiter)
    client._pipeline.limiter = limiter  # after construction: the driver must notice
    client.contacts.find(contact_id=contact_id)
    assert shell_effects == [Acquire, Send, ObserveRate]
    assert limiter.calls == ["acquire", "observe"]


def test_an_async_backend_that_is_not_in_process_is_awaited(
    shell_effects: list[type[Effect]],
) -> None:
    fake = FakeIntercom()
    contact_id = _contact(fake)

    async def main() -> list[str]:
        client = AsyncResilientIntercom(token=TOKEN, transport=fake.async_transport())
        limiter = OutOfProcessLimiter(client._pipeline.limiter)
        client._pipeline.limiter = limiter
        await client.contacts.find(contact_id=contact_id)
        return limiter.calls

    assert asyncio.run(main()) == ["aacquire", "aobserve"]
    assert shell_effects == [Acquire, Send, ObserveRate]


def test_which_effects_are_in_process_follows_each_backend() -> None:
    client = ResilientIntercom(token=TOKEN, transport=FakeIntercom().transport())
    pipeline = client._pipeline
    assert {Acquire, ObserveRate, CacheGet, CachePut, AskBreaker, TellBreaker} <= (
        pipeline.in_process
    )
    pipeline.limiter = OutOfProcessLimiter(pipeline.limiter)  # type: ignore[assignment]
    effects = in_process_effects(pipeline)
    assert Acquire not in effects and ObserveRate not in effects
    assert {CacheGet, CachePut, AskBreaker, TellBreaker} <= effects
    assert pipeline.in_process == effects
