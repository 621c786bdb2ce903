"""Shared fixtures: a fake Intercom on a virtual clock, and clients wired to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import intercom
import pytest

from intercom_resilience import AsyncResilientIntercom, ResilientIntercom, VirtualClock
from intercom_resilience.testing import FakeIntercom


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def fake(clock: VirtualClock) -> FakeIntercom:
    return FakeIntercom(clock=clock)


@pytest.fixture
def client(fake: FakeIntercom, clock: VirtualClock) -> Iterator[ResilientIntercom]:
    with ResilientIntercom(
        token="fake-token", transport=fake.transport(), clock=clock, seed=1
    ) as c:
        yield c


@pytest.fixture
async def async_client(
    fake: FakeIntercom, clock: VirtualClock
) -> AsyncIterator[AsyncResilientIntercom]:
    async with AsyncResilientIntercom(
        token="fake-token", transport=fake.async_transport(), clock=clock, seed=1
    ) as c:
        yield c


@pytest.fixture
def raw(fake: FakeIntercom) -> intercom.Intercom:
    """The official SDK, untouched, against the same fake."""
    return intercom.Intercom(
        token="fake-token", httpx_client=httpx.Client(transport=fake.transport())
    )


@pytest.fixture
def raw_async(fake: FakeIntercom) -> intercom.AsyncIntercom:
    return intercom.AsyncIntercom(
        token="fake-token", httpx_client=httpx.AsyncClient(transport=fake.async_transport())
    )
