"""A full Intercom outage: load amplification, fail-fast latency, and stale-cache availability.

Three measurements on the in-process fake, in one run (latencies are always real time):

1. **Amplification.** 500 GETs during a full outage. Upstream requests per call for this library
   (retry budget + circuit breaker) next to a plain tenacity retry (3 attempts) around the raw SDK.
2. **Fail-fast latency.** Per-call time of those failing calls once the breaker is open, as a
   ratio of a healthy call's time measured in the same run.
3. **Stale reads.** Warm 1,000 contacts, let a virtual minute pass, then the outage: share of
   reads still answered (served stale) and their p50/p99 latency by reason (breaker open, or
   after a failed upstream attempt), as a ratio of a fresh read's.

Backoff waits are shortened (``base_delay=1 ms``) for both contenders so the run takes seconds;
this changes wall time, not the counts. Run: ``python benchmarks/outage.py``.
"""

from __future__ import annotations

import statistics
import time

import httpx
import intercom
import tenacity
from intercom.core.api_error import ApiError

from intercom_resilience import (
    CachePolicy,
    CircuitOpenError,
    RateLimitPolicy,
    ResilienceConfig,
    ResilientIntercom,
    RetryPolicy,
    VirtualClock,
    capture_calls,
)
from intercom_resilience.testing import FakeIntercom

CALLS = 500
WARM = 1_000


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _config(*, cache: bool) -> ResilienceConfig:
    return ResilienceConfig(
        retry=RetryPolicy(base_delay=0.001, max_delay=0.004),
        rate_limit=RateLimitPolicy(app_per_minute=10**9, workspace_per_minute=10**9),
        cache=CachePolicy(enabled=cache),
    )


def amplification() -> None:
    # Huge quotas, not rate_limits=False: the fake would still send headers saying the window
    # is spent, and the limiter rightly believes them.
    fake = FakeIntercom(app_quota=10**9, workspace_quota=10**9)
    raw = intercom.Intercom(
        token="fake-token", httpx_client=httpx.Client(transport=fake.transport())
    )
    # No stale cache here: this part measures what reaches Intercom and how fast calls fail.
    ours = ResilientIntercom(
        token="fake-token", transport=fake.transport(), config=_config(cache=False)
    )
    contact_id = raw.contacts.create(request={"email": "bench@example.com"}).id

    healthy = []
    for _ in range(200):
        start = time.perf_counter()
        ours.contacts.find(contact_id=contact_id)
        healthy.append(time.perf_counter() - start)
    fake.faults.outage(seconds=3600)

    @tenacity.retry(
        stop=tenacity.stop_after_attempt(3),
        wait=tenacity.wait_exponential(multiplier=0.001, max=0.004),
        reraise=True,
    )
    def plain_find() -> object:
        return raw.contacts.find(contact_id=contact_id)

    rows = []
    for name, call in (
        ("plain tenacity (3 attempts)", plain_find),
        ("intercom-resilience", lambda: ours.contacts.find(contact_id=contact_id)),
    ):
        before = fake.journal.count(method="GET")
        fast: list[float] = []
        for _ in range(CALLS):
            start = time.perf_counter()
            try:
                call()
            except CircuitOpenError:
                fast.append(time.perf_counter() - start)
            except ApiError:
                pass
        upstream = fake.journal.count(method="GET") - before
        rows.append((name, upstream, fast))

    base = statistics.median(healthy)
    print(f"1-2. full outage, {CALLS} GETs")
    print(f"{'client':<30} {'upstream':>9} {'amplification':>14} {'fail-fast p50':>14} {'p99':>9}")
    for name, upstream, fast in rows:
        p50 = f"{statistics.median(fast) * 1e3:.3f} ms" if fast else "-"
        p99 = f"{_percentile(fast, 0.99) * 1e3:.3f} ms" if fast else "-"
        print(f"{name:<30} {upstream:>9} {upstream / CALLS:>13.2f}x {p50:>14} {p99:>9}")
    ours_fast = rows[1][2]
    if ours_fast:
        ratio = statistics.median(ours_fast) / base
        print(
            f"healthy call median {base * 1e3:.3f} ms; fail-fast median is {ratio:.3f}x of it "
            f"({len(ours_fast)} of {CALLS} calls failed fast)"
        )


def stale_reads() -> None:
    # Huge quotas, not rate_limits=False: the fake would still send headers saying the window
    # is spent, and the limiter rightly believes them.
    # A virtual clock (latency is still measured in real time): the warm-up's successes leave
    # the breaker's window before the outage starts, as they would an hour later in production.
    clock = VirtualClock()
    fake = FakeIntercom(app_quota=10**9, workspace_quota=10**9, clock=clock)
    client = ResilientIntercom(
        token="fake-token", transport=fake.transport(), config=_config(cache=True), clock=clock
    )
    ids = [client.contacts.create(request={"email": f"c{i}@example.com"}).id for i in range(WARM)]
    fresh: list[float] = []
    for contact_id in ids:
        start = time.perf_counter()
        client.contacts.find(contact_id=contact_id)
        fresh.append(time.perf_counter() - start)
    clock.advance(60)
    fake.faults.outage(seconds=3600)
    # Each read's latency, tagged with why it was served stale: "server_error" reads still went
    # upstream first (the breaker was closed), "circuit_open" reads did not.
    by_reason: dict[str, list[float]] = {}
    failed = 0
    for contact_id in ids:
        with capture_calls() as calls:
            start = time.perf_counter()
            try:
                client.contacts.find(contact_id=contact_id)
            except ApiError:
                failed += 1
                continue
            elapsed = time.perf_counter() - start
        reason = calls.last.reason if calls.last is not None and calls.last.stale else "fresh"
        by_reason.setdefault(reason or "?", []).append(elapsed)
    served = sum(len(v) for v in by_reason.values())
    base = statistics.median(fresh)
    print(f"\n3. stale reads during the outage, {WARM} warm contacts")
    print(f"availability {served / WARM:.1%} ({failed} failed)")
    print(f"fresh read before the outage: p50 {base * 1e3:.3f} ms")
    for reason, values in sorted(by_reason.items()):
        p50, p99 = statistics.median(values), _percentile(values, 0.99)
        print(
            f"  served stale ({reason:<12}) n={len(values):>4}  p50 {p50 * 1e3:.3f} ms  "
            f"p99 {p99 * 1e3:.3f} ms  p50 ratio vs fresh {p50 / base:.3f}"
        )


if __name__ == "__main__":
    amplification()
    stale_reads()
