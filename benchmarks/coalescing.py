"""Request coalescing: identical reads in flight share one upstream request (#17, 3).

Two parts, each measured against a baseline run in the same invocation:

* ``process``: 200 concurrent identical ``contacts.find`` in one process (asyncio tasks, one
  ``AsyncResilientIntercom``), Intercom answering in ``--latency`` seconds. Baseline: the same
  burst with ``CachePolicy(coalesce=False)``. Printed: upstream requests, the leader's latency and
  the waiters' p50/p95 (a waiter should take about as long as the leader, not longer).
* ``fleet``: ``--processes`` processes, each firing ``--per-process`` concurrent identical
  ``contacts.search`` at one fake Intercom served over real HTTP, with ``fleet_coalesce`` (a lock
  and the shared cache in Redis) and without (in-process coalescing only: one request per process
  at best). Target: the fleet sends at most one request per process; ideally one in all.

Run: ``python benchmarks/coalescing.py [--parts process,fleet] [--processes 4] [--redis-url URL]``
(the ``fleet`` part needs the ``redis`` and ``server`` extras and a Redis).
``tests/pipeline/test_coalescing_benchmark.py`` runs both briefly.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import statistics
import sys
import time
import uuid
from typing import Any

import _workers  # benchmarks/_workers.py: the fleet's processes
import httpx

QUERY = {"field": "email", "operator": "$", "value": "@bench.example"}
READERS = 200
LATENCY = 0.05
PROCESSES = 4
PER_PROCESS = 25


def _percentile(values: list[float], percent: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * percent / 100))]


# ------------------------------------------------------------------------------ in one process


class _Slow(httpx.AsyncBaseTransport):
    """The fake's async transport, answering after *latency* seconds, counting what reached it."""

    def __init__(self, inner: httpx.AsyncBaseTransport, latency: float) -> None:
        self.inner = inner
        self.latency = latency
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        await asyncio.sleep(self.latency)
        return await self.inner.handle_async_request(request)


@dataclasses.dataclass(frozen=True)
class ProcessResult:
    """One burst in one process."""

    coalesce: bool
    readers: int
    upstream: int
    leader_ms: float
    waiters_p50_ms: float
    waiters_p95_ms: float
    coalesced: int

    def row(self) -> str:
        label = "coalesce=True" if self.coalesce else "coalesce=False (baseline)"
        return (
            f"  {label:<28} {self.readers:>7} {self.upstream:>9} {self.coalesced:>9} "
            f"{self.leader_ms:>10.1f} {self.waiters_p50_ms:>11.1f} {self.waiters_p95_ms:>11.1f}"
        )


PROCESS_HEADER = (
    f"  {'side':<28} {'readers':>7} {'upstream':>9} {'coalesced':>9} "
    f"{'leader ms':>10} {'waiters p50':>11} {'waiters p95':>11}"
)


async def _burst(coalesce: bool, readers: int, latency: float) -> ProcessResult:
    from intercom_resilience import (
        AsyncResilientIntercom,
        CachePolicy,
        ResilienceConfig,
        capture_calls,
    )
    from intercom_resilience.testing import FakeIntercom

    fake = FakeIntercom()
    contact = fake.workspace().create_contact({"email": "one@bench.example"}, 0)
    transport = _Slow(fake.async_transport(), latency)
    config = ResilienceConfig(cache=CachePolicy(coalesce=coalesce))
    start = asyncio.Event()

    async def read() -> tuple[float, bool, int]:
        await start.wait()
        began = time.perf_counter()
        with capture_calls() as calls:
            await client.contacts.find(contact_id=contact.id)
        info = calls.calls[0]
        return (time.perf_counter() - began) * 1000, info.coalesced, info.attempts

    async with AsyncResilientIntercom(
        token="fake-token", transport=transport, config=config
    ) as client:
        tasks = [asyncio.create_task(read()) for _ in range(readers)]
        await asyncio.sleep(0)  # every task waits at the start line
        start.set()
        results = await asyncio.gather(*tasks)
    senders = [ms for ms, coalesced, attempts in results if not coalesced]
    waiters = [ms for ms, coalesced, _ in results if coalesced] or [float("nan")]
    return ProcessResult(
        coalesce=coalesce,
        readers=readers,
        upstream=transport.requests,
        leader_ms=statistics.median(senders),
        waiters_p50_ms=_percentile(waiters, 50),
        waiters_p95_ms=_percentile(waiters, 95),
        coalesced=sum(1 for _, coalesced, _ in results if coalesced),
    )


def run_process(readers: int = READERS, latency: float = LATENCY) -> list[ProcessResult]:
    """The baseline burst, then the coalesced one (``leader_ms``: the senders' median)."""
    return [asyncio.run(_burst(flag, readers, latency)) for flag in (False, True)]


# ------------------------------------------------------------------------------ across a fleet


def _worker(options: dict[str, Any]) -> None:
    """One process: fire *per_process* concurrent identical searches at the start time."""
    from intercom_resilience import (
        AsyncResilientIntercom,
        CachePolicy,
        ResilienceConfig,
        capture_calls,
    )

    config = ResilienceConfig(
        redis_url=options["redis_url"],
        cache=CachePolicy(
            backend="redis", coalesce=True, fleet_coalesce=options["fleet"], fleet_wait=5.0
        ),
    )

    async def main() -> dict[str, Any]:
        async with AsyncResilientIntercom(
            token=options["token"], base_url=options["base_url"], config=config
        ) as client:
            await client.admins.identify()  # connections warm before the start line
            start = await asyncio.to_thread(_workers.ready)
            await asyncio.sleep(max(0.0, start - time.time()))

            async def search() -> tuple[bool, int, int]:
                with capture_calls() as calls:
                    pager = await client.contacts.search(query=QUERY)
                    found = len(pager.items or [])
                info = calls.calls[0]
                # A read whose latency budget (stale_if_slow, 2 s) ran out while waiting is
                # answered from the shared cache as stale: counted apart (attempts -1).
                return info.coalesced, -1 if info.stale else info.attempts, found

            results = await asyncio.gather(*(search() for _ in range(options["per_process"])))
        return {
            "coalesced": sum(1 for coalesced, _, _ in results if coalesced),
            "attempts": sum(max(0, attempts) for _, attempts, _ in results),
            "found": sorted({found for _, _, found in results}),
            "kinds": sorted({f"{c}/{a}" for c, a, _ in results}),
        }

    _workers.report(asyncio.run(main()))


@dataclasses.dataclass(frozen=True)
class FleetResult:
    """One fleet burst: what the fake saw, and what the processes saw."""

    fleet: bool
    processes: int
    readers: int
    upstream: int
    coalesced: int
    found: list[int]
    #: How the reads were answered: "coalesced/attempts" pairs seen (``True/0``, ``False/1``;
    #: ``False/-1``: stale, the read's latency budget ran out while it waited).
    kinds: list[str]

    def row(self) -> str:
        label = "fleet_coalesce=True" if self.fleet else "in-process only (baseline)"
        per = self.upstream / self.processes
        return (
            f"  {label:<28} {self.processes:>9} {self.readers:>7} {self.upstream:>9} "
            f"{per:>12.2f} {self.coalesced:>9}  {','.join(self.kinds)}"
        )


FLEET_HEADER = (
    f"  {'side':<28} {'processes':>9} {'readers':>7} {'upstream':>9} "
    f"{'per process':>12} {'coalesced':>9}  answered (coalesced/attempts)"
)


def run_fleet(
    redis_url: str,
    *,
    processes: int = PROCESSES,
    per_process: int = PER_PROCESS,
    latency: float = 0.2,
    fleet: bool = True,
) -> FleetResult:
    """One burst of the fleet against a fresh fake served on 127.0.0.1."""
    from intercom_resilience.testing import FakeIntercom

    token = f"coalesce-{uuid.uuid4().hex[:12]}"  # fresh cache keys for every run
    fake = FakeIntercom(token=token, journal_size=None)
    for n in range(3):
        fake.workspace().create_contact({"email": f"p{n}@bench.example"}, 0)
    fake.faults.latency(latency, path="/contacts/search")
    with fake.serve_in_thread() as base_url:
        options = {
            "token": token,
            "base_url": base_url,
            "redis_url": redis_url,
            "fleet": fleet,
            "per_process": per_process,
        }
        with _workers.fleet(__file__, options, processes) as workers:
            workers.release(time.time() + 0.3)
            outputs = workers.results(timeout=120)
    return FleetResult(
        fleet=fleet,
        processes=processes,
        readers=processes * per_process,
        upstream=fake.journal.count(method="POST", path="/contacts/search"),
        coalesced=sum(o["coalesced"] for o in outputs),
        found=sorted({n for o in outputs for n in o["found"]}),
        kinds=sorted({k for o in outputs for k in o["kinds"]}),
    )


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "worker":
        _worker(json.loads(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="process,fleet")
    parser.add_argument("--readers", type=int, default=READERS)
    parser.add_argument("--latency", type=float, default=LATENCY, help="Intercom's, seconds")
    parser.add_argument("--processes", type=int, default=PROCESSES)
    parser.add_argument("--per-process", type=int, default=PER_PROCESS)
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("INTERCOM_RESILIENCE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
    )
    args = parser.parse_args()
    parts = args.parts.split(",")
    if "process" in parts:
        print(
            f"coalescing in one process: {args.readers} concurrent identical contacts.find, "
            f"Intercom answering in {args.latency * 1000:.0f} ms"
        )
        base, ours = run_process(args.readers, args.latency)
        print(PROCESS_HEADER)
        print(base.row())
        print(ours.row())
        print(
            f"  upstream requests: {ours.upstream} vs {base.upstream} "
            f"({ours.upstream / base.upstream:.3f} of the baseline); waiters p50 / leader: "
            f"{ours.waiters_p50_ms / ours.leader_ms:.2f}; waiters p50 / baseline p50: "
            f"{ours.waiters_p50_ms / base.leader_ms:.2f}"
        )
        print(
            "  (baseline 'leader ms' is the median of all its senders; a waiter's extra time "
            "over the leader is its own response being built and parsed after the landing, "
            "one after another on the loop)"
        )
    if "fleet" in parts:
        print(
            f"coalescing across a fleet: {args.processes} processes x {args.per_process} "
            f"concurrent identical contacts.search, Redis at {args.redis_url}"
        )
        print(FLEET_HEADER)
        results = [
            run_fleet(
                args.redis_url,
                processes=args.processes,
                per_process=args.per_process,
                fleet=fleet,
            )
            for fleet in (False, True)
        ]
        for result in results:
            print(result.row())
        base, ours = results
        print(
            f"  upstream requests: {ours.upstream} vs {base.upstream} "
            f"({ours.upstream / base.upstream:.3f} of the baseline; target <= {ours.processes})"
        )


if __name__ == "__main__":
    main()
