"""The sliding-window counter behind the retry budget, the breaker and the health window.

``add`` skips expiry while time stays in the newest bucket (issue #19: it runs twice per call);
these properties pin that it counts exactly what a counter that expires on every add counts.
"""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from intercom_resilience._core.window import SlidingCounter

NAMES = ("calls", "failures")


class ExpiringOnEveryAdd:
    """The reference: buckets expired before every add and every read, as the counter did."""

    def __init__(self, window: float, resolution: float) -> None:
        self.window, self.resolution = window, resolution
        self.buckets: list[list[float]] = []

    def _expire(self, now: float) -> int:
        current = math.floor(now / self.resolution)
        oldest_kept = current - math.ceil(self.window / self.resolution) + 1
        self.buckets = [b for b in self.buckets if b[0] >= oldest_kept]
        return current

    def add(self, now: float, name: str, amount: float) -> None:
        current = self._expire(now)
        if not self.buckets or self.buckets[-1][0] < current:
            self.buckets.append([current, 0.0, 0.0])
        self.buckets[-1][1 + NAMES.index(name)] += amount

    def total(self, now: float, name: str) -> float:
        self._expire(now)
        return sum(b[1 + NAMES.index(name)] for b in self.buckets)


# Steps in time: mostly forward (within a bucket, across buckets, past the window), sometimes
# back a little (threads racing on one clock).
_step = st.one_of(
    st.floats(0.0, 0.3),
    st.floats(0.0, 3.0),
    st.floats(5.0, 30.0),
    st.floats(-0.5, 0.0),
)
_ops = st.lists(
    st.tuples(_step, st.sampled_from(NAMES), st.sampled_from([0.5, 1.0, 2.0]), st.booleans()),
    max_size=80,
)


@given(
    window=st.sampled_from([1.0, 10.0, 60.0]),
    resolution=st.sampled_from([None, 0.05, 0.25, 1.0]),
    ops=_ops,
)
def test_counts_as_a_counter_that_expires_on_every_add(
    window: float, resolution: float | None, ops: list[tuple[float, str, float, bool]]
) -> None:
    counter = SlidingCounter(window, NAMES, resolution)
    reference = ExpiringOnEveryAdd(window, counter.resolution)
    now = 1000.0
    for step, name, amount, read in ops:
        now = max(now + step, 0.0)
        if read:
            for each in NAMES:
                assert math.isclose(counter.total(now, each), reference.total(now, each))
        else:
            counter.add(now, name, amount)
            reference.add(now, name, amount)
    for each in NAMES:
        assert math.isclose(counter.total(now, each), reference.total(now, each))
    assert counter.totals(now) == {each: counter.total(now, each) for each in NAMES}


def test_an_add_in_a_later_bucket_expires_what_left_the_window() -> None:
    counter = SlidingCounter(1.0, NAMES, 0.1)
    counter.add(0.05, "calls")
    counter.add(0.06, "calls")  # same bucket: the fast path
    assert counter.total(0.07, "calls") == 2
    counter.add(5.0, "failures")
    assert counter.total(5.0, "calls") == 0
    assert counter.total(5.0, "failures") == 1
