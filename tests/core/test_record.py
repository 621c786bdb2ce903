"""``@record``: the pipeline's per-call values, built as plain slotted dataclasses.

They must keep what the frozen dataclasses they replaced gave (equality and hashing by value,
``dataclasses.replace``); read-only is the type checker's to enforce
(tests/typing/test_typed_results.py checks that it does).
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intercom_resilience._backends.base import BreakerVerdict, CachedResponse, Priority
from intercom_resilience._core.limiter import Grant
from intercom_resilience._core.outcome import Outcome
from intercom_resilience._core.record import record
from intercom_resilience._core.responses import RateLimitInfo
from intercom_resilience._pipeline.call import Conclusion
from intercom_resilience._pipeline.effects import Acquire, ObserveRate, Send, Sleep


@record
class Point:
    x: int
    y: int = 0
    tags: tuple[str, ...] = dataclasses.field(default=())


@given(st.integers(), st.integers(), st.integers(), st.integers())
def test_equal_and_hashed_by_value(x1: int, y1: int, x2: int, y2: int) -> None:
    first, second = Point(x1, y1), Point(x2, y2)
    assert (first == second) == ((x1, y1) == (x2, y2))
    if first == second:
        assert hash(first) == hash(second)
    assert Point(x1, y1) == first and hash(Point(x1, y1)) == hash(first)


def test_slotted_and_replaceable() -> None:
    point = Point(1)
    assert not hasattr(point, "__dict__")
    with pytest.raises(AttributeError):
        point.z = 3  # type: ignore[attr-defined]
    assert dataclasses.replace(point, y=2) == Point(1, 2)
    assert repr(point) == "Point(x=1, y=0, tags=())"


@pytest.mark.parametrize(
    "cls",
    [Outcome, Conclusion, RateLimitInfo, CachedResponse, BreakerVerdict, Grant, Send, Sleep],
)
def test_the_hot_path_builds_records_not_frozen_dataclasses(cls: type[object]) -> None:
    """A frozen dataclass sets every field through object.__setattr__ (3-4x a slotted set)."""
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    assert not params.frozen
    assert "__slots__" in vars(cls)


def test_effects_compare_by_value() -> None:
    """The prebuilt effects (ACQUIRE, TELL_BREAKER) and fresh ones are interchangeable."""
    assert ObserveRate(200, None) == ObserveRate(200, None)
    assert ObserveRate(200, None) != ObserveRate(429, None)
    assert hash(Sleep(0.5)) == hash(Sleep(0.5))
    assert Acquire(Priority.INTERACTIVE) != Acquire(Priority.BACKGROUND)
