"""Stateful resource families beyond the hand-written core (filled in by later slices)."""

from __future__ import annotations

from ._routes import Handler

__all__ = ["STATEFUL"]

#: ``"METHOD /template"`` to handler, for operations that keep state.
STATEFUL: dict[str, Handler] = {}
