"""The Redis limiter's fallback takes over from a long run on Redis without pacing debt.

Every call Redis admits is also counted by the fallback (``MemoryLimiter(share=...)``'s
``consume``), so that a failover starts from this process's recent use. Those counts belong in the
fallback's sliding window; they must not accumulate as pacing debt. At the full shared rate each
one used to push the fallback's GCRA time ahead by the fallback's own, four times longer,
interval: after an hour on Redis the fallback refused every call for three hours
(``RateLimitedError`` to every caller, the opposite of "never crashes the call").
"""

from __future__ import annotations

from intercom_resilience import RateLimitPolicy, VirtualClock
from intercom_resilience._backends.memory_limiter import MemoryLimiter

POLICY = RateLimitPolicy(app_per_minute=600, workspace_per_minute=1200, redis_fallback_share=0.25)


def test_a_failover_after_a_long_run_on_redis_waits_at_most_one_window() -> None:
    clock = VirtualClock()
    fallback = MemoryLimiter(POLICY, clock, share=POLICY.redis_fallback_share)
    for _ in range(600 * 10):  # ten minutes at the full quota (10/s), admitted by Redis
        fallback.consume(1)
        clock.advance(0.1)
    refused = fallback.acquire()
    # The last window held 100 calls, four times the share: wait for them to leave the window,
    # never longer than the window itself.
    assert not refused.granted
    assert refused.wait <= POLICY.window
    clock.advance(refused.wait)
    assert fallback.acquire().granted
    # ... and from then on, the fallback paces at its share (25 per window).
    granted = 1
    for _ in range(int(POLICY.window * 100)):
        clock.advance(0.01)
        granted += fallback.acquire().granted
    assert 20 <= granted <= 25
