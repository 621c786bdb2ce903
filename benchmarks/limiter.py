"""Acquire throughput of the rate limiter: in memory, and with Redis (one round trip per acquire).

Each figure is printed with a baseline measured in the same run, so that the ratio says something
on any machine:

* in memory, against a bare ``threading.Lock`` acquire/release loop and a dict increment (the
  floor of any thread-safe Python counter). Target: >= 200,000 acquires/s on one core.
* with Redis, against a ``PING`` loop on the same connection (the floor of any one-round-trip
  design). Target: >= 5,000 acquires/s per process. Skipped when Redis is not reachable.

Rounds alternate between baseline and subject and the best of each is kept (noise only ever slows
a loop down). Run: ``python benchmarks/limiter.py [--seconds 0.5] [--rounds 5] [--redis-url URL]``.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
import uuid
from collections.abc import Callable

from intercom_resilience._backends.base import Priority
from intercom_resilience._backends.memory_limiter import MemoryLimiter
from intercom_resilience._clock import SystemClock
from intercom_resilience._config import RateLimitPolicy

# A quota no loop can reach measures the full path (checks, then spending both buckets); the
# default quota measures the refusal path once the window is spent.
UNTHROTTLED = RateLimitPolicy(app_per_minute=10**12, workspace_per_minute=10**12)
FG = Priority.INTERACTIVE


def rate(loop: Callable[[int], None], seconds: float) -> float:
    """Operations per second of ``loop(n)`` (which performs *n* operations), over ~*seconds*."""
    n = 1_000
    while True:  # grow the batch until one batch takes long enough to time reliably
        start = time.perf_counter()
        loop(n)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed
        n = int(n * max(2.0, seconds / max(elapsed, 1e-6) * 1.2))


def best(loop: Callable[[int], None], seconds: float, rounds: int) -> float:
    return max(rate(loop, seconds) for _ in range(rounds))


def lock_loop(n: int) -> None:
    lock = threading.Lock()
    for _ in range(n):
        with lock:
            pass


def dict_loop(n: int) -> None:
    counts: dict[str, int] = {}
    for _ in range(n):
        counts["k"] = counts.get("k", 0) + 1


def limiter_loop(policy: RateLimitPolicy) -> Callable[[int], None]:
    limiter = MemoryLimiter(policy, SystemClock())

    def loop(n: int) -> None:
        acquire = limiter.acquire
        for _ in range(n):
            acquire(FG)

    return loop


def report(name: str, value: float, baseline: float, baseline_name: str, target: float) -> None:
    verdict = "ok" if value >= target else "BELOW TARGET"
    print(
        f"  {name:<34} {value:>12,.0f}/s   {value / baseline:5.2f}x {baseline_name}"
        f"   (target >= {target:,.0f}/s: {verdict})"
    )


def memory(seconds: float, rounds: int) -> None:
    lock = best(lock_loop, seconds, rounds)
    counter = best(dict_loop, seconds, rounds)
    granted = best(limiter_loop(UNTHROTTLED), seconds, rounds)
    refused = best(limiter_loop(RateLimitPolicy()), seconds, rounds)
    print("in memory (one thread):")
    print(f"  {'baseline: Lock acquire/release':<34} {lock:>12,.0f}/s")
    print(f"  {'baseline: dict increment':<34} {counter:>12,.0f}/s")
    report("MemoryLimiter.acquire, granted", granted, lock, "lock", 200_000)
    report("MemoryLimiter.acquire, refused", refused, lock, "lock", 200_000)


def with_redis(url: str, seconds: float, rounds: int) -> None:
    try:
        import redis

        from intercom_resilience._backends.redis_limiter import RedisLimiter
    except ImportError as error:
        print(f"with Redis: skipped ({error})")
        return
    client = redis.Redis.from_url(url, socket_timeout=2)
    try:
        client.ping()
    except (redis.RedisError, OSError) as error:
        print(f"with Redis: skipped, {url} unreachable ({error})")
        return
    prefix = f"intercom-resilience-bench:{uuid.uuid4().hex[:8]}"
    limiter = RedisLimiter(
        UNTHROTTLED, url, "bench", SystemClock(), key_prefix=prefix, socket_timeout=2.0
    )

    def ping_loop(n: int) -> None:
        for _ in range(n):
            client.ping()

    def acquire_loop(n: int) -> None:
        for _ in range(n):
            limiter.acquire(FG)

    try:
        ping = best(ping_loop, seconds, rounds)
        acquire = best(acquire_loop, seconds, rounds)
        print(f"with Redis at {url} (one process):")
        print(f"  {'baseline: PING round trip':<34} {ping:>12,.0f}/s")
        report("RedisLimiter.acquire", acquire, ping, "PING", 5_000)
        if not limiter.available:
            print("  WARNING: the limiter fell back to its local share during the run")
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        limiter.close()
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="length of one timed batch")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("INTERCOM_RESILIENCE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
    )
    args = parser.parse_args()
    memory(args.seconds, args.rounds)
    with_redis(args.redis_url, args.seconds, args.rounds)


if __name__ == "__main__":
    main()
