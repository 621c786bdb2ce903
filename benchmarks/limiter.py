"""Acquire throughput of the rate limiter: in memory, and with Redis (one round trip per acquire).

Each figure is printed with a baseline measured in the same run, so that the ratio says something
on any machine:

* in memory, against a bare ``threading.Lock`` acquire/release loop and a dict increment (the
  floor of any thread-safe Python counter). Target: >= 200,000 acquires/s on one core.
* in memory with 8 threads on one limiter, against the same core with the whole acquire under
  the lock (how it was before the lock was narrowed), in interleaved rounds. Target: >= 400,000
  acquires/s.
* with Redis, against a ``PING`` loop on the same connection (the floor of any one-round-trip
  design). Target: >= 5,000 acquires/s per process. Skipped when Redis is not reachable.

Rounds alternate between baseline and subject and the best of each is kept (noise only ever slows
a loop down). Run: ``python benchmarks/limiter.py [--seconds 0.5] [--rounds 5] [--redis-url URL]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
import uuid
from collections.abc import Callable

from intercom_resilience._backends.base import Grant, Priority
from intercom_resilience._backends.memory_limiter import MemoryLimiter
from intercom_resilience._clock import SystemClock
from intercom_resilience._config import RateLimitPolicy
from intercom_resilience._core.limiter import DualLimiter

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


class LockedWhole:
    """The limiter as it was before the lock was narrowed: clock, decision and answer all under
    the lock (the same core, so the two sides differ only in what the lock covers)."""

    def __init__(self, policy: RateLimitPolicy) -> None:
        self._core = DualLimiter.from_policy(policy)
        self._clock = SystemClock()
        self._lock = threading.Lock()

    def acquire(self, priority: Priority = FG) -> Grant:
        with self._lock:
            return self._core.acquire(self._clock.time(), priority)


def threaded_rate(acquire: Callable[[Priority], Grant], threads: int, seconds: float) -> float:
    """Acquires per second of *threads* threads calling *acquire* on one limiter for *seconds*."""
    stop = threading.Event()
    counts = [0] * threads

    def work(i: int) -> None:
        n = 0
        while not stop.is_set():
            for _ in range(200):
                acquire(FG)
            n += 200
        counts[i] = n

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    time.sleep(seconds)
    stop.set()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.perf_counter() - start)


def threaded(seconds: float, rounds: int, threads: int = 8) -> None:
    # A and B alternate round by round, so that a noisy neighbour slows both sides alike.
    before: list[float] = []
    after: list[float] = []
    for _ in range(rounds):
        before.append(threaded_rate(LockedWhole(UNTHROTTLED).acquire, threads, seconds))
        after.append(
            threaded_rate(MemoryLimiter(UNTHROTTLED, SystemClock()).acquire, threads, seconds)
        )
    print(f"in memory ({threads} threads, one limiter, {rounds} interleaved rounds):")
    for name, values in (("whole acquire under the lock", before), ("MemoryLimiter", after)):
        ordered = sorted(values)
        print(
            f"  {name:<34} {statistics.median(values):>12,.0f}/s median"
            f"   (min {ordered[0]:,.0f}, max {ordered[-1]:,.0f})"
        )
    median = statistics.median(after)
    ratio = median / statistics.median(before)
    verdict = "ok" if median >= 400_000 else "BELOW TARGET"
    print(f"  MemoryLimiter / whole-lock: {ratio:.2f}x   (target >= 400,000/s: {verdict})")


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
    parser.add_argument("--threads", type=int, default=8, help="threads sharing one limiter")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("INTERCOM_RESILIENCE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
    )
    args = parser.parse_args()
    memory(args.seconds, args.rounds)
    threaded(args.seconds, args.rounds, args.threads)
    with_redis(args.redis_url, args.seconds, args.rounds)


if __name__ == "__main__":
    main()
