"""``benchmarks/fleet_outage.py`` as a smoke test: a small fleet in a short outage, and the cost.

The benchmark itself runs 8 processes through a 30 s outage; this runs 3 through 3 s with a 2 s
window, which is enough to tell one breaker for the fleet from one per process.
"""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.benchmark_support import load_benchmark

pytestmark = pytest.mark.redis


def _benchmark() -> ModuleType:
    return load_benchmark("fleet_outage")


def test_one_breaker_for_the_fleet_sends_less_upstream_than_one_per_process(
    fresh_redis_url: str,
) -> None:
    bench = _benchmark()
    shape = {
        "outage": 3.0,
        "redis_url": fresh_redis_url,
        "processes": 3,
        "warmup": 0.5,
        "interval": 0.05,
        "window": 2.0,
        "cooldown": 30.0,  # no trial call inside the outage: only the run-up to open is counted
    }
    fleet = bench.run_side("fleet", **shape)
    local = bench.run_side("local", **shape)
    print(f"\nupstream during the outage: fleet {fleet.upstream}, per-process {local.upstream}")
    print(f"opened after: fleet {fleet.opened_after}, per-process {local.opened_after}")
    # Every process saw the shared breaker open, within one window of the outage's start.
    assert fleet.fleet_open_after is not None and fleet.fleet_open_after <= shape["window"]
    # The fleet needs one run of failures; three processes need three (a process in its backoff
    # sends few attempts, so in 3 s some of them may not even have opened their own).
    assert 0 < fleet.upstream < local.upstream


def test_the_observation_cost_is_at_most_one_round_trip(fresh_redis_url: str) -> None:
    bench = _benchmark()
    cost = bench.measure_cost(fresh_redis_url, observations=300)
    report = bench.cost_report(cost)
    print("\n" + "\n".join(report))
    assert cost.success.round_trips == 0  # held back, told with the next script call
    assert cost.failure.round_trips == 1
    assert cost.allow.round_trips == 1
    assert cost.ping_per_s > 0 and cost.success.per_s > 0
    assert "target <= 1 round trip per observation" in report[-1]
