"""``intercom_async_client`` works in a user's suite whatever pytest-asyncio's mode.

Each case runs a small user suite in a subprocess with ``pytester``: the plugin is found through
its ``pytest11`` entry point, as in a user's project, and the user's own ini file decides the
mode.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

USER_SUITE = """
import pytest

from intercom_resilience import AsyncResilientIntercom
from intercom_resilience.testing import FakeIntercom

{marker}
async def test_creates_and_finds(
    intercom_fake: FakeIntercom, intercom_async_client: AsyncResilientIntercom
) -> None:
    created = await intercom_async_client.contacts.create(request={{"email": "a@example.com"}})
    found = await intercom_async_client.contacts.find(contact_id=created.id)
    assert found.email == "a@example.com"
    assert intercom_fake.journal.count(method="POST", path="/contacts") == 1
"""


def _ini(mode: str | None) -> str:
    lines = ["[pytest]", "filterwarnings = error", "asyncio_default_fixture_loop_scope = function"]
    if mode is not None:
        lines.append(f"asyncio_mode = {mode}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("mode", ["strict", None], ids=["strict", "default-is-strict"])
def test_async_fixture_in_strict_mode(pytester: pytest.Pytester, mode: str | None) -> None:
    pytester.makeini(_ini(mode))
    pytester.makepyfile(test_user=USER_SUITE.format(marker="@pytest.mark.asyncio"))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_async_fixture_in_auto_mode(pytester: pytest.Pytester) -> None:
    pytester.makeini(_ini("auto"))
    pytester.makepyfile(test_user=USER_SUITE.format(marker=""))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_async_fixture_under_anyio_without_pytest_asyncio(pytester: pytest.Pytester) -> None:
    """With pytest-asyncio switched off, anyio's plugin (httpx depends on anyio) runs it."""
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    pytester.makepyfile(
        conftest="""
import pytest

@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
""",
        test_user=USER_SUITE.format(marker="@pytest.mark.anyio"),
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:asyncio")
    result.assert_outcomes(passed=1)
