"""Redis killed under a busy client, and started again: the calls never notice.

Real time and a real ``redis-server`` of the test's own (killed with SIGKILL, restarted empty), a
client with the Redis limiter, and four threads calling through it the whole time. Windows are
1 s here (fake and policy alike) so that a run covers many windows in seconds; the quota is
100 per window, and the fallback share 25% of it.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from typing import Any

import pytest

from intercom_resilience import RateLimitPolicy, ResilienceConfig, ResilientIntercom
from intercom_resilience.testing import FakeIntercom
from tests.redis_support import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.slow]

WINDOW = 1.0
QUOTA = 100  # per window
SHARE = 0.25


def _per_window(fake: FakeIntercom, start: float, end: float) -> Counter[int]:
    """Served requests per whole fake window inside ``[start, end)``."""
    first, last = math.ceil(start / WINDOW), math.floor(end / WINDOW)
    counts: Counter[int] = Counter(dict.fromkeys(range(first, last), 0))
    for entry in fake.journal.filter(status=200):
        window = math.floor(entry.time / WINDOW)
        if first <= window < last:
            counts[window] += 1
    return counts


def _wait_for(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.05)


def test_killing_redis_mid_run_falls_back_to_the_local_share_then_returns(
    redis_server: RedisServer,
) -> None:
    per_minute = int(QUOTA * 60 / WINDOW)
    fake = FakeIntercom(app_quota=per_minute, workspace_quota=2 * per_minute, window_seconds=WINDOW)
    events: list[str] = []
    config = ResilienceConfig(
        rate_limit=RateLimitPolicy(
            app_per_minute=per_minute,
            workspace_per_minute=2 * per_minute,
            window=WINDOW,
            backend="redis",
            redis_fallback_share=SHARE,
        ),
        redis_url=redis_server.url,
    )
    client = ResilientIntercom(
        token="fake-token",
        transport=fake.transport(),
        config=config,
        event_hooks=[lambda event: events.append(event.name)],
    )
    stop = threading.Event()
    raised: list[BaseException] = []

    def caller() -> None:
        while not stop.is_set():
            try:
                client.admins.identify()
            except BaseException as error:  # anything reaching the caller fails the test
                raised.append(error)
                return

    threads = [threading.Thread(target=caller) for _ in range(4)]
    try:
        start = time.time()
        for thread in threads:
            thread.start()
        time.sleep(3.0)

        redis_server.stop()  # SIGKILL, mid-traffic
        killed = time.time()
        _wait_for(lambda: "limiter.redis_unavailable" in events, 10.0)
        time.sleep(4.0)
        restarted = time.time()
        redis_server.start()  # empty: nothing survives a restart
        # The limiter probes Redis again every 5 s (its retry interval).
        _wait_for(lambda: "limiter.redis_recovered" in events, 15.0)
        recovered = time.time()
        time.sleep(3.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        client.close()
    end = time.time()

    assert raised == []
    assert fake.journal.filter(status=429) == []
    assert events.count("limiter.redis_unavailable") == 1
    assert events.count("limiter.redis_recovered") == 1

    before = _per_window(fake, start + WINDOW, killed)
    during = _per_window(fake, killed + WINDOW, restarted)
    after = _per_window(fake, recovered + WINDOW, end)
    share = math.floor(QUOTA * SHARE)
    print(
        f"per 1 s window (quota {QUOTA}, share {share}): on Redis {sorted(before.values())}, "
        f"Redis down {sorted(during.values())}, back on Redis {sorted(after.values())}"
    )
    # On Redis: the whole quota is used (more than any local share could give).
    assert min(before.values()) > share and min(after.values()) > share
    # Redis down: never more than the local share, and calls still flow at about that share.
    assert max(during.values()) <= share
    assert sum(during.values()) / len(during) >= 0.6 * share
