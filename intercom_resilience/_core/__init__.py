"""The sans-I/O core: pure decisions and small state objects, driven by the sync and async shells.

Nothing in this package performs I/O, sleeps, or reads the real clock: time always comes in as an
argument (or through an injected :class:`~intercom_resilience._clock.Clock`), so every decision
can be tested with hypothesis on a virtual clock.

Two conventions of the per-call path (issue #19's hot path, measured with
``benchmarks/instructions.py``), in this package and the stages that call it:

* the values a call builds are records (:mod:`.record`): read-only to the type checker, plain
  slotted dataclasses at run time;
* enum members compared on every call are bound to module names (``_RETRY = Verdict.RETRY``):
  on Python 3.10 and 3.11 ``EnumType`` defines ``__getattr__``, which puts every ``Verdict.RETRY``
  read through a slow attribute hook (84 ns against 20 ns for a global on one machine, 51
  against 6 ns on another, both on 3.11).
"""
