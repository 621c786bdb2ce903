"""The route table: every operation of the vendored 2.16 description, bound to a handler.

An operation gets the fake's stateful handler where there is one (:data:`~._routes.ROUTES`, the
cross-resource operations of :mod:`._links`, and the resource families of :mod:`._resources`) and
otherwise the description-driven answer of :func:`~._generic.generic_handler`. Every route carries
its :class:`~._openapi.Operation`, which :mod:`._validation` checks requests against.
"""

from __future__ import annotations

import functools

from ._generic import generic_handler
from ._links import LINKS
from ._openapi import operations
from ._resources import STATEFUL
from ._routes import ROUTES, Handler, Route

__all__ = ["route_table"]


@functools.cache
def route_table() -> tuple[Route, ...]:
    """All routes, one per operation of the description (built once per process)."""
    handlers: dict[str, Handler] = {f"{r.method} {r.template}": r.handler for r in ROUTES}
    handlers.update(LINKS)
    for key, handler in STATEFUL.items():
        handlers.setdefault(key, handler)
    known = {op.key for op in operations()}
    stray = set(handlers) - known
    if stray:  # pragma: no cover - a guard for whoever edits the tables
        raise RuntimeError(f"handlers for operations the description lacks: {sorted(stray)}")
    return tuple(
        Route(op.method, op.path, handlers.get(op.key) or generic_handler(op), op)
        for op in operations()
    )
