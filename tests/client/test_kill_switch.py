"""The kill switch stops calls already in flight: nothing leaves after ``disable()``.

Regression (issue #14, scenario 5): a call waiting for a rate-limit token or a retry backoff when
``disable()`` was called still sent afterwards (observed 9.5 s after the switch). The switch is
now checked before every attempt.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from intercom_resilience import (
    AsyncResilientIntercom,
    DeadlinePolicy,
    IntercomDisabledError,
    RateLimitPolicy,
    ResilienceConfig,
    ResilientIntercom,
    RetryPolicy,
    VirtualClock,
    capture_calls,
)
from intercom_resilience.testing import FakeIntercom
from tests.client._drive import MODES, done, make_client


class _SwitchingClock(VirtualClock):
    """A virtual clock that runs *during_sleep* the first time anyone sleeps on it."""

    def __init__(self) -> None:
        super().__init__()
        self.during_sleep: Callable[[], None] | None = None

    def sleep(self, seconds: float) -> None:
        action, self.during_sleep = self.during_sleep, None
        if action is not None:
            action()
        super().sleep(seconds)


def _disable_while_sleeping(
    clock: _SwitchingClock, client: ResilientIntercom | AsyncResilientIntercom
) -> None:
    clock.during_sleep = client.disable


@pytest.mark.parametrize("mode", MODES)
async def test_a_call_in_its_retry_backoff_does_not_send_once_disabled(mode: str) -> None:
    clock = _SwitchingClock()
    fake = FakeIntercom(clock=clock)
    client = make_client(mode, fake, clock, config=ResilienceConfig(retry=RetryPolicy()))
    created = await done(client.contacts.create(request={"email": "a@example.com"}))
    fake.faults.fail_next(1, status=503, path="/contacts/*", method="GET")
    _disable_while_sleeping(clock, client)
    before = len(fake.journal)
    # Nothing is cached yet, so there is no stale answer: the switch's error.
    with capture_calls() as calls, pytest.raises(IntercomDisabledError):
        await done(client.contacts.find(contact_id=created.id))
    assert len(fake.journal) - before == 1  # the failed first attempt, and no retry
    assert calls.last is not None
    assert calls.last.attempts == 1


@pytest.mark.parametrize("mode", MODES)
async def test_a_call_waiting_for_a_token_does_not_send_once_disabled(mode: str) -> None:
    clock = _SwitchingClock()
    fake = FakeIntercom(clock=clock)
    # One request per 10-second window: the second call must wait for a token.
    # No stale-while-rate-limited (it would answer from the cache at once instead of waiting),
    # and a deadline long enough to wait out the window.
    config = ResilienceConfig(
        rate_limit=RateLimitPolicy(app_per_minute=6, workspace_per_minute=6, max_wait=30.0),
        deadlines=DeadlinePolicy(interactive=30.0, stale_if_slow=None),
    )
    client = make_client(mode, fake, clock, config=config)
    await done(client.admins.identify())
    _disable_while_sleeping(clock, client)
    before = len(fake.journal)
    with capture_calls() as calls:
        me = await done(client.admins.identify())  # the switch lets reads be answered stale
    assert clock.total_slept > 0  # it did wait for the token
    assert len(fake.journal) == before  # and then sent nothing
    assert me.type == "admin"
    assert calls.last is not None
    assert (calls.last.stale, calls.last.reason, calls.last.attempts) == (True, "disabled", 0)


@pytest.mark.parametrize("mode", MODES)
async def test_disable_cuts_a_wait_short(mode: str) -> None:
    clock = _SwitchingClock()
    fake = FakeIntercom(clock=clock)
    # The next token is ten seconds away, and the call is willing to wait for it.
    config = ResilienceConfig(
        rate_limit=RateLimitPolicy(app_per_minute=6, workspace_per_minute=6, max_wait=30.0),
        deadlines=DeadlinePolicy(interactive=30.0, stale_if_slow=None),
    )
    client = make_client(mode, fake, clock, config=config)
    await done(client.admins.identify())
    _disable_while_sleeping(clock, client)
    await done(client.admins.identify())  # answered stale, from the cache
    assert 0 < clock.total_slept <= 0.25  # one slice of the wait, not the ten seconds
