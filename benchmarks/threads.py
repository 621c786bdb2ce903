"""Many threads on one client: throughput and latency of the facade against the raw SDK.

``--threads`` threads (16) share one client and call ``contacts.find`` as fast as they can for
``--seconds`` per round, on the in-process fake (its quota raised so that nobody is refused, the
facade's too: only contention is measured). Rounds alternate between the raw SDK and the full
default pipeline (interleaved, so machine noise hits both alike); each round gives calls per
second and the median per-call latency, and the medians over the rounds are compared:

* throughput ≥ 0.97× the raw SDK's;
* median latency within 1.2× the raw SDK's.

Under CPython's GIL the threads take turns; what the facade must not add is a *convoy*: a thread
switched out while it holds one of the pipeline's locks makes every other thread queue behind
it. ``--locks`` also runs one round with every lock of the facade's pipeline (shared state,
limiter, cache, health monitor, write generations, coalescing) replaced by a counting wrapper,
and prints, per lock, acquisitions per call, the share that had to wait, and the mean wait.
The wrapper is Python code inside every critical section (its ``__exit__`` runs before the real
release), and CPython may switch threads at any Python call: it adds switch points to sections
that had none (the limiter's acquire was written without one), so its figures overstate
contention; the uninstrumented rounds' throughput is the measure.

``--one-thread`` also runs both sides on one thread and prints how much of that throughput
ratio the threads keep: under the GIL the threads take turns, so a ratio near 1.0 says the gap is
the per-call cost, and a convoy would show as a ratio well below it.

Run: ``python benchmarks/threads.py [--threads 16] [--seconds 1.0] [--rounds 7] [--locks]
[--one-thread]``.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import intercom

from intercom_resilience import RateLimitPolicy, ResilienceConfig, ResilientIntercom
from intercom_resilience.testing import FakeIntercom

TOKEN = "fake-token"  # the fake's own default token
THROUGHPUT_TARGET = 0.97
LATENCY_TARGET = 1.2


def run_round(call: Callable[[], object], threads: int, seconds: float) -> tuple[float, float, int]:
    """``(calls per second, median latency in seconds, calls)`` of *threads* threads."""
    stop = threading.Event()
    start_line = threading.Barrier(threads + 1)
    latencies: list[list[float]] = [[] for _ in range(threads)]
    failures: list[BaseException] = []

    def work(mine: list[float]) -> None:
        clock = time.perf_counter
        start_line.wait()
        try:
            while not stop.is_set():
                began = clock()
                call()
                mine.append(clock() - began)
        except BaseException as error:  # a failure must fail the benchmark, not hang it
            failures.append(error)

    workers = [threading.Thread(target=work, args=(latencies[i],)) for i in range(threads)]
    for worker in workers:
        worker.start()
    start_line.wait()
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - began
    if failures:
        raise failures[0]
    every = [latency for mine in latencies for latency in mine]
    return len(every) / elapsed, statistics.median(every), len(every)


class CountingLock:
    """A lock that counts its acquisitions, the ones that had to wait, and how long they waited."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.acquired = 0
        self.waited = 0
        self.wait_s = 0.0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        # The counters are updated while the lock is held: no lock of their own is needed.
        if self._inner.acquire(False):
            self.acquired += 1
            return True
        if not blocking:
            return False
        began = time.perf_counter()
        got = bool(self._inner.acquire(True, timeout))
        if got:
            self.acquired += 1
            self.waited += 1
            self.wait_s += time.perf_counter() - began
        return got

    def release(self) -> None:
        self._inner.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def instrument(client: ResilientIntercom) -> dict[str, CountingLock]:
    """Replace the locks of *client*'s pipeline by counting ones; the wrappers, by name."""
    pipeline = client._pipeline
    owners = {
        "shared (breaker, budget)": pipeline.shared,
        "limiter": pipeline.limiter,
        "cache": pipeline.cache,
        "health monitor": pipeline.monitor,
        "write generations": pipeline.coherence,
        "coalescing": pipeline.coalescing,
        "stale counter": pipeline.stale,
    }
    locks: dict[str, CountingLock] = {}
    for name, owner in owners.items():
        for attribute in ("lock", "_lock"):
            inner = getattr(owner, attribute, None)
            if inner is not None and not isinstance(inner, CountingLock):
                locks[name] = CountingLock(inner)
                setattr(owner, attribute, locks[name])
                break
    return locks


def _clients(fake: FakeIntercom) -> tuple[Any, ResilientIntercom]:
    raw = intercom.Intercom(token=TOKEN, httpx_client=httpx.Client(transport=fake.transport()))
    unthrottled = RateLimitPolicy(app_per_minute=10**9, workspace_per_minute=10**9)
    facade = ResilientIntercom(
        token=TOKEN, transport=fake.transport(), config=ResilienceConfig(rate_limit=unthrottled)
    )
    return raw, facade


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--locks", action="store_true", help="count each pipeline lock's waits")
    parser.add_argument(
        "--one-thread",
        action="store_true",
        help="also run one thread, to tell the per-call cost from what threads add",
    )
    args = parser.parse_args()

    fake = FakeIntercom(app_quota=10**9, workspace_quota=10**9)
    raw, facade = _clients(fake)
    contact_id = raw.contacts.create(request={"email": "threads@example.com"}).id
    sides: dict[str, Callable[[], object]] = {
        "raw SDK": lambda: raw.contacts.find(contact_id=contact_id),
        "full pipeline": lambda: facade.contacts.find(contact_id=contact_id),
    }
    results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in sides}
    for call in sides.values():  # warm up
        run_round(call, args.threads, min(0.2, args.seconds))
    for _ in range(args.rounds):
        for name, call in sides.items():
            results[name].append(run_round(call, args.threads, args.seconds))

    print(
        f"{args.threads} threads on one client, contacts.find on the in-process fake, "
        f"{args.rounds} interleaved rounds of {args.seconds:g} s"
    )
    header = f"{'client':<16} {'calls/s':>9} {'(min-max)':>17} {'median latency':>15}"
    print(f"  {header} {'(min-max)':>17}")
    medians: dict[str, tuple[float, float]] = {}
    for name, rows in results.items():
        rates = [rate for rate, _, _ in rows]
        latencies = [latency * 1e3 for _, latency, _ in rows]
        medians[name] = (statistics.median(rates), statistics.median(latencies))
        print(
            f"  {name:<16} {medians[name][0]:>9,.0f} "
            f"{f'({min(rates):,.0f}-{max(rates):,.0f})':>17} {medians[name][1]:>12.3f} ms "
            f"{f'({min(latencies):.3f}-{max(latencies):.3f})':>17}"
        )
    throughput = medians["full pipeline"][0] / medians["raw SDK"][0]
    latency = medians["full pipeline"][1] / medians["raw SDK"][1]
    for what, ratio, holds, target in (
        ("throughput", throughput, throughput >= THROUGHPUT_TARGET, f">= {THROUGHPUT_TARGET}"),
        ("median latency", latency, latency <= LATENCY_TARGET, f"<= {LATENCY_TARGET}"),
    ):
        verdict = "holds" if holds else "MISSES"
        print(f"  {what} vs raw: {ratio:.3f}x   (target {target}: {verdict})")

    if args.one_thread:
        alone: dict[str, list[float]] = {name: [] for name in sides}
        for _ in range(args.rounds):
            for name, call in sides.items():
                alone[name].append(run_round(call, 1, args.seconds)[0])
        single = statistics.median(alone["full pipeline"]) / statistics.median(alone["raw SDK"])
        print(
            f"  one thread ({args.rounds} more interleaved rounds): throughput vs raw "
            f"{single:.3f}x; {args.threads} threads keep {throughput / single:.3f} of it (1.0: "
            "the threads add no loss of their own, the gap is the per-call cost)"
        )

    if args.locks:
        locks = instrument(facade)
        _, _, calls = run_round(sides["full pipeline"], args.threads, args.seconds)
        print(f"pipeline locks over one instrumented round ({calls:,} calls):")
        print(f"  {'lock':<26} {'per call':>9} {'waited':>8} {'mean wait':>11}")
        for name, lock in locks.items():
            share = lock.waited / lock.acquired if lock.acquired else 0.0
            mean = lock.wait_s / lock.waited * 1e6 if lock.waited else 0.0
            print(
                f"  {name:<26} {lock.acquired / max(calls, 1):>9.2f} {share:>8.1%} {mean:>8.1f} us"
            )
        print(
            "  (an overstatement: the counting wrapper's own Python calls add thread switch "
            "points inside every critical section)"
        )


if __name__ == "__main__":
    main()
