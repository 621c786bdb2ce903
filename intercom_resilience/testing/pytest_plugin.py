"""pytest fixtures for testing code that talks to Intercom, registered through ``pytest11``.

``intercom_fake``
    a fresh :class:`FakeIntercom` on a :class:`VirtualClock` (``intercom_fake.clock``), accepting
    the token ``"fake-token"``.
``intercom_client``
    a :class:`~intercom_resilience.ResilientIntercom` wired to ``intercom_fake``.
``intercom_async_client``
    an :class:`~intercom_resilience.AsyncResilientIntercom` wired to ``intercom_fake``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from .._clock import VirtualClock
from ._fake import FakeIntercom

__all__ = ["intercom_async_client", "intercom_client", "intercom_fake"]


@pytest.fixture
def intercom_fake() -> FakeIntercom:
    """A fresh fake Intercom on a virtual clock: sleeps and rate-limit windows cost no time."""
    return FakeIntercom(clock=VirtualClock())


@pytest.fixture
def intercom_client(intercom_fake: FakeIntercom) -> Iterator[Any]:
    """The resilient sync client, wired to ``intercom_fake`` and its clock."""
    client = intercom_fake.client()
    yield client
    client.close()


@pytest.fixture
async def intercom_async_client(intercom_fake: FakeIntercom) -> AsyncIterator[Any]:
    """The resilient async client, wired to ``intercom_fake`` and its clock."""
    client = intercom_fake.async_client()
    yield client
    await client.aclose()
