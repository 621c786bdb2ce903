"""pytest fixtures for testing code that talks to Intercom, registered through ``pytest11``.

``intercom_fake``
    a fresh :class:`FakeIntercom` on a :class:`VirtualClock` (``intercom_fake.clock``), accepting
    the token ``"fake-token"``.
``intercom_client``
    a :class:`~intercom_resilience.ResilientIntercom` wired to ``intercom_fake``.
``intercom_async_client``
    an :class:`~intercom_resilience.AsyncResilientIntercom` wired to ``intercom_fake``. With
    pytest-asyncio installed it is a pytest-asyncio fixture, so it works in its ``strict`` mode
    (the default) as well as in ``auto`` mode; without pytest-asyncio it is a plain async fixture,
    which another async plugin (anyio's, for ``@pytest.mark.anyio`` tests) must run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from .._clock import VirtualClock
from ._fake import FakeIntercom

if TYPE_CHECKING:
    from .._client import AsyncResilientIntercom, ResilientIntercom

__all__ = ["intercom_async_client", "intercom_client", "intercom_fake"]


def _async_fixture() -> Callable[[Any], Any]:
    """``pytest_asyncio.fixture`` when pytest-asyncio is installed, else ``pytest.fixture``.

    A plain ``@pytest.fixture`` on an async function is only run by pytest-asyncio in ``auto``
    mode; in ``strict`` mode (its default) pytest then fails the test with "requested an async
    fixture ... with no plugin or hook that handled it". Declaring it through pytest-asyncio
    works in both modes, and leaves the fixture's event loop scope to the user's configuration.
    """
    try:
        import pytest_asyncio
    except ImportError:
        return pytest.fixture
    fixture: Callable[[Any], Any] = pytest_asyncio.fixture
    return fixture


@pytest.fixture
def intercom_fake() -> FakeIntercom:
    """A fresh fake Intercom on a virtual clock: sleeps and rate-limit windows cost no time."""
    return FakeIntercom(clock=VirtualClock())


@pytest.fixture
def intercom_client(intercom_fake: FakeIntercom) -> Iterator[ResilientIntercom]:
    """The resilient sync client, wired to ``intercom_fake`` and its clock."""
    client = intercom_fake.client()
    yield client
    client.close()


@_async_fixture()
async def intercom_async_client(
    intercom_fake: FakeIntercom,
) -> AsyncIterator[AsyncResilientIntercom]:
    """The resilient async client, wired to ``intercom_fake`` and its clock."""
    client = intercom_fake.async_client()
    yield client
    await client.aclose()
