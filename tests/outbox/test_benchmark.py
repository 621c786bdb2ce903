"""``benchmarks/outbox.py`` as a test: a backlog queued during an outage is replayed exactly once."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from tests.benchmark_support import load_benchmark


def _benchmark() -> ModuleType:
    return load_benchmark("outbox")


@pytest.mark.parametrize(
    ("reserve", "use_async"),
    [(0.2, False), (0.0, True)],  # the sync client's replay is the default case's
    ids=["default", "dedicated-async"],
)
def test_a_backlog_is_replayed_once_at_the_background_rate(
    reserve: float, use_async: bool, tmp_path: Path
) -> None:
    result = _benchmark().outage_and_replay(
        3_000, tmp_path, background_reserve=reserve, use_async=use_async
    )
    print(result)
    assert result["queued"] > 2_950  # all but the few refused before the breaker opened
    assert result["queued but lost"] == 0
    assert result["duplicated"] == 0
    assert result["delivered"] == result["queued"]
    assert result["429s"] == 0
    # Paced at what the background lane may use (virtual time: a property of the pacing).
    assert (1 - reserve) * 0.9 <= result["replay rate / quota"] <= 1 - reserve + 0.01
    if reserve == 0.0:  # a dedicated drain worker: the target
        assert result["replay rate / quota"] >= 0.95
