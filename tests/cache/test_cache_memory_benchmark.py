"""``benchmarks/cache_memory.py`` as a smoke test: it measures both sides and prints every target."""

from __future__ import annotations

from tests.benchmark_support import load_benchmark


def test_every_target_is_printed_with_its_figure_and_verdict() -> None:
    benchmark = load_benchmark("cache_memory")
    lines = benchmark.report(300, measure=benchmark.in_process)
    print("\n".join(lines))
    text = "\n".join(lines)
    assert "entries stored                      300 (of 300; baseline 300)" in text
    for target in ("target <= 400 B", "budget / traced held", "budget / RSS growth", "64 MiB"):
        (line,) = [line for line in lines if target in line]
        assert line.endswith(("holds", "MISSED", "(RSS grew by under 1 MiB)")), line
    # The accounting holds even on a small fill (the RSS figures need a large one).
    (traced,) = [line for line in lines if "budget / traced held" in line]
    assert traced.endswith("holds"), traced
