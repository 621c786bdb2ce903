"""``benchmarks/outbox.py`` as a test: a backlog queued during an outage is replayed exactly once."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "outbox.py"


def _benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("intercom_resilience_outbox_bench", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("reserve", [0.2, 0.05])
def test_a_backlog_is_replayed_once_at_the_background_rate(reserve: float, tmp_path: Path) -> None:
    result = _benchmark().outage_and_replay(3_000, tmp_path, background_reserve=reserve)
    print(result)
    assert result["queued"] > 2_900  # all but the few refused before the breaker opened
    assert result["queued but lost"] == 0
    assert result["duplicated"] == 0
    assert result["delivered"] == result["queued"]
    assert result["429s"] == 0
    # Paced at what the background lane may use (virtual time: a property of the pacing).
    assert (1 - reserve) * 0.9 <= result["replay rate / quota"] <= 1 - reserve + 0.01
