"""Smoke tests of the hot-path benchmarks (``benchmarks/overhead.py``, ``benchmarks/threads.py``).

Timing is the benchmarks' business, not these tests': they only run each harness briefly and
check that it measures every side and states every target with a verdict.
"""

from __future__ import annotations

from types import ModuleType

from tests.benchmark_support import load_benchmark


def _overhead() -> ModuleType:
    return load_benchmark("overhead")


def _threads() -> ModuleType:
    return load_benchmark("threads")


def test_overhead_states_every_target_with_its_verdict() -> None:
    bench = _overhead()
    scenarios = bench.run(rounds=2, scale=0.02, only=("find", "search"), http=False)
    assert [s.name for s in scenarios] == [
        "find, sync, in process",
        "search, sync, in process",
        "find, async, in process",
        "search, async, in process",
    ]
    for scenario in scenarios:
        assert set(scenario.timings) == {"raw SDK", "pass-through", "full pipeline"}
        assert all(len(values) == 2 for values in scenario.timings.values())
    lines = bench.report(scenarios, rounds=2)
    verdicts = [line for line in lines if "<= " in line]
    assert len(verdicts) == 8  # two facades in each of four scenarios
    assert all(line.rstrip().endswith(("holds", "MISSES")) for line in verdicts)
    assert any(
        line.startswith("targets: ") and line.endswith(" of 8 on the best rounds") for line in lines
    )
    costs = bench.pipeline_cost(rounds=2, calls=5)
    assert set(costs) == {"inner", "pass-through", "full pipeline"}
    added = bench.report_pipeline_cost(costs, scenarios)
    assert [line.split()[0] for line in added[2:]] == ["pass-through", "full"]
    assert all(line.rstrip().endswith(("holds)", "MISSES)")) for line in added[2:])


def test_overhead_splits_a_whole_find_into_its_parts() -> None:
    bench = _overhead()
    splits = bench.gap_split(rounds=2, calls=5)
    assert set(splits) == {"raw SDK", "pass-through", "full pipeline"}
    for name, values in splits.items():
        assert len(values) == 2
        for whole, own, fake, outside in values:
            # Each part is a real share of the call (a timer wired around the wrong transport
            # reads zero, or the whole call), and only a facade has a pipeline of its own.
            assert 0 < fake < whole and 0 < outside < whole
            assert (0 < own < whole) if name != "raw SDK" else own == 0
    costs = bench.pipeline_cost(rounds=2, calls=5)
    cookies = bench.cookie_pass(rounds=2, calls=20)
    assert {name: len(values) for name, values in cookies.items()} == {"raw SDK": 2, "facade": 2}
    assert all(seconds > 0 for values in cookies.values() for seconds in values)
    lines = bench.report_gap_split(splits, costs, cookies)
    assert [line.split()[0] for line in lines[2:]] == ["raw", "pass-through", "full", "outside,"]
    assert all(" (+" in line or " (-" in line for line in lines[3:5])


def test_threads_counts_calls_and_lock_waits() -> None:
    bench = _threads()
    fake = bench.FakeIntercom(app_quota=10**9, workspace_quota=10**9)
    raw, facade = bench._clients(fake)
    contact_id = raw.contacts.create(request={"email": "smoke@example.com"}).id
    locks = bench.instrument(facade)
    assert {"shared (breaker, budget)", "limiter", "cache", "health monitor"} <= set(locks)
    rate, latency, calls = bench.run_round(
        lambda: facade.contacts.find(contact_id=contact_id), threads=2, seconds=0.05
    )
    assert calls > 0 and rate > 0 and latency > 0
    # Every call takes the limiter's lock (acquire, then the rate headers) and the monitor's.
    assert locks["limiter"].acquired >= calls
    assert locks["health monitor"].acquired >= calls


def test_instructions_runs_every_subject_and_states_each_target() -> None:
    bench = load_benchmark("instructions")
    # The loop each callgrind child counts, run here without valgrind (a few calls each).
    for subject in ("raw SDK find", "inner", "pass-through", "full pipeline"):
        bench._child(subject, 3, None)
        bench._child(subject + bench.ASYNC, 3, None)
    counts = {
        "raw SDK find": 1_000_000.0,
        "inner": 100_000.0,
        "pass-through": 115_000.0,  # adds 15,000: 1.015, within 1.02
        "full pipeline": 160_000.0,  # adds 60,000: 1.060, past 1.05
        # async: against the async raw SDK and inner transport, not the sync ones
        "raw SDK find (async)": 2_000_000.0,
        "inner (async)": 200_000.0,
        "pass-through (async)": 250_000.0,  # adds 50,000: 1.025, past 1.02
        "full pipeline (async)": 280_000.0,  # adds 80,000: 1.040, within 1.05
    }
    lines = bench.report(counts)
    sync = [line for line in lines if "(async)" not in line]
    (passing,) = [line for line in sync if line.strip().startswith("pass-through ")]
    (full,) = [line for line in sync if line.strip().startswith("full pipeline ")]
    (apassing,) = [line for line in lines if line.strip().startswith("pass-through (async)")]
    (afull,) = [line for line in lines if line.strip().startswith("full pipeline (async)")]
    assert "15,000" in passing and "1.015" in passing and passing.endswith("holds)")
    assert "60,000" in full and "1.060" in full and full.endswith("MISSES)")
    assert "50,000" in apassing and "1.025" in apassing and apassing.endswith("MISSES)")
    assert "80,000" in afull and "1.040" in afull and afull.endswith("holds)")
