"""``benchmarks/coalescing.py`` as a smoke test: a short burst in one process, a small fleet."""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.benchmark_support import load_benchmark


def _benchmark() -> ModuleType:
    return load_benchmark("coalescing")


def test_a_burst_in_one_process_sends_one_request() -> None:
    bench = _benchmark()
    base, ours = bench.run_process(readers=40, latency=0.02)
    print("\n" + bench.PROCESS_HEADER + "\n" + base.row() + "\n" + ours.row())
    assert base.upstream == 40 and base.coalesced == 0
    assert ours.upstream == 1 and ours.coalesced == 39


@pytest.mark.redis
def test_a_fleet_sends_at_most_one_request_per_process(fresh_redis_url: str) -> None:
    bench = _benchmark()
    results = [
        bench.run_fleet(fresh_redis_url, processes=2, per_process=5, latency=0.2, fleet=fleet)
        for fleet in (False, True)
    ]
    print("\n" + bench.FLEET_HEADER + "\n" + "\n".join(r.row() for r in results))
    base, ours = results
    assert base.upstream == 2  # in-process coalescing only: one request per process
    assert 1 <= ours.upstream <= 2 and ours.coalesced >= 8
    assert base.found == ours.found == [3]  # every search answered with the three contacts
