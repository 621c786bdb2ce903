"""Latency of interactive calls when Intercom misbehaves: the facade next to the raw SDK.

Five scenarios, each an ``httpx.MockTransport`` answering ``GET /me``:

* ``reset-1h``   every answer 429 with ``X-RateLimit-Reset`` an hour ahead;
* ``503-ra12``   every answer 503 with ``Retry-After: 12``;
* ``slow-25s``   answers after 25 s (under the 30-s read timeout);
* ``hostile``    random statuses, junk wait headers, 10 % network errors, random latency;
* ``quota``      the client's own limiter has no quota left (1 request a minute, spent).

For each: the raw SDK with ``max_retries=4``, the facade with nothing cached ("cold"), and the
facade with a cached answer ("warm"). On a virtual clock (the raw SDK's ``time.sleep`` is pointed
at it too), latency is simulated time: sleeps, timeouts, latency. A short real-time run repeats
the facade's early-deciding scenarios on the system clock, where latency is the library's own
compute. The targets: no interactive call past its deadline, warm reads under the stale-if-slow
budget at p99, and the first call of ``reset-1h`` under 50 ms.

Run: ``python benchmarks/latency.py [--calls 200]``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import math
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx
import intercom
import intercom.core.http_client as sdk_http

from intercom_resilience import (
    Clock,
    DeadlinePolicy,
    RateLimitPolicy,
    ResilienceConfig,
    ResilientIntercom,
    SystemClock,
    VirtualClock,
)

ME = {"type": "admin", "id": "1", "name": "Ada", "email": "ada@example.com"}
Handler = Callable[[httpx.Request], httpx.Response]
POLICY = DeadlinePolicy()


def _error(status: int, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"type": "error.list", "request_id": f"r{status}", "errors": [{"code": "x"}]}
    return httpx.Response(status, headers=headers or {}, json=body)


def _read_timeout(request: httpx.Request) -> float:
    value = (request.extensions.get("timeout") or {}).get("read")
    return math.inf if value is None else float(value)


def _after(clock: Clock, latency: float, request: httpx.Request) -> None:
    """Spend *latency* as a socket would: past the read timeout, ``ReadTimeout`` at it."""
    timeout = _read_timeout(request)
    if isinstance(clock, VirtualClock):
        clock.advance(min(latency, timeout))
    if latency > timeout:
        raise httpx.ReadTimeout("slow", request=request)


def scenario(name: str, clock: Clock, rng: random.Random) -> Handler:
    """The upstream of scenario *name*; it answers 200 to its first request (cache warm-up)."""
    first = [True]

    def handler(request: httpx.Request) -> httpx.Response:
        if first[0]:
            first[0] = False
            return httpx.Response(200, json=ME)
        if name == "reset-1h":
            reset = str(int(clock.time() + 3600))
            return _error(429, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset})
        if name == "503-ra12":
            return _error(503, {"retry-after": "12"})
        if name == "slow-25s":
            _after(clock, 25.0, request)
            return httpx.Response(200, json=ME)
        if name == "hostile":
            _after(clock, rng.choice([0.01, 0.2, 1.0, 4.0, 12.0]), request)
            if rng.random() < 0.1:
                raise httpx.ReadError("boom", request=request)
            status = rng.choice([200, 429, 500, 502, 503, 504, 408])
            wait = rng.choice(["-1", "nan", "1e12", "Wed, 21 Oct 2099 07:28:00 GMT", "3", "x"])
            return (
                httpx.Response(200, json=ME)
                if status == 200
                else _error(status, {"retry-after": wait})
            )
        return httpx.Response(200, json=ME)  # quota: the upstream is fine, our limiter is not

    return handler


def _facade(name: str, clock: Clock, handler: Handler) -> ResilientIntercom:
    limits = RateLimitPolicy(app_per_minute=1, workspace_per_minute=1) if name == "quota" else None
    config = ResilienceConfig(rate_limit=limits) if limits else ResilienceConfig()
    return ResilientIntercom(
        token="t", transport=httpx.MockTransport(handler), clock=clock, config=config, seed=1
    )


def _raw(handler: Handler) -> intercom.Intercom:
    http = httpx.Client(transport=httpx.MockTransport(handler))
    return intercom.Intercom(token="t", httpx_client=http)


def _time(clock: Clock, call: Callable[[], Any]) -> float:
    start = clock.monotonic() if isinstance(clock, VirtualClock) else time.perf_counter()
    with contextlib.suppress(Exception):  # failures are expected: only their latency matters
        call()
    end = clock.monotonic() if isinstance(clock, VirtualClock) else time.perf_counter()
    return end - start


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def run_virtual(name: str, calls: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {}
    for side in ("raw SDK", "facade cold", "facade warm"):
        clock = VirtualClock()
        rng = random.Random(7)
        handler = scenario(name, clock, rng)
        sdk_http.time.sleep = clock.sleep  # type: ignore[attr-defined]
        try:
            if side == "raw SDK":
                client: Any = _raw(handler)
                client.admins.identify()  # the same first answer as the facades get
                fn: Callable[[], Any] = functools.partial(
                    client.admins.identify, request_options={"max_retries": 4}
                )
            else:
                client = _facade(name, clock, handler)
                if side == "facade warm":
                    client.admins.identify()
                else:
                    client.contacts.list()  # spend the first answer on something else
                fn = client.admins.identify
            latencies = []
            for _ in range(calls):
                latencies.append(_time(clock, fn))
                clock.advance(0.5)
            results[side] = latencies
        finally:
            sdk_http.time.sleep = time.sleep  # type: ignore[attr-defined]
    return results


def run_real(name: str, calls: int) -> list[float]:
    clock = SystemClock()
    client = _facade(name, clock, scenario(name, clock, random.Random(7)))
    client.admins.identify()
    return [_time(clock, client.admins.identify) for _ in range(calls)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    deadline, budget = POLICY.interactive, POLICY.stale_if_slow or 0.0
    print(f"virtual clock, {args.calls} interactive GET /me per side; deadline {deadline:g}s, ")
    print(f"stale-if-slow budget {budget:g}s; raw SDK with max_retries=4")
    print(
        f"{'scenario':<10} {'side':<12} {'first s':>9} {'p99 s':>9} {'worst s':>9} "
        f"{'> deadline':>11}"
    )
    holds = True
    for name in ("reset-1h", "503-ra12", "slow-25s", "hostile", "quota"):
        for side, values in run_virtual(name, args.calls).items():
            over = sum(v > deadline + 1e-9 for v in values)
            print(
                f"{name:<10} {side:<12} {values[0]:>9.3f} {_p99(values):>9.3f} "
                f"{max(values):>9.3f} {over:>6}/{len(values)}"
            )
            if side != "raw SDK":
                holds &= over == 0
            if side == "facade warm":
                holds &= _p99(values) <= budget + 1e-9
            if side == "facade cold" and name == "reset-1h":
                holds &= values[0] < 0.05
    print(
        f"targets (0 past deadline, warm p99 <= budget, first reset-1h call < 50 ms): "
        f"{'hold' if holds else 'MISSED'}"
    )
    print("\nreal time, the facade's own cost when it decides early (ms):")
    for name in ("reset-1h", "503-ra12", "quota"):
        values = run_real(name, max(args.calls // 4, 10))
        print(
            f"{name:<10} p50 {statistics.median(values) * 1e3:7.3f}  "
            f"p99 {_p99(values) * 1e3:7.3f}  worst {max(values) * 1e3:7.3f}"
        )


if __name__ == "__main__":
    main()
