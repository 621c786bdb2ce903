"""Shared fixtures for the fake backend's tests.

Every response that the official SDK receives from the fake goes through :class:`SchemaChecker`,
which validates its body against the vendored Intercom 2.16 schema of that operation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import intercom
import pytest
from fake_schemas import validate_body, validator

from intercom_resilience.testing import FakeIntercom, VirtualClock

# The plugin's fixtures, imported so that these tests also run where the package is not installed
# (without the pytest11 entry point); when it is, these definitions simply shadow the plugin's.
from intercom_resilience.testing.pytest_plugin import (  # noqa: F401
    intercom_async_client,
    intercom_client,
    intercom_fake,
)


class SchemaChecker:
    """An httpx response hook: validates every JSON body from the fake against the schemas."""

    def __init__(self, fake: FakeIntercom) -> None:
        self.fake = fake
        self.validated: list[tuple[str, str, int]] = []

    def check(self, response: httpx.Response) -> None:
        request_id = response.headers.get("x-request-id")
        entry = next(
            (e for e in reversed(self.fake.journal.entries()) if e.request_id == request_id), None
        )
        assert entry is not None, f"response without a journalled request id: {response}"
        if response.status_code == 202:
            assert response.content == b""
        elif not response.content and 200 <= response.status_code < 300:
            # An empty success must be one the description documents without a body.
            with pytest.raises(KeyError):
                validate_body(entry.method, entry.template or "", response.status_code, None)
        elif entry.template is None:
            assert response.status_code == 404
            validator("GET /me", "404").validate(response.json())  # the generic error schema
        else:
            validate_body(entry.method, entry.template, response.status_code, response.json())
        self.validated.append((entry.method, entry.template or entry.path, response.status_code))

    def __call__(self, response: httpx.Response) -> None:
        response.read()
        self.check(response)

    async def acheck(self, response: httpx.Response) -> None:
        """The async flavour of the hook."""
        await response.aread()
        self.check(response)


@pytest.fixture
def clock() -> VirtualClock:
    """The virtual clock the fake runs on."""
    return VirtualClock()


@pytest.fixture
def fake(clock: VirtualClock) -> FakeIntercom:
    """A fresh fake on the virtual clock."""
    return FakeIntercom(clock=clock)


@pytest.fixture
def checker(fake: FakeIntercom) -> SchemaChecker:
    """Validates every response body the SDK receives."""
    return SchemaChecker(fake)


@pytest.fixture(params=["in-process", "http"])
def sdk(
    request: pytest.FixtureRequest, fake: FakeIntercom, checker: SchemaChecker
) -> Iterator[intercom.Intercom]:
    """The official SDK against the fake, in process and over real HTTP on localhost."""
    hooks: dict[str, list[Any]] = {"response": [checker]}
    if request.param == "in-process":
        with httpx.Client(transport=fake.transport(), event_hooks=hooks) as http:
            yield intercom.Intercom(token="fake-token", httpx_client=http)
        return
    with fake.serve_in_thread() as url, httpx.Client(event_hooks=hooks, timeout=10) as http:
        yield intercom.Intercom(token="fake-token", base_url=url, httpx_client=http)


@pytest.fixture
def raw(fake: FakeIntercom) -> Iterator[httpx.Client]:
    """Bare httpx against the fake, authenticated with the default token."""
    with httpx.Client(
        transport=fake.transport(),
        base_url="https://api.intercom.io",
        headers={"Authorization": "Bearer fake-token"},
    ) as client:
        yield client
