"""The in-memory limiter shell: the protocol, threads, async twins, and the Redis-test skip rule."""

from __future__ import annotations

import threading

import pytest

from intercom_resilience._backends.base import LimiterBackend, Priority
from intercom_resilience._backends.factory import make_limiter
from intercom_resilience._backends.memory_limiter import MemoryLimiter
from intercom_resilience._backends.redis_limiter import RedisLimiter
from intercom_resilience._clock import VirtualClock
from intercom_resilience._config import RateLimitPolicy, ResilienceConfig
from intercom_resilience._core.responses import RateLimitInfo
from intercom_resilience._events import EventLog
from tests.redis_support import redis_unavailable

FG, BG = Priority.INTERACTIVE, Priority.BACKGROUND


def test_the_factory_builds_the_configured_backend() -> None:
    clock, events = VirtualClock(), EventLog()
    memory = make_limiter(ResilienceConfig(), clock, "scope", events)
    assert isinstance(memory, MemoryLimiter)
    config = ResilienceConfig(
        rate_limit=RateLimitPolicy(backend="redis"), redis_url="redis://127.0.0.1:1/0"
    )
    remote = make_limiter(config, clock, "scope", events)
    assert isinstance(remote, RedisLimiter)
    assert remote.keys[0].endswith(":app:scope")
    remote.close()
    off = ResilienceConfig(rate_limit=RateLimitPolicy(enabled=False))
    assert make_limiter(off, clock, "scope", events) is None


def test_threads_share_one_budget() -> None:
    clock = VirtualClock()
    lim: LimiterBackend = MemoryLimiter(RateLimitPolicy(app_per_minute=6000, burst=1.0), clock)
    granted: list[int] = []

    def hammer() -> None:
        granted.append(sum(lim.acquire(FG).granted for _ in range(500)))

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(granted) == 1000  # one window's quota at one instant, not a token more


async def test_async_twins_are_the_same_limiter() -> None:
    clock = VirtualClock()
    lim = MemoryLimiter(RateLimitPolicy(app_per_minute=60, burst=1.0), clock)  # 10 per window
    assert lim.acquire(FG).granted
    assert sum([(await lim.aacquire(FG)).granted for _ in range(10)]) == 9
    await lim.aobserve(429, RateLimitInfo(10, 0, clock.time() + 30))
    clock.advance(11)
    refused = await lim.aacquire(FG)
    assert not refused.granted
    assert refused.wait == pytest.approx(19.0)


def test_the_fallback_share_and_bookkeeping() -> None:
    clock = VirtualClock()
    lim = MemoryLimiter(RateLimitPolicy(app_per_minute=240, burst=1.0), clock, share=0.25)
    assert lim.core.app.spec.quota == 10
    lim.consume(4)
    assert lim.recent() == 4
    assert not lim.acquire(BG).granted  # background waits until the pacing has caught up
    assert sum(lim.acquire(FG).granted for _ in range(10)) == 6
    lim.observe(None, None)
    assert "MemoryLimiter" in repr(lim)


@pytest.mark.parametrize(("ci", "outcome"), [("true", "Failed"), ("", "Skipped")])
def test_a_missing_redis_skips_locally_and_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch, ci: str, outcome: str
) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(BaseException, match="no Redis") as raised:
        redis_unavailable("no Redis here")
    assert type(raised.value).__name__ == outcome
