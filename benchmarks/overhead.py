"""Per-call overhead of the facade against the raw SDK, on the same in-process fake.

Rounds alternate between the raw ``intercom.Intercom`` and ``ResilientIntercom`` (interleaved, so
machine noise hits both alike) and the median per-call time of each is compared. Two facade
configurations are measured: the pass-through pipeline (limiter and stale cache off: the cost of
the transport, the decisions and the events), and the full default pipeline with the quota
raised so that the limiter never makes the loop wait.

Run: ``python benchmarks/overhead.py [--calls 300] [--rounds 15]``. The target for the
pass-through ratio is at most 1.05.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import httpx
import intercom

from intercom_resilience import CachePolicy, RateLimitPolicy, ResilienceConfig, ResilientIntercom
from intercom_resilience.testing import FakeIntercom


def _per_call(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    # Huge quotas, not rate_limits=False: the fake would still send headers saying the window
    # is spent, and the limiter rightly believes them.
    fake = FakeIntercom(app_quota=10**9, workspace_quota=10**9)
    contact_id = (
        intercom.Intercom(token="fake-token", httpx_client=httpx.Client(transport=fake.transport()))
        .contacts.create(request={"email": "bench@example.com"})
        .id
    )

    raw = intercom.Intercom(
        token="fake-token", httpx_client=httpx.Client(transport=fake.transport())
    )
    passthrough = ResilientIntercom(
        token="fake-token",
        transport=fake.transport(),
        config=ResilienceConfig(
            rate_limit=RateLimitPolicy(enabled=False), cache=CachePolicy(enabled=False)
        ),
    )
    # The default quota (10,000/min) would pace this loop; raise it so only overhead is measured.
    unthrottled = RateLimitPolicy(app_per_minute=10**9, workspace_per_minute=10**9)
    full = ResilientIntercom(
        token="fake-token",
        transport=fake.transport(),
        config=ResilienceConfig(rate_limit=unthrottled),
    )
    clients = {"raw SDK": raw, "facade, pass-through": passthrough, "facade, full pipeline": full}
    timings: dict[str, list[float]] = {name: [] for name in clients}

    for client in clients.values():  # warm up imports, pools and caches
        _per_call(lambda c=client: c.contacts.find(contact_id=contact_id), 50)
    for _ in range(args.rounds):
        for name, client in clients.items():
            timings[name].append(
                _per_call(lambda c=client: c.contacts.find(contact_id=contact_id), args.calls)
            )

    baseline = statistics.median(timings["raw SDK"])
    print(f"contacts.find on the in-process fake, {args.rounds} interleaved rounds of {args.calls}")
    print(f"{'client':<24} {'median us/call':>15} {'ratio vs raw':>13}")
    for name, values in timings.items():
        median = statistics.median(values)
        print(f"{name:<24} {median * 1e6:>15.1f} {median / baseline:>13.3f}")


if __name__ == "__main__":
    main()
