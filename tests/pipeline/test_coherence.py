"""Write generations (``_pipeline/coherence.py``) against a model that forgets nothing.

Safety: a read the model says was overtaken by a write is never allowed to store. Liveness: a
read younger than the horizon, with no write on its tags since it started, may store (forgetting
old stamps never costs a young read its cache entry). Memory: no stamp outlives the horizon.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from intercom_resilience._clock import VirtualClock
from intercom_resilience._pipeline.coherence import Coherence

TAGS = st.lists(
    st.sampled_from([f"s|/contacts/{n}" for n in range(6)] + ["s|/contacts"]),
    min_size=1,
    max_size=3,
    unique=True,
).map(tuple)
HORIZON = 30.0


class Generations(RuleBasedStateMachine):
    reads = Bundle("reads")

    @initialize(max_tags=st.sampled_from([2, 4, 1_000]))
    def build(self, max_tags: int) -> None:
        self.clock = VirtualClock()
        self.max_tags = max_tags
        self.coherence = Coherence(self.clock, enabled=True, horizon=HORIZON, max_tags=max_tags)
        self.writes: list[tuple[float, tuple[str, ...]]] = []  # the model: every write, forever

    @rule(tags=TAGS)
    def write(self, tags: tuple[str, ...]) -> None:
        self.coherence.bump(tags)
        self.writes.append((self.clock.monotonic(), tags))

    @rule(seconds=st.floats(min_value=0.0, max_value=2 * HORIZON))
    def wait(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule(target=reads, tags=TAGS)
    def start_read(self, tags: tuple[str, ...]) -> tuple[tuple[str, ...], int, int, float]:
        return (tags, self.coherence.snapshot(), len(self.writes), self.clock.monotonic())

    @rule(read=reads)
    def finish_read(self, read: tuple[tuple[str, ...], int, int, float]) -> None:
        tags, seen, writes_before, started = read
        overtaken = any(set(tags) & set(w) for _, w in self.writes[writes_before:])
        allowed = self.coherence.current(tags, seen)
        if overtaken:
            assert not allowed, "a read overtaken by a write was allowed to store"
        elif self.max_tags >= 1_000 and self.clock.monotonic() - started < HORIZON:
            assert allowed, "a young read nobody overtook was refused"

    @invariant()
    def bounded(self) -> None:
        if not hasattr(self, "coherence"):
            return
        assert len(self.coherence) <= self.max_tags
        # Stamps are forgotten as writes come in: whatever is kept after a write is recent.
        if self.writes and self.writes[-1][0] == self.clock.monotonic():
            oldest_kept = self.clock.monotonic() - HORIZON
            live = {t for at, w in self.writes if at >= oldest_kept for t in w}
            assert len(self.coherence) <= len(live)


TestGenerations = Generations.TestCase
TestGenerations.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
