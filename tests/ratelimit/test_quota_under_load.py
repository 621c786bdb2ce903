"""The rate limiter through the whole client, against the fake's quotas, in simulated time.

Every scenario runs many concurrent asyncio tasks on one :class:`AsyncResilientIntercom` and one
fake, sharing a :class:`SimClock` (simulated minutes in seconds, deterministic). Quotas are scaled
down to 100 requests per 10-second window; the window and the arithmetic are Intercom's. A 429 in
the fake's journal is a request that Intercom would have refused: the aim is none, while using
nearly all of the quota.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from intercom_resilience import AsyncResilientIntercom
from intercom_resilience._core import limiter as limiter_core
from intercom_resilience.testing import FakeIntercom

from ._scenario import config, fake_and_client, in_span, per_window, real_429s
from ._sim import SimClock, SkewedClock

QUOTA = 100  # per 10-second window: 600 a minute
APP_PER_MINUTE = QUOTA * 6
LATENCY = 0.05  # every response arrives 50 ms after the fake decided it (headers are stale)


async def _tag_id(clock: SimClock, client: AsyncResilientIntercom) -> str:
    tag = (await clock.run([client.tags.create(request={"name": "load"})]))[0]
    return str(tag.id)


async def test_sixteen_workers_for_ten_minutes_use_the_quota_without_a_429() -> None:
    clock = SimClock()
    fake, client = fake_and_client(
        clock,
        app_per_minute=APP_PER_MINUTE,
        workspace_per_minute=2 * APP_PER_MINUTE,
        latency=LATENCY,
    )
    tag_id = await _tag_id(clock, client)
    start = clock.time()
    end = start + 600.0

    async def worker() -> int:
        calls = 0
        while clock.time() < end:
            assert (await client.tags.find(tag_id=tag_id)).id == tag_id
            calls += 1
        return calls

    calls = await clock.run([worker() for _ in range(16)])
    await client.aclose()

    assert real_429s(fake) == []
    served = in_span(fake.journal.filter(status=200), start, end)
    goodput = len(served) / (QUOTA * 60)
    assert goodput >= 0.98, f"goodput {goodput:.2%} of the quota"
    assert max(per_window(served).values()) <= QUOTA
    assert min(calls) > 0  # every worker got through, none starved
    print(f"16 workers, 10 min: {len(served)} served = {goodput:.2%} of the quota, 0 429s")


async def _two_apps(
    clock: SimClock, other_rate: float, other_active: float, resync: bool
) -> tuple[FakeIntercom, float, float]:
    """Our 16 workers against another app of the workspace sending *other_rate* per second
    during the first *other_active* seconds of every window (raw, through ``fake.handle``).

    Quotas: 100 per window for each app, 150 for the workspace. Returns the fake, the start and
    the end of the measured span (five simulated minutes: 30 windows).
    """
    fake, client = fake_and_client(
        clock,
        app_per_minute=APP_PER_MINUTE,
        workspace_per_minute=APP_PER_MINUTE * 3 // 2,
        latency=LATENCY,
    )
    fake.add_token("other-token", app="other-app")
    tag_id = await _tag_id(clock, client)
    start = clock.time()
    end = start + 300.0

    async def worker() -> None:
        while clock.time() < end:
            await client.tags.find(tag_id=tag_id)

    async def other_app() -> None:
        while clock.time() < end:
            if clock.time() % 10.0 < other_active:
                fake.handle("GET", "/me", {"authorization": "Bearer other-token"})
            await clock.asleep(1.0 / other_rate)

    with _header_resync(resync):
        await clock.run([worker() for _ in range(16)] + [other_app()])
    await client.aclose()
    return fake, start, end


def _left_for_us(fake: FakeIntercom, start: float, end: float) -> int:
    """What the workspace left us, window by window: its quota minus the other app's use,
    never more than our own app quota."""
    other = per_window(in_span(fake.journal.filter(status=200, app="other-app"), start, end))
    ours = per_window(in_span(fake.journal.filter(app="fake-app"), start, end))
    return sum(min(QUOTA, QUOTA * 3 // 2 - other[window]) for window in ours)


@contextmanager
def _header_resync(on: bool) -> Iterator[None]:
    """Leave the limiter's use of ``X-RateLimit-Remaining`` on, or switch it off (a control run:
    only 429s are still observed)."""
    if on:
        yield
        return
    original = limiter_core.DualLimiter.observe

    def observe_429s_only(
        self: limiter_core.DualLimiter, now: float, status: int | None, info: Any
    ) -> None:
        if status == 429:
            original(self, now, status, info)

    limiter_core.DualLimiter.observe = observe_429s_only  # type: ignore[method-assign]
    try:
        yield
    finally:
        limiter_core.DualLimiter.observe = original  # type: ignore[method-assign]


async def test_another_app_early_in_each_window_header_resync_prevents_every_429() -> None:
    # The other app paces itself at 12/s for the first 5 s of every window (60 calls), leaving
    # 90 of the workspace's 150: less than our app quota of 100, so only the server's
    # X-RateLimit-Remaining can tell our limiter where the workspace's end is.
    fake, start, end = await _two_apps(SimClock(), 12.0, 5.0, resync=True)
    assert real_429s(fake) == []
    used = len(in_span(fake.journal.filter(status=200, app="fake-app"), start, end))
    left = _left_for_us(fake, start, end)
    assert used / left >= 0.95, f"used {used} of the {left} the other app left"
    print(f"early other app: used {used}/{left} = {used / left:.2%} of what was left, 0 429s")


async def test_the_same_run_without_header_resync_gets_429s() -> None:
    # Control: what the previous test's zero owes to the headers. The local buckets alone allow
    # 100 per window, so every window ends in a 429 (each one then blocks until the reset).
    fake, _, _ = await _two_apps(SimClock(), 12.0, 5.0, resync=False)
    refused = real_429s(fake)
    assert len(refused) >= 25, f"only {len(refused)} 429s in 30 windows without re-sync"
    print(f"early other app, headers ignored: {len(refused)} 429s")


async def test_another_app_all_through_the_window_costs_at_most_one_429_per_window() -> None:
    # The other app sends 8/s all the time (80 per window): both apps reach the workspace's end
    # together, ~8 s into every window, and the last free slot goes to whoever asks first.
    # Headers are 50 ms stale, so the limiter cannot know the other app took it: one 429, which
    # blocks our calls until the reset, so never a second one in that window.
    fake, start, end = await _two_apps(SimClock(), 8.0, 10.0, resync=True)
    refused = per_window(real_429s(fake))
    assert max(refused.values(), default=0) <= 1, refused
    used = len(in_span(fake.journal.filter(status=200, app="fake-app"), start, end))
    left = _left_for_us(fake, start, end)
    assert used / left >= 0.95, f"used {used} of the {left} the other app left"
    print(
        f"steady other app: used {used}/{left} = {used / left:.2%} of what was left, "
        f"{sum(refused.values())} 429s in {len(refused)} of 30 windows"
    )


async def test_background_traffic_leaves_the_reserve_and_interactive_calls_pass_at_once() -> None:
    clock = SimClock()
    fake, client = fake_and_client(
        clock,
        app_per_minute=APP_PER_MINUTE,
        workspace_per_minute=2 * APP_PER_MINUTE,
        latency=LATENCY,
        background_reserve=0.2,  # 20 of every 100 stay for interactive calls
    )
    tag_id = await _tag_id(clock, client)
    start = clock.time()
    end = start + 300.0
    waits: list[float] = []

    async def bulk_sync() -> None:
        with client.background():
            while clock.time() < end:
                await client.tags.find(tag_id=tag_id)

    async def user(period: float, offset: float) -> None:
        # Interactive calls: a steady one, and five users clicking at the same instant.
        await clock.asleep(offset)
        while clock.time() < end:
            asked = clock.time()
            await client.admins.identify()
            waits.append(clock.time() - asked - LATENCY)
            await clock.asleep(period)

    users = [user(1.3, 0.7)] + [user(20.0, 4.1) for _ in range(5)]
    await clock.run([bulk_sync() for _ in range(12)] + users)
    await client.aclose()

    assert real_429s(fake) == []
    background = per_window(in_span(fake.journal.filter(status=200, path="/tags/*"), start, end))
    interactive = per_window(in_span(fake.journal.filter(status=200, path="/me"), start, end))
    assert max(background.values()) <= QUOTA - 20, background
    assert max((background + interactive).values()) <= QUOTA
    # Waits are virtual seconds: a paced interactive call waits at most a few emission
    # intervals (0.1 s each) behind the background traffic, never for a window.
    assert max(waits) <= 0.5, f"an interactive call waited {max(waits):.3f}s"
    # The background still gets what the interactive calls leave of its 80 per window.
    windows = sorted(background)[1:-1]  # whole windows only
    bg_used = sum(background[w] for w in windows)
    bg_left = sum(QUOTA - 20 - interactive[w] for w in windows)
    assert bg_used / bg_left >= 0.95, f"background used {bg_used} of {bg_left}"
    print(
        f"background: {bg_used}/{bg_left} = {bg_used / bg_left:.2%} of its share; "
        f"{len(waits)} interactive calls, max wait {max(waits):.3f}s, "
        f"mean {sum(waits) / len(waits):.4f}s"
    )


async def _served_with_skew(skew: float) -> int:
    """Two minutes of the steady two-app run, with the fake's clock *skew* s behind ours."""
    clock = SimClock()
    fake = FakeIntercom(
        clock=SkewedClock(clock, skew),
        app_quota=APP_PER_MINUTE,
        workspace_quota=APP_PER_MINUTE * 3 // 2,
        window_seconds=10.0,
    )
    fake.add_token("other-token", app="other-app")
    client = AsyncResilientIntercom(
        token="fake-token",
        transport=fake.async_transport(),
        clock=clock,
        config=config(APP_PER_MINUTE, APP_PER_MINUTE * 3 // 2),
    )
    tag_id = await _tag_id(clock, client)
    start = fake.clock.time()
    end = start + 120.0

    async def worker() -> None:
        while fake.clock.time() < end:
            await client.tags.find(tag_id=tag_id)

    async def other_app() -> None:
        while fake.clock.time() < end:
            fake.handle("GET", "/me", {"authorization": "Bearer other-token"})
            await clock.asleep(1.0 / 8.0)

    await clock.run([worker() for _ in range(16)] + [other_app()])
    await client.aclose()
    return len(in_span(fake.journal.filter(status=200, app="fake-app"), start, end))


async def test_a_client_clock_30ms_ahead_of_intercom_keeps_its_goodput() -> None:
    # Once the workspace runs out, the limiter waits for the reset by its own clock and sends at
    # once: 30 ms early for the server, which answers 429 with the same reset. That reset is now
    # in the past, and "past" is treated as "unknown": blocked for a whole window. Measured:
    # 624 served instead of 1,082 in two minutes, every other window almost empty.
    assert await _served_with_skew(0.03) >= 0.9 * await _served_with_skew(0.0)
