"""A fleet in an outage: 8 processes, Intercom fully down for 30 s, one breaker or eight.

One fake Intercom is served over real HTTP on 127.0.0.1; each process runs threads calling
``GET /me`` at a steady rate (real time). After a healthy warm-up the fake answers every request
503 for the outage. Three sides run one after the other, each against a fresh fake:

* ``fleet``: ``ResilientIntercom`` with ``BreakerPolicy(backend="redis")``: one breaker in Redis;
* ``local``: ``ResilientIntercom`` with the memory breaker: each process must see its own run of
  failures before it opens (and sends its own trial calls after every cooldown);
* ``raw``: the official SDK untouched: every call (and the SDK's retries) reaches Intercom.

Printed: upstream requests during the outage per side, the ratio fleet/local (target <= 0.25), and
time-to-open for the whole fleet (the last process to see its breaker open, from the outage's
start; target within one breaker window).

Then the breaker's observation cost on Redis, in this process: round trips per success
(counted on the client: 0 since a closed breaker's successes ride on the next script call;
failures and questions cost 1 each) and observations per second, successes and failures, against
a bare ``PING`` rate measured in the same run (target >= 5,000 a second).

Run: ``python benchmarks/fleet_outage.py [--outage 30] [--processes 8] [--redis-url URL]``
(needs the ``redis`` and ``server`` extras and a Redis). ``tests/fleet/test_outage_benchmark.py``
runs a scaled-down smoke of both parts.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import threading
import time
import uuid
from typing import Any

import _workers  # benchmarks/_workers.py: the fleet's processes

SIDES = ("fleet", "local", "raw")
PROCESSES = 8
THREADS = 1
INTERVAL = 0.1  # seconds between two calls of one thread: 10 calls a second per thread
WINDOW = 10.0  # the breaker's (the default)
COOLDOWN = 15.0  # the breaker's (the default)


@dataclasses.dataclass(frozen=True)
class SideResult:
    """What the fake saw of one side's outage, and when each process saw its breaker open."""

    side: str
    outage: float
    upstream: int  # requests the fake received during the outage
    opened_after: list[float | None]  # per process: seconds from the outage's start to open

    @property
    def fleet_open_after(self) -> float | None:
        """When the last process had seen its breaker open (``None``: one never did)."""
        if not self.opened_after or any(t is None for t in self.opened_after):
            return None
        return max(t for t in self.opened_after if t is not None)


# ---------------------------------------------------------------------------------- worker side


def _worker(options: dict[str, Any]) -> None:
    """One process: build the client, say ready, wait for the start, call steadily, report."""
    import intercom

    from intercom_resilience import (
        BreakerPolicy,
        RateLimitPolicy,
        ResilienceConfig,
        ResilientIntercom,
    )
    from intercom_resilience.events import BreakerTransition, Event

    side = options["side"]
    opened: list[float] = []

    def hook(event: Event) -> None:
        if isinstance(event, BreakerTransition) and event.state == "open":
            opened.append(time.time())

    client: Any
    if side == "raw":
        client = intercom.Intercom(token=options["token"], base_url=options["base_url"])
    else:
        config = ResilienceConfig(
            breaker=BreakerPolicy(
                window=options["window"],
                cooldown=options["cooldown"],
                backend="redis" if side == "fleet" else "memory",
            ),
            rate_limit=RateLimitPolicy(enabled=False),
            redis_url=options["redis_url"] if side == "fleet" else None,
        )
        client = ResilientIntercom(
            token=options["token"],
            base_url=options["base_url"],
            config=config,
            event_hooks=[hook],
        )
    start = _workers.ready()
    end = start + options["warmup"] + options["outage"]
    interval = options["interval"]

    def loop() -> None:
        time.sleep(max(0.0, start - time.time()))
        while time.time() < end:
            began = time.time()
            # The outage's errors are the point: they are counted upstream, by the fake.
            with contextlib.suppress(Exception):
                client.admins.identify()
            time.sleep(max(0.0, interval - (time.time() - began)))

    threads = [threading.Thread(target=loop) for _ in range(options["threads"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if side != "raw":
        client.close()
    _workers.report({"opened": opened})


# ---------------------------------------------------------------------------------- parent side


def run_side(
    side: str,
    *,
    outage: float,
    redis_url: str | None = None,
    processes: int = PROCESSES,
    threads: int = THREADS,
    warmup: float = 2.0,
    interval: float = INTERVAL,
    window: float = WINDOW,
    cooldown: float = COOLDOWN,
) -> SideResult:
    """Run one side against a fresh fake served on 127.0.0.1; the outage starts after *warmup*."""
    from intercom_resilience.testing import FakeIntercom

    token = f"outage-{uuid.uuid4().hex[:12]}"  # a fresh token: fresh Redis keys for every run
    fake = FakeIntercom(token=token, app_quota=1_000_000, workspace_quota=1_000_000)
    options = {
        "side": side,
        "token": token,
        "redis_url": redis_url,
        "outage": outage,
        "warmup": warmup,
        "interval": interval,
        "threads": threads,
        "window": window,
        "cooldown": cooldown,
    }
    with fake.serve_in_thread() as base_url:
        options["base_url"] = base_url
        with _workers.fleet(__file__, options, processes, f"a {side} worker") as workers:
            start = time.time() + 0.5
            down_at = start + warmup
            timer = threading.Timer(down_at - time.time(), fake.faults.outage, (outage,))
            timer.start()
            workers.release(start)
            outputs = workers.results(timeout=warmup + outage + 120)
            timer.join()
    up_at = down_at + outage
    upstream = sum(1 for entry in fake.journal.entries() if down_at <= entry.time < up_at)
    opened_after: list[float | None] = []
    for output in outputs:
        after = [t - down_at for t in output["opened"] if t >= down_at]
        opened_after.append(min(after) if after else None)
    return SideResult(side, outage, upstream, opened_after)


# ------------------------------------------------------------------------------ observation cost


@dataclasses.dataclass(frozen=True)
class Cost:
    """One kind of breaker operation on Redis: its rate and the commands each one sent."""

    per_s: float
    round_trips: float  # commands sent per operation, counted on the client


@dataclasses.dataclass(frozen=True)
class CostResult:
    """The breaker's cost on Redis in one process, next to a bare PING."""

    ping_per_s: float
    success: Cost
    failure: Cost
    allow: Cost


def measure_cost(redis_url: str, observations: int = 20_000) -> CostResult:
    """Observations a second (successes, failures, questions), round trips each, vs ``PING``."""
    import redis

    from intercom_resilience import BreakerPolicy
    from intercom_resilience._backends.redis_breaker import RedisBreaker
    from intercom_resilience._clock import SystemClock

    class Counting(redis.Redis):
        """A client that counts the commands it sends (one each: no pipelining here)."""

        sent = 0

        def execute_command(self, *args: Any, **options: Any) -> Any:
            Counting.sent += 1
            return super().execute_command(*args, **options)

    client = Counting.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1)
    # A breaker that never opens: every failure is counted against the window (the worst case).
    policy = BreakerPolicy(backend="redis", min_calls=10**9, consecutive_failures=None)
    prefix = f"irbench:{uuid.uuid4().hex}"
    breaker = RedisBreaker(
        policy, redis_url, "bench", SystemClock(), key_prefix=prefix, client=client
    )
    try:
        breaker.record(False)  # loads the script

        def measure(operation: Any) -> Cost:
            Counting.sent = 0
            began = time.perf_counter()
            for _ in range(observations):
                operation()
            elapsed = time.perf_counter() - began
            return Cost(observations / elapsed, Counting.sent / observations)

        ping = measure(client.ping).per_s
        # Successes are held back and ride on the next script call: none of their own.
        success = measure(lambda: breaker.record(False))
        failure = measure(lambda: breaker.record(True))
        allow = measure(lambda: breaker.allow(5.0))
    finally:
        keys = list(client.scan_iter(match=prefix + ":*"))
        if keys:
            client.delete(*keys)
        breaker.close()
    return CostResult(ping, success, failure, allow)


def cost_report(cost: CostResult) -> list[str]:
    """The observation-cost lines: each operation against PING, and the target's verdict."""
    lines = ["observation cost on Redis (one process; a bare PING measured in the same run):"]
    for name, each in (("success", cost.success), ("failure", cost.failure), ("allow", cost.allow)):
        lines.append(
            f"  {name:<8} {each.round_trips:.2f} round trips  {each.per_s:>11,.0f}/s  "
            f"({each.per_s / cost.ping_per_s:.2f}x PING)"
        )
    lines.append(f"  {'PING':<8} {1:.2f} round trips  {cost.ping_per_s:>11,.0f}/s")
    at_most_one = all(c.round_trips <= 1.0 for c in (cost.success, cost.failure, cost.allow))
    rate_ok = cost.success.per_s >= 5_000
    verdict = "holds" if at_most_one and rate_ok else "does NOT hold"
    lines.append(
        f"  target <= 1 round trip per observation, >= 5,000 observations/s: {verdict} "
        f"(a failure or a question is one round trip, so its rate is bounded by PING's)"
    )
    return lines


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "worker":
        _worker(json.loads(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage", type=float, default=30.0, help="seconds Intercom is down")
    parser.add_argument("--warmup", type=float, default=2.0, help="healthy seconds before it")
    parser.add_argument("--processes", type=int, default=PROCESSES)
    parser.add_argument("--threads", type=int, default=THREADS, help="threads per process")
    parser.add_argument("--interval", type=float, default=INTERVAL, help="seconds between calls")
    parser.add_argument("--window", type=float, default=WINDOW, help="the breaker's window")
    parser.add_argument("--cooldown", type=float, default=COOLDOWN, help="the breaker's cooldown")
    parser.add_argument("--sides", default=",".join(SIDES))
    parser.add_argument("--observations", type=int, default=20_000)
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("INTERCOM_RESILIENCE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
    )
    args = parser.parse_args()
    print(
        f"fleet_outage: {args.processes} processes x {args.threads} threads, GET /me every "
        f"{args.interval:g} s; Intercom down {args.outage:g} s after {args.warmup:g} s; breaker "
        f"window {args.window:g} s, cooldown {args.cooldown:g} s"
    )
    results = {
        side: run_side(
            side,
            outage=args.outage,
            redis_url=args.redis_url,
            processes=args.processes,
            threads=args.threads,
            warmup=args.warmup,
            interval=args.interval,
            window=args.window,
            cooldown=args.cooldown,
        )
        for side in args.sides.split(",")
    }
    labels = {
        "fleet": "fleet breaker (Redis)",
        "local": "per-process breakers",
        "raw": "official SDK, no breaker",
    }
    print(f"  {'side':<26} {'upstream':>9}  fleet open after")
    for side, result in results.items():
        after = result.fleet_open_after
        shown = "-" if side == "raw" else ("never" if after is None else f"{after:.2f} s")
        print(f"  {labels[side]:<26} {result.upstream:>9}  {shown}")
    if "fleet" in results and "local" in results and results["local"].upstream:
        ratio = results["fleet"].upstream / results["local"].upstream
        print(f"  upstream ratio fleet/per-process: {ratio:.3f} (target <= 0.25)")
        after = results["fleet"].fleet_open_after
        verdict = "within" if after is not None and after <= args.window else "NOT within"
        shown = "never" if after is None else f"{after:.2f} s"
        print(f"  whole fleet open after {shown}: {verdict} one breaker window ({args.window:g} s)")
    for line in cost_report(measure_cost(args.redis_url, args.observations)):
        print(line)


if __name__ == "__main__":
    main()
