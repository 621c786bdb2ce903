"""Fixtures for the command-line tests: a fake Intercom and a status page, both on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from cli_support import LocalSite

from intercom_resilience.testing import FakeIntercom


@pytest.fixture
def site() -> Iterator[LocalSite]:
    served = LocalSite()
    served.status_page()
    yield served
    served.close()


@pytest.fixture
def served_fake() -> Iterator[tuple[FakeIntercom, str]]:
    """A fake Intercom over real HTTP on 127.0.0.1 (real clock), and its base URL."""
    fake = FakeIntercom()
    with fake.serve_in_thread() as url:
        yield fake, url


@pytest.fixture
def closed_port() -> int:
    """A localhost port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def _no_token_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's own token must never leak into (or change) these tests.
    monkeypatch.delenv("INTERCOM_ACCESS_TOKEN", raising=False)
    monkeypatch.delenv("INTERCOM_API_KEY", raising=False)
