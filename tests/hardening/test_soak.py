"""The chaos soak (``benchmarks/soak.py``) as a slow test: an hour of simulated traffic, asserted.

Run with the slow tests only: ``python -m pytest -m slow tests/hardening``.
"""

from __future__ import annotations

import logging
from types import ModuleType

import pytest

from tests.benchmark_support import load_benchmark


def _soak_module() -> ModuleType:
    return load_benchmark("soak")


def _issued_tokens(soak: ModuleType, seed: int, rotations: int) -> list[str]:
    token = soak.RotatingToken(seed)
    for _ in range(rotations):
        token.rotate()
    return list(token.issued)


@pytest.mark.slow
def test_one_hour_chaos_soak_holds_every_invariant() -> None:
    soak = _soak_module()
    # The soak scans every library log record for tokens itself; not propagating them keeps
    # pytest's log capture (which keeps every record) out of the memory figures.
    # The library's memory is measured as the deep size of what it holds, which needs no
    # tracemalloc (tracing every allocation would triple the run); `benchmarks/soak.py` run by
    # hand adds the process-wide tracemalloc peaks.
    result = soak.run_soak(60, seed=1, trace_memory=False, propagate_logs=False)
    print("\n" + result.table() + "\n\n" + result.memory_table())

    assert result.violations == []
    # The run really was hostile, and really exercised each mechanism.
    assert result.rotations == 5 and result.outages == 3
    assert sum(result.faults.values()) > 200
    assert result.retries > 0 and result.stale_serves > 0 and result.creates_unknown > 0
    assert result.status_429_injected > 0 and result.status_429_quota == 0
    assert result.duplicates == 0
    assert result.stale_serves == result.stale_call_infos
    assert result.worst_window <= soak.WINDOW_QUOTA
    assert result.log_records_checked >= result.requests  # every attempt logged, and scanned

    # Memory: every component within its configured bound, and no meaningful growth.
    last = result.samples[-1]
    assert last.recent_failures <= 200  # AlertPolicy.max_recent_failures
    assert last.incidents_kept <= 51  # 50 closed + the open one
    assert last.health_samples <= 2048
    assert all(s.incident_request_ids <= 1000 for s in result.samples)
    assert all(s.cache_entries <= 10_000 for s in result.samples)
    assert all(s.coherence_tags <= 16_384 for s in result.samples)  # coherence.MAX_TAGS
    assert result.peak_second_half_kib <= 1.25 * result.peak_first_half_kib


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2, 3])
def test_half_hour_chaos_soak_other_seeds(seed: int, caplog: pytest.LogCaptureFixture) -> None:
    soak = _soak_module()
    caplog.set_level(logging.DEBUG, logger="intercom_resilience")
    result = soak.run_soak(30, seed=seed, chaos_rate=0.08, trace_memory=False)
    print("\n" + result.table())
    assert result.violations == []
    assert result.duplicates == 0 and result.status_429_quota == 0
    tokens = _issued_tokens(soak, seed, result.rotations)
    assert len(caplog.records) > 1000  # caplog saw the debug events
    assert not any(token in caplog.text for token in tokens)
