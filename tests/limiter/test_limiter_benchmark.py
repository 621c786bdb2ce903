"""A smoke test of ``benchmarks/limiter.py``: every section runs, interleaves its sides and
prints its targets with a verdict (the figures themselves are not checked: timing is not a unit
test's business)."""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.benchmark_support import load_benchmark


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_benchmark("limiter")


def test_rounds_interleave_the_sides_in_a_rotating_order(bench: ModuleType) -> None:
    order: list[str] = []

    def side(name: str) -> object:
        return lambda: (order.append(name), (1.0, None))[1]

    results = bench.interleave({name: side(name) for name in "abc"}, rounds=3)
    assert order == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]  # no side always goes first
    assert all(len(values) == 3 for values in results.values())


def test_the_memory_sections_print_their_targets(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    bench.memory(0.005, 2)
    bench.threaded(0.01, 2, threads=2)
    out = capsys.readouterr().out
    assert out.count("target:") == 3
    assert "2 interleaved rounds" in out


@pytest.mark.redis
def test_the_redis_section_prints_its_targets(
    bench: ModuleType, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bench.with_redis(redis_url, 0.005, 1)
    out = capsys.readouterr().out
    targets = [line for line in out.splitlines() if "target:" in line]
    assert any("one Redis round trip per call" in line for line in targets)
    assert any("Redis CPU per acquire" in line for line in targets)
    assert all(("holds" in line or "HOLD" in line or "installed" in line) for line in targets)
    # (the count itself comes from server-wide stats: other clients of a shared Redis add to it)
    assert "script calls per call" in out


@pytest.mark.redis
def test_the_facade_section_measures_both_limiters(bench: ModuleType, redis_url: str) -> None:
    timings = bench.facade_cost(redis_url, rounds=2, calls=3)
    assert set(timings) == {"raw SDK", "facade, memory limiter", "facade, Redis limiter"}
    assert all(len(values) == 2 and min(values) > 0 for values in timings.values())
    lines = bench.report_facade_cost(timings)
    assert lines[0].startswith("what a facade call pays for the Redis limiter")
    assert [line.split()[0] for line in lines[1:]] == ["raw", "facade,", "facade,"]
    assert all("x the memory-limiter facade" in line for line in lines[1:])
