"""``benchmarks/writes.py`` as a test: lost answers after commit, the raw SDK next to the library."""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.benchmark_support import load_benchmark


def _benchmark() -> ModuleType:
    return load_benchmark("writes")


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_lost_answers_are_reconciled_never_duplicated(use_async: bool) -> None:
    bench = _benchmark()
    raw = bench.run_raw_sdk(300, 1)
    ours, before = bench.run_library(300, 1, use_async=use_async)
    print("\n" + bench.HEADER + "\n" + "\n".join(t.row() for t in (raw, before, ours)))

    assert raw.lost_answers > 50 and ours.lost_answers > 50  # the run really lost answers
    assert raw.duplicates > 0  # what the SDK's own retries do
    assert ours.duplicates == 0
    assert ours.wrong_answers < raw.wrong_answers
    # Reconciliation resolved most of what the first release left unknown, by every method.
    assert set(ours.reconciled) == {"conflict", "lookup", "resent"}
    assert sum(ours.unknown.values()) * 2 < sum(before.unknown.values())
    assert "unresolvable" not in ours.unknown  # the plan has no unresolvable write
    # Nothing is left unknown because of the retry budget or the deadline: only writes whose
    # every attempt's answer was lost (max_attempts in a row, at a 25% loss rate).
    assert set(ours.unknown_why) <= {"all N attempts are spent"}
    assert sum(ours.unknown.values()) <= 3
