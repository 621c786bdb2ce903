"""The sans-I/O core: pure decisions and small state objects, driven by the sync and async shells.

Nothing in this package performs I/O, sleeps, or reads the real clock: time always comes in as an
argument (or through an injected :class:`~intercom_resilience._clock.Clock`), so every decision
can be tested with hypothesis on a virtual clock.
"""
